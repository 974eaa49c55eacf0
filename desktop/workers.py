"""Long work off the GUI thread: opening a model, loading a picture, chunked sampling/inpainting.

Each worker is a QObject moved to its own QThread (napari's worker pattern:
`yielded / finished / errored`). Signals cross threads queued, so slots in the
window always run on the GUI thread. Workers never touch widgets or the state.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Iterator

from PySide6.QtCore import QObject, QThread, Signal, Slot

from desktop.backend import InferenceBackend, ModelError, RunInterrupted, locate_model, open_backend
from desktop.backend.errors import RuntimeMissingError
from desktop.backend.runs import ChunkDone
from desktop.imaging import PictureError, load_picture
from desktop.loaded_model import prepare_model

RUNTIME_NAMES = {"onnxruntime": "ONNX", "tensorflow": "SavedModel (TensorFlow)"}


def _describe(error: BaseException) -> str:
    """A one-paragraph message for an error dialog."""
    message = str(error) or type(error).__name__
    if isinstance(error, (ModelError, ValueError, RuntimeError, OSError)):
        return message
    return f"{type(error).__name__}: {message}"


def open_checked(path: str, runtime: str, provider: str | None, probe: bool = True) -> object:
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


class LoadWorker(QObject):
    """Opens and checks a model (locate, safety checks, sessions, a short probe run) in a worker thread.

    Signals:
        loaded(object): the `desktop.loaded_model.LoadedModel`.
        runtime_missing(str, str, object): message, wanted runtime, tuple of available runtimes.
        errored(str): why it could not be opened.
        done(): emitted last, whatever happened.
    """

    loaded = Signal(object)
    runtime_missing = Signal(str, str, object)
    errored = Signal(str)
    done = Signal()

    def __init__(self, path: str, runtime: str, provider: str | None) -> None:
        super().__init__()
        self.path, self.runtime, self.provider = path, runtime, provider

    @Slot()
    def run(self) -> None:
        try:
            loaded = open_checked(self.path, self.runtime, self.provider)
        except RuntimeMissingError as error:
            self.runtime_missing.emit(str(error), error.wanted, tuple(error.available))
        except Exception as error:  # every failure becomes a dialog, never a crash
            if not isinstance(error, ModelError):
                traceback.print_exc()
            self.errored.emit(_describe(error))
        else:
            self.loaded.emit(loaded)
        finally:
            self.done.emit()


class PictureWorker(QObject):
    """Loads (and shrinks) a picture to inpaint in a worker thread.

    Signals:
        loaded(object): the `desktop.imaging.LoadedPicture`.
        errored(str): why it could not be used.
        done(): emitted last.
    """

    loaded = Signal(object)
    errored = Signal(str)
    done = Signal()

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    @Slot()
    def run(self) -> None:
        try:
            picture = load_picture(self.path)
        except PictureError as error:
            self.errored.emit(str(error))
        except Exception as error:  # an unexpected decoder failure: a dialog, not a crash
            traceback.print_exc()
            self.errored.emit(_describe(error))
        else:
            self.loaded.emit(picture)
        finally:
            self.done.emit()


class RunWorker(QObject):
    """Runs a chunked sampling/inpainting generator in a worker thread.

    Args:
        backend: the back end the generator uses (`interrupt()` on cancel).
        make_run: builds the chunk generator; gets a `should_stop()` callable.

    Signals:
        chunk_done(int, int, int, float): chunks done, chunks in the run, the level the
            chain has reached (exclusive end of the chunk), `time.perf_counter()` then.
        preview(object): [B, H, W, C] float32 in [0, 1], the images after a chunk.
        finished(object): the final [B, H, W, C] images.
        cancelled(): the run stopped on request.
        errored(str): the run failed; the message says why.
        done(): emitted last, whatever happened.
    """

    chunk_done = Signal(int, int, int, float)
    preview = Signal(object)
    finished = Signal(object)
    cancelled = Signal()
    errored = Signal(str)
    done = Signal()

    def __init__(
        self, backend: InferenceBackend, make_run: Callable[[Callable[[], bool]], Iterator[ChunkDone]]
    ) -> None:
        super().__init__()
        self._backend = backend
        self._make_run = make_run
        self._stop = threading.Event()

    def cancel(self) -> None:
        """Ask the run to stop (thread-safe): aborts the running call where the runtime can."""
        self._stop.set()
        self._backend.interrupt()

    @Slot()
    def run(self) -> None:
        last: ChunkDone | None = None
        try:
            for chunk in self._make_run(self._stop.is_set):
                last = chunk
                self.chunk_done.emit(chunk.chunk_index + 1, chunk.num_chunks, chunk.last_level, time.perf_counter())
                if chunk.is_last:
                    break
                self.preview.emit(chunk.images)
                if self._stop.is_set():
                    raise RunInterrupted("cancelled")
        except RunInterrupted:
            self.cancelled.emit()
        except Exception as error:  # a runtime error during sampling -> dialog, app stays usable
            if self._stop.is_set():
                self.cancelled.emit()
            else:
                traceback.print_exc()
                self.errored.emit(_describe(error))
        else:
            if last is None or not last.is_last:
                self.cancelled.emit()
            else:
                self.finished.emit(last.images)
        finally:
            self.done.emit()


def start_in_thread(worker: LoadWorker | RunWorker | PictureWorker) -> QThread:
    """Move `worker` to a new QThread and start it; the thread quits after `done`.

    Returns:
        The started thread. The caller keeps it (and the worker) referenced until
        `thread.isFinished()`, then drops both (see `Controller._prune`).
    """
    thread = QThread()
    worker.moveToThread(thread)
    thread.started.connect(worker.run)
    worker.done.connect(thread.quit)
    thread.start()
    return thread
