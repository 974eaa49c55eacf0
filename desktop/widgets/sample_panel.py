"""The Sample tab: batch size, Generate, the result grid (live preview), Save and Copy."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from desktop.backend.base import MAX_BATCH
from desktop.controller import Controller
from desktop.imaging import grid_columns, image_grid
from desktop.state import AppState, RunResult
from desktop.widgets.image_grid import ImageGrid
from desktop.widgets.image_viewer import ImageViewer
from desktop.widgets.qt_images import to_qimage

CLIPBOARD_SIDE = 512  # copied grids are enlarged (nearest) to about this size


def copy_images(result: RunResult, columns: int | None = None) -> None:
    """Put a result's images, tiled and enlarged nearest-neighbour, on the clipboard."""
    grid = image_grid(result.images, columns or grid_columns(len(result.images)))  # [gh, gw, C] in [0, 1]
    qimage = to_qimage(grid)
    zoom = max(1, CLIPBOARD_SIDE // max(qimage.width(), qimage.height()))
    QGuiApplication.clipboard().setImage(
        qimage.scaled(qimage.width() * zoom, qimage.height() * zoom, mode=Qt.TransformationMode.FastTransformation)
    )


def open_viewer(parent: QWidget, controller: Controller, result: RunResult, index: int, title: str) -> ImageViewer:
    """Show image `index` of `result` enlarged, with Save wired to the controller."""
    record = result.records[index]
    viewer = ImageViewer(result.images[index], title, record.describe(), parent)

    def save() -> None:
        path, _ = QFileDialog.getSaveFileName(
            viewer, "Save image", f"{record.model}_seed{record.seed}.png", "PNG (*.png)"
        )
        if path:
            controller.save_image(result.kind, index, path)

    viewer.save_requested.connect(save)
    viewer.show()
    return viewer


class SamplePanel(QWidget):
    """Generate a batch, watch it denoise level by level, enlarge, save, copy."""

    def __init__(self, state: AppState, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.controller = state, controller
        self.viewer: ImageViewer | None = None
        self.batch = QSpinBox()
        self.batch.setRange(1, MAX_BATCH)
        self.batch.setToolTip("How many images to generate (seeds seed, seed+1, ...)")
        self.generate_button = QPushButton("Generate")
        self.generate_button.setDefault(True)
        self.generate_button.setMinimumWidth(110)
        self.generate_button.setToolTip("Run annealed Langevin sampling (Ctrl+Return)")
        self.save_button = QPushButton("Save PNGs...")
        self.save_button.setToolTip(
            "Write each image as PNG; the settings go into the PNG so dropping it back restores them"
        )
        self.copy_button = QPushButton("Copy")
        self.copy_button.setToolTip("Copy the grid to the clipboard")
        self.grid = ImageGrid("Open a model (File > Open, or drop it here), then press Generate.")

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Images"))
        bar.addWidget(self.batch)
        bar.addWidget(self.generate_button)
        bar.addStretch(1)
        bar.addWidget(self.save_button)
        bar.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.grid, 1)

        self.batch.valueChanged.connect(self._batch_changed)
        self.generate_button.clicked.connect(controller.generate)
        self.save_button.clicked.connect(self.save_dialog)
        self.copy_button.clicked.connect(self.copy)
        self.grid.image_clicked.connect(self.enlarge)
        state.sampler_changed.connect(self.refresh)
        state.busy_changed.connect(self.refresh)
        state.model_changed.connect(self.refresh)
        state.loading_changed.connect(self.refresh)
        state.results_changed.connect(self._results_changed)
        self.refresh()

    def _batch_changed(self, value: int) -> None:
        try:
            self.state.update_sampler(batch_size=value)
        except ValueError:
            self.refresh()

    def refresh(self) -> None:
        state = self.state
        self.batch.blockSignals(True)
        self.batch.setValue(state.sampler.batch_size)
        self.batch.blockSignals(False)
        idle = not state.busy and not state.loading
        self.batch.setEnabled(idle)
        self.generate_button.setEnabled(idle and state.backend is not None)
        result = state.results.get("sample")
        done = result is not None and result.complete and idle
        self.save_button.setEnabled(done)
        self.copy_button.setEnabled(result is not None)

    def _results_changed(self, kind: str) -> None:
        if kind != "sample":
            return
        result = self.state.results.get("sample")
        if result is None:
            self.grid.set_images(None)
        else:
            self.grid.set_images(result.images, [f"seed {r.seed}" for r in result.records], dimmed=not result.complete)
        self.refresh()

    def enlarge(self, index: int) -> None:
        result = self.state.results.get("sample")
        if result is None or not 0 <= index < len(result.images):
            return
        self.viewer = open_viewer(self, self.controller, result, index, f"Sample, seed {result.records[index].seed}")

    def save_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save PNGs into folder")
        if folder:
            self.controller.save_results("sample", folder)

    def copy(self) -> None:
        result = self.state.results.get("sample")
        if result is not None:
            copy_images(result)
            self.controller.status.emit("Copied the grid to the clipboard")
