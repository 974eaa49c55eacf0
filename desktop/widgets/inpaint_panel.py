"""The Inpaint tab: picture (crop/resize shown), mask brush and presets, variants, results beside the original."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.controller import Controller
from desktop.masks import PRESETS, full_mask, overlay_mask, preset_mask
from desktop.state import MAX_VARIANTS, AppState
from desktop.widgets.image_grid import ImageGrid
from desktop.widgets.image_viewer import ImageViewer
from desktop.widgets.mask_canvas import MaskCanvas, PictureView
from desktop.widgets.sample_panel import copy_images, open_viewer

FIT_LABELS = {"crop": "Crop to fit", "stretch": "Stretch", "pad": "Pad (letterbox)"}
PICTURE_FILTER = "Pictures (*.png *.jpg *.jpeg *.bmp)"
PICTURE_HINT = "PNG, JPEG or BMP (or drop one here); converted to the model's size and channels"


class InpaintPanel(QWidget):
    """Open a picture, paint what to fill in, run variants, compare with the original, save."""

    def __init__(self, state: AppState, controller: Controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.controller = state, controller
        self.viewer: ImageViewer | None = None

        # Picture: open, fit mode, the source with the used region outlined.
        self.open_button = QPushButton("Open picture...")
        self.fit_mode = QComboBox()
        for mode, label in FIT_LABELS.items():
            self.fit_mode.addItem(label, mode)
        self.fit_mode.setToolTip("How the picture is made the model's size: centre crop, squash, or pad")
        self.picture_view = PictureView()
        self.picture_info = QLabel(PICTURE_HINT)
        self.picture_info.setWordWrap(True)
        picture_box = QGroupBox("Picture")
        picture_layout = QVBoxLayout(picture_box)
        row = QHBoxLayout()
        row.addWidget(self.open_button)
        row.addWidget(self.fit_mode, 1)
        picture_layout.addLayout(row)
        picture_layout.addWidget(self.picture_view, 1)
        picture_layout.addWidget(self.picture_info)

        # Mask: canvas and tools.
        self.canvas = MaskCanvas(state)
        self.brush_button = QToolButton()
        self.brush_button.setText("Brush")
        self.brush_button.setToolTip("Paint pixels to fill in")
        self.eraser_button = QToolButton()
        self.eraser_button.setText("Eraser")
        self.eraser_button.setToolTip("Keep painted pixels after all")
        tools = QButtonGroup(self)
        for button in (self.brush_button, self.eraser_button):
            button.setCheckable(True)
            tools.addButton(button)
        self.brush_size = QSlider(Qt.Orientation.Horizontal)
        self.brush_size.setToolTip("Brush diameter in model pixels")
        self.brush_size_label = QLabel()
        self.brush_size_label.setMinimumWidth(56)
        self.undo_button = QPushButton("Undo")
        self.redo_button = QPushButton("Redo")
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Keep every pixel (an empty mask)")
        self.invert_button = QPushButton("Invert")
        self.preset = QComboBox()
        self.preset.addItem("Preset...", "")
        for name in PRESETS:
            self.preset.addItem(name.capitalize(), name)
        self.preset.setToolTip("Fill in a whole region")
        mask_box = QGroupBox("Mask (tinted = fill in)")
        mask_layout = QVBoxLayout(mask_box)
        mask_layout.addWidget(self.canvas, 1)
        tool_row = QHBoxLayout()
        tool_row.addWidget(self.brush_button)
        tool_row.addWidget(self.eraser_button)
        tool_row.addWidget(QLabel("Size"))
        tool_row.addWidget(self.brush_size, 1)
        tool_row.addWidget(self.brush_size_label)
        mask_layout.addLayout(tool_row)
        edit_row = QHBoxLayout()
        for widget in (self.undo_button, self.redo_button, self.clear_button, self.invert_button):
            edit_row.addWidget(widget)
        mask_layout.addLayout(edit_row)
        mask_layout.addWidget(self.preset)

        # Run and results.
        self.variants = QSpinBox()
        self.variants.setRange(1, MAX_VARIANTS)
        self.variants.setToolTip("How many different fillings to make (seeds seed, seed+1, ...)")
        self.inpaint_button = QPushButton("Inpaint")
        self.inpaint_button.setMinimumWidth(110)
        self.save_button = QPushButton("Save PNGs...")
        self.copy_button = QPushButton("Copy")
        self.results = ImageGrid("The original and the inpainted variants appear here.")
        results_box = QGroupBox("Results")
        results_layout = QVBoxLayout(results_box)
        run_row = QHBoxLayout()
        run_row.addWidget(QLabel("Variants"))
        run_row.addWidget(self.variants)
        run_row.addWidget(self.inpaint_button)
        run_row.addStretch(1)
        results_layout.addLayout(run_row)
        results_layout.addWidget(self.results, 1)
        file_row = QHBoxLayout()
        file_row.addStretch(1)
        file_row.addWidget(self.save_button)
        file_row.addWidget(self.copy_button)
        results_layout.addLayout(file_row)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(picture_box, 2)
        left_layout.addWidget(mask_box, 5)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(results_box)
        self.splitter.setStretchFactor(0, 2)
        self.splitter.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.splitter)

        self.open_button.clicked.connect(self.open_dialog)
        self.fit_mode.activated.connect(lambda index: controller.set_fit_mode(self.fit_mode.itemData(index)))
        self.brush_button.clicked.connect(lambda: state.update_inpaint(erasing=False))
        self.eraser_button.clicked.connect(lambda: state.update_inpaint(erasing=True))
        self.brush_size.valueChanged.connect(lambda value: state.update_inpaint(brush_size=value))
        self.undo_button.clicked.connect(state.undo_mask)
        self.redo_button.clicked.connect(state.redo_mask)
        self.clear_button.clicked.connect(self.clear_mask)
        self.invert_button.clicked.connect(self.invert_mask)
        self.preset.activated.connect(self._preset_chosen)
        self.variants.valueChanged.connect(self._variants_changed)
        self.inpaint_button.clicked.connect(controller.inpaint)
        self.save_button.clicked.connect(self.save_dialog)
        self.copy_button.clicked.connect(self.copy)
        self.results.image_clicked.connect(self.enlarge)
        state.inpaint_changed.connect(self.refresh)
        state.sampler_changed.connect(self.refresh)
        state.model_changed.connect(self._model_changed)
        state.busy_changed.connect(self.refresh)
        state.loading_changed.connect(self.refresh)
        state.results_changed.connect(self._results_changed)
        self._model_changed()

    # ------------------------------------------------------------------ mask editing

    def apply_preset(self, name: str) -> None:
        manifest = self.state.manifest
        if manifest is not None:
            seed = self.state.sampler.seed
            self.state.push_mask(preset_mask(name, manifest.height, manifest.width, seed=seed))

    def _preset_chosen(self, index: int) -> None:
        name = self.preset.itemData(index)
        self.preset.setCurrentIndex(0)
        if name:
            self.apply_preset(name)

    def clear_mask(self) -> None:
        manifest = self.state.manifest
        if manifest is not None:
            self.state.push_mask(full_mask(manifest.height, manifest.width))

    def invert_mask(self) -> None:
        mask = self.state.mask
        if mask is not None:
            self.state.push_mask(1.0 - mask)

    # ------------------------------------------------------------------ binding

    def _model_changed(self) -> None:
        manifest = self.state.manifest
        side = max(manifest.height, manifest.width) if manifest is not None else 32
        self.brush_size.blockSignals(True)
        self.brush_size.setRange(1, max(1, side // 2))
        self.brush_size.blockSignals(False)
        if manifest is not None and self.state.inpaint.brush_size > side // 2:
            self.state.update_inpaint(brush_size=max(1, side // 2))
        self.refresh()

    def refresh(self) -> None:
        state = self.state
        inpaint = state.inpaint
        idle = not state.busy and not state.loading
        has_model = state.manifest is not None
        self.fit_mode.setCurrentIndex(self.fit_mode.findData(inpaint.fit_mode))
        self.brush_button.setChecked(not inpaint.erasing)
        self.eraser_button.setChecked(inpaint.erasing)
        self.brush_size.blockSignals(True)
        self.brush_size.setValue(inpaint.brush_size)
        self.brush_size.blockSignals(False)
        self.brush_size_label.setText(f"{inpaint.brush_size} px")
        self.variants.blockSignals(True)
        self.variants.setValue(state.sampler.variants)
        self.variants.blockSignals(False)
        history = inpaint.history
        self.undo_button.setEnabled(idle and history is not None and history.can_undo)
        self.redo_button.setEnabled(idle and history is not None and history.can_redo)
        for widget in (self.clear_button, self.invert_button, self.preset, self.canvas):
            widget.setEnabled(idle and has_model)
        for widget in (self.open_button, self.fit_mode, self.variants):
            widget.setEnabled(idle and has_model)
        self.inpaint_button.setEnabled(idle and has_model and inpaint.fitted is not None)
        result = state.results.get("inpaint")
        self.save_button.setEnabled(idle and result is not None and result.complete)
        self.copy_button.setEnabled(result is not None)
        fitted = inpaint.fitted
        if fitted is not None and state.manifest is not None:
            width, height = fitted.source_size
            self.picture_info.setText(
                f"{Path(inpaint.picture_path).name}: {width} \u00d7 {height} \u2192 "
                f"{state.manifest.width} \u00d7 {state.manifest.height} ({FIT_LABELS[fitted.mode].lower()}, "
                f"{'grayscale' if state.manifest.channels == 1 else 'RGB'}); dashed box = region used"
            )
            self.picture_view.set_picture(self.controller.source_picture, fitted.box)
        else:
            self.picture_info.setText(PICTURE_HINT)
            self.picture_view.set_picture(None, None)

    def _variants_changed(self, value: int) -> None:
        try:
            self.state.update_sampler(variants=value)
        except ValueError:
            self.refresh()

    def _results_changed(self, kind: str) -> None:
        if kind != "inpaint":
            return
        result = self.state.results.get("inpaint")
        if result is None or result.original is None or result.mask is None:
            self.results.set_images(None)
        else:
            original = overlay_mask(result.original, result.mask)  # [H, W, 3] in [0, 1]
            images = np.concatenate(
                [original[None], _as_rgb(result.images) if result.images.shape[-1] != 3 else result.images]
            )  # [1 + V, H, W, 3]
            captions = ["original"] + [f"seed {r.seed}" for r in result.records]
            self.results.set_images(images, captions, dimmed=not result.complete)
        self.refresh()

    # ------------------------------------------------------------------ files

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open picture", "", PICTURE_FILTER)
        if path:
            self.controller.open_picture(path)

    def save_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save inpainted PNGs into folder")
        if folder:
            self.controller.save_results("inpaint", folder)

    def copy(self) -> None:
        result = self.state.results.get("inpaint")
        if result is not None:
            copy_images(result)
            self.controller.status.emit("Copied the variants to the clipboard")

    def enlarge(self, index: int) -> None:
        result = self.state.results.get("inpaint")
        if result is None:
            return
        if index == 0:  # the original
            if result.original is not None:
                details = "The picture at the model's size"
                self.viewer = ImageViewer(result.original, "Original", details, self, can_save=False)
                self.viewer.show()
            return
        self.viewer = open_viewer(
            self, self.controller, result, index - 1, f"Inpainted, seed {result.records[index - 1].seed}"
        )


def _as_rgb(images: np.ndarray) -> np.ndarray:
    """[B, H, W, 1] -> [B, H, W, 3] (grey), so originals with a coloured mask tint tile with results."""
    return np.repeat(images, 3, axis=-1)
