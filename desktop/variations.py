"""Variations of one image: re-noise it to a middle noise level, then run the rest of the sampler. No Qt.

Each image of a batch has its own seed and the seeds are independent, so
neighbouring seeds give unrelated images; a variation has to start from the
image itself. The annealed Langevin chain at level i targets the data blurred
by noise of scale sigma_i (Song & Ermon 2019, section 4.3), so the image plus
Gaussian noise of scale sigma_i is a valid state of the chain at level i:
running levels i..L from there keeps what is coarser than sigma_i (the overall
shape) and draws the finer detail anew. The earlier the start level, the
larger the change. (The same idea as SDEdit, Meng et al. 2021.)

The same holds for every sampler of the export: the predictor-corrector and
probability-flow chunk endpoints take the state at sigma_i of level i, which
x + sigma_i z is for the variance-exploding process the network was trained on
(docs/samplers.md). So variations run with the chosen sampler; with the
deterministic probability flow only the re-noising draw differs between seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from desktop.backend.base import InferenceBackend, SamplerSettings
from desktop.backend.errors import RunInterrupted
from desktop.backend.runs import ChunkDone

NOISE_STREAM = 0x5EED  # separates the re-noising draws from any other use of the same seed


def variation_level(num_levels: int) -> int:
    """The level variations start at: the middle of the ladder (0-based; 0 would be a new image)."""
    return num_levels // 2


def renoised(image: np.ndarray, seeds: np.ndarray, sigma: float) -> np.ndarray:
    """The image plus independent Gaussian noise of scale `sigma`, one draw per seed.

    Args:
        image: [H, W, C] float32 in [0, 1].
        seeds: [B] int32.
        sigma: the noise scale of the start level.

    Returns:
        [B, H, W, C] float32 (not clipped: the chain's states are not).
    """
    noises = [np.random.default_rng((int(seed), NOISE_STREAM)).standard_normal(image.shape) for seed in seeds]
    return (image[None] + sigma * np.stack(noises)).astype(np.float32)  # [B, H, W, C]


def iter_variations(
    backend: InferenceBackend,
    image: np.ndarray,
    seeds: np.ndarray,
    start_level: int,
    settings: SamplerSettings,
    levels_per_chunk: int = 1,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[ChunkDone]:
    """Variations of `image`, one per seed, one chunk of levels per iteration (like `iter_sample`).

    Args:
        backend: a loaded export.
        image: [H, W, C] float32 in [0, 1], the image to vary.
        seeds: [B] int32, one per variation (they also drive the chain's own noise).
        start_level: 0-based level to start at, in [1, L).
        settings: sampler settings.
        levels_per_chunk: levels per endpoint call.
        should_stop: polled before each chunk.

    Yields:
        `ChunkDone` after each chunk (`num_chunks` counts only the levels run).

    Raises:
        RunInterrupted: cancelled.
        ValueError: image shape or start level out of range.
    """
    settings.validate()
    manifest = backend.files.manifest
    if tuple(image.shape) != manifest.image_shape:
        raise ValueError(f"image must be {list(manifest.image_shape)}, got {list(image.shape)}")
    if not 1 <= start_level < manifest.num_levels:
        raise ValueError(f"start level must be in [1, {manifest.num_levels}), got {start_level}")
    chunks = [
        (first, min(first + levels_per_chunk, manifest.num_levels))
        for first in range(start_level, manifest.num_levels, levels_per_chunk)
    ]
    images = renoised(image.astype(np.float32), seeds, manifest.sigmas[start_level])  # [B, H, W, C]
    for index, (first, last) in enumerate(chunks):
        if should_stop():
            raise RunInterrupted("variations cancelled")
        images = backend.sample_levels(images, seeds, first, last, settings)  # [B, H, W, C]
        yield ChunkDone(index, len(chunks), first, last, np.clip(images, 0.0, 1.0).astype(np.float32))
