"""What the app does, without widgets: open models, run samplers, save, restore, drop.

The controller owns the workers and changes `AppState`; widgets call it and
bind to the state. Every failure becomes `error_occurred(title, message)` (the
window shows a dialog); nothing here raises into Qt's event loop.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from desktop.backend import seeds_for
from desktop.backend.base import MAX_SEED
from desktop.backend.runs import iter_inpaint, iter_sample
from desktop.imaging import PICTURE_SUFFIXES, PictureError, fit_picture, load_picture
from desktop.png_metadata import ImageRecord, MetadataError, read_png_record, save_png
from desktop.state import AppState, RunResult
from desktop.workers import LoadWorker, RunWorker, start_in_thread

if TYPE_CHECKING:
    from PIL import Image

MODEL_SUFFIXES = (".onnx",)
QUEUED = Qt.ConnectionType.QueuedConnection
MODEL_FILE_NAMES = ("manifest.json", "saved_model.pb")


@dataclass(frozen=True)
class _RunContext:
    """What the images of the running job are: kind, per-image records, inpainting inputs."""

    kind: str
    records: tuple[ImageRecord, ...]
    original: np.ndarray | None  # [H, W, C] in [0, 1] (inpaint)
    mask: np.ndarray | None  # [H, W], 1 = known (inpaint)


class Controller(QObject):
    """The app's actions on an `AppState`.

    Signals:
        error_occurred(str, str): title and message of a problem to show.
        status(str): a short message for the status bar.
        model_loaded(): a model finished loading (also after a runtime switch).
        run_finished(str): a run of that kind finished with images.
        run_cancelled(str): a run of that kind was cancelled.
        run_failed(str): a run of that kind failed (after error_occurred).
        picture_requested(): a dropped picture went to the Inpaint panel.
    """

    error_occurred = Signal(str, str)
    status = Signal(str)
    model_loaded = Signal()
    run_finished = Signal(str)
    run_cancelled = Signal(str)
    run_failed = Signal(str)
    picture_requested = Signal()

    def __init__(self, state: AppState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._jobs: list[tuple[QThread, QObject]] = []
        self._run_worker: RunWorker | None = None
        self._run_context: _RunContext | None = None
        self._loading_path = ""
        self._run_started = 0.0
        self._source_picture: Image.Image | None = None  # the inpainting picture as loaded
        self.levels_per_chunk = 1

    # ------------------------------------------------------------------ threads

    def _start(self, worker: LoadWorker | RunWorker) -> None:
        self._prune()
        self._jobs.append((start_in_thread(worker), worker))

    def _prune(self) -> None:
        """Drop finished threads and their workers (deleting them is safe once finished)."""
        self._jobs = [(thread, worker) for thread, worker in self._jobs if not thread.isFinished()]

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        """Cancel a run and wait for worker threads (window closing)."""
        self.cancel()
        for thread, _worker in self._jobs:
            thread.quit()
            thread.wait(timeout_ms)
        self._prune()

    # ------------------------------------------------------------------ models

    def open_model(self, path: str | Path, runtime: str | None = None, provider: str | None = None) -> bool:
        """Load a model in a worker; the current model stays until the new one is ready.

        Returns:
            False when the request was refused at once (busy); errors arrive later.
        """
        if self.state.busy or self.state.loading:
            self.error_occurred.emit("Busy", "Wait for the current run or model load to finish, or cancel it.")
            return False
        if runtime is not None or provider is not None:
            self.state.set_runtime(runtime, provider)
        if self.state.provider:
            from desktop.backend.onnx_backend import available_providers

            providers = available_providers()
            if self.state.provider not in providers:
                self.status.emit(f"{self.state.provider} is not available here; using {providers[0]}")
                self.state.set_runtime(provider=providers[0])
        path_text = str(Path(path).expanduser())
        self.state.set_loading(True)
        self.status.emit(f"Opening {path_text} ...")
        worker = LoadWorker(path_text, self.state.preferred_runtime, self.state.provider or None)
        self._loading_path = path_text
        # Bound slots of this GUI-thread object, queued: never lambdas (those run in the worker thread).
        worker.loaded.connect(self._on_loaded, QUEUED)
        worker.errored.connect(self._on_load_failed, QUEUED)
        self._start(worker)
        return True

    def reload_model(self) -> bool:
        """Reopen the current model (after a runtime or provider change)."""
        if not self.state.model_path:
            return False
        return self.open_model(self.state.model_path)

    @Slot(object)
    def _on_loaded(self, backend: object) -> None:
        path = self._loading_path
        self.state.set_loading(False)
        self.state.set_backend(backend, path)  # type: ignore[arg-type]
        self._refit_picture()
        manifest = self.state.manifest
        self.status.emit(
            f"Loaded {manifest.name} with {backend.runtime} ({backend.device})" if manifest else "Loaded"  # type: ignore[attr-defined]
        )
        self.model_loaded.emit()

    @Slot(str)
    def _on_load_failed(self, message: str) -> None:
        path = self._loading_path
        self.state.set_loading(False)
        if not Path(path).exists():
            self.state.remove_recent(path)
        self.status.emit("Could not open the model")
        self.error_occurred.emit("Cannot open model", message)

    # ------------------------------------------------------------------ runs

    def _can_run(self, kind: str) -> bool:
        state = self.state
        if state.backend is None:
            self.error_occurred.emit("No model", "Open an exported model first (File > Open model).")
            return False
        if state.busy or state.loading:
            self.error_occurred.emit("Busy", "Wait for the current run to finish, or cancel it.")
            return False
        try:
            state.sampler.settings().validate()
        except ValueError as error:
            self.error_occurred.emit("Invalid settings", str(error))
            return False
        if kind == "inpaint" and not state.backend.files.can_inpaint(state.backend.runtime):
            self.error_occurred.emit(
                "Cannot inpaint", "This export has no inpainting endpoint (inpaint_levels) for this runtime."
            )
            return False
        return True

    def _next_seed(self) -> int:
        sampler = self.state.sampler
        if sampler.seed_mode == "random":
            self.state.update_sampler(seed=random.randint(0, MAX_SEED))
        return self.state.sampler.seed

    def _records(self, kind: str, seeds: np.ndarray) -> tuple[ImageRecord, ...]:
        state, sampler = self.state, self.state.sampler
        manifest = state.manifest
        assert manifest is not None and state.backend is not None
        return tuple(
            ImageRecord(
                mode=kind,
                model=manifest.name,
                dataset=manifest.dataset,
                seed=int(seed),
                steps_per_level=sampler.steps_per_level,
                epsilon=sampler.epsilon,
                denoise=sampler.denoise,
                runtime=state.backend.runtime,
            )
            for seed in seeds
        )

    def generate(self) -> bool:
        """Sample `batch_size` images in a worker (seeds base, base+1, ...).

        Returns:
            True when the run started.
        """
        if not self._can_run("sample"):
            return False
        state = self.state
        seeds = seeds_for(self._next_seed(), state.sampler.batch_size)  # [B] int32
        settings = state.sampler.settings()
        backend = state.backend
        levels = self.levels_per_chunk
        records = self._records("sample", seeds)
        worker = RunWorker(backend, lambda stop: iter_sample(backend, seeds, settings, levels, stop))
        self._start_run("sample", worker, records)
        return True

    def inpaint(self) -> bool:
        """Inpaint the current picture with `variants` seeds in a worker.

        Returns:
            True when the run started.
        """
        if not self._can_run("inpaint"):
            return False
        state = self.state
        fitted = state.inpaint.fitted
        if fitted is None:
            self.error_occurred.emit("No picture", "Open or drop a picture to inpaint first.")
            return False
        mask = np.array(state.mask, dtype=np.float32)  # [H, W], 1 = known
        if mask.min() == 1.0:
            self.error_occurred.emit(
                "Nothing to fill in", "Paint the region to fill in with the brush, or pick a preset."
            )
            return False
        seeds = seeds_for(self._next_seed(), state.sampler.variants)  # [V] int32
        settings = state.sampler.settings()
        backend = state.backend
        levels = self.levels_per_chunk
        picture = fitted.image.copy()  # [H, W, C] in [0, 1]
        records = self._records("inpaint", seeds)
        worker = RunWorker(backend, lambda stop: iter_inpaint(backend, picture, mask, seeds, settings, levels, stop))
        self._start_run("inpaint", worker, records, original=picture, mask=mask)
        return True

    def _start_run(
        self,
        kind: str,
        worker: RunWorker,
        records: tuple[ImageRecord, ...],
        original: np.ndarray | None = None,
        mask: np.ndarray | None = None,
    ) -> None:
        state = self.state
        self._run_context = _RunContext(kind, records, original, mask)
        worker.progress.connect(state.set_progress, QUEUED)
        worker.preview.connect(self._on_preview, QUEUED)
        worker.finished.connect(self._on_finished, QUEUED)
        worker.cancelled.connect(self._on_cancelled, QUEUED)
        worker.errored.connect(self._on_errored, QUEUED)
        self._run_worker = worker
        self._run_started = time.perf_counter()
        state.set_progress(0, state.manifest.num_levels if state.manifest else 0)
        state.set_busy(kind)
        self.status.emit("Sampling ..." if kind == "sample" else "Inpainting ...")
        self._start(worker)

    def _result(self, images: object, complete: bool) -> RunResult:
        context = self._run_context
        assert context is not None
        return RunResult(context.kind, np.asarray(images), context.records, context.original, context.mask, complete)

    @Slot(object)
    def _on_preview(self, images: object) -> None:
        if self._run_context is not None:
            self.state.set_result(self._result(images, complete=False))

    @Slot(object)
    def _on_finished(self, images: object) -> None:
        state = self.state
        result = self._result(images, complete=True)
        self._run_worker, self._run_context = None, None
        state.set_result(result)
        sampler = state.sampler
        if sampler.seed_mode == "increment":
            state.update_sampler(seed=(sampler.seed + len(result.images)) % (MAX_SEED + 1))
        state.set_busy("")
        seconds = time.perf_counter() - self._run_started
        first, last = result.records[0].seed, result.records[-1].seed
        seeds = f"seed {first}" if first == last else f"seeds {first}\u2013{last}"
        self.status.emit(f"Done in {seconds:.1f} s: {len(result.images)} image(s), {seeds}")
        self.run_finished.emit(result.kind)

    @Slot()
    def _on_cancelled(self) -> None:
        kind = self._end_run()
        self.status.emit("Cancelled")
        self.run_cancelled.emit(kind)

    @Slot(str)
    def _on_errored(self, message: str) -> None:
        kind = self._end_run()
        self.status.emit("Failed")
        self.error_occurred.emit("Sampling failed" if kind == "sample" else "Inpainting failed", message)
        self.run_failed.emit(kind)

    def _end_run(self) -> str:
        kind = self._run_context.kind if self._run_context is not None else ""
        self._run_worker, self._run_context = None, None
        self.state.set_busy("")
        self.state.set_progress(0, 0)
        return kind

    def cancel(self) -> None:
        """Stop the running job within the current chunk (at once with onnxruntime)."""
        if self._run_worker is not None:
            self._run_worker.cancel()
            self.status.emit("Cancelling ...")

    # ------------------------------------------------------------------ files

    def save_results(self, kind: str, folder: str | Path) -> list[Path]:
        """Write each image of the last `kind` run as a PNG with its settings.

        Returns:
            The files written (empty on error, which is reported).
        """
        result = self.state.results.get(kind)
        if result is None or not result.complete:
            self.error_occurred.emit("Nothing to save", "Generate images first.")
            return []
        folder = Path(folder)
        written = []
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for image, record in zip(result.images, result.records, strict=True):
                path = _free_path(folder, f"{_safe_name(record.model)}_{kind}_seed{record.seed}", ".png")
                save_png(path, image, record)
                written.append(path)
        except OSError as error:
            self.error_occurred.emit("Cannot save", f"Could not write to {folder}: {error.strerror or error}")
            return written
        self.status.emit(f"Saved {len(written)} PNG(s) to {folder}")
        return written

    def save_image(self, kind: str, index: int, path: str | Path) -> bool:
        """Write one image of the last `kind` run to `path` with its settings."""
        result = self.state.results.get(kind)
        if result is None or not 0 <= index < len(result.images):
            self.error_occurred.emit("Nothing to save", "That image is no longer there.")
            return False
        try:
            save_png(path, result.images[index], result.records[index])
        except (OSError, ValueError) as error:
            self.error_occurred.emit("Cannot save", f"Could not write {path}: {error}")
            return False
        self.status.emit(f"Saved {path}")
        return True

    def restore_from_png(self, path: str | Path) -> ImageRecord | None:
        """Restore seed (mode fixed) and sampler settings from a PNG saved by the app."""
        try:
            record = read_png_record(path)
        except MetadataError as error:
            self.error_occurred.emit("No settings in this picture", str(error))
            return None
        self.apply_record(record)
        return record

    def apply_record(self, record: ImageRecord) -> None:
        self.state.update_sampler(
            seed=record.seed,
            seed_mode="fixed",
            steps_per_level=record.steps_per_level,
            epsilon=record.epsilon,
            denoise=record.denoise,
        )
        manifest = self.state.manifest
        note = ""
        if manifest is not None and manifest.name != record.model:
            note = f" (made with model {record.model!r}, the open model is {manifest.name!r})"
        self.status.emit(f"Restored settings: seed {record.seed}, {record.steps_per_level} steps/level{note}")

    def open_picture(self, path: str | Path) -> bool:
        """Load a picture for inpainting, fitted to the model's size and channels."""
        manifest = self.state.manifest
        if manifest is None:
            self.error_occurred.emit("No model", "Open a model first; the picture is fitted to its size.")
            return False
        try:
            picture = load_picture(path)
            fitted = fit_picture(picture, manifest.image_shape, self.state.inpaint.fit_mode)
        except PictureError as error:
            self.error_occurred.emit("Cannot open picture", str(error))
            return False
        self._source_picture = picture
        self.state.set_picture(fitted, str(path))
        self.status.emit(
            f"Picture {Path(path).name}: {picture.width}\u00d7{picture.height} \u2192 "
            f"{manifest.width}\u00d7{manifest.height} ({fitted.mode})"
        )
        return True

    @property
    def source_picture(self) -> Image.Image | None:
        """The current inpainting picture as loaded (for showing the crop)."""
        return self._source_picture

    def set_fit_mode(self, mode: str) -> None:
        """Change crop/stretch/pad and refit the current picture."""
        self.state.update_inpaint(fit_mode=mode)
        self._refit_picture()

    def _refit_picture(self) -> None:
        """Fit the loaded picture to the current model's size, channels and fit mode."""
        manifest = self.state.manifest
        if self._source_picture is not None and manifest is not None:
            fitted = fit_picture(self._source_picture, manifest.image_shape, self.state.inpaint.fit_mode)
            self.state.set_picture(fitted, self.state.inpaint.picture_path)

    def handle_drop(self, paths: list[str], active_tab: str) -> None:
        """Open what was dropped: a model, a PNG with settings, or a picture to inpaint.

        On the Inpaint tab any picture becomes the picture to inpaint; elsewhere a
        PNG written by the app restores its settings, and other pictures go to Inpaint.
        """
        if not paths:
            return
        if len(paths) > 1:
            self.status.emit(f"{len(paths)} files dropped; using the first")
        path = Path(paths[0])
        suffix = path.suffix.lower()
        if path.is_dir() or suffix in MODEL_SUFFIXES or path.name in MODEL_FILE_NAMES:
            self.open_model(path)
        elif suffix in PICTURE_SUFFIXES:
            if active_tab != "inpaint" and suffix == ".png":
                try:
                    record = read_png_record(path)
                except MetadataError:
                    record = None
                if record is not None:
                    self.apply_record(record)
                    return
            if self.open_picture(path):
                self.picture_requested.emit()
        else:
            self.error_occurred.emit(
                "Cannot open this file",
                f"{path.name} is neither a model (.onnx file, SavedModel or export folder) nor a picture "
                "(PNG, JPEG, BMP).",
            )


def _safe_name(name: str) -> str:
    """A file-name-safe version of a model name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model"


def _free_path(folder: Path, stem: str, suffix: str) -> Path:
    """folder/stem+suffix, or stem-2, stem-3, ... when taken."""
    path = folder / f"{stem}{suffix}"
    counter = 2
    while path.exists():
        path = folder / f"{stem}-{counter}{suffix}"
        counter += 1
    return path
