"""Sampler settings shared by Sample and Inpaint: seed, steps, step size, clean-up, and the method (Advanced).

Plain words lead; the precise terms (T, epsilon, the final denoising step, the
sampling method) are in the tooltips and the Advanced section. To add a
sampler's own settings, add rows to the Advanced section and fields to
`SamplerState` (see `desktop.samplers`).
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
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop.backend.base import MAX_SEED
from desktop.samplers import SAMPLER_DESCRIPTIONS, SAMPLER_LABELS, SAMPLERS
from desktop.state import SEED_MODES, AppState
from desktop.widgets.text import plain_label

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
        self.setRange(1e-12, 0.999)
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
    """Binds the sampler settings to `AppState.sampler`."""

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
        self.steps = QSpinBox()
        self.steps.setRange(1, state.max_steps_per_level)
        self.steps.setToolTip(
            "More steps: better images, slower (T, Langevin steps at each noise level; the paper uses 100)"
        )
        self.epsilon = ScientificSpinBox()
        self.epsilon.setToolTip(
            "How far each step moves (epsilon; the step at noise level i is alpha_i = epsilon * sigma_i^2 / sigma_L^2; "
            "the paper uses 2e-5). The arrows halve or double it."
        )
        self.denoise = QCheckBox("Clean up the last noise")
        self.denoise.setToolTip(
            "One final denoising step after the last level: x + sigma_L^2 * score(x) (NCSNv2, Tweedie's formula)"
        )
        self.defaults = QPushButton("Model defaults")
        self.defaults.setToolTip("Steps, step size and clean-up as the model's manifest recommends")
        self.advanced_button = QToolButton()
        self.advanced_button.setText("Advanced")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setArrowType(Qt.ArrowType.RightArrow)
        self.advanced_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.advanced_button.setAutoRaise(True)
        self.method = QComboBox()
        for name in SAMPLERS:
            self.method.addItem(SAMPLER_LABELS[name], name)
            self.method.setItemData(self.method.count() - 1, SAMPLER_DESCRIPTIONS[name], Qt.ItemDataRole.ToolTipRole)
        self.method_description = plain_label(wrap=True)
        self.advanced = QWidget()
        advanced_form = QFormLayout(self.advanced)
        advanced_form.setContentsMargins(0, 0, 0, 0)
        advanced_form.addRow("Method", self.method)
        advanced_form.addRow(self.method_description)
        self.advanced.setVisible(False)

        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.new_seed)
        form = QFormLayout()
        form.addRow("Seed", seed_row)
        form.addRow("After a run", self.seed_mode)
        form.addRow("Steps per level", self.steps)
        form.addRow("Step size", self.epsilon)
        form.addRow(self.denoise)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        buttons = QHBoxLayout()
        buttons.addWidget(self.advanced_button)
        buttons.addStretch(1)
        buttons.addWidget(self.defaults)
        layout.addLayout(buttons)
        layout.addWidget(self.advanced)

        self.seed.valueChanged.connect(lambda value: self._set(seed=value))
        self.seed_mode.activated.connect(lambda index: self._set(seed_mode=self.seed_mode.itemData(index)))
        self.new_seed.clicked.connect(lambda: self._set(seed=random.randint(0, MAX_SEED)))
        self.steps.valueChanged.connect(lambda value: self._set(steps_per_level=value))
        self.epsilon.valueChanged.connect(lambda value: self._set(epsilon=value))
        self.denoise.toggled.connect(lambda checked: self._set(denoise=checked))
        self.method.activated.connect(lambda index: self._set(sampler=self.method.itemData(index)))
        self.defaults.clicked.connect(state.reset_sampler_to_model)
        self.advanced_button.toggled.connect(self._show_advanced)
        state.sampler_changed.connect(self.refresh)
        state.busy_changed.connect(self.refresh)
        state.model_changed.connect(self.refresh)
        self.refresh()

    def _show_advanced(self, shown: bool) -> None:
        self.advanced.setVisible(shown)
        self.advanced_button.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def _set(self, **values: object) -> None:
        try:
            self.state.update_sampler(**values)
        except ValueError:
            self.refresh()  # show the state's value again

    def refresh(self, *args: object) -> None:
        sampler = self.state.sampler
        widgets = (self.seed, self.seed_mode, self.steps, self.epsilon, self.denoise, self.method)
        for widget in widgets:
            widget.blockSignals(True)
        self.steps.setMaximum(self.state.max_steps_per_level)
        self.seed.setValue(sampler.seed)
        self.seed_mode.setCurrentIndex(self.seed_mode.findData(sampler.seed_mode))
        self.seed_mode.setToolTip(SEED_MODE_TIPS[sampler.seed_mode])
        self.steps.setValue(sampler.steps_per_level)
        self.epsilon.setValue(sampler.epsilon)
        self.denoise.setChecked(sampler.denoise)
        self.method.setCurrentIndex(max(0, self.method.findData(sampler.sampler)))
        self.method_description.setText(SAMPLER_DESCRIPTIONS[sampler.sampler])
        for widget in widgets:
            widget.blockSignals(False)
        idle = not self.state.busy
        for widget in (*widgets, self.new_seed):
            widget.setEnabled(idle)
        self.defaults.setEnabled(idle and self.state.manifest is not None)
