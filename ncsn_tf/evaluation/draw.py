"""Seeded samples in batches, and the sampler settings a run uses.

Sample b uses seed `seed + b`, so a sample does not depend on the batch size or
on the batch it is drawn in (the samplers' per-image seeds, docs/DESIGN.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ncsn_tf.evaluation.generator import EvaluationError, Generator

DEFAULT_BATCH_SIZE = 250  # samples per sampler call


def sampler_settings(
    generator: Generator,
    *,
    steps_per_level: int | None = None,
    epsilon: float | None = None,
    denoise: bool | None = None,
) -> dict[str, Any]:
    """The settings a run samples with: each value given, else the generator's defaults.

    Args:
        generator: the model; its `sampler_defaults` fill what is None.
        steps_per_level, epsilon, denoise: overrides (None = the default).

    Returns:
        {"steps_per_level", "epsilon", "denoise", "convention", "defaults_from"}: what
        evaluation.json records.
    """
    defaults = generator.sampler_defaults
    return {
        "steps_per_level": defaults.steps_per_level if steps_per_level is None else int(steps_per_level),
        "epsilon": defaults.epsilon if epsilon is None else float(epsilon),
        "denoise": defaults.final_denoise if denoise is None else bool(denoise),
        "convention": defaults.convention,
        "defaults_from": generator.defaults_from,
    }


def draw_samples(
    generator: Generator,
    num_samples: int,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    steps_per_level: int | None = None,
    epsilon: float | None = None,
    denoise: bool | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Seeded samples in batches: sample b uses seed `seed + b` (independent of batch_size).

    Args:
        generator: the model.
        num_samples: N.
        batch_size: samples per sampler call.
        seed: seed of the first sample.
        steps_per_level, epsilon, denoise: sampler settings; None = the generator's
            defaults (`sampler_settings`).
        progress: show a tqdm progress bar.

    Returns:
        [N, *shape] float32 samples (not clipped).

    Raises:
        EvaluationError: N or the batch size is not positive, or the seeds leave int32.
    """
    from tqdm import tqdm

    settings = sampler_settings(generator, steps_per_level=steps_per_level, epsilon=epsilon, denoise=denoise)
    if num_samples < 1 or batch_size < 1:
        raise EvaluationError(f"num_samples and batch_size must be positive, got {num_samples} and {batch_size}")
    if seed < 0 or seed + num_samples + batch_size > 2**31:
        raise EvaluationError(f"seeds from {seed} on must fit in int32; lower --seed")
    # Every call gets a full batch (the last one is topped up with the next seeds and cut):
    # one batch shape means one traced sampler. Samples depend only on their seed.
    batch_size = min(batch_size, num_samples)
    batches = []
    with tqdm(total=num_samples, desc=f"sampling {generator.label}", unit="img", disable=not progress) as bar:
        for start in range(0, num_samples, batch_size):
            seeds = np.arange(seed + start, seed + start + batch_size, dtype=np.int32)  # [b]
            wanted = min(batch_size, num_samples - start)
            images = generator.sample(seeds, settings["steps_per_level"], settings["epsilon"], settings["denoise"])
            batches.append(images[:wanted])  # [wanted, *shape]
            bar.update(wanted)
    return np.concatenate(batches).astype(np.float32)  # [N, *shape]
