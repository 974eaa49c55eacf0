"""Helpers shared by the desktop app's tests (pytest-qt, offscreen): open, generate, drop, wait for dialogs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

STEPS = 3  # Langevin steps per level in tests: enough to exercise the loop, cheap
LOAD_TIMEOUT_MS = 120_000
RUN_TIMEOUT_MS = 120_000


def make_window(qtbot, settings_file: str | Path, size: tuple[int, int] = (1180, 760)):
    """A shown main window keeping its settings (and history, beside them) in `settings_file`."""
    from PySide6.QtCore import QSettings

    from desktop.widgets.main_window import MainWindow

    window = MainWindow(settings=QSettings(str(settings_file), QSettings.Format.IniFormat))
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    window.controller.levels_per_chunk = 1
    return window


def left():
    from PySide6.QtCore import Qt

    return Qt.MouseButton.LeftButton


def open_model(qtbot, window, path, runtime=None) -> None:
    with qtbot.waitSignal(window.controller.model_loaded, timeout=LOAD_TIMEOUT_MS):
        assert window.controller.open_model(path, runtime=runtime)


def generate(qtbot, window, **sampler) -> np.ndarray:
    """Press Generate with these sampler settings and wait for the images ([B, H, W, C])."""
    window.state.update_sampler(**sampler)
    with qtbot.waitSignal(window.controller.run_finished, timeout=RUN_TIMEOUT_MS):
        qtbot.mouseClick(window.sample_panel.generate_button, left())
    return window.state.results["sample"].images.copy()


def start_and_cancel(qtbot, window, **sampler) -> None:
    """Start a long run, wait until it has begun, press Cancel and wait for the cancellation."""
    window.state.update_sampler(**sampler)
    qtbot.mouseClick(window.sample_panel.generate_button, left())
    assert window.state.busy == "sample"
    qtbot.wait(200)
    with qtbot.waitSignal(window.controller.run_cancelled, timeout=30_000):
        qtbot.mouseClick(window.cancel_button, left())


def drop_files(qtbot, window, paths) -> None:
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(
        QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier
    )
    window.dropEvent(event)
    qtbot.wait(50)  # the drop is handled on the next event-loop turn


def expect_error(qtbot, window, action, words: str) -> tuple[str, str]:
    """Run `action`, wait for an error dialog whose title or message contains `words`."""
    with qtbot.waitSignal(window.error_shown, timeout=60_000) as blocker:
        action()
    title, message = blocker.args
    assert words.lower() in (title + " " + message).lower(), (title, message)
    return title, message
