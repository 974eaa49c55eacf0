"""The held-out objective: denoising score matching loss per noise level, on fixed perturbations.

Every model sees identical perturbations of identical held-out data (a fixed
noise seed), so several models are compared on the same numbers and the
difference of their losses has a paired standard error (paper, Section 4.2: NCSN
"provides a learning objective that can be used for principled model comparisons").

References:
    Song & Ermon 2019, Section 4.2 (Eq. 5-6, lambda(sigma) = sigma^2).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ncsn_tf.configs import Config
from ncsn_tf.evaluation.generator import EvaluationError, Generator

HELD_OUT_COUNT = 1000  # held-out examples for the DSM loss (digits: its whole 360-image test split)
LOSS_NOISE_SEED = 20190705  # fixed: every model sees identical perturbations (arXiv:1907.05600)
LOSS_BATCH_SIZE = 500  # examples per score call


def held_out_data(
    config: Config, count: int = HELD_OUT_COUNT, seed: int = LOSS_NOISE_SEED, split: str | None = None
) -> np.ndarray:
    """Held-out examples in file order with the training preprocessing (no flips; fixed dequantisation seed).

    Default split: digits "test" (360 images), toy the data module's "test" stream,
    TFDS data "test"; folders have no split: their first files.

    Args:
        config: the training config (data set and preprocessing).
        count: examples wanted.
        seed: seeds the dequantisation noise (and the toy stream).
        split: the split; None = the default above.

    Returns:
        [N, *shape] float32, N = min(count, available).

    Raises:
        EvaluationError: the split is empty.
    """
    from ncsn_tf.data import make_dataset

    if split is None:
        split = "all" if config.data.dataset == "folder" else "test"
    dataset = make_dataset(
        config, batch_size=min(count, LOSS_BATCH_SIZE), seed=seed, split=split, shuffle=False, repeat=False,
        augment=False, drop_remainder=False,
    )  # fmt: skip
    chunks, total = [], 0
    for batch in dataset:
        chunks.append(batch.numpy())
        total += len(chunks[-1])
        if total >= count:
            break
    if not chunks:
        raise EvaluationError(f"no held-out data for {config.data.dataset!r} (split {split!r})")
    return np.concatenate(chunks)[:count].astype(np.float32)


def held_out_losses(
    generator: Generator, clean: np.ndarray, seed: int = LOSS_NOISE_SEED, batch_size: int = LOSS_BATCH_SIZE
) -> np.ndarray:
    """Per-example DSM losses at every level, on perturbations fixed by `seed`.

    For level i the noise is `default_rng([seed, i]).standard_normal(clean.shape)`,
    the same for every model; the loss is `losses.denoising_score_matching` (paper Eq. 6,
    lambda(sigma) = sigma^2).

    Args:
        generator: the model (its `score`).
        clean: [N, *shape] held-out data.
        seed: noise seed.
        batch_size: examples per score call (the result does not depend on it).

    Returns:
        [L, N] float64 per-example losses; the mean over both axes is the training
        objective (levels are drawn uniformly in training).
    """
    from ncsn_tf.losses import denoising_score_matching

    def score_fn(noisy: Any, sigma_indices: Any) -> np.ndarray:
        return generator.score(np.asarray(noisy), np.asarray(sigma_indices))

    num_levels = len(generator.sigmas)
    per_level = np.zeros((num_levels, len(clean)))  # [L, N]
    for level in range(num_levels):
        noise = np.random.default_rng([seed, level]).standard_normal(clean.shape).astype(np.float32)  # [N, *shape]
        for start in range(0, len(clean), batch_size):
            stop = min(start + batch_size, len(clean))
            indices = np.full((stop - start,), level, np.int32)  # [b]
            values = denoising_score_matching(score_fn, clean[start:stop], indices, noise[start:stop], generator.sigmas)
            per_level[level, start:stop] = np.asarray(values, np.float64)  # [b]
    return per_level


def loss_summary(per_level: np.ndarray, sigmas: np.ndarray, seed: int = LOSS_NOISE_SEED) -> dict[str, Any]:
    """Totals and per-level means with standard errors of [L, N] per-example losses.

    Args:
        per_level: [L, N] from `held_out_losses`.
        sigmas: [L] the ladder.
        seed: the noise seed the losses were computed with (recorded).

    Returns:
        {"count", "noise_seed", "total", "total_standard_error",
         "per_level": [{"sigma", "loss", "standard_error"}]} (standard errors None for N = 1).
    """
    count = per_level.shape[1]
    per_example_total = per_level.mean(axis=0)  # [N]
    return {
        "count": int(count),
        "noise_seed": seed,
        "total": float(per_example_total.mean()),
        "total_standard_error": float(per_example_total.std(ddof=1) / np.sqrt(count)) if count > 1 else None,
        "per_level": [
            {
                "sigma": float(sigma),
                "loss": float(values.mean()),
                "standard_error": float(values.std(ddof=1) / np.sqrt(count)) if count > 1 else None,
            }
            for sigma, values in zip(sigmas, per_level, strict=True)
        ],
    }
