"""What the app does, without widgets: open models and pictures, run samplers, keep the history, save, drop.

The controller owns the workers and changes `AppState`; widgets call it and
bind to the state. Every failure becomes `error_occurred(title, message)` (the
window shows a dialog); nothing here raises into Qt's event loop.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Qt, QTimer, Signal, Slot

from desktop.backend import seeds_for
from desktop.backend.base import MAX_SEED, SamplerSettings
from desktop.backend.runs import ChunkDone, iter_inpaint, iter_sample
from desktop.history import EntryImages, HistoryEntry, RunSettings, new_entry_id
from desktop.imaging import (
    PICTURE_SUFFIXES,
    LoadedPicture,
    PictureError,
    fit_picture,
    grid_columns,
    image_grid,
    picture_from_array,
)
from desktop.loaded_model import LoadedModel
from desktop.png_metadata import MAX_NAME_CHARS, ImageRecord, MetadataError, read_png_record, save_png
from desktop.samplers import settings_text, short_label
from desktop.state import MAX_RUN_BYTES, AppState, RunResult, RunTiming, model_key
from desktop.variations import iter_variations, variation_level
from desktop.workers import ModelLoader, PictureLoader, RunJob, Runner, WorkerThread
from export_format.settings import network_calls

MODEL_SUFFIXES = (".onnx",)
QUEUED = Qt.ConnectionType.QueuedConnection
MODEL_FILE_NAMES = ("manifest.json", "saved_model.pb")
TIMING_INTERVAL_MS = 500  # how often the elapsed / remaining time is refreshed during a run
RUN_COPIES = 3  # float32 copies of a batch alive during a run (chain, preview, result)


@dataclass(frozen=True)
class _RunContext:
    """What the running job is: kind, per-image records, inputs, and what to show again if it is cancelled."""

    kind: str
    records: tuple[ImageRecord, ...]
    original: np.ndarray | None  # [H, W, C] in [0, 1] (inpaint: the picture; variation: the source image)
    mask: np.ndarray | None  # [H, W], 1 = known (inpaint)
    first_level: int
    num_levels: int
    settings: SamplerSettings  # the run's sampler and its complete settings
    previous: RunResult | None
    model_path: str

    @property
    def slot(self) -> str:
        return "inpaint" if self.kind == "inpaint" else "sample"

    def calls_done(self, reached_level: int) -> int:
        """Network calls made once the chain reached `reached_level` (`export_format`'s count of that chunk)."""
        inpainting = self.kind == "inpaint"
        settings = self.settings if inpainting else self.settings.for_role("sample")
        return network_calls(
            settings.sampler,
            self.num_levels,
            settings,
            inpainting=inpainting,
            first_level=self.first_level,
            last_level=reached_level,
        )


class Controller(QObject):
    """The app's actions on an `AppState`.

    Signals:
        error_occurred(str, str): title and message of a problem to show.
        status(str): a short message for the status bar.
        model_loaded(): a model finished loading (also after a runtime switch).
        model_failed(): opening a model failed (after error_occurred).
        runtime_missing(str, str, str, object): path, message, wanted runtime, available
            runtimes: the export lacks the requested runtime's files; nothing was opened.
        run_finished(str): a run of that kind finished with images.
        run_cancelled(str): a run of that kind was cancelled.
        run_failed(str): a run of that kind failed (after error_occurred).
        picture_loaded(): a picture to inpaint was loaded and fitted.
        show_tab(str): the window should show this tab ("sample" or "inpaint").
    """

    error_occurred = Signal(str, str)
    status = Signal(str)
    model_loaded = Signal()
    model_failed = Signal()
    runtime_missing = Signal(str, str, str, object)
    run_finished = Signal(str)
    run_cancelled = Signal(str)
    run_failed = Signal(str)
    picture_loaded = Signal()
    show_tab = Signal(str)

    def __init__(self, state: AppState, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._run_job: RunJob | None = None
        self._run_context: _RunContext | None = None
        self._last_preview: np.ndarray | None = None
        self._loading_path = ""
        self._picture_purpose = ""  # "inpaint" or "show" (a dropped PNG)
        self._dropped_record: ImageRecord | None = None
        self._jobs = 0  # the last job number; results of older jobs are ignored
        self._load_job = self._picture_job = -1
        self.levels_per_chunk = 1
        self._timing_timer = QTimer(self)
        self._timing_timer.setInterval(TIMING_INTERVAL_MS)
        self._timing_timer.timeout.connect(state.timing_changed)
        # One worker of each kind for the session, connected once (see desktop.workers). Their
        # signals reach these bound slots queued, on the GUI thread.
        self._loader, self._pictures, self._runner = ModelLoader(), PictureLoader(), Runner()
        self._loader.loaded.connect(self._on_loaded, QUEUED)
        self._loader.errored.connect(self._on_load_failed, QUEUED)
        self._loader.runtime_missing.connect(self._on_runtime_missing, QUEUED)
        self._pictures.loaded.connect(self._on_picture_loaded, QUEUED)
        self._pictures.errored.connect(self._on_picture_failed, QUEUED)
        self._runner.chunk_done.connect(self._on_chunk, QUEUED)
        self._runner.preview.connect(self._on_preview, QUEUED)
        self._runner.finished.connect(self._on_finished, QUEUED)
        self._runner.cancelled.connect(self._on_cancelled, QUEUED)
        self._runner.errored.connect(self._on_errored, QUEUED)
        self._threads = [WorkerThread(worker) for worker in (self._loader, self._pictures, self._runner)]

    # ------------------------------------------------------------------ threads

    def _next_job(self) -> int:
        self._jobs += 1
        return self._jobs

    def shutdown(self, timeout_ms: int = 30_000) -> None:
        """Cancel a run and end the worker threads, then finish writing the history (window closing)."""
        self.cancel()
        for thread in self._threads:
            thread.stop(timeout_ms)
        self._threads = []
        self._timing_timer.stop()
        self.state.history.close()

    # ------------------------------------------------------------------ models

    def open_model(
        self, path: str | Path, runtime: str | None = None, provider: str | None = None, remember: bool = True
    ) -> bool:
        """Load and check a model in a worker; the current model stays until the new one is ready.

        Args:
            path: an export folder, .onnx file or SavedModel folder.
            runtime: the runtime to use (default: the preferred one). The export must have its files;
                otherwise `runtime_missing` is emitted and nothing is opened (no silent fallback).
            provider: onnxruntime execution provider.
            remember: make `runtime` / `provider` the preference (False: this open only).

        Returns:
            False when the request was refused at once (busy); errors arrive later.
        """
        if self.state.busy or self.state.loading:
            self.error_occurred.emit("Busy", "Wait for the current run or model load to finish, or cancel it.")
            return False
        if remember and (runtime is not None or provider is not None):
            self.state.set_runtime(runtime, provider)
        provider = provider or self.state.provider or None
        if provider:
            from desktop.backend.onnx_backend import available_providers

            providers = available_providers()
            if provider not in providers:
                self.status.emit(f"{provider} is not available here; using {providers[0]}")
                provider = providers[0]
                if remember:
                    self.state.set_runtime(provider=provider)
        path_text = str(Path(path).expanduser())
        self.state.set_loading(True)
        self.status.emit(f"Opening {path_text} ...")
        self._loading_path = path_text
        self._load_job = self._next_job()
        self._loader.request.emit(self._load_job, path_text, runtime or self.state.preferred_runtime, provider)
        return True

    def reload_model(self) -> bool:
        """Reopen the current model (after a runtime or provider change)."""
        if not self.state.model_path:
            return False
        return self.open_model(self.state.model_path)

    @Slot(int, object)
    def _on_loaded(self, job: int, loaded: object) -> None:
        assert isinstance(loaded, LoadedModel)
        if job != self._load_job:  # a load nobody waits for any more (the window is closing)
            loaded.backend.close()
            return
        state = self.state
        key = model_key(loaded.path, loaded.backend)
        if loaded.probe is not None and state.call_times.seconds_per_call(key, loaded.probe.batch) is None:
            state.call_times.record(key, loaded.probe.batch, loaded.probe.calls, loaded.probe.seconds)
        state.set_loading(False)
        state.set_model(loaded)  # closes the previous back end last
        self._refit_picture()
        manifest, backend = loaded.backend.files.manifest, loaded.backend
        self.status.emit(f"Loaded {manifest.name} with {backend.runtime} ({backend.device})")
        self.model_loaded.emit()

    @Slot(int, str)
    def _on_load_failed(self, job: int, message: str) -> None:
        if job != self._load_job:
            return
        path = self._loading_path
        self.state.set_loading(False)
        if not Path(path).exists():
            self.state.remove_recent(path)
        self.status.emit("Could not open the model")
        self.error_occurred.emit("Cannot open model", message)
        self.model_failed.emit()

    @Slot(int, str, str, object)
    def _on_runtime_missing(self, job: int, message: str, wanted: str, available: object) -> None:
        if job != self._load_job:
            return
        self.state.set_loading(False)
        self.status.emit(message)
        self.runtime_missing.emit(self._loading_path, message, wanted, tuple(available))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ runs

    def _can_run(self, kind: str) -> bool:
        state = self.state
        if state.backend is None:
            self.error_occurred.emit("No model", "Open an exported model first (File > Open model).")
            return False
        if state.busy or state.loading:
            self.error_occurred.emit("Busy", "Wait for the current run to finish, or cancel it.")
            return False
        settings = state.sampler.run_settings(kind)
        try:
            settings.validate(state.backend.files.manifest.num_levels)
        except ValueError as error:
            self.error_occurred.emit("Invalid settings", str(error))
            return False
        if kind == "inpaint" and not state.backend.files.can_inpaint(state.backend.runtime, settings.sampler):
            self.error_occurred.emit(
                "Cannot inpaint",
                f"This export has no inpainting endpoint for {short_label(settings.sampler)} with this runtime; "
                "choose another sampler or re-export the model.",
            )
            return False
        batch = state.batch_for(kind)
        if state.run_bytes(batch) * RUN_COPIES > MAX_RUN_BYTES:
            most = max(1, MAX_RUN_BYTES // (RUN_COPIES * state.run_bytes(1)))
            self.error_occurred.emit(
                "Too many images at once",
                f"{batch} images of this size need more memory than the app uses for one run; make at most {most}.",
            )
            return False
        return True

    def _next_seed(self) -> int:
        sampler = self.state.sampler
        if sampler.seed_mode == "random":
            self.state.update_sampler(seed=random.randint(0, MAX_SEED))
        return self.state.sampler.seed

    def _records(self, kind: str, seeds: np.ndarray, start_level: int = 0) -> tuple[ImageRecord, ...]:
        state, sampler = self.state, self.state.sampler
        manifest = state.manifest
        assert manifest is not None and state.backend is not None
        return tuple(
            ImageRecord(
                mode=kind,
                model=manifest.name[:MAX_NAME_CHARS],
                dataset=manifest.dataset[:MAX_NAME_CHARS],
                seed=int(seed),
                settings=sampler.run_settings(kind),
                runtime=state.backend.runtime,
                start_level=start_level,
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
        settings = state.sampler.run_settings("sample")
        backend = state.backend
        assert backend is not None
        levels = self.levels_per_chunk
        self._start_run(
            "sample", lambda stop: iter_sample(backend, seeds, settings, levels, stop), self._records("sample", seeds)
        )
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
        settings = state.sampler.run_settings("inpaint")
        backend = state.backend
        assert backend is not None
        levels = self.levels_per_chunk
        picture = fitted.image.copy()  # [H, W, C] in [0, 1]
        records = self._records("inpaint", seeds)
        run = lambda stop: iter_inpaint(backend, picture, mask, seeds, settings, levels, stop)  # noqa: E731
        self._start_run("inpaint", run, records, original=picture, mask=mask)
        return True

    def variations(self, slot: str, index: int) -> bool:
        """Variations of one shown image: re-noised to the middle level and sampled from there (`variants` images).

        Returns:
            True when the run started.
        """
        image = self._shown_image(slot, index)
        if image is None or not self._can_run("variation"):
            return False
        state = self.state
        manifest = state.manifest
        assert manifest is not None and state.backend is not None
        if tuple(image.shape) != manifest.image_shape:
            self.error_occurred.emit(
                "Another model's image",
                f"This image is {image.shape[1]} x {image.shape[0]}; the open model makes "
                f"{manifest.width} x {manifest.height} images. Open the model that made it.",
            )
            return False
        if manifest.num_levels < 2:
            self.error_occurred.emit("No variations", "This model has one noise level; variations need two or more.")
            return False
        start = variation_level(manifest.num_levels)
        seeds = seeds_for(self._next_seed(), state.sampler.variants)  # [V] int32
        settings = state.sampler.run_settings("variation")
        backend = state.backend
        levels = self.levels_per_chunk
        source = image.astype(np.float32).copy()  # [H, W, C] in [0, 1]
        run = lambda stop: iter_variations(backend, source, seeds, start, settings, levels, stop)  # noqa: E731
        self._start_run("variation", run, self._records("variation", seeds, start), original=source, first=start)
        self.show_tab.emit("sample")
        return True

    def _start_run(
        self,
        kind: str,
        make_run: Callable[[Callable[[], bool]], Iterator[ChunkDone]],
        records: tuple[ImageRecord, ...],
        original: np.ndarray | None = None,
        mask: np.ndarray | None = None,
        first: int = 0,
    ) -> None:
        state = self.state
        manifest = state.manifest
        assert manifest is not None
        slot = "inpaint" if kind == "inpaint" else "sample"
        previous = state.results.get(slot)
        context = _RunContext(
            kind=kind,
            records=records,
            original=original,
            mask=mask,
            first_level=first,
            num_levels=manifest.num_levels,
            settings=records[0].settings,
            previous=previous if previous is not None and previous.complete else None,
            model_path=state.model_path,
        )
        self._run_context, self._last_preview = context, None
        assert state.backend is not None
        job = RunJob(self._next_job(), state.backend, make_run)
        self._run_job = job
        calls = context.calls_done(manifest.num_levels)  # the whole run
        state.set_timing(
            RunTiming(
                kind=kind,
                batch=len(records),
                num_levels=manifest.num_levels - first,
                calls_total=calls,
                started=time.perf_counter(),
                estimate=state.call_times.estimate(state.model_key, len(records), calls),
            )
        )
        state.set_progress(0, manifest.num_levels - first)
        state.set_busy(kind)
        self._timing_timer.start()
        doing = {"sample": "Sampling", "inpaint": "Inpainting", "variation": "Making variations"}[kind]
        self.status.emit(f"{doing} with {short_label(context.settings.sampler)} ...")
        self._runner.request.emit(job)

    def _result(self, images: object, complete: bool, caption: str = "") -> RunResult:
        context = self._run_context
        assert context is not None
        return RunResult(
            context.kind, np.asarray(images), context.records, context.original, context.mask, complete, caption
        )

    def _current(self, job: int) -> bool:
        """Whether `job` is the run in progress (signals of older runs are ignored)."""
        return self._run_job is not None and job == self._run_job.job_id

    @Slot(int, int, int, int, float)
    def _on_chunk(self, job: int, done: int, chunks: int, reached_level: int, when: float) -> None:
        context, timing = self._run_context, self.state.timing
        if not self._current(job) or context is None or timing is None:
            return
        timing.levels_done = reached_level - context.first_level
        timing.calls_done = context.calls_done(reached_level)
        timing.chunk_time = when
        self.state.set_progress(timing.levels_done, timing.num_levels)
        self.state.timing_changed.emit()

    @Slot(int, object)
    def _on_preview(self, job: int, images: object) -> None:
        context = self._run_context
        if self._current(job) and context is not None:
            self._last_preview = np.asarray(images)
            timing = self.state.timing
            level = timing.levels_done if timing is not None else 0
            total = timing.num_levels if timing is not None else 0
            self.state.set_result(self._result(images, complete=False, caption=f"running: level {level} of {total}"))

    @Slot(int, object)
    def _on_finished(self, job: int, images: object) -> None:
        state, context, timing = self.state, self._run_context, self.state.timing
        if not self._current(job) or context is None:
            return
        seconds = timing.elapsed() if timing is not None else 0.0
        if timing is not None:
            state.call_times.record(state.model_key, timing.batch, timing.calls_total, seconds)
        result = self._result(images, complete=True)
        entry = self._add_history(context, "finished", result.images, context.num_levels - context.first_level, seconds)
        self._end_run()
        state.set_result(replace(result, entry_id=entry.entry_id if entry is not None else ""))
        sampler = state.sampler
        if sampler.seed_mode == "increment":
            state.update_sampler(seed=(sampler.seed + len(result.images)) % (MAX_SEED + 1))
        first, last = result.records[0].seed, result.records[-1].seed
        seeds = f"seed {first}" if first == last else f"seeds {first}\u2013{last}"
        self.status.emit(f"Done in {seconds:.1f} s: {len(result.images)} image(s), {seeds}")
        self.run_finished.emit(result.kind)

    @Slot(int)
    def _on_cancelled(self, job: int) -> None:
        context, timing = self._run_context, self.state.timing
        if not self._current(job) or context is None:
            return
        levels = timing.levels_done if timing is not None else 0
        seconds = timing.elapsed() if timing is not None else 0.0
        self._add_history(context, "cancelled", self._last_preview, levels, seconds)
        self._end_run()
        self.state.set_result(context.previous, context.slot)  # the last finished images come back
        self.status.emit(
            f"Cancelled after {levels} of {context.num_levels - context.first_level} levels"
            + ("; the unfinished images are in the history" if self._last_preview is not None else "")
        )
        self._last_preview = None
        self.run_cancelled.emit(context.kind)

    @Slot(int, str)
    def _on_errored(self, job: int, message: str) -> None:
        if not self._current(job):
            return
        context = self._run_context
        kind = context.kind if context is not None else ""
        self._end_run()
        if context is not None:
            self.state.set_result(context.previous, context.slot)
        self.status.emit("Failed")
        self.error_occurred.emit("Inpainting failed" if kind == "inpaint" else "Sampling failed", message)
        self.run_failed.emit(kind)

    def _end_run(self) -> None:
        self._run_job, self._run_context = None, None
        self._timing_timer.stop()
        self.state.set_busy("")
        self.state.set_progress(0, 0)
        self.state.set_timing(None)

    def cancel(self) -> None:
        """Stop the running job within the current chunk (at once with onnxruntime)."""
        if self._run_job is not None:
            self._run_job.cancel()
            self.status.emit("Cancelling ...")

    # ------------------------------------------------------------------ history

    def _add_history(
        self, context: _RunContext, status: str, images: np.ndarray | None, levels_done: int, seconds: float
    ) -> HistoryEntry | None:
        """Put a finished or cancelled run into the history (its images, settings and seeds)."""
        state = self.state
        backend = state.backend
        record = context.records[0]
        shape = (
            tuple(images.shape[1:])
            if images is not None
            else (backend.files.manifest.image_shape if backend is not None else (1, 1, 1))
        )
        entry = HistoryEntry(
            entry_id=new_entry_id(),
            kind=context.kind,
            status=status,
            created=time.time(),
            model=record.model,
            dataset=record.dataset,
            model_path=context.model_path[:4096],
            runtime=record.runtime,
            image_shape=shape,  # type: ignore[arg-type]
            seeds=tuple(r.seed for r in context.records),
            settings=RunSettings(record.settings, record.start_level),  # the run's sampler and its settings
            levels_done=levels_done,
            num_levels=context.num_levels,
            seconds=seconds,
            has_images=images is not None,
        )
        stored = state.history.add(entry, EntryImages(images, context.original, context.mask))
        if stored is None:
            self.status.emit("These images are too large for the history; save them to keep them")
        state.history_changed.emit()
        if state.history.errors:
            self.status.emit(state.history.errors[-1])
            state.history.errors.clear()
        return stored

    def restore_history(self, entry_id: str) -> bool:
        """Bring back a history entry: its settings into the sampler, its images into their tab.

        Returns:
            False when the entry is gone (reported).
        """
        state = self.state
        entry = state.history.get(entry_id)
        if entry is None:
            self.error_occurred.emit("Not in the history", "That run is no longer in the history.")
            return False
        if state.busy:
            self.error_occurred.emit("Busy", "Wait for the current run to finish, or cancel it.")
            return False
        values: dict[str, object] = {
            "seed": entry.seeds[0],
            "seed_mode": "fixed",
            ("batch_size" if entry.kind == "sample" else "variants"): entry.count,
        }
        try:
            sampler_note = self._restore_sampler(entry.settings.sampler_settings, entry.kind, values)
        except ValueError as error:  # e.g. more calls per level than the open model's ladder allows
            state.update_sampler(**values)
            sampler_note = f"; its sampler settings do not fit the open model ({error})"
        slot = "inpaint" if entry.kind == "inpaint" else "sample"
        images = state.history.images(entry_id)
        when = time.strftime("%H:%M", time.localtime(entry.created))
        if images is None:
            self.error_occurred.emit(
                "Images missing", "The images of this run are gone or damaged; its settings were restored."
            )
        elif images.images is not None:
            caption = (
                f"From the history ({when}): CANCELLED after {entry.levels_done} of {entry.num_levels} levels, unfinished"
                if entry.cancelled
                else f"From the history ({when})"
            )
            state.set_result(
                RunResult(
                    entry.kind,
                    images.images,
                    entry.records(),
                    images.original,
                    images.mask,
                    complete=not entry.cancelled,
                    caption=caption,
                    entry_id=entry_id,
                )
            )
        manifest = state.manifest
        if entry.kind == "inpaint" and images is not None and images.original is not None:
            if manifest is not None and manifest.image_shape == entry.image_shape:
                self._set_picture(picture_from_array(images.original, f"history {when}"))
                if images.mask is not None:
                    state.push_mask(images.mask)
        note = sampler_note
        if entry.model_path and entry.model_path != state.model_path:
            note += f"; made with {entry.model}, Generate uses the open model"
        self.status.emit(f"Restored the run of {when}: seed {entry.seeds[0]} (fixed), {entry.count} image(s){note}")
        self.show_tab.emit(slot)
        return True

    def remove_history(self, entry_id: str) -> None:
        self.state.history.remove(entry_id)
        self.state.history_changed.emit()

    def clear_history(self) -> None:
        self.state.history.clear()
        self.state.history_changed.emit()

    # ------------------------------------------------------------------ actions on one shown image

    def _shown_image(self, slot: str, index: int) -> np.ndarray | None:
        result = self.state.results.get(slot)
        if result is None or not 0 <= index < len(result.images):
            self.error_occurred.emit("No such image", "That image is no longer shown.")
            return None
        return result.images[index]

    def use_seed(self, slot: str, index: int) -> bool:
        """Take one shown image's seed and settings (seed mode Fixed): Generate then makes it first."""
        result = self.state.results.get(slot)
        if result is None or not 0 <= index < len(result.records):
            return False
        record = result.records[index]
        try:
            note = self._restore_sampler(record.settings, record.mode, {"seed": record.seed, "seed_mode": "fixed"})
        except ValueError as error:
            self.error_occurred.emit("Cannot use these settings", str(error))
            return False
        self.status.emit(f"Seed {record.seed} (fixed) and its settings: Generate makes this image first{note}")
        return True

    def _restore_sampler(self, settings: SamplerSettings, kind: str, values: dict[str, object]) -> str:
        """Put a past run's sampler and its settings into the state, with `values` (seed, batch, ...).

        Inpainting-only settings come back only from inpainting runs. A sampler the open
        model does not have is not chosen: only `values` are set, and the returned note
        (for the status bar) says so; otherwise the note is "".

        Raises:
            ValueError: a value does not fit the open model (nothing is changed).
        """
        state = self.state
        fields = {
            name: value
            for name, value in settings.values().items()
            if kind == "inpaint" or not next(s for s in settings.kind.settings if s.name == name).inpainting_only
        }
        if "steps_per_level" in fields:
            fields["steps_per_level"] = min(int(settings.steps_per_level), state.max_steps_per_level)
        if settings.sampler not in state.available_samplers:
            state.update_sampler(**values)
            return (
                f"; it was made with {short_label(settings.sampler)}, which the open model does not have, "
                f"so the sampler stays {short_label(state.sampler.sampler)}"
            )
        state.update_sampler(sampler=settings.sampler, **fields, **values)
        return ""

    def inpaint_this(self, slot: str, index: int) -> bool:
        """Send one shown image to the Inpaint tab as the picture to inpaint."""
        image = self._shown_image(slot, index)
        if image is None:
            return False
        record = self.state.results[slot].records[index]
        self._set_picture(picture_from_array(image, f"seed {record.seed}"))
        self.show_tab.emit("inpaint")
        self.status.emit(f"The image of seed {record.seed} is the picture to inpaint; paint what to fill in")
        return True

    # ------------------------------------------------------------------ files

    def _scale_for(self, image: np.ndarray) -> int:
        return self.state.effective_save_scale(image.shape[0], image.shape[1])

    def save_results(self, slot: str, folder: str | Path) -> list[Path]:
        """Write each image of the shown `slot` result as a PNG with its settings, enlarged as set.

        Returns:
            The files written (empty on error, which is reported).
        """
        result = self.state.results.get(slot)
        if result is None or not result.complete:
            self.error_occurred.emit("Nothing to save", "Generate images first (unfinished images are not saved).")
            return []
        folder = Path(folder)
        written = []
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for image, record in zip(result.images, result.records, strict=True):
                path = free_path(folder / image_file_name(record))
                save_png(path, image, record, self._scale_for(image))
                written.append(path)
        except (OSError, ValueError) as error:
            self.error_occurred.emit("Cannot save", f"Could not write to {folder}: {_os_reason(error)}")
            return written
        self.status.emit(f"Saved {len(written)} PNG(s) to {folder}")
        return written

    def save_image(self, slot: str, index: int, path: str | Path) -> bool:
        """Write one image of the shown `slot` result to `path` with its settings, enlarged as set."""
        result = self.state.results.get(slot)
        if result is None or not 0 <= index < len(result.images):
            self.error_occurred.emit("Nothing to save", "That image is no longer there.")
            return False
        image = result.images[index]
        try:
            save_png(path, image, result.records[index], self._scale_for(image))
        except (OSError, ValueError) as error:
            self.error_occurred.emit("Cannot save", f"Could not write {path}: {_os_reason(error)}")
            return False
        self.status.emit(f"Saved {path}")
        return True

    def save_grid(self, slot: str, path: str | Path) -> bool:
        """Write the shown `slot` result as one grid PNG (1 model pixel of white between images, enlarged as set)."""
        result = self.state.results.get(slot)
        if result is None or not result.complete:
            self.error_occurred.emit("Nothing to save", "Generate images first (unfinished images are not saved).")
            return False
        grid = image_grid(result.images, grid_columns(len(result.images)))  # [gh, gw, C] in [0, 1]
        record = replace(result.records[0], count=len(result.records))
        try:
            save_png(path, grid, record, self._scale_for(result.images[0]))
        except (OSError, ValueError) as error:
            self.error_occurred.emit("Cannot save", f"Could not write {path}: {_os_reason(error)}")
            return False
        self.status.emit(f"Saved the grid of {len(result.images)} images to {path}")
        return True

    def apply_record(self, record: ImageRecord) -> bool:
        """Restore the sampler settings of a PNG record (seed mode Fixed; a grid also restores its batch size)."""
        values: dict[str, object] = {"seed": record.seed, "seed_mode": "fixed"}
        if record.count > 1:
            values["batch_size" if record.mode == "sample" else "variants"] = record.count
        try:
            note = self._restore_sampler(record.settings, record.mode, values)
        except ValueError as error:
            self.error_occurred.emit("Cannot use these settings", f"The picture's settings do not fit here: {error}")
            return False
        manifest = self.state.manifest
        if manifest is not None and manifest.name != record.model:
            note += f" (made with model {record.model!r}, the open model is {manifest.name!r})"
        if record.mode == "variation":
            note += "; it was a variation of another image, so Generate makes a new image with these settings"
        self.status.emit(f"Restored settings: seed {record.seed}, {settings_text(record.settings)}{note}")
        return True

    # ------------------------------------------------------------------ pictures

    def open_picture(self, path: str | Path, purpose: str = "inpaint") -> bool:
        """Load a picture in a worker (shrunk to a working copy), then fit it to the model.

        Args:
            path: a PNG, JPEG or BMP file.
            purpose: "inpaint" (the picture to inpaint) or "show" (a dropped PNG with settings).

        Returns:
            True when loading started; the result arrives as `picture_loaded` or an error.
        """
        if purpose == "inpaint" and self.state.manifest is None:
            self.error_occurred.emit("No model", "Open a model first; the picture is fitted to its size.")
            return False
        if self.state.picture_loading:
            self.error_occurred.emit("Busy", "A picture is still being loaded; wait for it.")
            return False
        self._picture_purpose = purpose
        self.state.set_picture_loading(True)
        self.status.emit(f"Loading {Path(path).name} ...")
        self._picture_job = self._next_job()
        self._pictures.request.emit(self._picture_job, str(path))
        return True

    @Slot(int, object)
    def _on_picture_loaded(self, job: int, picture: object) -> None:
        assert isinstance(picture, LoadedPicture)
        if job != self._picture_job:
            return
        self.state.set_picture_loading(False)
        if self._picture_purpose == "show":
            self._show_dropped(picture)
            return
        if not self._set_picture(picture):
            return
        manifest, fitted = self.state.manifest, self.state.inpaint.fitted
        if manifest is not None and fitted is not None:
            width, height = picture.original_size
            shrunk = f", worked on at {picture.image.width}\u00d7{picture.image.height}" if picture.shrunk else ""
            self.status.emit(
                f"Picture {Path(picture.path).name}: {width}\u00d7{height}{shrunk} \u2192 "
                f"{manifest.width}\u00d7{manifest.height} ({fitted.mode})"
            )
        self.show_tab.emit("inpaint")
        self.picture_loaded.emit()

    @Slot(int, str)
    def _on_picture_failed(self, job: int, message: str) -> None:
        if job != self._picture_job:
            return
        self.state.set_picture_loading(False)
        self.status.emit("Could not open the picture")
        self.error_occurred.emit("Cannot open picture", message)

    def _set_picture(self, picture: LoadedPicture) -> bool:
        """Make `picture` the picture to inpaint, fitted to the model; old inpainting results are cleared."""
        manifest = self.state.manifest
        fitted = None
        if manifest is not None:
            try:
                fitted = fit_picture(
                    picture.image, manifest.image_shape, self.state.inpaint.fit_mode, picture.original_size
                )
            except (PictureError, ValueError, OSError) as error:
                self.error_occurred.emit("Cannot use picture", str(error))
                return False
        if not self.state.busy:
            self.state.set_result(None, "inpaint")  # results of the previous picture are in the history
        self.state.set_picture(picture, fitted)
        return True

    def set_fit_mode(self, mode: str) -> None:
        """Change crop/stretch/pad and refit the current picture."""
        self.state.update_inpaint(fit_mode=mode)
        self._refit_picture()

    def _refit_picture(self) -> None:
        """Fit the loaded picture to the current model's size, channels and fit mode."""
        manifest, picture = self.state.manifest, self.state.inpaint.picture
        if picture is not None and manifest is not None:
            self.state.set_fitted(
                fit_picture(picture.image, manifest.image_shape, self.state.inpaint.fit_mode, picture.original_size)
            )

    def _show_dropped(self, picture: LoadedPicture) -> None:
        """Show a dropped PNG with settings in the Sample tab (at the model's size when it is an enlarged image)."""
        record = self._dropped_record
        if record is None:
            return
        pixels = np.asarray(picture.image, dtype=np.float32) / 255.0  # [h, w] or [h, w, 3] in [0, 1]
        pixels = pixels[:, :, None] if pixels.ndim == 2 else pixels
        manifest = self.state.manifest
        if manifest is not None and record.count == 1 and not picture.shrunk:
            pixels = _reduce_to(pixels, manifest.height, manifest.width)
        self.state.set_result(
            RunResult(
                "sample",
                pixels[None],
                (record,),
                caption=f"Dropped {Path(picture.path).name}: its settings are restored",
            )
        )
        self.status.emit(f"Restored the settings of {Path(picture.path).name}: {record.describe()}")
        self.show_tab.emit("sample")

    def handle_drop(self, paths: list[str], active_tab: str) -> None:
        """Open what was dropped: a model, a PNG with settings, or a picture to inpaint.

        On the Inpaint tab any picture becomes the picture to inpaint; elsewhere a
        PNG written by the app restores its settings (and is shown), and other
        pictures go to Inpaint.
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
                    if self.apply_record(record):
                        self._dropped_record = record
                        self.open_picture(path, purpose="show")
                    return
            self.open_picture(path)
        else:
            self.error_occurred.emit(
                "Cannot open this file",
                f"{path.name} is neither a model (.onnx file, SavedModel or export folder) nor a picture "
                "(PNG, JPEG, BMP).",
            )


def _reduce_to(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """An image enlarged k times (nearest neighbour) back at (height, width); others unchanged."""
    h, w = pixels.shape[:2]
    if h % height or w % width or h // height != w // width:
        return pixels
    step = h // height
    return pixels[step // 2 :: step, step // 2 :: step]


def _os_reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error)


def safe_name(name: str) -> str:
    """A file-name-safe version of a model name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._")[:80] or "model"


def image_file_name(record: ImageRecord) -> str:
    """The file name of a saved image: MODEL_MODE_seedN.png, MODEL_MODE_grid_seedsA-B.png for a grid.

    The viewer's Save and the batch Save use this one name (a second copy of a name is a second place for a bug).
    """
    stem = f"{safe_name(record.model)}_{record.mode}"
    if record.count > 1:
        last = (record.seed + record.count - 1) % (MAX_SEED + 1)
        return f"{stem}_grid_seeds{record.seed}-{last}.png"
    return f"{stem}_seed{record.seed}.png"


def free_path(path: Path) -> Path:
    """`path`, or stem-2, stem-3, ... when taken."""
    candidate, counter = path, 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{counter}{path.suffix}")
        counter += 1
    return candidate
