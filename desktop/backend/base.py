"""What the app drives: an `export_format.ExportedSampler` (the endpoints as checked NumPy calls).

`InferenceBackend` is `ExportedSampler`: `initial_images(seeds)`,
`sample_levels(images, seeds, first, last, settings)`, `inpaint_levels(...)`,
`interrupt()`, `close()`, `.runtime`, `.device`, `.files`. Sampler settings are
`export_format.SamplerSettings`, validated in one place with one set of ranges;
`MAX_STEPS_PER_LEVEL` and `MAX_SEED` are those ranges' bounds.
"""

from __future__ import annotations

import numpy as np

from export_format import ExportedSampler as InferenceBackend
from export_format import limits
from export_format.settings import MAX_STEPS_PER_LEVEL, SamplerSettings

MAX_SEED = limits.SEED_MAX  # the app draws seeds from [0, MAX_SEED] (seeds are int32)
MAX_BATCH = 4096  # images per run in the app (memory: B x H x W x C float32 per chunk)

__all__ = ["MAX_BATCH", "MAX_SEED", "MAX_STEPS_PER_LEVEL", "InferenceBackend", "SamplerSettings", "seeds_for"]


def seeds_for(base_seed: int, count: int) -> np.ndarray:
    """Per-image seeds base, base+1, ... wrapped into [0, 2^31).

    Returns:
        [count] int32.
    """
    if count < 1:
        raise ValueError(f"need at least one image, got {count}")
    return ((base_seed + np.arange(count, dtype=np.int64)) % (MAX_SEED + 1)).astype(np.int32)  # [B]
