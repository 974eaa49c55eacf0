"""Sampler settings shared by Sample and Inpaint: seed, the sampling method and only its own settings.

Plain words lead; the precise terms (T, epsilon, C, r, the final denoising step)
are in the tooltips. The method offers the samplers the open model was exported
with (`AppState.available_samplers`); below it only the chosen sampler's rows
are shown (annealed Langevin: steps per level, step size, clean-up;
predictor-corrector: corrector steps, signal-to-noise ratio; probability flow:
Heun or Euler), then what a run costs in network calls per image. RePaint's
resampling, an inpainting-only setting, is on the Inpaint tab. A new sampler's
settings need rows here (`desktop.samplers` has their labels).
"""

from __future__ import annotations

import math
import random

from PySide6.QtCore import Qt
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.backend.base import MAX_SEED
from desktop.samplers import (
    ANNEALED_LANGEVIN,
    ORDER_LABELS,
    PREDICTOR_CORRECTOR,
    PROBABILITY_FLOW,
    SAMPLERS,
    SETTING_LABELS,
    SETTING_TIPS,
    description,
    label,
    short_label,
)
from desktop.state import SEED_MODES, SETTING_OWNERS, AppState
from desktop.widgets.text import plain_label, set_tooltip

MAX_CORRECTOR_STEPS = 10_000  # the spin box's top (each step is one network call per level)
SNR_RANGE = (0.001, 100.0)  # the spin box's range (any r > 0 is valid; score_sde uses 0.16)
SEED_MODE_LABELS = {"fixed": "Keep it", "increment": "Move on", "random": "Random"}
SEED_MODE_TIPS = {
    "fixed": "Every run uses this seed: the same settings give the same images",
    "increment": "After a run the seed moves past the images just made, so the next run makes new images",
    "random": "Each run draws a new seed (shown here, and saved in the PNGs)",
}


