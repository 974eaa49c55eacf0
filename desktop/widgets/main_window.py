"""The main window: model and sampler on the left, Sample / Inpaint tabs, progress and Cancel below."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop import __version__
from desktop.backend.onnx_backend import available_providers
from desktop.controller import Controller
from desktop.settings import default_settings, load_state, save_state
from desktop.state import AppState
from desktop.widgets.inpaint_panel import PICTURE_FILTER, InpaintPanel
from desktop.widgets.model_panel import ModelPanel
from desktop.widgets.sample_panel import SamplePanel
from desktop.widgets.sampler_panel import SamplerPanel

MODEL_FILTER = "Exported models (*.onnx manifest.json saved_model.pb);;All files (*)"
TAB_NAMES = ("sample", "inpaint")


class MainWindow(QMainWindow):
    """ncsn-desktop's window.

    Args:
        settings: where state persists (default: the user's QSettings); tests pass
            a QSettings on a temporary file.

    Signals:
        error_shown(str, str): an error dialog was opened (title, message).
    """

    error_shown = Signal(str, str)

    def __init__(self, settings: QSettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings if settings is not None else default_settings()
        self.state = AppState(self)
        self.controller = Controller(self.state, self)
        self.last_error: tuple[str, str] | None = None
        self.error_boxes: list[QMessageBox] = []
        load_state(self.settings, self.state)

        self.model_panel = ModelPanel(self.state, self.controller, available_providers())
        self.sampler_panel = SamplerPanel(self.state)
        self.sample_panel = SamplePanel(self.state, self.controller)
        self.inpaint_panel = InpaintPanel(self.state, self.controller)
        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(self.model_panel)
        left_layout.addWidget(self.sampler_panel)
        left_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(left.minimumSizeHint().width() + scroll.verticalScrollBar().sizeHint().width() + 4)
        self.tabs = QTabWidget()
        self.tabs.addTab(self.sample_panel, "Sample")
        self.tabs.addTab(self.inpaint_panel, "Inpaint")
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(scroll)
        self.splitter.addWidget(self.tabs)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([scroll.minimumWidth(), 1000])
        self.splitter.setCollapsible(0, False)
        self.setCentralWidget(self.splitter)

        self.status_label = QLabel("Open an exported model: File > Open model, or drop it on this window.")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(260)
        self.progress.setFormat("level %v / %m")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the run (Esc)")
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self._build_menus()

        self.setAcceptDrops(True)
        self.cancel_button.clicked.connect(self.controller.cancel)
        self.controller.error_occurred.connect(self.show_error)
        self.controller.status.connect(self.status_label.setText)
        self.controller.picture_requested.connect(lambda: self.tabs.setCurrentWidget(self.inpaint_panel))
        self.controller.model_loaded.connect(self._remember)
        self.state.model_changed.connect(self._update_title)
        self.state.model_changed.connect(self._busy_changed)
        self.state.busy_changed.connect(self._busy_changed)
        self.state.loading_changed.connect(self._busy_changed)
        self.state.progress_changed.connect(self._progress_changed)
        self.state.recent_changed.connect(self._rebuild_recent_menu)
        self._update_title()
        self._busy_changed()
        self._rebuild_recent_menu()
        self._restore_geometry()

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
        self._action(file_menu, "&Save results...", self.save_dialog, QKeySequence.StandardKey.Save)
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
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda checked=False, p=path: self.controller.open_model(p))
        self.recent_menu.setEnabled(bool(self.state.recent_models))

    # ------------------------------------------------------------------ actions

    def current_tab(self) -> str:
        return TAB_NAMES[self.tabs.currentIndex()]

    def run_current(self) -> None:
        if self.current_tab() == "sample":
            self.controller.generate()
        else:
            self.controller.inpaint()

    def open_model_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open exported model", "", MODEL_FILTER)
        if path:
            self.controller.open_model(path)

    def open_model_folder_dialog(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open export or SavedModel folder")
        if path:
            self.controller.open_model(path)

    def open_picture_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open picture", "", PICTURE_FILTER)
        if path and self.controller.open_picture(path):
            self.tabs.setCurrentWidget(self.inpaint_panel)

    def save_dialog(self) -> None:
        if self.current_tab() == "sample":
            self.sample_panel.save_dialog()
        else:
            self.inpaint_panel.save_dialog()

    def copy_images(self) -> None:
        if self.current_tab() == "sample":
            self.sample_panel.copy()
        else:
            self.inpaint_panel.copy()

    def show_about(self) -> None:
        QMessageBox.about(
            self,
            "About ncsn-desktop",
            f"ncsn-desktop {__version__}\n\nSample and inpaint with Noise Conditional Score Networks "
            "(Song & Ermon, 2019) exported by ncsn-tf.",
        )

    def show_error(self, title: str, message: str) -> None:
        """A non-blocking warning dialog; the window stays usable."""
        self.last_error = (title, message)
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.finished.connect(lambda _result, b=box: self.error_boxes.remove(b) if b in self.error_boxes else None)
        self.error_boxes.append(box)
        box.open()
        self.error_shown.emit(title, message)

    # ------------------------------------------------------------------ binding

    def _update_title(self) -> None:
        manifest = self.state.manifest
        self.setWindowTitle(f"ncsn-desktop - {manifest.name}" if manifest else "ncsn-desktop")

    def _busy_changed(self, *args: object) -> None:
        state = self.state
        running = bool(state.busy)
        self.progress.setVisible(running)
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

    def _remember(self) -> None:
        save_state(self.settings, self.state)

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

    def save_settings(self) -> None:
        save_state(self.settings, self.state)
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/splitter", self.splitter.saveState())
        self.settings.setValue("window/tab", self.current_tab())
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        self.save_settings()
        self.controller.shutdown()
        super().closeEvent(event)
