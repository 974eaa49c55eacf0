"""The app's state as a widget-free model with signals (napari's layer/model split).

Widgets read from `AppState` and call its setters; they never hold state of
their own. Setters validate, store and emit a signal only when the value
changed, so widgets can bind both ways without loops. Only QtCore is used
(signals); no widget is imported here.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from desktop.backend.base import MAX_BATCH, MAX_SEED, MAX_STEPS_PER_LEVEL, InferenceBackend, SamplerSettings
from desktop.backend.manifest import Manifest
from desktop.estimate import CallTimes, Estimate
from desktop.history import History
from desktop.imaging import FIT_MODES, MAX_SAVE_SCALE, FittedPicture, LoadedPicture, auto_save_scale
from desktop.loaded_model import LoadedModel
from desktop.masks import MaskHistory
from desktop.png_metadata import ImageRecord
from desktop.samplers import (
    ANNEALED_LANGEVIN,
    PREDICTOR_CORRECTOR,
    PROBABILITY_FLOW,
    SAMPLERS,
    Cost,
    check_sampler,
    cost,
    short_label,
)

SEED_MODES = ("fixed", "increment", "random")  # after a run: keep / advance by the batch / draw anew before
MAX_RECENT_MODELS = 8
MAX_VARIANTS = 64
RUN_KINDS = ("sample", "inpaint")  # the two result slots (tabs); variations show in "sample"
MAX_RUN_BYTES = 2 * 2**30  # float32 images of one run (the chain, its copy for the preview, the result)


@dataclass(frozen=True)
class RunResult:
    """Images of a finished, cancelled, in-progress or restored run.

    Attributes:
        kind: "sample", "inpaint" or "variation".
        images: [B, H, W, C] float32 in [0, 1].
        records: one `ImageRecord` per image (what to write into saved PNGs).
        original: [H, W, C] float32 in [0, 1]: the inpainted picture, or the varied image.
        mask: [H, W] float32, 1 = known (inpaint only).
        complete: False for a live preview or a cancelled run (unfinished images).
        caption: what the result is, shown above it (e.g. "from the history, cancelled").
        entry_id: its history entry, if any.
    """

    kind: str
    images: np.ndarray
    records: tuple[ImageRecord, ...]
    original: np.ndarray | None = None
    mask: np.ndarray | None = None
    complete: bool = True
    caption: str = ""
    entry_id: str = ""

    @property
    def slot(self) -> str:
        """The tab showing it: "inpaint" for inpainting, else "sample"."""
        return "inpaint" if self.kind == "inpaint" else "sample"


def initial_settings() -> dict[str, SamplerSettings]:
    """Every sampler's settings before a model is open: the published defaults (docs/samplers.md).

    Annealed Langevin as the paper (T = 100, epsilon = 2e-5, no clean-up); predictor-corrector
    as score_sde (C = 1, snr 0.16, no resampling); probability flow with Heun. An opened
    model replaces them with its manifest's defaults.
    """
    published = {
        ANNEALED_LANGEVIN: {"steps_per_level": 100, "epsilon": 2e-5, "denoise": False},
        PREDICTOR_CORRECTOR: {"corrector_steps": 1, "snr": 0.16, "resample_steps": 0},
        PROBABILITY_FLOW: {"order": 2},
    }
    return {name: SamplerSettings(sampler=name, **published[name]).validate() for name in SAMPLERS if name in published}


# setting name -> the sampler it belongs to (every setting name is one sampler's)
SETTING_OWNERS = {setting.name: kind.name for kind in SAMPLERS.values() for setting in kind.settings}
RUN_FIELDS = ("batch_size", "seed", "seed_mode", "variants")  # the run's fields that are not sampler settings


@dataclass
class SamplerState:
    """The sampler choice and every sampler's settings, as shown in the UI.

    Each sampler keeps its own settings (`per_sampler`, complete and validated), so
    switching to another sampler and back finds them as they were. The properties
    `steps_per_level`, `epsilon`, ... read the owning sampler's value.
    """

    sampler: str = ANNEALED_LANGEVIN
    batch_size: int = 16
    seed: int = 0
    seed_mode: str = "increment"
    variants: int = 4
    per_sampler: dict[str, SamplerSettings] = field(default_factory=initial_settings)

    def settings(self, sampler: str | None = None) -> SamplerSettings:
        """The complete settings of `sampler` (default: the chosen one)."""
        return self.per_sampler[self.sampler if sampler is None else sampler]

    def run_settings(self, kind: str) -> SamplerSettings:
        """The chosen sampler's settings as a run of `kind` uses them.

        Inpainting-only settings (RePaint's resampling) are 0 ("off") for sampling and
        variations, so the settings stay complete and their records say what ran.
        """
        settings = self.settings()
        if kind == "inpaint":
            return settings
        off = {s.name: 0 for s in settings.kind.settings if s.inpainting_only}
        return settings.replace(**off) if off else settings

    def _value(self, name: str) -> Any:
        """The value of setting `name` in the settings of the sampler it belongs to."""
        return getattr(self.per_sampler[SETTING_OWNERS[name]], name)

    # Each sampler's own settings by name (read-only; `AppState.update_sampler` changes them).
    @property
    def steps_per_level(self) -> int:
        """Annealed Langevin: T."""
        return int(self._value("steps_per_level"))

    @property
    def epsilon(self) -> float:
        """Annealed Langevin: the step size."""
        return float(self._value("epsilon"))

    @property
    def denoise(self) -> bool:
        """Annealed Langevin: the final clean-up step."""
        return bool(self._value("denoise"))

    @property
    def corrector_steps(self) -> int:
        """Predictor-corrector: C."""
        return int(self._value("corrector_steps"))

    @property
    def snr(self) -> float:
        """Predictor-corrector: the signal-to-noise ratio r."""
        return float(self._value("snr"))

    @property
    def resample_steps(self) -> int:
        """Predictor-corrector inpainting: RePaint's repeats u."""
        return int(self._value("resample_steps"))

    @property
    def order(self) -> int:
        """Probability flow: 1 = Euler, 2 = Heun."""
        return int(self._value("order"))


@dataclass
class InpaintState:
    """The picture to inpaint and its mask."""

    fit_mode: str = "crop"
    brush_size: int = 2
    erasing: bool = False
    picture_path: str = ""
    picture: LoadedPicture | None = None  # the working copy (bounded size)
    fitted: FittedPicture | None = None
    history: MaskHistory | None = None


@dataclass
class RunTiming:
    """Where the running job is and how long it should still take.

    Attributes:
        kind: the run's kind.
        batch: images in the run.
        num_levels: levels the run covers.
        calls_total: network calls of the whole run.
        started: `time.perf_counter()` at the start.
        estimate: the prediction made before the run (None if nothing was known).
        levels_done, calls_done: progress after the last finished chunk.
        chunk_time: `perf_counter()` when that chunk finished.
    """

    kind: str
    batch: int
    num_levels: int
    calls_total: int
    started: float
    estimate: Estimate | None
    levels_done: int = 0
    calls_done: int = 0
    chunk_time: float = 0.0

    def elapsed(self, now: float | None = None) -> float:
        return (time.perf_counter() if now is None else now) - self.started

    def remaining(self, now: float | None = None) -> float | None:
        """Seconds still to go: from this run's own pace once a chunk finished, else from the estimate."""
        now = time.perf_counter() if now is None else now
        if self.calls_done > 0:
            per_call = (self.chunk_time - self.started) / self.calls_done
            return max(0.0, per_call * (self.calls_total - self.calls_done) - (now - self.chunk_time))
        if self.estimate is not None:
            return max(0.0, self.estimate.seconds - self.elapsed(now))
        return None


class AppState(QObject):
    """Everything the window shows, without widgets.

    Signals:
        model_changed(): a back end was loaded (or cleared).
        loading_changed(bool): a model is being loaded.
        runtime_changed(): preferred runtime or provider changed.
        sampler_changed(): any sampler setting changed.
        inpaint_changed(): fit mode or brush changed (settings that are saved).
        mask_changed(): the mask changed (a stroke, a preset, undo/redo, a new model).
        picture_changed(): the picture to inpaint changed.
        picture_loading_changed(bool): a picture is being loaded.
        busy_changed(str): the running job kind ("sample", "inpaint", "variation") or "" when idle.
        progress_changed(int, int): levels done, levels in the run.
        timing_changed(): elapsed / remaining time or network calls changed.
        results_changed(str): the result (or live preview) of that slot changed.
        recent_changed(): the recent-models list changed.
        history_changed(): an entry was added to or removed from the history.
        output_changed(): how images are saved (the enlargement) changed.
    """

    model_changed = Signal()
    loading_changed = Signal(bool)
    runtime_changed = Signal()
    sampler_changed = Signal()
    inpaint_changed = Signal()
    mask_changed = Signal()
    picture_changed = Signal()
    picture_loading_changed = Signal(bool)
    busy_changed = Signal(str)
    progress_changed = Signal(int, int)
    timing_changed = Signal()
    results_changed = Signal(str)
    recent_changed = Signal()
    history_changed = Signal()
    output_changed = Signal()

    def __init__(self, parent: QObject | None = None, history: History | None = None) -> None:
        super().__init__(parent)
        self.backend: InferenceBackend | None = None
        self.model_path: str = ""
        self.loading = False
        self.preferred_runtime = "onnxruntime"
        self.provider = ""  # "" = onnxruntime's first available provider
        self.sampler = SamplerState()
        self.sampler_model_path = ""  # the model the sampler settings were set for
        self.max_steps_per_level = MAX_STEPS_PER_LEVEL
        self.available_samplers: tuple[str, ...] = tuple(SAMPLERS)  # what the open model can run (all without one)
        self.model_defaults: dict[str, SamplerSettings] = {}  # the open model's defaults of each of them
        self.inpaint = InpaintState()
        self.picture_loading = False
        self.busy = ""
        self.progress = (0, 0)
        self.timing: RunTiming | None = None
        self.results: dict[str, RunResult] = {}
        self.recent_models: list[str] = []
        self.history = history if history is not None else History()
        self.call_times = CallTimes()
        self.save_scale = 0  # 0 = automatic (at least MIN_SAVED_SIDE pixels)

    # ------------------------------------------------------------------ model

    @property
    def manifest(self) -> Manifest | None:
        return self.backend.files.manifest if self.backend is not None else None

    @property
    def model_key(self) -> str:
        """Identifies the open model and how it runs (for remembered timings)."""
        return "" if self.backend is None else model_key(self.model_path, self.backend)

    def set_loading(self, loading: bool) -> None:
        if loading != self.loading:
            self.loading = loading
            self.loading_changed.emit(loading)

    def set_model(self, loaded: LoadedModel | None) -> None:
        """Switch to a checked model (or to none); the previous back end is closed last.

        A different model gets its manifest's sampler defaults and a new mask when
        its image size differs; reloading the same model (another runtime or
        device) keeps settings, picture, mask and results.
        """
        old, old_path = self.backend, self.model_path
        old_shape = old.files.manifest.image_shape if old is not None else None
        backend = loaded.backend if loaded is not None else None
        path = loaded.path if loaded is not None else ""
        self.backend, self.model_path = backend, path
        if loaded is not None:
            assert backend is not None
            self.max_steps_per_level = loaded.max_steps_per_level
            self.available_samplers = loaded.samplers
            self.model_defaults = dict(loaded.defaults)
            if path != self.sampler_model_path:
                self.sampler.per_sampler.update(loaded.defaults)
                self.sampler.sampler = loaded.default_sampler
                self.sampler_model_path = path
            else:  # the same model again (another runtime or device): the user's settings, where they still fit
                for name in loaded.samplers:
                    try:
                        self.sampler.settings(name).validate(backend.files.manifest.num_levels)
                    except ValueError:
                        self.sampler.per_sampler[name] = loaded.defaults[name]
                if self.sampler.sampler not in loaded.samplers:
                    self.sampler.sampler = loaded.default_sampler
            self.sampler_changed.emit()
            if backend.files.manifest.image_shape != old_shape or self.inpaint.history is None:
                self.inpaint.fitted = None
                self.inpaint.history = MaskHistory(loaded.mask)
            self.add_recent(path)
        else:
            self.max_steps_per_level = MAX_STEPS_PER_LEVEL
            self.available_samplers, self.model_defaults = tuple(SAMPLERS), {}
        if backend is None or path != old_path:
            self.results.clear()
        if old is not None and old is not backend:
            old.close()
        self.model_changed.emit()
        self.inpaint_changed.emit()
        self.mask_changed.emit()
        for kind in RUN_KINDS:
            self.results_changed.emit(kind)

    def reset_sampler_to_model(self) -> None:
        """Every sampler's settings as the open model's manifest recommends (the chosen sampler stays)."""
        if not self.model_defaults:
            return
        if any(self.sampler.settings(name) != value for name, value in self.model_defaults.items()):
            self.sampler.per_sampler.update(self.model_defaults)
            self.sampler_changed.emit()

    def set_runtime(self, runtime: str | None = None, provider: str | None = None) -> None:
        changed = False
        if runtime is not None and runtime != self.preferred_runtime:
            self.preferred_runtime, changed = runtime, True
        if provider is not None and provider != self.provider:
            self.provider, changed = provider, True
        if changed:
            self.runtime_changed.emit()

    def add_recent(self, path: str) -> None:
        if not path:
            return
        recent = [path] + [p for p in self.recent_models if p != path]
        self.set_recent(recent)

    def remove_recent(self, path: str) -> None:
        self.set_recent([p for p in self.recent_models if p != path])

    def set_recent(self, paths: list[str]) -> None:
        paths = [p for p in paths if isinstance(p, str) and p][:MAX_RECENT_MODELS]
        if paths != self.recent_models:
            self.recent_models = paths
            self.recent_changed.emit()

    # ------------------------------------------------------------------ sampler

    def update_sampler(self, **values: object) -> None:
        """Set the sampler, run fields (batch_size, seed, seed_mode, variants) and any sampler's settings.

        A setting goes to the sampler it belongs to (steps_per_level to annealed Langevin,
        snr to predictor-corrector, ...) whichever sampler is chosen, and is validated with
        that sampler's other settings by `SamplerSettings.validate` against the open
        model's ladder. Nothing changes when any value is refused.

        Raises:
            ValueError: an unknown field, a sampler the open model does not have, or an
                out-of-range value (one line naming it).
        """
        sampler = self.sampler
        run = {name: _check_run_value(name, value) for name, value in values.items() if name in RUN_FIELDS}
        chosen = sampler.sampler
        if "sampler" in values:
            chosen = self.check_available(values["sampler"])
        changes: dict[str, dict[str, object]] = {}
        for name, value in values.items():
            if name in RUN_FIELDS or name == "sampler":
                continue
            if name not in SETTING_OWNERS:
                raise ValueError(f"unknown sampler setting {name!r}")
            changes.setdefault(SETTING_OWNERS[name], {})[name] = value
        manifest = self.manifest
        levels = manifest.num_levels if manifest is not None else None
        updated = {
            owner: sampler.settings(owner).replace(**fields).validate(levels) for owner, fields in changes.items()
        }
        changed = chosen != sampler.sampler or any(sampler.settings(o) != v for o, v in updated.items())
        changed = changed or any(getattr(sampler, name) != value for name, value in run.items())
        if not changed:
            return
        sampler.sampler = chosen
        sampler.per_sampler.update(updated)
        for name, value in run.items():
            setattr(sampler, name, value)
        self.sampler_changed.emit()

    def check_available(self, name: object) -> str:
        """`name` when the open model can run that sampler (any known sampler without a model).

        Raises:
            ValueError: an unknown sampler, or one this model was not exported with.
        """
        known = check_sampler(name)
        if known not in self.available_samplers:
            model = self.manifest.name[:80] if self.manifest is not None else "this model"
            have = ", ".join(short_label(n) for n in self.available_samplers)
            raise ValueError(f"{model} was not exported with {short_label(known)} (it has: {have})")
        return known

    def cost(self, kind: str = "sample", first_level: int = 0) -> Cost | None:
        """Network calls of a run of `kind` with the chosen sampler and its settings (None without a model)."""
        manifest = self.manifest
        if manifest is None:
            return None
        return cost(self.sampler.run_settings(kind), manifest.num_levels, kind == "inpaint", first_level)

    def network_calls(self, kind: str = "sample", first_level: int = 0) -> int:
        """Network calls per image of a run of `kind` with the current settings (0 without a model)."""
        run_cost = self.cost(kind, first_level)
        return 0 if run_cost is None else run_cost.calls

    def batch_for(self, kind: str) -> int:
        """Images in a run of `kind`: the batch size for sampling, the variant count otherwise."""
        return self.sampler.batch_size if kind == "sample" else self.sampler.variants

    def estimate(self, kind: str = "sample", first_level: int = 0) -> Estimate | None:
        """The predicted time of such a run on the open model, if it was ever timed."""
        if self.backend is None:
            return None
        return self.call_times.estimate(self.model_key, self.batch_for(kind), self.network_calls(kind, first_level))

    def run_bytes(self, batch: int) -> int:
        """float32 bytes of one batch of the open model's images."""
        manifest = self.manifest
        return 0 if manifest is None else batch * math.prod(manifest.image_shape) * 4

    # ------------------------------------------------------------------ output

    def set_save_scale(self, scale: int) -> None:
        """0 = automatic, else a whole enlargement factor for saved PNGs.

        Raises:
            ValueError: not an integer in [0, MAX_SAVE_SCALE].
        """
        if isinstance(scale, bool) or not isinstance(scale, int) or not 0 <= scale <= MAX_SAVE_SCALE:
            raise ValueError(f"save scale must be an integer in [0, {MAX_SAVE_SCALE}] (0 = automatic), got {scale!r}")
        if scale != self.save_scale:
            self.save_scale = scale
            self.output_changed.emit()

    def effective_save_scale(self, height: int, width: int) -> int:
        """The enlargement used for images of (height, width)."""
        return self.save_scale or auto_save_scale(height, width)

    # ------------------------------------------------------------------ inpainting

    def set_picture_loading(self, loading: bool) -> None:
        if loading != self.picture_loading:
            self.picture_loading = loading
            self.picture_loading_changed.emit(loading)

    def set_picture(self, picture: LoadedPicture | None, fitted: FittedPicture | None) -> None:
        """A new picture to inpaint (its working copy, and that copy fitted to the model); the mask is kept."""
        self.inpaint.picture = picture
        self.inpaint.fitted = fitted
        self.inpaint.picture_path = picture.path if picture is not None else ""
        self.picture_changed.emit()
        self.inpaint_changed.emit()

    def set_fitted(self, fitted: FittedPicture | None) -> None:
        """The same picture fitted anew (another fit mode or model)."""
        self.inpaint.fitted = fitted
        self.picture_changed.emit()
        self.inpaint_changed.emit()

    def update_inpaint(self, **values: object) -> None:
        """Set fit_mode, brush_size or erasing.

        Raises:
            ValueError: unknown field or bad value.
        """
        inpaint = self.inpaint
        changed = False
        for name, value in values.items():
            if name == "fit_mode":
                if value not in FIT_MODES:
                    raise ValueError(f"fit mode must be one of {FIT_MODES}, got {value!r}")
            elif name == "brush_size":
                if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 256:
                    raise ValueError(f"brush size must be an integer in [1, 256], got {value!r}")
            elif name == "erasing":
                value = bool(value)
            else:
                raise ValueError(f"unknown inpainting setting {name!r}")
            if getattr(inpaint, name) != value:
                setattr(inpaint, name, value)
                changed = True
        if changed:
            self.inpaint_changed.emit()

    @property
    def mask(self) -> np.ndarray | None:
        """[H, W] float32, 1 = known; None without a model."""
        history = self.inpaint.history
        return None if history is None else history.current

    def push_mask(self, mask: np.ndarray) -> None:
        """A new mask as an undoable step."""
        if self.inpaint.history is not None:
            self.inpaint.history.push(mask)
            self.mask_changed.emit()

    def continue_mask(self, mask: np.ndarray) -> None:
        """Update the mask within the current step (a brush stroke in progress)."""
        if self.inpaint.history is not None:
            self.inpaint.history.replace(mask)
            self.mask_changed.emit()

    def undo_mask(self) -> bool:
        history = self.inpaint.history
        if history is not None and history.undo():
            self.mask_changed.emit()
            return True
        return False

    def redo_mask(self) -> bool:
        history = self.inpaint.history
        if history is not None and history.redo():
            self.mask_changed.emit()
            return True
        return False

    # ------------------------------------------------------------------ runs

    def set_busy(self, kind: str) -> None:
        if kind != self.busy:
            self.busy = kind
            self.busy_changed.emit(kind)

    def set_progress(self, done: int, total: int) -> None:
        self.progress = (done, total)
        self.progress_changed.emit(done, total)

    def set_timing(self, timing: RunTiming | None) -> None:
        self.timing = timing
        self.timing_changed.emit()

    def set_result(self, result: RunResult | None, slot: str = "") -> None:
        """Show `result` in its slot (None clears `slot`)."""
        if result is None:
            if self.results.pop(slot, None) is not None:
                self.results_changed.emit(slot)
            return
        self.results[result.slot] = result
        self.results_changed.emit(result.slot)


def model_key(path: str, backend: InferenceBackend) -> str:
    """A model as opened and the runtime and device it runs on (timings are remembered per key)."""
    return f"{path}|{backend.runtime}|{backend.device}"


def _check_run_value(name: str, value: object) -> object:
    """A validated run field (ints are not bools, ranges are enforced)."""
    int_ranges = {"batch_size": (1, MAX_BATCH), "seed": (0, MAX_SEED), "variants": (1, MAX_VARIANTS)}
    if name in int_ranges:
        low, high = int_ranges[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
            raise ValueError(f"{name.replace('_', ' ')} must be an integer in [{low}, {high}], got {value!r}")
        return int(value)
    if name == "seed_mode":
        if value not in SEED_MODES:
            raise ValueError(f"seed mode must be one of {SEED_MODES}, got {value!r}")
        return value
    raise ValueError(f"unknown sampler setting {name!r}")
