"""The main window: model and sampler on the left, Sample / Inpaint tabs, the history strip, progress and Cancel below."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence, QMoveEvent, QResizeEvent
from PySide6.QtWidgets import (
    QApplication,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop import __version__
from desktop.backend.onnx_backend import available_providers
from desktop.controller import Controller
from desktop.estimate import format_duration
from desktop.history import History
from desktop.settings import SettingsStore, default_settings, history_folder_for, load_state
from desktop.state import AppState
from desktop.widgets.file_dialogs import FileDialogs
from desktop.widgets.history_strip import HistoryStrip
from desktop.widgets.inpaint_panel import PICTURE_FILTER, InpaintPanel
from desktop.widgets.model_panel import RUNTIME_LABELS, ModelPanel
from desktop.widgets.sample_panel import SamplePanel
from desktop.widgets.sampler_panel import SamplerPanel
from desktop.widgets.text import menu_text, message_box, plain_label, set_tooltip, shorten

MODEL_FILTER = "Exported models (*.onnx manifest.json saved_model.pb);;All files (*)"
TAB_NAMES = ("sample", "inpaint")
READ_ONLY_NOTE = "Settings read-only"
READ_ONLY_TIP = (
    "Another ncsn-desktop window uses the same settings and history. This window reads them but does not change "
    "them: its settings and runs are kept for this session only. Close the other window, or start this one with "
    "--settings-file to keep its own."
)


class MainWindow(QMainWindow):
    """ncsn-desktop's window.

    Args:
        settings: where state persists (default: the user's QSettings); tests pass
            a QSettings on a temporary file.
        history_folder: where the run history is kept (default: beside a settings
            file given explicitly, else the user's data folder).

    Signals:
        error_shown(str, str): an error dialog was opened (title, message).
        question_shown(str): a question dialog was opened (its text).
    """

    error_shown = Signal(str, str)
    question_shown = Signal(str)

    def __init__(
        self,
        settings: QSettings | None = None,
        history_folder: str | Path | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        settings = settings if settings is not None else default_settings()
        self.state = AppState(self)
        self.store = SettingsStore(settings, self.state, self)
        self.settings = settings
        folder = Path(history_folder) if history_folder is not None else history_folder_for(settings)
        self.state.history = History(folder, writable=self.store.writable)
        history_note = self.state.history.load()
        self.controller = Controller(self.state, self)
        self.dialogs = FileDialogs(self.store)
        self.last_error: tuple[str, str] | None = None
        self.error_boxes: list[QMessageBox] = []
        self.question: QMessageBox | None = None
        self._focus_before_run: QWidget | None = None
        # Before any panel disables its run button (which moves Qt's focus on): remember where the focus was.
        self.state.busy_changed.connect(self._remember_focus)
        load_state(settings, self.state)

        self.model_panel = ModelPanel(self.state, self.controller, available_providers())
        self.sampler_panel = SamplerPanel(self.state)
        self.sample_panel = SamplePanel(self.state, self.controller, self.dialogs)
        self.inpaint_panel = InpaintPanel(self.state, self.controller, self.dialogs)
        self.history_strip = HistoryStrip(self.state, self.controller)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 2, 0)
        left_layout.addWidget(self.model_panel)
        left_layout.addWidget(self.sampler_panel)
        left_layout.addStretch(1)
        self.side = QScrollArea()
        self.side.setWidget(left)
        self.side.setWidgetResizable(True)
        self.side.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.side.setMinimumWidth(left.minimumSizeHint().width() + self.side.verticalScrollBar().sizeHint().width() + 4)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.sample_panel, "Sample")
        self.tabs.addTab(self.inpaint_panel, "Inpaint")
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.side)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([self.side.minimumWidth(), 1000])
        self.splitter.setChildrenCollapsible(False)
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(4, 4, 4, 0)
        central_layout.addWidget(self.splitter, 1)
        central_layout.addWidget(self.history_strip)
        self.setCentralWidget(central)

        self.status_label = plain_label("Open an exported model: File > Open model, or drop it on this window.")
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.read_only_label = plain_label(READ_ONLY_NOTE)
        self.read_only_label.setToolTip(READ_ONLY_TIP)
        self.read_only_label.setStyleSheet("color: #c07000")
        self.read_only_label.setVisible(not self.store.writable)
        self.timing_label = plain_label()
        self.timing_label.setToolTip(
            "Network calls done of the run's total; time so far; time left, from this run's pace (before the first "
            "level ends: from earlier runs of this model)"
        )
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(150)
        self.progress.setFormat("level %v / %m")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the run (Esc); the unfinished images go to the history")
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.read_only_label)
        self.statusBar().addPermanentWidget(self.timing_label)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self._build_menus()

        self.setAcceptDrops(True)
        self.cancel_button.clicked.connect(self.controller.cancel)
        self.controller.error_occurred.connect(self.show_error)
        self.controller.status.connect(self.show_status)
        self.controller.show_tab.connect(self.show_tab)
        self.controller.runtime_missing.connect(self.ask_other_runtime)
        self.state.model_changed.connect(self._update_title)
        self.state.model_changed.connect(self._busy_changed)
        self.state.busy_changed.connect(self._busy_changed)
        self.state.loading_changed.connect(self._busy_changed)
        self.state.progress_changed.connect(self._progress_changed)
        self.state.timing_changed.connect(self._timing_changed)
        self.state.recent_changed.connect(self._rebuild_recent_menu)
        self.tabs.currentChanged.connect(self.store.schedule)
        self.store.on_write(self._write_window_settings)
        self._update_title()
        self._busy_changed()
        self._rebuild_recent_menu()
        self._restore_geometry()
        if not self.store.writable:
            self.show_status("Another ncsn-desktop window owns the settings: this one will not change them")
        elif history_note:
            self.show_status(history_note)

    # ------------------------------------------------------------------ menus

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_action = self._action(
            file_menu, "&Open model...", self.open_model_dialog, QKeySequence.StandardKey.Open
        )
        self.open_folder_action = self._action(file_menu, "Open model &folder...", self.open_model_folder_dialog)
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addSeparator()
        self._action(file_menu, "Open &picture to inpaint...", self.open_picture_dialog)
        self._action(file_menu, "&Save images...", self.save_dialog, QKeySequence.StandardKey.Save)
        self._action(file_menu, "Save &grid...", self.save_grid_dialog)
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        edit_menu = self.menuBar().addMenu("&Edit")
        self._action(edit_menu, "&Copy images", self.copy_images, QKeySequence.StandardKey.Copy)
        self._action(edit_menu, "&Undo mask", self.state.undo_mask, QKeySequence.StandardKey.Undo)
        self._action(edit_menu, "&Redo mask", self.state.redo_mask, QKeySequence.StandardKey.Redo)
        run_menu = self.menuBar().addMenu("&Run")
        self.run_action = self._action(run_menu, "&Generate / Inpaint", self.run_current, QKeySequence("Ctrl+Return"))
        self._action(run_menu, "&Cancel", self.controller.cancel, QKeySequence(Qt.Key.Key_Escape))
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "&About", self.show_about)

    def _action(
        self,
        menu: QMenu,
        text: str,
        slot: Callable[[], object],
        shortcut: QKeySequence | QKeySequence.StandardKey | None = None,
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(shortcut)
        action.triggered.connect(lambda checked=False: slot())
        menu.addAction(action)
        return action

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.state.recent_models:
            action = self.recent_menu.addAction(menu_text(path))
            action.triggered.connect(lambda checked=False, p=path: self.controller.open_model(p))
        self.recent_menu.setEnabled(bool(self.state.recent_models))

    # ------------------------------------------------------------------ actions

    def current_tab(self) -> str:
        return TAB_NAMES[self.tabs.currentIndex()]

    def show_tab(self, name: str) -> None:
        if name in TAB_NAMES:
            self.tabs.setCurrentIndex(TAB_NAMES.index(name))

    def current_results(self):  # noqa: ANN201 (a ResultsView)
        return self.sample_panel.results if self.current_tab() == "sample" else self.inpaint_panel.results

    def run_current(self) -> None:
        if self.current_tab() == "sample":
            self.controller.generate()
        else:
            self.controller.inpaint()

    def open_model_dialog(self) -> None:
        path = self.dialogs.open_file(self, "model", "Open exported model", MODEL_FILTER)
        if path:
            self.controller.open_model(path)

    def open_model_folder_dialog(self) -> None:
        path = self.dialogs.folder(self, "model_folder", "Open export or SavedModel folder")
        if path:
            self.controller.open_model(path)

    def open_picture_dialog(self) -> None:
        path = self.dialogs.open_file(self, "picture", "Open picture", PICTURE_FILTER)
        if path:
            self.controller.open_picture(path)

    def save_dialog(self) -> None:
        self.current_results().save_dialog()

    def save_grid_dialog(self) -> None:
        self.current_results().save_grid_dialog()

    def copy_images(self) -> None:
        self.current_results().copy()

    def show_about(self) -> None:
        box = message_box(
            self,
            QMessageBox.Icon.Information,
            "About ncsn-desktop",
            f"ncsn-desktop {__version__}\n\nSample and inpaint with Noise Conditional Score Networks "
            "(Song & Ermon, 2019) exported by ncsn-tf.",
        )
        box.open()

    def show_status(self, text: str) -> None:
        self.status_label.setText(text)
        set_tooltip(self.status_label, text)

    def show_error(self, title: str, message: str) -> None:
        """A non-blocking warning dialog (plain text); the window stays usable."""
        self.last_error = (title, message)
        box = message_box(self, QMessageBox.Icon.Warning, title, message)
        box.finished.connect(lambda _result, b=box: self.error_boxes.remove(b) if b in self.error_boxes else None)
        self.error_boxes.append(box)
        box.open()
        self.error_shown.emit(title, message)

    def ask_other_runtime(self, path: str, message: str, wanted: str, available: tuple[str, ...]) -> None:
        """The export lacks the wanted runtime's files: offer the one it has (non-modal; nothing opens silently)."""
        if not available:
            self.show_error("Cannot open model", f"{message}, nor files for any other runtime; re-export the model.")
            return
        other = available[0]
        slower = " (slower to start)" if other == "tensorflow" else ""
        text = f"{message}. Open it with {RUNTIME_LABELS.get(other, other)}{slower}?"
        box = message_box(
            self,
            QMessageBox.Icon.Question,
            "Open with another runtime?",
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        )
        box.button(QMessageBox.StandardButton.Yes).setText(f"Open with {RUNTIME_LABELS.get(other, other)}")
        box.button(QMessageBox.StandardButton.Yes).clicked.connect(
            lambda: self.controller.open_model(path, runtime=other, remember=False)
        )
        box.button(QMessageBox.StandardButton.No).setText("Cancel")
        self.question = box
        box.open()
        self.question_shown.emit(text)

    # ------------------------------------------------------------------ binding

    def _update_title(self) -> None:
        manifest = self.state.manifest
        self.setWindowTitle(f"ncsn-desktop - {shorten(manifest.name, 80)}" if manifest else "ncsn-desktop")

    def _remember_focus(self, kind: str) -> None:
        if kind and self._focus_before_run is None:
            self._focus_before_run = QApplication.focusWidget()

    def _busy_changed(self, *args: object) -> None:
        state = self.state
        running = bool(state.busy)
        if not running and self._focus_before_run is not None:
            # Qt moves the focus off the disabled run button to the next field; give it back so Enter runs again.
            widget, self._focus_before_run = self._focus_before_run, None
            if (
                widget in (self.sample_panel.generate_button, self.inpaint_panel.inpaint_button)
                or widget is self.cancel_button
            ):
                target = widget if widget is not self.cancel_button else self.sample_panel.generate_button
                target.setFocus()
        self.progress.setVisible(running)
        self.timing_label.setVisible(running)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)
        idle = not running and not state.loading
        self.open_action.setEnabled(idle)
        self.open_folder_action.setEnabled(idle)
        self.recent_menu.setEnabled(idle and bool(state.recent_models))
        self.run_action.setEnabled(idle and state.backend is not None)

    def _progress_changed(self, done: int, total: int) -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)

    def _timing_changed(self) -> None:
        timing = self.state.timing
        if timing is None:
            self.timing_label.setText("")
            return
        remaining = timing.remaining()
        left = "" if remaining is None else f", about {format_duration(remaining)} left"
        self.timing_label.setText(
            f"{timing.calls_done:,} / {timing.calls_total:,} network calls, {format_duration(timing.elapsed())}{left}"
        )

    # ------------------------------------------------------------------ drag and drop

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        paths = [url.toLocalFile() for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            # Leave the drop handler first (some platforms block the source app until it returns).
            QTimer.singleShot(0, lambda: self.controller.handle_drop(paths, self.current_tab()))

    # ------------------------------------------------------------------ persistence

    def _restore_geometry(self) -> None:
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            try:
                self.restoreGeometry(geometry)
            except TypeError:
                pass
        else:
            self.resize(1180, 760)
        splitter = self.settings.value("window/splitter")
        if splitter is not None:
            try:
                self.splitter.restoreState(splitter)
            except TypeError:
                pass
        tab = self.settings.value("window/tab")
        if tab in TAB_NAMES:
            self.tabs.setCurrentIndex(TAB_NAMES.index(tab))

    def _write_window_settings(self, settings: QSettings) -> None:
        settings.setValue("window/geometry", self.saveGeometry())
        settings.setValue("window/splitter", self.splitter.saveState())
        settings.setValue("window/tab", self.current_tab())

    def save_settings(self) -> None:
        """Write the settings now (they are also written shortly after every change)."""
        self.store.write()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(event)
        self.store.schedule()

    def moveEvent(self, event: QMoveEvent) -> None:  # noqa: N802
        super().moveEvent(event)
        self.store.schedule()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.controller.shutdown()
        self.store.close()
        super().closeEvent(event)
