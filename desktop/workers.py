"""Long work off the GUI thread: loading a model and chunked sampling/inpainting.

Each worker is a QObject moved to its own QThread (napari's worker pattern:
`yielded / finished / errored`). Signals cross threads queued, so slots in the
window always run on the GUI thread. Workers never touch widgets or the state.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable, Iterator

from PySide6.QtCore import QObject, QThread, Signal, Slot

from desktop.backend import InferenceBackend, ModelError, RunInterrupted, open_backend
from desktop.backend.runs import ChunkDone


def _describe(error: BaseException) -> str:
    """A one-paragraph message for an error dialog."""
    message = str(error) or type(error).__name__
    if isinstance(error, (ModelError, ValueError, RuntimeError, OSError)):
        return message
    return f"{type(error).__name__}: {message}"


class LoadWorker(QObject):
    """Opens a model (locate, safety checks, sessions) in a worker thread.

    Signals:
        loaded(object): the `InferenceBackend`.
        errored(str): why it could not be opened.
        done(): emitted last, whatever happened.
    """

    loaded = Signal(object)
    errored = Signal(str)
    done = Signal()

    def __init__(self, path: str, runtime: str, provider: str | None) -> None:
        super().__init__()
        self.path, self.runtime, self.provider = path, runtime, provider

    @Slot()
    def run(self) -> None:
        try:
            backend = open_backend(self.path, runtime=self.runtime, provider=self.provider)
        except Exception as error:  # every failure becomes a dialog, never a crash
            if not isinstance(error, ModelError):
                traceback.print_exc()
            self.errored.emit(_describe(error))
        else:
            self.loaded.emit(backend)
        finally:
            self.done.emit()


class RunWorker(QObject):
    """Runs a chunked sampling/inpainting generator in a worker thread.

    Args:
        backend: the back end the generator uses (`interrupt()` on cancel).
        make_run: builds the chunk generator; gets a `should_stop()` callable.

    Signals:
        progress(int, int): chunks done, chunks in the run; once per chunk.
        preview(object): [B, H, W, C] float32 in [0, 1], the images after a chunk.
        finished(object): the final [B, H, W, C] images.
        cancelled(): the run stopped on request.
        errored(str): the run failed; the message says why.
        done(): emitted last, whatever happened.
    """

    progress = Signal(int, int)
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
                self.progress.emit(chunk.chunk_index + 1, chunk.num_chunks)
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


def start_in_thread(worker: LoadWorker | RunWorker) -> QThread:
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
