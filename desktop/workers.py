"""Long work off the GUI thread: opening a model, loading a picture, chunked sampling/inpainting.

Three workers live for the whole session, each in its own QThread (napari's
worker pattern: `yielded / finished / errored`): `ModelLoader`, `PictureLoader`
and `Runner`. The controller sends each job as a queued signal and gets the
results back as queued signals tagged with the job's number, so a late signal
of a job that was cancelled or replaced is recognised and ignored. Workers
never touch widgets or the state.

Why long-lived workers: PySide6 6.11 keeps one reference to None for every
signal connection it makes, so a worker object (and its connections) per job
would grow None's reference count with every run of a long session; these
connections are made once.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QThread, Signal, Slot

from desktop.backend import InferenceBackend, ModelError, RunInterrupted, locate_model, open_backend
from desktop.backend.errors import RuntimeMissingError
from desktop.backend.runs import ChunkDone
from desktop.imaging import PictureError, load_picture
from desktop.loaded_model import LoadedModel, prepare_model

RUNTIME_NAMES = {"onnxruntime": "ONNX", "tensorflow": "SavedModel (TensorFlow)"}


def _describe(error: BaseException) -> str:
    """A one-paragraph message for an error dialog."""
    message = str(error) or type(error).__name__
    if isinstance(error, (ModelError, ValueError, RuntimeError, OSError)):
        return message
    return f"{type(error).__name__}: {message}"


def open_checked(path: str, runtime: str, provider: str | None, probe: bool = True) -> LoadedModel:
    """Locate, open and check a model with exactly `runtime` (never another one silently).

    Raises:
        RuntimeMissingError: the export has no files for `runtime`.
        ModelError: anything else wrong with the model.
    """
    files = locate_model(path)
    available = tuple(files.runtimes())
    if runtime not in available:
        name = files.manifest.name[:80]
        raise RuntimeMissingError(
            f"{name} has no {RUNTIME_NAMES.get(runtime, runtime)} files", wanted=runtime, available=available
        )
    backend = open_backend(files, runtime=runtime, provider=provider)
    try:
        return prepare_model(backend, path, probe=probe)
    except BaseException:
        backend.close()
        raise


@dataclass
class RunJob:
    """One sampling / inpainting run for the `Runner`.

    Attributes:
        job_id: tags every signal of this run.
        backend: the back end the generator uses (`interrupt()` on cancel).
        make_run: builds the chunk generator; gets a `should_stop()` callable.
        stop: set (from any thread) to stop the run.
    """

    job_id: int
    backend: InferenceBackend
    make_run: Callable[[Callable[[], bool]], Iterator[ChunkDone]]
    stop: threading.Event = field(default_factory=threading.Event)

    def cancel(self) -> None:
        """Ask the run to stop (thread-safe): aborts the running call where the runtime can."""
        self.stop.set()
        self.backend.interrupt()


class ModelLoader(QObject):
    """Opens and checks models (locate, safety checks, sessions, a short probe run).

    Signals:
        request(int, str, str, object): job id, path, runtime, provider (send to load).
        loaded(int, object): job id, the `LoadedModel`.
        runtime_missing(int, str, str, object): job id, message, wanted runtime, available runtimes.
        errored(int, str): job id, why the model could not be opened.
    """

    request = Signal(int, str, str, object)
    loaded = Signal(int, object)
    runtime_missing = Signal(int, str, str, object)
    errored = Signal(int, str)

    def __init__(self) -> None:
        super().__init__()
        self.request.connect(self._load)

    @Slot(int, str, str, object)
    def _load(self, job_id: int, path: str, runtime: str, provider: object) -> None:
        try:
            loaded = open_checked(path, runtime, provider if isinstance(provider, str) else None)
        except RuntimeMissingError as error:
            self.runtime_missing.emit(job_id, str(error), error.wanted, tuple(error.available))
        except Exception as error:  # every failure becomes a dialog, never a crash
            if not isinstance(error, ModelError):
                traceback.print_exc()
            self.errored.emit(job_id, _describe(error))
        else:
            self.loaded.emit(job_id, loaded)


class PictureLoader(QObject):
    """Loads (and shrinks) pictures to inpaint.

    Signals:
        request(int, str): job id, path (send to load).
        loaded(int, object): job id, the `desktop.imaging.LoadedPicture`.
        errored(int, str): job id, why it could not be used.
    """

    request = Signal(int, str)
    loaded = Signal(int, object)
    errored = Signal(int, str)

    def __init__(self) -> None:
        super().__init__()
        self.request.connect(self._load)

    @Slot(int, str)
    def _load(self, job_id: int, path: str) -> None:
        try:
            picture = load_picture(path)
        except PictureError as error:
            self.errored.emit(job_id, str(error))
        except Exception as error:  # an unexpected decoder failure: a dialog, not a crash
            traceback.print_exc()
            self.errored.emit(job_id, _describe(error))
        else:
            self.loaded.emit(job_id, picture)


class Runner(QObject):
    """Runs chunked sampling/inpainting generators, one `RunJob` at a time.

    Signals:
        request(object): a `RunJob` (send to run).
        chunk_done(int, int, int, int, float): job id, chunks done, chunks in the run, the level the
            chain has reached (exclusive end of the chunk), `time.perf_counter()` then.
        preview(int, object): job id, [B, H, W, C] float32 in [0, 1], the images after a chunk.
        finished(int, object): job id, the final [B, H, W, C] images.
        cancelled(int): job id; the run stopped on request.
        errored(int, str): job id, why the run failed.
    """

    request = Signal(object)
    chunk_done = Signal(int, int, int, int, float)
    preview = Signal(int, object)
    finished = Signal(int, object)
    cancelled = Signal(int)
    errored = Signal(int, str)

    def __init__(self) -> None:
        super().__init__()
        self.request.connect(self._run)

    @Slot(object)
    def _run(self, job: object) -> None:
        assert isinstance(job, RunJob)
        last: ChunkDone | None = None
        # A cancel of an earlier run that no call consumed must not stop this one; a cancel of this
        # run from now on either sets job.stop (seen before each chunk) or stops the call it meets.
        job.backend.clear_interrupt()
        try:
            for chunk in job.make_run(job.stop.is_set):
                last = chunk
                self.chunk_done.emit(
                    job.job_id, chunk.chunk_index + 1, chunk.num_chunks, chunk.last_level, time.perf_counter()
                )
                if chunk.is_last:
                    break
                self.preview.emit(job.job_id, chunk.images)
                if job.stop.is_set():
                    raise RunInterrupted("cancelled")
        except RunInterrupted:
            self.cancelled.emit(job.job_id)
        except Exception as error:  # a runtime error during sampling -> dialog, app stays usable
            if job.stop.is_set():
                self.cancelled.emit(job.job_id)
            else:
                traceback.print_exc()
                self.errored.emit(job.job_id, _describe(error))
        else:
            if last is None or not last.is_last:
                self.cancelled.emit(job.job_id)
            else:
                self.finished.emit(job.job_id, last.images)


class WorkerThread:
    """A worker QObject living in its own QThread until `stop()`."""

    def __init__(self, worker: QObject) -> None:
        self.worker = worker
        self.thread = QThread()
        worker.moveToThread(self.thread)
        self.thread.start()

    def stop(self, timeout_ms: int) -> bool:
        """Let the current job end, then end the thread; False if it did not end in time."""
        self.thread.quit()
        return bool(self.thread.wait(timeout_ms))
