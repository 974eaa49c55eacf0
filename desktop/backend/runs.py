"""Sampling and inpainting as chunks of noise levels, for progress, previews and cancel.

`ExportedSampler.iter_sample` / `iter_inpaint` run the chain over chunks of levels
that chain exactly to the full run (docs/export.md); these generators add what the
app shows: images clipped to [0, 1], known pixels put back, and a `should_stop`
poll before each chunk (cancel).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from export_format import Chunk, ExportedSampler, RunInterrupted, SamplerSettings
from export_format.sampler import level_chunks

__all__ = ["ChunkDone", "iter_inpaint", "iter_sample", "level_chunks"]


@dataclass(frozen=True)
class ChunkDone:
    """One finished chunk of levels, as the app shows it.

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


def _display(images: np.ndarray) -> np.ndarray:
    return np.clip(images, 0.0, 1.0).astype(np.float32)  # [B, H, W, C] in [0, 1]


def _polled(chunks: Iterator[Chunk], should_stop: Callable[[], bool], what: str) -> Iterator[Chunk]:
    while True:
        if should_stop():
            raise RunInterrupted(f"{what} cancelled")
        chunk = next(chunks, None)
        if chunk is None:
            return
        yield chunk


def iter_sample(
    backend: ExportedSampler,
    seeds: np.ndarray,
    settings: SamplerSettings,
    levels_per_chunk: int = 1,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[ChunkDone]:
    """Sampling, one chunk of levels per iteration.

    Args:
        backend: an opened export.
        seeds: [B] int32 per-image seeds.
        settings: sampler settings (validated against the export first).
        levels_per_chunk: levels per endpoint call (1 = a progress step per level).
        should_stop: polled before each chunk; True ends the run (cancel).

    Yields:
        `ChunkDone` after each chunk; the last one holds the finished samples.

    Raises:
        RunInterrupted: cancelled. ExportInputError: bad settings. DivergedError: non-finite samples.
    """
    chunks = backend.iter_sample(seeds, settings, levels_per_chunk)
    for chunk in _polled(chunks, should_stop, "sampling"):
        yield ChunkDone(chunk.index, chunk.count, chunk.first_level, chunk.last_level, _display(chunk.images))


def iter_inpaint(
    backend: ExportedSampler,
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
    shape = backend.manifest.image_shape
    if tuple(known_image.shape) != shape:
        raise ValueError(f"picture must be {list(shape)}, got {list(known_image.shape)}")
    if tuple(known_mask.shape) != shape[:2]:
        raise ValueError(f"mask must be {list(shape[:2])}, got {list(known_mask.shape)}")
    count = len(seeds)
    known = np.broadcast_to(known_image.astype(np.float32), (count, *shape))  # [B, H, W, C]
    masks = np.broadcast_to(known_mask.astype(np.float32)[None, :, :, None], (count, *shape))  # [B, H, W, C], 1 = known
    chunks = backend.iter_inpaint(known, masks, seeds, settings, levels_per_chunk)
    for chunk in _polled(chunks, should_stop, "inpainting"):
        shown = masks * known + (1.0 - masks) * _display(chunk.images)  # [B, H, W, C] in [0, 1]
        yield ChunkDone(chunk.index, chunk.count, chunk.first_level, chunk.last_level, shown.astype(np.float32))
