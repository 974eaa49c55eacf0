"""The app's state as a widget-free model with signals (napari's layer/model split).

Widgets read from `AppState` and call its setters; they never hold state of
their own. Setters validate, store and emit a signal only when the value
changed, so widgets can bind both ways without loops. Only QtCore is used
(signals); no widget is imported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import QObject, Signal

from desktop.backend.base import MAX_BATCH, MAX_SEED, MAX_STEPS_PER_LEVEL, InferenceBackend, SamplerSettings
from desktop.backend.manifest import Manifest
from desktop.imaging import FIT_MODES, FittedPicture
from desktop.masks import MaskHistory, full_mask
from desktop.png_metadata import ImageRecord
from desktop.qt_compat import guard_none_refcount

guard_none_refcount()  # PySide6 6.12 on Python 3.11 leaks references to None (see qt_compat)

SEED_MODES = ("fixed", "increment", "random")  # after a run: keep / advance by the batch / draw anew before
MAX_RECENT_MODELS = 8
MAX_VARIANTS = 64
RUN_KINDS = ("sample", "inpaint")


@dataclass(frozen=True)
class RunResult:
    """Images of a finished (or in-progress) run.

    Attributes:
        kind: "sample" or "inpaint".
        images: [B, H, W, C] float32 in [0, 1].
        records: one `ImageRecord` per image (what to write into saved PNGs).
        original: [H, W, C] float32 in [0, 1], the inpainted picture (inpaint only).
        mask: [H, W] float32, 1 = known (inpaint only).
        complete: False for a live preview.
    """

    kind: str
    images: np.ndarray
    records: tuple[ImageRecord, ...]
    original: np.ndarray | None = None
    mask: np.ndarray | None = None
    complete: bool = True


@dataclass
class SamplerState:
    """The sampler settings shown in the UI (plain values)."""

    batch_size: int = 16
    seed: int = 0
    seed_mode: str = "increment"
    steps_per_level: int = 100
    epsilon: float = 2e-5
    denoise: bool = False
    variants: int = 4

    def settings(self) -> SamplerSettings:
        return SamplerSettings(self.steps_per_level, self.epsilon, self.denoise)


@dataclass
class InpaintState:
    """The picture to inpaint and its mask."""

    fit_mode: str = "crop"
    brush_size: int = 2
    erasing: bool = False
    picture_path: str = ""
    fitted: FittedPicture | None = None
    history: MaskHistory | None = None


class AppState(QObject):
    """Everything the window shows, without widgets.

    Signals:
        model_changed(): a back end was loaded (or cleared).
        loading_changed(bool): a model is being loaded.
        runtime_changed(): preferred runtime or provider changed.
        sampler_changed(): any sampler setting changed.
        inpaint_changed(): picture, fit mode, brush or mask changed.
        busy_changed(str): the running job kind ("sample", "inpaint") or "" when idle.
        progress_changed(int, int): chunks done, chunks in the run.
        results_changed(str): the result (or live preview) of that kind changed.
        recent_changed(): the recent-models list changed.
    """

    model_changed = Signal()
    loading_changed = Signal(bool)
    runtime_changed = Signal()
    sampler_changed = Signal()
    inpaint_changed = Signal()
    busy_changed = Signal(str)
    progress_changed = Signal(int, int)
    results_changed = Signal(str)
    recent_changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.backend: InferenceBackend | None = None
        self.model_path: str = ""
        self.loading = False
        self.preferred_runtime = "onnxruntime"
        self.provider = ""  # "" = onnxruntime's first available provider
        self.sampler = SamplerState()
        self.sampler_model_path = ""  # the model the sampler settings were set for
        self.inpaint = InpaintState()
        self.busy = ""
        self.progress = (0, 0)
        self.results: dict[str, RunResult] = {}
        self.recent_models: list[str] = []

    # ------------------------------------------------------------------ model

    @property
    def manifest(self) -> Manifest | None:
        return self.backend.files.manifest if self.backend is not None else None

    def set_loading(self, loading: bool) -> None:
        if loading != self.loading:
            self.loading = loading
            self.loading_changed.emit(loading)

    def set_backend(self, backend: InferenceBackend | None, path: str = "") -> None:
        """Install a loaded back end.

        A different model gets its manifest's sampler defaults, and a new mask when
        its image size differs; reloading the same model (another runtime or
        device) keeps settings, picture, mask and results.
        """
        old, old_path = self.backend, self.model_path
        old_shape = old.files.manifest.image_shape if old is not None else None
        self.backend = backend
        self.model_path = path
        if old is not None and old is not backend:
            old.close()
        if backend is not None:
            if path != self.sampler_model_path:
                self.reset_sampler_to_model()
                self.sampler_model_path = path
            if backend.files.manifest.image_shape != old_shape or self.inpaint.history is None:
                self._reset_inpaint_for_model()
            self.add_recent(path)
        if backend is None or path != old_path:
            self.results.clear()
        self.model_changed.emit()
        for kind in RUN_KINDS:
            self.results_changed.emit(kind)

    def reset_sampler_to_model(self) -> None:
        """Steps, epsilon and denoising as the manifest recommends."""
        manifest = self.manifest
        if manifest is None:
            return
        defaults = manifest.sampler
        self.update_sampler(
            steps_per_level=defaults.steps_per_level, epsilon=defaults.epsilon, denoise=defaults.denoise
        )

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
        """Set sampler fields (batch_size, seed, seed_mode, steps_per_level, epsilon, denoise, variants).

        Raises:
            ValueError: unknown field or out-of-range value (message names it).
        """
        sampler = self.sampler
        changed = False
        for name, value in values.items():
            checked = _check_sampler_value(name, value)
            if getattr(sampler, name) != checked:
                setattr(sampler, name, checked)
                changed = True
        if changed:
            self.sampler_changed.emit()

    # ------------------------------------------------------------------ inpainting

    def _reset_inpaint_for_model(self) -> None:
        """A fresh mask of the model's size (the controller refits the picture)."""
        manifest = self.manifest
        if manifest is None:
            return
        self.inpaint.fitted = None
        self.inpaint.history = MaskHistory(full_mask(manifest.height, manifest.width))
        self.inpaint_changed.emit()

    def set_picture(self, fitted: FittedPicture, path: str) -> None:
        """A new picture to inpaint (already fitted to the model); the mask is kept."""
        self.inpaint.fitted = fitted
        self.inpaint.picture_path = path
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
            self.inpaint_changed.emit()

    def continue_mask(self, mask: np.ndarray) -> None:
        """Update the mask within the current step (a brush stroke in progress)."""
        if self.inpaint.history is not None:
            self.inpaint.history.replace(mask)
            self.inpaint_changed.emit()

    def undo_mask(self) -> bool:
        history = self.inpaint.history
        if history is not None and history.undo():
            self.inpaint_changed.emit()
            return True
        return False

    def redo_mask(self) -> bool:
        history = self.inpaint.history
        if history is not None and history.redo():
            self.inpaint_changed.emit()
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

    def set_result(self, result: RunResult) -> None:
        self.results[result.kind] = result
        self.results_changed.emit(result.kind)


def _check_sampler_value(name: str, value: object) -> object:
    """A validated sampler value (ints are not bools, ranges are enforced)."""
    int_ranges = {
        "batch_size": (1, MAX_BATCH),
        "seed": (0, MAX_SEED),
        "steps_per_level": (1, MAX_STEPS_PER_LEVEL),
        "variants": (1, MAX_VARIANTS),
    }
    if name in int_ranges:
        low, high = int_ranges[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
            raise ValueError(f"{name.replace('_', ' ')} must be an integer in [{low}, {high}], got {value!r}")
        return int(value)
    if name == "epsilon":
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (math.isfinite(value) and 0.0 < value < 1.0)
        ):
            raise ValueError(f"epsilon must be a number in (0, 1), got {value!r}")
        return float(value)
    if name == "denoise":
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"denoise must be true or false, got {value!r}")
        return bool(value)
    if name == "seed_mode":
        if value not in SEED_MODES:
            raise ValueError(f"seed mode must be one of {SEED_MODES}, got {value!r}")
        return value
    raise ValueError(f"unknown sampler setting {name!r}")
