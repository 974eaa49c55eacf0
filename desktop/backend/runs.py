"""Sampling and inpainting as chunks of noise levels, for progress, previews and cancel.

The exported `*_levels` endpoints run the annealed Langevin chain over a range
of levels; chaining `[0, k)` and `[k, L)` gives exactly the full run (DESIGN.md).
So a run is a generator: it yields after every chunk with the images so far,
and the caller may stop iterating (cancel) between chunks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from desktop.backend.base import InferenceBackend, SamplerSettings
from desktop.backend.errors import RunInterrupted


@dataclass(frozen=True)
class ChunkDone:
    """One finished chunk of levels.

    Attributes:
        chunk_index: 0-based index of this chunk.
        num_chunks: chunks in the whole run.
        first_level, last_level: the levels just run, [first_level, last_level).
        images: [B, H, W, C] float32 in [0, 1], the chain after this chunk, clipped
            for display (and, for inpainting, known pixels put back).
    """

    chunk_index: int
    num_chunks: int
    first_level: int
    last_level: int
    images: np.ndarray

    @property
    def is_last(self) -> bool:
        return self.chunk_index + 1 == self.num_chunks


def level_chunks(num_levels: int, levels_per_chunk: int = 1) -> list[tuple[int, int]]:
    """[(first, last), ...] covering [0, num_levels) in steps of `levels_per_chunk`."""
    if num_levels < 1 or levels_per_chunk < 1:
        raise ValueError(f"need num_levels >= 1 and levels_per_chunk >= 1, got {num_levels}, {levels_per_chunk}")
    return [(first, min(first + levels_per_chunk, num_levels)) for first in range(0, num_levels, levels_per_chunk)]


def _display(images: np.ndarray) -> np.ndarray:
    return np.clip(images, 0.0, 1.0).astype(np.float32)  # [B, H, W, C] in [0, 1]


def iter_sample(
    backend: InferenceBackend,
    seeds: np.ndarray,
    settings: SamplerSettings,
    levels_per_chunk: int = 1,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[ChunkDone]:
    """Annealed Langevin sampling, one chunk of levels per iteration.

    Args:
        backend: a loaded export.
        seeds: [B] int32 per-image seeds.
        settings: sampler settings.
        levels_per_chunk: levels per endpoint call (1 = a progress step per level).
        should_stop: polled before each chunk; True ends the run early (cancel).

    Yields:
        `ChunkDone` after each chunk; the last one holds the finished samples.

    Raises:
        RunInterrupted: the back end aborted a call on request.
    """
    settings.validate()
    chunks = level_chunks(backend.files.manifest.num_levels, levels_per_chunk)
    images = backend.initial_images(seeds)  # [B, H, W, C] in [0, 1)
    for index, (first, last) in enumerate(chunks):
        if should_stop():
            raise RunInterrupted("sampling cancelled")
        images = backend.sample_levels(images, seeds, first, last, settings)  # [B, H, W, C]
        yield ChunkDone(index, len(chunks), first, last, _display(images))


def iter_inpaint(
    backend: InferenceBackend,
    known_image: np.ndarray,
    known_mask: np.ndarray,
    seeds: np.ndarray,
    settings: SamplerSettings,
    levels_per_chunk: int = 1,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[ChunkDone]:
    """Inpainting with one variant per seed, one chunk of levels per iteration.

    Args:
        known_image: [H, W, C] float32 in [0, 1], the picture (unknown pixels are ignored).
        known_mask: [H, W] float32, 1 = known pixel, 0 = to fill in.
        seeds: [B] int32, one per variant.
        (others as `iter_sample`)

    Yields:
        `ChunkDone`; images are the chain with the known pixels put back exactly
        (the chain itself carries them with noise of the current level).
    """
    settings.validate()
    manifest = backend.files.manifest
    if tuple(known_image.shape) != manifest.image_shape:
        raise ValueError(f"picture must be {list(manifest.image_shape)}, got {list(known_image.shape)}")
    if tuple(known_mask.shape) != manifest.image_shape[:2]:
        raise ValueError(f"mask must be {list(manifest.image_shape[:2])}, got {list(known_mask.shape)}")
    count = len(seeds)
    known = np.broadcast_to(known_image.astype(np.float32), (count,) + manifest.image_shape)  # [B, H, W, C]
    masks = np.broadcast_to(
        known_mask.astype(np.float32)[None, :, :, None], (count,) + manifest.image_shape
    )  # [B, H, W, C], 1 = known
    chunks = level_chunks(manifest.num_levels, levels_per_chunk)
    images = backend.initial_images(seeds)  # [B, H, W, C] in [0, 1)
    for index, (first, last) in enumerate(chunks):
        if should_stop():
            raise RunInterrupted("inpainting cancelled")
        images = backend.inpaint_levels(images, known, masks, seeds, first, last, settings)  # [B, H, W, C]
        shown = masks * known + (1.0 - masks) * _display(images)  # [B, H, W, C] in [0, 1]
        yield ChunkDone(index, len(chunks), first, last, shown.astype(np.float32))
