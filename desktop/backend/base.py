"""The inference back-end protocol: the exported endpoints as NumPy functions.

Two implementations drive the same exported endpoints (docs/DESIGN.md):
`OnnxBackend` (onnxruntime, no TensorFlow import, fast start) and
`SavedModelBackend` (TensorFlow). Callers (the chunked runs in
`desktop.backend.runs`) only see this protocol.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from desktop.backend.locate import ModelFiles

MAX_SEED = 2**31 - 1  # seeds are int32 (DESIGN.md: seeds [B] int32)
MAX_STEPS_PER_LEVEL = 100_000
MAX_BATCH = 4096


@dataclass(frozen=True)
class SamplerSettings:
    """Annealed Langevin settings passed to `sample_levels` / `inpaint_levels`.

    Attributes:
        steps_per_level: T, Langevin steps at each noise level (paper: 100).
        epsilon: step-size scale; alpha_i = epsilon * sigma_i^2 / sigma_L^2 (paper: 2e-5).
        denoise: apply the final denoising step x + sigma_L^2 s(x, L) (NCSNv2).
    """

    steps_per_level: int
    epsilon: float
    denoise: bool

    def validate(self) -> None:
        """Raise ValueError naming the bad value and the allowed range."""
        if not 1 <= self.steps_per_level <= MAX_STEPS_PER_LEVEL:
            raise ValueError(f"steps per level must be in [1, {MAX_STEPS_PER_LEVEL}], got {self.steps_per_level}")
        if not (math.isfinite(self.epsilon) and 0.0 < self.epsilon < 1.0):
            raise ValueError(f"epsilon must be in (0, 1), got {self.epsilon}")


def seeds_for(base_seed: int, count: int) -> np.ndarray:
    """Per-image seeds base, base+1, ... wrapped into [0, 2^31).

    Returns:
        [count] int32.
    """
    if count < 1:
        raise ValueError(f"need at least one image, got {count}")
    return ((base_seed + np.arange(count, dtype=np.int64)) % (MAX_SEED + 1)).astype(np.int32)  # [B]


class InferenceBackend(Protocol):
    """One loaded export, callable endpoint by endpoint.

    Images are [B, H, W, C] float32 (data range [0, 1]; the chain is not clipped),
    seeds [B] int32, masks [B, H, W, C] float32 with 1 = known pixel.
    """

    runtime: str  # "onnxruntime" | "tensorflow"
    device: str  # e.g. "CPUExecutionProvider", or "TensorFlow CPU"
    files: ModelFiles

    def initial_images(self, seeds: np.ndarray) -> np.ndarray:
        """[B] int32 seeds -> [B, H, W, C] float32 ~ Uniform[0, 1)."""
        ...

    def sample_levels(
        self, images: np.ndarray, seeds: np.ndarray, first_level: int, last_level: int, settings: SamplerSettings
    ) -> np.ndarray:
        """Annealed Langevin over levels [first_level, last_level); [B, H, W, C] -> same shape."""
        ...

    def inpaint_levels(
        self,
        images: np.ndarray,
        known_images: np.ndarray,
        masks: np.ndarray,
        seeds: np.ndarray,
        first_level: int,
        last_level: int,
        settings: SamplerSettings,
    ) -> np.ndarray:
        """Inpainting Langevin over [first_level, last_level); only unknown pixels (mask 0) evolve."""
        ...

    def interrupt(self) -> None:
        """Abort a running call from another thread, where the runtime can (best effort)."""
        ...

    def close(self) -> None:
        """Release sessions / graphs."""
        ...


def check_images(images: np.ndarray, files: ModelFiles, what: str) -> np.ndarray:
    """`images` as contiguous float32 [B, H, W, C] of the model's shape.

    Raises:
        ValueError: wrong rank or image shape.
    """
    array = np.ascontiguousarray(images, dtype=np.float32)
    expected = files.manifest.image_shape
    if array.ndim != 4 or tuple(array.shape[1:]) != expected:
        raise ValueError(f"{what} must be [B, {expected[0]}, {expected[1]}, {expected[2]}], got {list(array.shape)}")
    return array


def level_inputs(first_level: int, last_level: int, settings: SamplerSettings) -> dict[str, np.ndarray]:
    """The scalar inputs of `*_levels` endpoints as 0-d arrays (onnxruntime rejects NumPy scalars)."""
    return {
        "first_level": np.array(first_level, dtype=np.int32),
        "last_level": np.array(last_level, dtype=np.int32),
        "steps_per_level": np.array(settings.steps_per_level, dtype=np.int32),
        "epsilon": np.array(settings.epsilon, dtype=np.float32),
        "denoise": np.array(settings.denoise, dtype=np.bool_),
    }


class EndpointBackend:
    """The endpoint calls of `InferenceBackend`, shared by every runtime.

    A subclass sets `files` and implements `_run(endpoint, inputs) -> [B, H, W, C]
    float32`, which feeds the named inputs to the runtime's copy of the endpoint.
    """

    files: ModelFiles

    def _run(self, endpoint: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def initial_images(self, seeds: np.ndarray) -> np.ndarray:
        seeds = np.ascontiguousarray(seeds, dtype=np.int32)  # [B]
        return self._run("initial_images", {"seeds": seeds})  # [B, H, W, C] in [0, 1)

    def sample_levels(
        self, images: np.ndarray, seeds: np.ndarray, first_level: int, last_level: int, settings: SamplerSettings
    ) -> np.ndarray:
        inputs = {
            "images": check_images(images, self.files, "images"),  # [B, H, W, C]
            "seeds": np.ascontiguousarray(seeds, dtype=np.int32),  # [B]
            **level_inputs(first_level, last_level, settings),
        }
        return self._run("sample_levels", inputs)  # [B, H, W, C]

    def inpaint_levels(
        self,
        images: np.ndarray,
        known_images: np.ndarray,
        masks: np.ndarray,
        seeds: np.ndarray,
        first_level: int,
        last_level: int,
        settings: SamplerSettings,
    ) -> np.ndarray:
        inputs = {
            "images": check_images(images, self.files, "images"),  # [B, H, W, C]
            "known_images": check_images(known_images, self.files, "known_images"),  # [B, H, W, C] in [0, 1]
            "masks": check_images(masks, self.files, "masks"),  # [B, H, W, C], 1 = known
            "seeds": np.ascontiguousarray(seeds, dtype=np.int32),  # [B]
            **level_inputs(first_level, last_level, settings),
        }
        return self._run("inpaint_levels", inputs)  # [B, H, W, C]
