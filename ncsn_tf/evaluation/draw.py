"""Seeded samples in batches, and the sampler settings a run uses.

Sample b uses seed `seed + b`, so a sample does not depend on the batch size or
on the batch it is drawn in (the samplers' per-image seeds, docs/DESIGN.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ncsn_tf.configs import SamplingConfig, override_sampling
from ncsn_tf.evaluation.generator import EvaluationError, Generator

DEFAULT_BATCH_SIZE = 250  # samples per sampler call
# What a run may change: the sampler and its settings (`SamplingConfig` fields), each None = the model's default.
SAMPLER_OVERRIDES = ("sampler", "steps_per_level", "epsilon", "final_denoise", "corrector_steps", "snr", "order")
# The settings of each sampler that evaluation.json records, under the names the evaluate CLI uses.
_RECORDED = {
    "annealed_langevin": {"steps_per_level": "steps_per_level", "epsilon": "epsilon", "final_denoise": "denoise",
                          "convention": "convention"},  # fmt: skip
    "predictor_corrector": {"corrector_steps": "corrector_steps", "snr": "snr"},
    "probability_flow": {"order": "order"},
}


def sampler_settings(generator: Generator, **overrides: Any) -> SamplingConfig:
    """The settings a run samples with: each value given, else the generator's defaults; checked.

    Args:
        generator: the model; its `sampler_defaults` fill what is None.
        **overrides: `SAMPLER_OVERRIDES` names (sampler, steps_per_level, epsilon,
            final_denoise, corrector_steps, snr, order); None = the default.

    Returns:
        The `SamplingConfig` to sample with (`sampler_record` says what evaluation.json keeps).

    Raises:
        ConfigError: an unknown sampler, a bad setting or one of another sampler
            (one line, `configs.override_sampling`).
        EvaluationError: a sampler the model does not have (an export: those of its manifest),
            or settings it refuses.
    """
    unknown = sorted(set(overrides) - set(SAMPLER_OVERRIDES))
    if unknown:
        raise EvaluationError(f"unknown sampler setting {unknown[0]!r}; use one of {', '.join(SAMPLER_OVERRIDES)}")
    settings = override_sampling(generator.sampler_defaults, len(generator.sigmas), **overrides)
    if settings.sampler not in generator.samplers:
        todo = (
            "re-export it with an exporter that writes that sampler, or evaluate its training workdir"
            if generator.is_export
            else "choose one of those"
        )
        raise EvaluationError(
            f"{generator.label} has no {settings.sampler} sampler; it has {', '.join(generator.samplers)}: {todo}"
        )
    generator.network_calls(settings)  # the model's own checks (an export's ranges), before any sampling
    return settings


def sampler_record(generator: Generator, settings: SamplingConfig) -> dict[str, Any]:
    """What evaluation.json records of a run's sampler: its name, its own settings, network calls.

    Args:
        generator: the model (its ladder, and where its defaults came from).
        settings: from `sampler_settings`.

    Returns:
        {"sampler", that sampler's settings (annealed Langevin: steps_per_level, epsilon,
        denoise, convention; predictor-corrector: corrector_steps, snr; probability flow:
        order), "network_calls" (per image), "defaults_from"}.
    """
    record: dict[str, Any] = {"sampler": settings.sampler}
    for field, key in _RECORDED[settings.sampler].items():
        record[key] = getattr(settings, field)
    record["network_calls"] = generator.network_calls(settings)
    record["defaults_from"] = generator.defaults_from
    return record


def draw_samples(
    generator: Generator,
    num_samples: int,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    settings: SamplingConfig | None = None,
    progress: bool = True,
    **overrides: Any,
) -> np.ndarray:
    """Seeded samples in batches: sample b uses seed `seed + b` (independent of batch_size).

    Args:
        generator: the model.
        num_samples: N.
        batch_size: samples per sampler call.
        seed: seed of the first sample.
        settings: the sampler settings (from `sampler_settings`); None = the generator's
            defaults with `overrides`.
        progress: show a tqdm progress bar.
        **overrides: as `sampler_settings` (only without `settings`).

    Returns:
        [N, *shape] float32 samples (not clipped).

    Raises:
        EvaluationError: N or the batch size is not positive, the seeds leave int32, or
            as `sampler_settings`.
        ConfigError: a bad sampler setting.
    """
    from tqdm import tqdm

    if settings is None:
        settings = sampler_settings(generator, **overrides)
    elif overrides:
        raise EvaluationError("pass either settings or single sampler overrides, not both")
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
            images = generator.sample(seeds, settings)
            batches.append(images[:wanted])  # [wanted, *shape]
            bar.update(wanted)
    return np.concatenate(batches).astype(np.float32)  # [N, *shape]
