"""The Inpaint tab: picture (crop shown), mask brush and presets, variants, results beside the original."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.controller import Controller
from desktop.imaging import MAX_DECODE_PIXELS, WORKING_SIDE
from desktop.masks import PRESETS, full_mask, preset_mask
from desktop.samplers import SETTING_LABELS, SETTING_TIPS
from desktop.state import MAX_VARIANTS, AppState
from desktop.widgets.file_dialogs import FileDialogs
from desktop.widgets.mask_canvas import MaskCanvas, PictureView
from desktop.widgets.results import ResultsView
from desktop.widgets.sample_panel import estimate_text
from desktop.widgets.text import plain_label, shorten

FIT_LABELS = {"crop": "Crop to fit", "stretch": "Stretch", "pad": "Pad (letterbox)"}
PICTURE_FILTER = "Pictures (*.png *.jpg *.jpeg *.bmp)"
MAX_RESAMPLE_STEPS = 100  # the spin box's top (RePaint uses 10; each repeat costs the level's calls again)
PICTURE_HINT = "Open or drop a PNG, JPEG or BMP picture; it is made the model's size and channels."


class InpaintPanel(QWidget):
    """Open a picture, paint what to fill in, run variants, compare with the original, save."""

    def __init__(
        self, state: AppState, controller: Controller, dialogs: FileDialogs, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.state, self.controller, self.dialogs = state, controller, dialogs

        # Picture: open, fit mode, the source with the used region outlined, a busy bar while loading.
        self.open_button = QPushButton("Open picture...")
        self.open_button.setToolTip(
            f"PNG, JPEG or BMP up to {MAX_DECODE_PIXELS // 1_000_000} megapixels; big pictures are shrunk to "
            f"{WORKING_SIDE} pixels while loading"
        )
        self.fit_mode = QComboBox()
        for mode, label in FIT_LABELS.items():
            self.fit_mode.addItem(label, mode)
        self.fit_mode.setToolTip("How the picture is made the model's size: centre crop, squash, or pad")
        self.picture_view = PictureView()
        self.picture_info = plain_label(PICTURE_HINT, wrap=True)
        self.loading_bar = QProgressBar()
        self.loading_bar.setRange(0, 0)  # busy indicator
        self.loading_bar.setFormat("Loading the picture ...")
        self.loading_bar.setTextVisible(True)
        self.loading_bar.setVisible(False)

        # Mask: canvas and tools.
        self.canvas = MaskCanvas(state)
        self.brush_button = QToolButton()
        self.brush_button.setText("Brush")
        self.brush_button.setToolTip("Paint pixels to fill in (left mouse button)")
        self.eraser_button = QToolButton()
        self.eraser_button.setText("Eraser")
        self.eraser_button.setToolTip("Keep painted pixels after all (or paint with the right mouse button)")
        tools = QButtonGroup(self)
        for button in (self.brush_button, self.eraser_button):
            button.setCheckable(True)
            tools.addButton(button)
        self.brush_size = QSlider(Qt.Orientation.Horizontal)
        self.brush_size.setToolTip("Brush diameter in model pixels")
        self.brush_size_label = plain_label()
        self.brush_size_label.setToolTip("Brush diameter in model pixels")
        self.undo_button = QToolButton()
        self.undo_button.setText("Undo")
        self.redo_button = QToolButton()
        self.redo_button.setText("Redo")
        self.clear_button = QToolButton()
        self.clear_button.setText("Clear")
        self.clear_button.setToolTip("Keep every pixel (an empty mask)")
        self.invert_button = QToolButton()
        self.invert_button.setText("Invert")
        self.invert_button.setToolTip("Fill in what is kept and keep what is filled in")
        self.preset = QComboBox()
        self.preset.addItem("Preset...", "")
        for name in PRESETS:
            self.preset.addItem(name.capitalize(), name)
        self.preset.setToolTip("Fill in a whole region")

        mask_box = QGroupBox("Picture and mask")
        mask_box.setToolTip("Tinted pixels are filled in by the model; the others are kept")
        mask_layout = QVBoxLayout(mask_box)
        open_row = QHBoxLayout()
        open_row.addWidget(self.open_button)
        open_row.addWidget(self.fit_mode, 1)
        mask_layout.addLayout(open_row)
        info_row = QHBoxLayout()
        info_row.addWidget(self.picture_view)
        info_column = QVBoxLayout()
        info_column.addWidget(self.picture_info, 1)
        info_column.addWidget(self.loading_bar)
        info_row.addLayout(info_column, 1)
        mask_layout.addLayout(info_row)
        mask_layout.addWidget(self.canvas, 1)
        tool_grid = QGridLayout()
        tool_grid.addWidget(self.brush_button, 0, 0)
        tool_grid.addWidget(self.eraser_button, 0, 1)
        tool_grid.addWidget(self.brush_size, 0, 2, 1, 2)
        tool_grid.addWidget(self.undo_button, 1, 0)
        tool_grid.addWidget(self.redo_button, 1, 1)
        tool_grid.addWidget(self.clear_button, 1, 2)
        tool_grid.addWidget(self.invert_button, 1, 3)
        tool_grid.addWidget(self.preset, 2, 0, 1, 3)
        tool_grid.addWidget(self.brush_size_label, 2, 3)
        tool_grid.setColumnStretch(2, 1)
        tool_grid.setColumnStretch(3, 1)
        mask_layout.addLayout(tool_grid)

        # Run and results.
        self.variants = QSpinBox()
        self.variants.setRange(1, MAX_VARIANTS)
        self.variants.setToolTip("How many different fillings (or variations) to make: seeds seed, seed+1, ...")
        # RePaint's resampling: a setting of the samplers that have it (predictor-corrector), inpainting only.
        self.resample_label = QLabel(SETTING_LABELS["resample_steps"])
        self.resample_steps = QSpinBox()
        self.resample_steps.setRange(0, MAX_RESAMPLE_STEPS)
        for widget in (self.resample_label, self.resample_steps):
            widget.setToolTip(SETTING_TIPS["resample_steps"])
        self.inpaint_button = QPushButton("Inpaint")
        self.inpaint_button.setMinimumWidth(90)
        self.inpaint_button.setToolTip("Fill in the tinted pixels (Ctrl+Return)")
        self.estimate = plain_label(wrap=True)
        self.results = ResultsView("inpaint", state, controller, dialogs)
        results_box = QGroupBox("Results")
        results_layout = QVBoxLayout(results_box)
        run_row = QHBoxLayout()
        run_row.addWidget(QLabel("Variants"))
        run_row.addWidget(self.variants)
        run_row.addWidget(self.inpaint_button)
        run_row.addStretch(1)
        results_layout.addLayout(run_row)
        resample_row = QHBoxLayout()  # its own row: the run row is as wide as the results box allows at 800 x 600
        resample_row.addWidget(self.resample_label)
        resample_row.addWidget(self.resample_steps)
        resample_row.addStretch(1)
        results_layout.addLayout(resample_row)
        results_layout.addWidget(self.estimate)
        results_layout.addWidget(self.results, 1)

        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(mask_box)
        self.splitter.addWidget(results_box)
        self.splitter.setStretchFactor(0, 1)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setChildrenCollapsible(False)
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
        self.resample_steps.valueChanged.connect(self._resample_changed)
        self.inpaint_button.clicked.connect(controller.inpaint)
        state.inpaint_changed.connect(self.refresh)
        state.mask_changed.connect(self.refresh_undo)
        state.picture_changed.connect(self.refresh_picture)
        state.picture_loading_changed.connect(self.refresh)
        state.sampler_changed.connect(self.refresh)
        state.model_changed.connect(self._model_changed)
        state.busy_changed.connect(self.refresh)
        state.loading_changed.connect(self.refresh)
        state.results_changed.connect(self.refresh)
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
        if manifest is not None and self.state.inpaint.brush_size > max(1, side // 2):
            self.state.update_inpaint(brush_size=max(1, side // 2))
        self.refresh_picture()
        self.refresh()

    def refresh(self, *args: object) -> None:
        """Controls and texts (the picture preview is redrawn only when the picture changes)."""
        state = self.state
        inpaint = state.inpaint
        idle = not state.busy and not state.loading
        has_model = state.manifest is not None
        self.fit_mode.setCurrentIndex(self.fit_mode.findData(inpaint.fit_mode))
        self.brush_button.setChecked(not inpaint.erasing)
        self.eraser_button.setChecked(inpaint.erasing)
        if self.brush_size.value() != inpaint.brush_size:
            self.brush_size.blockSignals(True)
            self.brush_size.setValue(inpaint.brush_size)
            self.brush_size.blockSignals(False)
        self.brush_size_label.setText(f"brush {inpaint.brush_size} px")
        if self.variants.value() != state.sampler.variants:
            self.variants.blockSignals(True)
            self.variants.setValue(state.sampler.variants)
            self.variants.blockSignals(False)
        resampling = any(s.name == "resample_steps" for s in state.sampler.settings().kind.settings)
        self.resample_label.setVisible(resampling)
        self.resample_steps.setVisible(resampling)
        if resampling and self.resample_steps.value() != state.sampler.resample_steps:
            self.resample_steps.blockSignals(True)
            self.resample_steps.setValue(state.sampler.resample_steps)
            self.resample_steps.blockSignals(False)
        self.refresh_undo()
        for widget in (
            self.clear_button,
            self.invert_button,
            self.preset,
            self.canvas,
            self.variants,
            self.resample_steps,
        ):
            widget.setEnabled(idle and has_model)
        picture_idle = idle and has_model and not state.picture_loading
        self.open_button.setEnabled(picture_idle)
        self.fit_mode.setEnabled(picture_idle)
        self.loading_bar.setVisible(state.picture_loading)
        self.inpaint_button.setEnabled(idle and has_model and inpaint.fitted is not None)
        if not has_model:
            placeholder = "Open a model first; then a picture to inpaint."
        elif inpaint.fitted is None:
            placeholder = "Open or drop a picture, paint what to fill in, then press Inpaint."
        else:
            placeholder = "Paint what to fill in (tinted), then press Inpaint."
        self.results.grid.set_placeholder(placeholder)
        self.estimate.setText(estimate_text(state, "inpaint") if has_model else "")

    def refresh_undo(self) -> None:
        """Undo / Redo availability (the only controls a brush stroke changes)."""
        state = self.state
        idle = not state.busy and not state.loading
        history = state.inpaint.history
        self.undo_button.setEnabled(idle and history is not None and history.can_undo)
        self.redo_button.setEnabled(idle and history is not None and history.can_redo)

    def refresh_picture(self) -> None:
        """The picture preview and its description (only when the picture or its fit changed)."""
        state = self.state
        inpaint, manifest = state.inpaint, state.manifest
        fitted = inpaint.fitted
        picture = inpaint.picture
        if fitted is not None and manifest is not None and picture is not None:
            width, height = fitted.source_size
            name = shorten(Path(inpaint.picture_path).name or "picture", 60)
            shrunk = f" (worked on at {picture.image.width} \u00d7 {picture.image.height})" if picture.shrunk else ""
            self.picture_info.setText(
                f"{name}: {width} \u00d7 {height}{shrunk} \u2192 {manifest.width} \u00d7 {manifest.height} "
                f"({FIT_LABELS[fitted.mode].lower()}, {'grey' if manifest.channels == 1 else 'RGB'}); "
                "dashed box = region used"
            )
            self.picture_view.set_picture(picture.image, fitted.box)
        else:
            self.picture_info.setText(PICTURE_HINT)
            self.picture_view.set_picture(None, None)

    def _variants_changed(self, value: int) -> None:
        try:
            self.state.update_sampler(variants=value)
        except ValueError:
            self.refresh()

    def _resample_changed(self, value: int) -> None:
        try:
            self.state.update_sampler(resample_steps=value)
        except ValueError:
            self.refresh()

    # ------------------------------------------------------------------ files

    def open_dialog(self) -> None:
        path = self.dialogs.open_file(self, "picture", "Open picture", PICTURE_FILTER)
        if path:
            self.controller.open_picture(path)

    def save_dialog(self) -> None:
        self.results.save_dialog()

    def copy(self) -> None:
        self.results.copy()
