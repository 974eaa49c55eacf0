"""Sampler settings shared by Sample and Inpaint: seed (fixed/increment/random), steps, epsilon, denoising."""

from __future__ import annotations

import math
import random

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
    QVBoxLayout,
    QWidget,
)

from desktop.backend.base import MAX_SEED, MAX_STEPS_PER_LEVEL
from desktop.state import SEED_MODES, AppState

SEED_MODE_LABELS = {"fixed": "Fixed", "increment": "Increment", "random": "Random"}
SEED_MODE_TIPS = {
    "fixed": "Every run uses this seed: the same settings give the same images",
    "increment": "After a run the seed advances past the images just made",
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
    """Binds seed, seed mode, steps per level, epsilon and final denoising to `AppState.sampler`."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__("Sampler", parent)
        self.state = state
        self.seed = QSpinBox()
        self.seed.setRange(0, MAX_SEED)
        self.seed.setToolTip("Seed of the first image; image k uses seed + k")
        self.seed_mode = QComboBox()
        for mode in SEED_MODES:
            self.seed_mode.addItem(SEED_MODE_LABELS[mode], mode)
            self.seed_mode.setItemData(self.seed_mode.count() - 1, SEED_MODE_TIPS[mode], 3)  # 3 = ToolTipRole
        self.new_seed = QPushButton("New")
        self.new_seed.setToolTip("Draw a random seed now")
        self.steps = QSpinBox()
        self.steps.setRange(1, MAX_STEPS_PER_LEVEL)
        self.steps.setToolTip("Langevin steps at each noise level (paper: 100)")
        self.epsilon = ScientificSpinBox()
        self.epsilon.setToolTip("Step size scale: alpha_i = epsilon * sigma_i^2 / sigma_L^2 (paper: 2e-5)")
        self.denoise = QCheckBox("Final denoising step")
        self.denoise.setToolTip("x + sigma_L^2 * score(x) after the last level (NCSNv2); removes leftover noise")
        self.defaults = QPushButton("Model defaults")
        self.defaults.setToolTip("Steps, epsilon and denoising as the model's manifest recommends")

        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.seed_mode)
        seed_row.addWidget(self.new_seed)
        form = QFormLayout()
        form.addRow("Seed", seed_row)
        form.addRow("Steps / level", self.steps)
        form.addRow("Epsilon", self.epsilon)
        form.addRow("", self.denoise)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.defaults)
        layout.addLayout(buttons)

        self.seed.valueChanged.connect(lambda value: self._set(seed=value))
        self.seed_mode.activated.connect(lambda index: self._set(seed_mode=self.seed_mode.itemData(index)))
        self.new_seed.clicked.connect(lambda: self._set(seed=random.randint(0, MAX_SEED)))
        self.steps.valueChanged.connect(lambda value: self._set(steps_per_level=value))
        self.epsilon.valueChanged.connect(lambda value: self._set(epsilon=value))
        self.denoise.toggled.connect(lambda checked: self._set(denoise=checked))
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

    def refresh(self) -> None:
        sampler = self.state.sampler
        widgets = (self.seed, self.seed_mode, self.steps, self.epsilon, self.denoise)
        for widget in widgets:
            widget.blockSignals(True)
        self.seed.setValue(sampler.seed)
        self.seed_mode.setCurrentIndex(self.seed_mode.findData(sampler.seed_mode))
        self.seed_mode.setToolTip(SEED_MODE_TIPS[sampler.seed_mode])
        self.steps.setValue(sampler.steps_per_level)
        self.epsilon.setValue(sampler.epsilon)
        self.denoise.setChecked(sampler.denoise)
        for widget in widgets:
            widget.blockSignals(False)
        idle = not self.state.busy
        for widget in (*widgets, self.new_seed):
            widget.setEnabled(idle)
        self.defaults.setEnabled(idle and self.state.manifest is not None)