class ScientificSpinBox(QDoubleSpinBox):
    """A spin box for small positive numbers shown as 2e-05; arrows halve or double."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(15)
        self.setRange(1e-12, 1.0)
        self.setKeyboardTracking(False)

    def textFromValue(self, value: float) -> str:  # noqa: N802 (Qt override)
        return f"{value:.4g}"

    def valueFromText(self, text: str) -> float:  # noqa: N802
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, position: int) -> object:
        try:
            value = float(text)
        except ValueError:
            return QValidator.State.Intermediate, text, position
        ok = math.isfinite(value) and self.minimum() <= value <= self.maximum()
        return (QValidator.State.Acceptable if ok else QValidator.State.Intermediate), text, position

    def stepBy(self, steps: int) -> None:  # noqa: N802
        self.setValue(min(self.maximum(), max(self.minimum(), self.value() * 2.0**steps)))


class SamplerPanel(QGroupBox):
    """Binds the sampler choice and the chosen sampler's settings to `AppState.sampler`."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__("Sampler", parent)
        self.state = state
        self.seed = QSpinBox()
        self.seed.setRange(0, MAX_SEED)
        self.seed.setMinimumWidth(72)  # narrower than 10 digits need; long seeds scroll
        self.seed.setToolTip("The seed of the first image; image k uses seed + k. Same seed and settings, same image.")
        self.seed_mode = QComboBox()
        for mode in SEED_MODES:
            self.seed_mode.addItem(SEED_MODE_LABELS[mode], mode)
            self.seed_mode.setItemData(self.seed_mode.count() - 1, SEED_MODE_TIPS[mode], Qt.ItemDataRole.ToolTipRole)
        self.new_seed = QToolButton()
        self.new_seed.setText("New")
        self.new_seed.setToolTip("Draw a random seed now")

        self.method = QComboBox()
        self.method.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.method.setMinimumContentsLength(6)  # the long labels do not widen the side panel; the list shows them
        for name in SAMPLERS:
            self.method.addItem(label(name), name)
            self.method.setItemData(self.method.count() - 1, description(name), Qt.ItemDataRole.ToolTipRole)
        self.method.view().setMinimumWidth(self.method.view().sizeHintForColumn(0) + 8)
        # Annealed Langevin
        self.steps = QSpinBox()
        self.steps.setRange(1, state.max_steps_per_level)
        self.epsilon = ScientificSpinBox()
        self.denoise = QCheckBox(SETTING_LABELS["denoise"])
        # Predictor-corrector
        self.corrector_steps = QSpinBox()
        self.corrector_steps.setRange(0, MAX_CORRECTOR_STEPS)
        self.snr = QDoubleSpinBox()
        self.snr.setDecimals(3)
        self.snr.setRange(*SNR_RANGE)
        self.snr.setSingleStep(0.05)
        self.snr.setKeyboardTracking(False)
        # Probability flow
        self.order = QComboBox()
        self.order.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.order.setMinimumContentsLength(6)
        for order, text in ORDER_LABELS.items():
            self.order.addItem(text, order)
        for name, widget in (
            ("steps_per_level", self.steps),
            ("epsilon", self.epsilon),
            ("denoise", self.denoise),
            ("corrector_steps", self.corrector_steps),
            ("snr", self.snr),
            ("order", self.order),
        ):
            widget.setToolTip(SETTING_TIPS[name])
        self.cost = plain_label(wrap=True)
        self.cost.setMinimumWidth(120)  # wraps to the panel's width instead of widening the side panel
        self.cost.setToolTip(
            "How many times a run evaluates the score network for each image (each call covers the whole "
            "batch): what the run's time is proportional to. The time is shown beside Generate and Inpaint."
        )
        self.defaults = QPushButton("Model defaults")
        self.defaults.setToolTip("Every sampler's settings as the model's manifest recommends (the method stays)")

        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.new_seed)
        self.form = QFormLayout()
        self.form.addRow("Seed", seed_row)
        self.form.addRow("After a run", self.seed_mode)
        self.form.addRow(QLabel("Method"))
        self.form.addRow(self.method)  # the whole panel's width: the labels say what each sampler is for
        # sampler -> its rows (shown only while it is chosen)
        self.rows: dict[str, list[QWidget]] = {ANNEALED_LANGEVIN: [], PREDICTOR_CORRECTOR: [], PROBABILITY_FLOW: []}
        for name, widget in (
            ("steps_per_level", self.steps),
            ("epsilon", self.epsilon),
            ("denoise", None),
            ("corrector_steps", self.corrector_steps),
            ("snr", self.snr),
            ("order", self.order),
        ):
            if widget is None:
                self.form.addRow(self.denoise)
                widget = self.denoise
            else:
                self.form.addRow(SETTING_LABELS[name], widget)
            self.rows[SETTING_OWNERS[name]].append(widget)
        self.form.addRow(self.cost)
        layout = QVBoxLayout(self)
        layout.addLayout(self.form)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.defaults)
        layout.addLayout(buttons)

        self.seed.valueChanged.connect(lambda value: self._set(seed=value))
        self.seed_mode.activated.connect(lambda index: self._set(seed_mode=self.seed_mode.itemData(index)))
        self.new_seed.clicked.connect(lambda: self._set(seed=random.randint(0, MAX_SEED)))
        self.method.activated.connect(lambda index: self._set(sampler=self.method.itemData(index)))
        self.steps.valueChanged.connect(lambda value: self._set(steps_per_level=value))
        self.epsilon.valueChanged.connect(lambda value: self._set(epsilon=value))
        self.denoise.toggled.connect(lambda checked: self._set(denoise=checked))
        self.corrector_steps.valueChanged.connect(lambda value: self._set(corrector_steps=value))
        self.snr.valueChanged.connect(lambda value: self._set(snr=round(value, self.snr.decimals())))
        self.order.activated.connect(lambda index: self._set(order=self.order.itemData(index)))
        self.defaults.clicked.connect(state.reset_sampler_to_model)
        state.sampler_changed.connect(self.refresh)
        state.busy_changed.connect(self.refresh)
        state.model_changed.connect(self.refresh)
        self.refresh()

    def _set(self, **values: object) -> None:
        try:
            self.state.update_sampler(**values)
        except ValueError:
            self.refresh()  # show the state's value again

    def refresh(self, *args: object) -> None:
        state, sampler = self.state, self.state.sampler
        widgets = (
            self.seed, self.seed_mode, self.method, self.steps, self.epsilon, self.denoise,
            self.corrector_steps, self.snr, self.order,
        )  # fmt: skip
        for widget in widgets:
            widget.blockSignals(True)
        self.steps.setMaximum(state.max_steps_per_level)
        self.seed.setValue(sampler.seed)
        self.seed_mode.setCurrentIndex(self.seed_mode.findData(sampler.seed_mode))
        self.seed_mode.setToolTip(SEED_MODE_TIPS[sampler.seed_mode])
        self.steps.setValue(sampler.steps_per_level)
        self.epsilon.setValue(sampler.epsilon)
        self.denoise.setChecked(sampler.denoise)
        self.corrector_steps.setValue(sampler.corrector_steps)
        self.snr.setValue(sampler.snr)
        self.order.setCurrentIndex(max(0, self.order.findData(sampler.order)))
        available = state.available_samplers
        model = state.manifest
        for index in range(self.method.count()):
            item = self.method.model().item(index)
            item.setEnabled(self.method.itemData(index) in available)
        self.method.setCurrentIndex(max(0, self.method.findData(sampler.sampler)))
        for widget in widgets:
            widget.blockSignals(False)
        for name, rows in self.rows.items():
            for widget in rows:
                self.form.setRowVisible(widget, name == sampler.sampler)
        idle = not state.busy
        for widget in (*widgets, self.new_seed):
            widget.setEnabled(idle)
        if model is not None and len(available) == 1:
            self.method.setEnabled(False)
            set_tooltip(
                self.method,
                f"{model.name[:80]} was exported with {short_label(available[0])} only. Re-export it with "
                "this version's `python -m export` to get the faster samplers too.",
            )
        else:
            self.method.setToolTip(description(sampler.sampler))
        cost = state.cost("sample")
        self.cost.setText("" if cost is None else cost.text())
        self.cost.setVisible(cost is not None)
        self.defaults.setEnabled(idle and model is not None)
