"""One tab's results: caption, grid, right-click actions, the enlarged viewer, Save / Save grid / Copy."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QHBoxLayout, QMenu, QSpinBox, QToolButton, QVBoxLayout, QWidget

from desktop.controller import Controller, image_file_name
from desktop.imaging import MAX_SAVE_SCALE, MIN_SAVED_SIDE, grid_columns, image_grid
from desktop.masks import overlay_mask
from desktop.state import AppState, RunResult
from desktop.widgets.file_dialogs import FileDialogs
from desktop.widgets.image_grid import ImageGrid
from desktop.widgets.image_viewer import ImageViewer
from desktop.widgets.qt_images import to_qimage
from desktop.widgets.text import plain_label

CLIPBOARD_SIDE = 512  # copied grids are enlarged (nearest) to about this size
PNG_FILTER = "PNG (*.png)"
SOURCE_CAPTIONS = {"inpaint": "original", "variation": "source"}
VARIATIONS_TIP = (
    "Re-noise this image to the middle noise level and run the rest of the sampler again, once per seed "
    "(as many as 'Variants'): the overall shape stays, the details are drawn anew. "
    "(Neighbouring seeds would give unrelated images: every image's seed is independent.)"
)


def shown_items(result: RunResult) -> tuple[np.ndarray, list[str], int]:
    """What a grid shows for a result: the original/source first (if any), then the images.

    Returns:
        (images [N, H, W, C] in [0, 1], one caption each, index of the first result image).
    """
    captions = [f"seed {record.seed}" for record in result.records]
    if result.original is None:
        return result.images, captions, 0
    original = result.original if result.mask is None else overlay_mask(result.original, result.mask)  # [H, W, C']
    images = result.images
    if original.shape[-1] != images.shape[-1]:  # a grey model's inpainting: the mask tint is RGB
        images = np.repeat(images, 3, axis=-1)
    return np.concatenate([original[None], images]), [SOURCE_CAPTIONS.get(result.kind, "source"), *captions], 1


def copy_images(result: RunResult) -> None:
    """Put a result's images, tiled and enlarged nearest-neighbour, on the clipboard."""
    grid = image_grid(result.images, grid_columns(len(result.images)))  # [gh, gw, C] in [0, 1]
    qimage = to_qimage(grid)
    zoom = max(1, CLIPBOARD_SIDE // max(qimage.width(), qimage.height()))
    QGuiApplication.clipboard().setImage(
        qimage.scaled(qimage.width() * zoom, qimage.height() * zoom, mode=Qt.TransformationMode.FastTransformation)
    )


class SaveScaleBox(QSpinBox):
    """The enlargement of saved PNGs (nearest neighbour), bound to `AppState.save_scale`; 0 shows "auto"."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setRange(0, MAX_SAVE_SCALE)
        self.setSpecialValueText("at auto size")
        self.setPrefix("at ")
        self.setSuffix("\u00d7 size")
        self.setToolTip(
            "Saved PNGs are enlarged this many times, each pixel a block of equal pixels (no blur); "
            f"auto: enough for at least {MIN_SAVED_SIDE} pixels on the shorter side"
        )
        self.valueChanged.connect(self._changed)
        state.output_changed.connect(self.refresh)
        self.refresh()

    def _changed(self, value: int) -> None:
        self.state.set_save_scale(value)

    def refresh(self) -> None:
        self.blockSignals(True)
        self.setValue(self.state.save_scale)
        self.blockSignals(False)


class ResultsView(QWidget):
    """The results of one slot ("sample" or "inpaint") with everything one can do with them."""

    def __init__(
        self,
        slot: str,
        state: AppState,
        controller: Controller,
        dialogs: FileDialogs,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.slot, self.state, self.controller, self.dialogs = slot, state, controller, dialogs
        self.viewer: ImageViewer | None = None
        self.menu: QMenu | None = None
        self.caption = plain_label(wrap=True)
        self.caption.setVisible(False)
        self.grid = ImageGrid()
        self.grid.set_hint("Click an image to enlarge it; right-click for its seed, variations and more")
        self.scale = SaveScaleBox(state)
        self.save_menu = QMenu(self)
        self.save_images_action = self.save_menu.addAction("Save each image into a folder...", self.save_dialog)
        self.save_grid_action = self.save_menu.addAction("Save the grid as one PNG...", self.save_grid_dialog)
        self.save_button = QToolButton()
        self.save_button.setText("Save...")
        self.save_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.save_button.setMenu(self.save_menu)
        self.save_button.clicked.connect(self.save_dialog)
        self.save_button.setToolTip(
            "Write each image as a PNG into a folder (the arrow: all as one grid PNG). The settings go into the PNG, "
            "so dropping it back on the window restores them"
        )
        self.copy_button = QToolButton()
        self.copy_button.setText("Copy")
        self.copy_button.setToolTip("Copy the images, tiled, to the clipboard (Ctrl+C)")
        files = QHBoxLayout()
        files.addWidget(self.save_button)
        files.addWidget(self.scale)
        files.addStretch(1)
        files.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.caption)
        layout.addWidget(self.grid, 1)
        layout.addLayout(files)

        self.copy_button.clicked.connect(self.copy)
        self.grid.image_clicked.connect(self.enlarge)
        self.grid.context_requested.connect(self.show_menu)
        state.results_changed.connect(self._results_changed)
        state.busy_changed.connect(self.refresh_buttons)
        state.loading_changed.connect(self.refresh_buttons)
        self._results_changed(slot)

    # ------------------------------------------------------------------ binding

    @property
    def result(self) -> RunResult | None:
        return self.state.results.get(self.slot)

    def _results_changed(self, slot: str) -> None:
        if slot != self.slot:
            return
        result = self.result
        if result is None:
            self.grid.set_images(None)
            self.caption.setVisible(False)
        else:
            images, captions, _ = shown_items(result)
            self.grid.set_images(images, captions, dimmed=not result.complete)
            self.caption.setText(result.caption)
            self.caption.setVisible(bool(result.caption))
        self.refresh_buttons()

    def refresh_buttons(self, *args: object) -> None:
        result = self.result
        idle = not self.state.busy and not self.state.loading
        done = result is not None and result.complete and idle
        self.save_button.setEnabled(done)
        self.save_images_action.setEnabled(done)
        self.save_grid_action.setEnabled(done)
        self.copy_button.setEnabled(result is not None)

    def _image_index(self, grid_index: int) -> int:
        """Grid cell -> index into the result's images (-1 for the original/source cell)."""
        result = self.result
        if result is None:
            return -1
        return grid_index - shown_items(result)[2]

    # ------------------------------------------------------------------ actions

    def enlarge(self, grid_index: int) -> None:
        """Open the viewer on the clicked cell (Previous / Next step through the whole grid)."""
        result = self.result
        if result is None:
            return
        images, _, offset = shown_items(result)
        titles, details, can_save = [], [], []
        if offset:
            label = SOURCE_CAPTIONS.get(result.kind, "source")
            titles.append(label.capitalize())
            details.append("The picture at the model's size" if result.kind == "inpaint" else "The image varied")
            can_save.append(False)
        for record in result.records:
            titles.append(f"{record.mode.capitalize()}, seed {record.seed}")
            details.append(record.describe() + ("" if result.complete else " (unfinished)"))
            can_save.append(result.complete)
        self.viewer = ImageViewer(images, titles, details, grid_index, self, can_save)
        self.viewer.save_requested.connect(lambda index: self.save_one_dialog(index - offset))
        self.viewer.show()

    def show_menu(self, grid_index: int, position: QPoint) -> None:
        """Right-click on a cell: enlarge, use its seed, variations, inpaint it, save it."""
        result = self.result
        index = self._image_index(grid_index)
        if result is None or index < 0:
            return
        record = result.records[index]
        idle = not self.state.busy and not self.state.loading and self.state.backend is not None
        menu = QMenu(self)
        menu.addAction("Enlarge", lambda: self.enlarge(grid_index))
        seed = menu.addAction(
            f"Use seed {record.seed} and its settings", lambda: self.controller.use_seed(self.slot, index)
        )
        seed.setToolTip("Seed mode becomes Fixed, so Generate makes this image first")
        seed.setEnabled(not self.state.busy)
        variations = menu.addAction(
            f"Variations ({self.state.sampler.variants})", lambda: self.controller.variations(self.slot, index)
        )
        variations.setToolTip(VARIATIONS_TIP)
        variations.setEnabled(idle and result.complete)
        menu.addAction("Inpaint this", lambda: self.controller.inpaint_this(self.slot, index)).setEnabled(
            not self.state.busy and self.state.backend is not None
        )
        menu.addSeparator()
        menu.addAction("Save this image...", lambda: self.save_one_dialog(index)).setEnabled(result.complete)
        menu.setToolTipsVisible(True)
        self.menu = menu
        menu.popup(position)

    def save_one_dialog(self, index: int) -> None:
        result = self.result
        if result is None or not 0 <= index < len(result.records):
            return
        name = image_file_name(result.records[index])
        path = self.dialogs.save_file(self, "save_image", "Save image", name, PNG_FILTER)
        if path:
            self.controller.save_image(self.slot, index, path)

    def save_dialog(self) -> None:
        folder = self.dialogs.folder(self, "save_images", "Save the images as PNGs into folder")
        if folder:
            self.controller.save_results(self.slot, folder)

    def save_grid_dialog(self) -> None:
        result = self.result
        if result is None:
            return
        name = image_file_name(replace(result.records[0], count=len(result.records)))
        path = self.dialogs.save_file(self, "save_grid", "Save the grid as one PNG", name, PNG_FILTER)
        if path:
            self.controller.save_grid(self.slot, path)

    def copy(self) -> None:
        result = self.result
        if result is not None:
            copy_images(result)
            self.controller.status.emit("Copied the images to the clipboard")
