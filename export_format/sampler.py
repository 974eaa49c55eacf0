"""Run an export from Python: the endpoints as checked methods, in ONNX Runtime or TensorFlow.

`load(location, runtime="onnxruntime" | "tensorflow")` returns an `ExportedSampler`
whose methods mirror the endpoints (docs/export.md) and validate every input against
the manifest first, so a wrong shape, a non-binary mask, a float seed or a step
count of 1.9 is a one-line `ExportInputError` instead of a runtime stack trace or
a silently wrong result. Sampler settings default to the manifest's
(`manifest.sampler`, the one place they live). A run that returns non-finite
values raises `DivergedError` ("reduce epsilon"). A batch of zero seeds returns an
empty [0, ...] array in both runtimes without calling either.

Every method that samples takes the sampler by name (`sampler="probability_flow"`,
default: the manifest's `sampler.default`) with that sampler's own settings
(`export_format.settings.SAMPLERS`); `samplers` lists what the export holds and
`network_calls` says what a run costs.

Example:
    sampler = load("exports/digits")
    images = sampler.sample(seeds=[0, 1, 2])  # [3, 8, 8, 1], not clipped: clip to [0, 1] to display
    images = sampler.sample([0, 1, 2], sampler="probability_flow", order=1)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export_format import limits
from export_format.endpoints import ENDPOINTS
from export_format.errors import DivergedError, ExportInputError
from export_format.locate import ExportFiles, locate
from export_format.manifest import Manifest
from export_format.runners import open_runner
from export_format.settings import RESAMPLE_STEPS, SamplerSettings

ArrayLike = Any  # anything np.asarray takes


@dataclass(frozen=True)
class Chunk:
    """One finished chunk of levels of a chunked run.

    Attributes:
        index: 0-based index of this chunk; `count` chunks in the run.
        first_level, last_level: the levels just run, [first_level, last_level).
        images: [B, *image_shape] float32, the raw chain after this chunk (not clipped).
    """

    index: int
    count: int
    first_level: int
    last_level: int
    images: np.ndarray

    @property
    def is_last(self) -> bool:
        return self.index + 1 == self.count


def level_chunks(num_levels: int, levels_per_chunk: int = 1) -> list[tuple[int, int]]:
    """[(first, last), ...] covering [0, num_levels) in steps of `levels_per_chunk`."""
    if num_levels < 1 or levels_per_chunk < 1:
        raise ValueError(f"need num_levels >= 1 and levels_per_chunk >= 1, got {num_levels}, {levels_per_chunk}")
    return [(first, min(first + levels_per_chunk, num_levels)) for first in range(0, num_levels, levels_per_chunk)]


def _integer(value: Any, name: str) -> int:
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ExportInputError(f"{name} must be an integer, got {value!r}")
    return int(value)


class ExportedSampler:
    """The endpoints of one export, run by onnxruntime or TensorFlow, with checked inputs.

    Args:
        location: the export folder (or its manifest.json, an exported .onnx file, its SavedModel).
        runtime: "onnxruntime" (the ONNX files) or "tensorflow" (the SavedModel). An export
            without that runtime's files raises `RuntimeMissingError`; nothing switches silently.
        threads: intra-op threads for onnxruntime (0 = its default).
        provider: onnxruntime execution provider (None = the first available, CPU last).

    Attributes:
        files: the located files (`files.source`, `.onnx`, `.savedmodel`).
        manifest: the validated `Manifest`.
        runtime: the runtime in use; `device` says where it computes.
        image_shape: one example's shape, e.g. (8, 8, 1); (2,) for the toy.
        num_levels: L.

    Raises:
        ExportFormatError and subclasses: not an export, refused by the safety gate
            (`UnsafeExportError`), or no files for `runtime` (`RuntimeMissingError`).
    """

    def __init__(
        self,
        location: str | os.PathLike[str] | ExportFiles,
        runtime: str = "onnxruntime",
        threads: int = 0,
        provider: str | None = None,
    ) -> None:
        self.files = location if isinstance(location, ExportFiles) else locate(location)
        self.manifest: Manifest = self.files.manifest
        self._runner = open_runner(self.files, runtime, provider=provider, threads=threads)
        self.runtime = runtime
        self.device: str = self._runner.device

    @property
    def export_dir(self) -> str:
        source = self.files.source
        return os.fspath(source if source.is_dir() else source.parent)

    @property
    def image_shape(self) -> tuple[int, ...]:
        return self.manifest.image_shape

    @property
    def num_levels(self) -> int:
        return self.manifest.num_levels

    # -- running -------------------------------------------------------------------------------

    def run(self, endpoint: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Run one endpoint on already-checked inputs (NumPy, contract dtypes); returns its output."""
        if endpoint not in ENDPOINTS:
            raise ExportInputError(f"unknown endpoint {endpoint!r}; endpoints: {', '.join(ENDPOINTS)}")
        return self._runner.run(endpoint, inputs)

    def interrupt(self) -> None:
        """Abort the running call from another thread where the runtime can (onnxruntime:
        `RunInterrupted`); with onnxruntime, an interrupt while no call runs stops the next call."""
        self._runner.interrupt()

    def clear_interrupt(self) -> None:
        """Forget an interrupt no call has consumed (a new run calls this before its first chunk)."""
        self._runner.clear_interrupt()

    def close(self) -> None:
        """Drop the sessions / the loaded SavedModel."""
        self._runner.close()

    @property
    def samplers(self) -> tuple[str, ...]:
        """The samplers this export holds (manifest `sampler.settings`), the default first."""
        return self.manifest.sampler.samplers

    def _sampled(
        self, role: str, inputs: dict[str, np.ndarray], settings: SamplerSettings, batch: int
    ) -> np.ndarray:
        """Run `settings.sampler`'s endpoint of `role` with its settings as graph inputs; check the result."""
        if batch == 0:  # nothing to sample: the same empty answer in both runtimes, no call
            return np.zeros((0, *self.image_shape), np.float32)
        kind = settings.kind
        images = self.run(kind.endpoints[role], {**inputs, **settings.inputs(role)})
        finite = np.isfinite(images.reshape(batch, -1)).all(axis=1)  # [B]
        if not finite.all():
            if kind.name == "annealed_langevin":
                detail = (
                    f"with epsilon {settings.epsilon:g}; reduce epsilon "
                    f"(this export's default is {self.manifest.sampler.defaults(kind.name).epsilon:g})"
                )
            else:
                values = settings.for_role(role).values().items()
                shown = ", ".join(f"{name} {value:g}" for name, value in values if value is not None)
                detail = f"with {kind.name} ({shown}); {kind.divergence_hint}"
            raise DivergedError(f"sampling diverged: {int((~finite).sum())} of {batch} images became non-finite {detail}")
        return images

    def _sampling_settings(self, settings: SamplerSettings | None, overrides: dict[str, Any]) -> SamplerSettings:
        """The validated settings of a sampling (not inpainting) run: inpainting-only settings refused or dropped."""
        if overrides.get(RESAMPLE_STEPS.name) not in (None, 0):
            raise ExportInputError(
                "resample_steps is RePaint's resampling for inpainting: use inpaint / inpaint_levels, or leave it out"
            )
        return self.settings(settings, **overrides).for_role("sample")

    def network_calls(
        self, settings: SamplerSettings | None = None, inpainting: bool = False, **overrides: Any
    ) -> int:
        """Score-network calls per image of a whole run with these settings (the manifest's defaults, then
        `settings`, then `overrides`; e.g. `network_calls(sampler="probability_flow", order=2)`).

        Raises:
            ExportInputError: an unknown sampler or setting, or a value out of range.
        """
        checked = self.settings(settings, **overrides)
        return checked.network_calls(self.num_levels, inpainting=inpainting)

    # -- input checks ------------------------------------------------------------------------

    def settings(self, settings: SamplerSettings | None = None, **overrides: Any) -> SamplerSettings:
        """The validated settings of a run: the manifest's defaults, then `settings`, then `overrides`.

        Raises:
            ExportInputError: an unknown sampler or setting, a wrong kind or a value out of range.
        """
        return self.manifest.sampler_settings(settings, **overrides)

    def _seeds(self, seeds: ArrayLike) -> np.ndarray:
        values = np.asarray(seeds)
        if values.ndim != 1:
            raise ExportInputError(f"seeds must be a 1-D list of integers (one per image), got shape {list(values.shape)}")
        if values.size and values.dtype.kind not in "iu":
            raise ExportInputError(f"seeds must be integers, got dtype {values.dtype}")
        if values.size and (values.min() < limits.SEED_MIN or values.max() > limits.SEED_MAX):
            raise ExportInputError("seeds must fit in int32 ([-2^31, 2^31)); reduce them, e.g. seed % 2**31")
        return values.astype(np.int32)  # [B]

    def _images(self, images: ArrayLike, name: str, batch: int) -> np.ndarray:
        values = np.asarray(images)
        if values.dtype.kind not in "biuf":
            raise ExportInputError(f"{name} must be real numbers, got dtype {values.dtype}")
        values = np.ascontiguousarray(values, dtype=np.float32)
        expected = (batch, *self.image_shape)
        if values.shape != expected:
            raise ExportInputError(
                f"{name} must have shape {list(expected)} ([B, *image_shape] with B = {batch} seeds), got {list(values.shape)}"
            )
        if not np.all(np.isfinite(values)):
            raise ExportInputError(f"{name} contains NaN or infinite values")
        return values

    def _masks(self, masks: ArrayLike, batch: int) -> np.ndarray:
        values = self._images(masks, "masks", batch)
        if not np.all((values == 0.0) | (values == 1.0)):
            raise ExportInputError("masks must contain only 0 (unknown) and 1 (known); threshold them, e.g. masks > 0.5")
        return values

    def _levels(self, first_level: Any, last_level: Any) -> dict[str, np.ndarray]:
        first = _integer(first_level, "first_level")
        last = self.num_levels if last_level is None else _integer(last_level, "last_level")
        if not 0 <= first <= last <= self.num_levels:
            raise ExportInputError(
                f"level range [{first}, {last}) is outside [0, {self.num_levels}); need 0 <= first <= last <= L"
            )
        return {"first_level": np.array(first, np.int32), "last_level": np.array(last, np.int32)}

    # -- endpoints -----------------------------------------------------------------------------

    def initial_images(self, seeds: ArrayLike, sampler: str | None = None) -> np.ndarray:
        """The start of `sampler`'s chains (None: the default sampler's).

        Annealed Langevin starts from Uniform over the value range (`initial_images`); the
        predictor-corrector and probability-flow samplers from the prior N(centre,
        sigma_1^2 I), centred on the middle of the value range (`prior_images`).

        Returns:
            [B, *image_shape] float32.

        Raises:
            ExportInputError: bad seeds, or a sampler this export does not hold.
        """
        kind = self.manifest.sampler.defaults(sampler).kind  # an unknown or absent sampler: one line
        seeds = self._seeds(seeds)
        if seeds.size == 0:
            return np.zeros((0, *self.image_shape), np.float32)
        return self.run(kind.endpoints["initial_images"], {"seeds": seeds})

    def sample(self, seeds: ArrayLike, settings: SamplerSettings | None = None, **overrides: Any) -> np.ndarray:
        """A whole run from seeded initial images.

        Args:
            seeds: [B] int32 seeds, one per image (image b depends only on seeds[b]).
            settings: sampler settings (None fields = the manifest's defaults).
            **overrides: the sampler and single settings, e.g. steps_per_level=50, epsilon=2e-5,
                denoise=True; sampler="predictor_corrector", corrector_steps=2, snr=0.6;
                sampler="probability_flow", order=1.

        Returns:
            [B, *image_shape] float32, the raw chain (not clipped).

        Raises:
            ExportInputError: a bad input or setting. DivergedError: non-finite samples.
        """
        settings = self._sampling_settings(settings, overrides)
        seeds = self._seeds(seeds)
        return self._sampled("sample", {"seeds": seeds}, settings, len(seeds))

    def sample_levels(
        self,
        images: ArrayLike,
        seeds: ArrayLike,
        first_level: int = 0,
        last_level: int | None = None,
        settings: SamplerSettings | None = None,
        **overrides: Any,
    ) -> np.ndarray:
        """Levels [first_level, last_level) from the chain state `images`; chunks chain exactly to `sample`.

        Level 0's state is `initial_images(seeds, sampler)` of the same sampler.
        """
        settings = self._sampling_settings(settings, overrides)
        seeds = self._seeds(seeds)
        inputs = {"images": self._images(images, "images", len(seeds)), "seeds": seeds, **self._levels(first_level, last_level)}
        return self._sampled("sample_levels", inputs, settings, len(seeds))

    def inpaint(
        self,
        known_images: ArrayLike,
        masks: ArrayLike,
        seeds: ArrayLike,
        settings: SamplerSettings | None = None,
        **overrides: Any,
    ) -> np.ndarray:
        """Fill the unknown pixels (masks: 1 = known) of `known_images` ([B, *image_shape] in the data range).

        Settings as `sample`; predictor-corrector also takes resample_steps (RePaint's repeats per level).
        """
        settings = self.settings(settings, **overrides)
        seeds = self._seeds(seeds)
        inputs = {
            "known_images": self._images(known_images, "known_images", len(seeds)),
            "masks": self._masks(masks, len(seeds)),
            "seeds": seeds,
        }
        return self._sampled("inpaint", inputs, settings, len(seeds))

    def inpaint_levels(
        self,
        images: ArrayLike,
        known_images: ArrayLike,
        masks: ArrayLike,
        seeds: ArrayLike,
        first_level: int = 0,
        last_level: int | None = None,
        settings: SamplerSettings | None = None,
        **overrides: Any,
    ) -> np.ndarray:
        """Inpainting over levels [first_level, last_level) from the chain state `images`."""
        settings = self.settings(settings, **overrides)
        seeds = self._seeds(seeds)
        inputs = {
            "images": self._images(images, "images", len(seeds)),
            "known_images": self._images(known_images, "known_images", len(seeds)),
            "masks": self._masks(masks, len(seeds)),
            "seeds": seeds,
            **self._levels(first_level, last_level),
        }
        return self._sampled("inpaint_levels", inputs, settings, len(seeds))

    def score(self, images: ArrayLike, sigma_indices: ArrayLike) -> np.ndarray:
        """The score network at noise levels `sigma_indices` ([B] in [0, L), 0 = largest sigma)."""
        indices = np.asarray(sigma_indices)
        if indices.ndim != 1 or (indices.size and indices.dtype.kind not in "iu"):
            raise ExportInputError(f"sigma_indices must be a 1-D list of integers, got {indices.dtype} of shape {list(indices.shape)}")
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_levels):
            raise ExportInputError(f"sigma_indices must be in [0, {self.num_levels})")
        images = self._images(images, "images", len(indices))
        if indices.size == 0:
            return np.zeros((0, *self.image_shape), np.float32)
        return self.run("score", {"images": images, "sigma_indices": indices.astype(np.int32)})

    # -- chunked runs (progress, previews, cancel) --------------------------------------------

    def iter_sample(
        self,
        seeds: ArrayLike,
        settings: SamplerSettings | None = None,
        levels_per_chunk: int = 1,
        **overrides: Any,
    ) -> Iterator[Chunk]:
        """`sample` as chunks of levels: yields a `Chunk` after each; stop iterating to cancel.

        The chunks chain exactly: the last chunk's images equal `sample(seeds, settings)`.
        """
        settings = self._sampling_settings(settings, overrides)
        chunks = level_chunks(self.num_levels, levels_per_chunk)
        images = self.initial_images(seeds, settings.sampler)  # [B, *image_shape], the sampler's start
        for index, (first, last) in enumerate(chunks):
            images = self.sample_levels(images, seeds, first, last, settings)
            yield Chunk(index, len(chunks), first, last, images)

    def iter_inpaint(
        self,
        known_images: ArrayLike,
        masks: ArrayLike,
        seeds: ArrayLike,
        settings: SamplerSettings | None = None,
        levels_per_chunk: int = 1,
        **overrides: Any,
    ) -> Iterator[Chunk]:
        """`inpaint` as chunks of levels (masks: 1 = known); the chain carries known pixels with noise."""
        settings = self.settings(settings, **overrides)
        chunks = level_chunks(self.num_levels, levels_per_chunk)
        images = self.initial_images(seeds, settings.sampler)  # [B, *image_shape], the sampler's start
        for index, (first, last) in enumerate(chunks):
            images = self.inpaint_levels(images, known_images, masks, seeds, first, last, settings)
            yield Chunk(index, len(chunks), first, last, images)

    def __repr__(self) -> str:
        return f"ExportedSampler({os.fspath(self.files.source)!r}, runtime={self.runtime!r}, device={self.device!r})"


def load(
    location: str | os.PathLike[str] | Path,
    runtime: str = "onnxruntime",
    threads: int = 0,
    provider: str | None = None,
) -> ExportedSampler:
    """Open an export for sampling; see `ExportedSampler`."""
    return ExportedSampler(location, runtime=runtime, threads=threads, provider=provider)
