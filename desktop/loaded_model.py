"""Everything the app needs from a newly opened model, checked in the loading thread. No Qt.

The current model is closed only after the new one has passed every check
here (its image size and ladder are within what the app can hold, its sampler
defaults are valid settings, its mask can be allocated, and its sampling
endpoint really runs on this manifest's image shape), so a bad export never
leaves the window half switched.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from desktop.backend import InferenceBackend, ModelError, SamplerSettings, seeds_for
from desktop.backend.base import MAX_STEPS_PER_LEVEL
from desktop.masks import full_mask
from export_format.limits import max_steps_per_level

MAX_MODEL_SIDE = 4096  # pixels on a side the app shows, paints masks on and saves
MAX_MODEL_PIXELS = MAX_MODEL_SIDE * MAX_MODEL_SIDE
MAX_LEVELS = 100_000
PROBE_STEPS = 2  # network calls the probe times (after one warm-up call)


@dataclass(frozen=True)
class Probe:
    """A timed call of the model: `calls` network calls on `batch` images took `seconds`."""

    batch: int
    calls: int
    seconds: float


@dataclass(frozen=True)
class LoadedModel:
    """A back end with what the window needs to switch to it without further failure.

    Attributes:
        backend: the opened back end.
        path: what the user opened.
        mask: [H, W] float32 of ones (1 = known), the new model's empty mask.
        defaults: the manifest's sampler defaults as valid state values
            (steps_per_level, epsilon, denoise).
        max_steps_per_level: the largest T for this model (levels x T must fit int32 counters).
        probe: the timing of a tiny run (None if not probed).
    """

    backend: InferenceBackend
    path: str
    mask: np.ndarray
    defaults: dict[str, object]
    max_steps_per_level: int
    probe: Probe | None = None


def steps_limit(num_levels: int) -> int:
    """The largest steps per level the app allows for a model of `num_levels` levels."""
    return min(MAX_STEPS_PER_LEVEL, max_steps_per_level(num_levels))


def prepare_model(backend: InferenceBackend, path: str, probe: bool = True) -> LoadedModel:
    """Check a freshly opened model against the app's bounds and run it once, briefly.

    Args:
        backend: the opened back end (the caller closes it when this raises).
        path: what the user opened.
        probe: time a tiny run (one warm-up call, then PROBE_STEPS calls on one image).

    Returns:
        The checked model.

    Raises:
        ModelError: the model is larger than the app handles, recommends invalid
            settings, or its sampling endpoint fails on the manifest's image shape.
    """
    manifest = backend.files.manifest
    name = manifest.name[:80]
    height, width, _ = manifest.image_shape
    if height > MAX_MODEL_SIDE or width > MAX_MODEL_SIDE or height * width > MAX_MODEL_PIXELS:
        raise ModelError(
            f"{name} makes {width} x {height} images, larger than the app handles "
            f"({MAX_MODEL_SIDE} x {MAX_MODEL_SIDE} at most); its manifest may be damaged"
        )
    if manifest.num_levels > MAX_LEVELS:
        raise ModelError(f"{name} has {manifest.num_levels} noise levels, more than the app handles ({MAX_LEVELS})")
    limit = steps_limit(manifest.num_levels)
    defaults = manifest.sampler
    if "annealed_langevin" not in defaults.settings:  # the app's sampler panel runs annealed Langevin
        raise ModelError(
            f"{name} holds only the {', '.join(defaults.samplers)} sampler(s); this app runs annealed Langevin: "
            "re-export it with --samplers including annealed_langevin"
        )
    if not 1 <= defaults.steps_per_level <= limit:
        raise ModelError(
            f"{name} recommends {defaults.steps_per_level} steps per level; the app allows 1 to {limit} "
            "for this model; its manifest may be damaged"
        )
    settings = SamplerSettings(defaults.steps_per_level, defaults.epsilon, bool(defaults.denoise))
    try:
        settings.validate()
    except ValueError as error:
        raise ModelError(f"{name} recommends invalid sampler settings ({error}); its manifest may be damaged") from None
    try:
        mask = full_mask(height, width)  # [H, W], 1 = known
    except MemoryError:
        raise ModelError(f"not enough memory for {width} x {height} images of {name}") from None
    timing = _probe(backend, name) if probe else None
    return LoadedModel(
        backend=backend,
        path=path,
        mask=mask,
        defaults={
            "steps_per_level": defaults.steps_per_level,
            "epsilon": defaults.epsilon,
            "denoise": bool(defaults.denoise),
        },
        max_steps_per_level=limit,
        probe=timing,
    )


def _probe(backend: InferenceBackend, name: str) -> Probe:
    """Run the first level briefly on one image: proves the endpoints run, and times a network call."""
    manifest = backend.files.manifest
    seeds = seeds_for(0, 1)  # [1] int32
    warm_up = SamplerSettings(1, manifest.sampler.epsilon, False)
    timed = SamplerSettings(PROBE_STEPS, manifest.sampler.epsilon, False)
    try:
        images = backend.initial_images(seeds)  # [1, H, W, C]
        if tuple(images.shape) != (1, *manifest.image_shape):
            raise ModelError(
                f"{name} makes images of shape {list(images.shape[1:])}, not the {list(manifest.image_shape)} "
                "its manifest states; re-export the model"
            )
        stepped = backend.sample_levels(images, seeds, 0, 1, warm_up)
        if tuple(stepped.shape) != tuple(images.shape):
            raise ModelError(
                f"{name}'s sampler returns shape {list(stepped.shape)} for {list(images.shape)} images; re-export the model"
            )
        start = time.perf_counter()
        backend.sample_levels(images, seeds, 0, 1, timed)
        seconds = time.perf_counter() - start
    except ModelError:
        raise
    except Exception as error:  # the runtime's own error types
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelError(f"{name} does not run: {reason}") from None
    return Probe(batch=1, calls=PROBE_STEPS, seconds=seconds)
