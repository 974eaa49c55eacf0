"""The Sample tab: how many images, Generate with its cost and estimated time, the results."""

from __future__ import annotations

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from desktop.backend.base import MAX_BATCH
from desktop.controller import Controller
from desktop.estimate import format_duration
from desktop.state import AppState
from desktop.widgets.file_dialogs import FileDialogs
from desktop.widgets.results import ResultsView
from desktop.widgets.text import plain_label

NO_MODEL_HINT = "Open a model (File > Open model, or drop it here), then press Generate."


def estimate_text(state: AppState, kind: str, first_level: int = 0) -> str:
    """ "1,001 network calls per image (20 levels x 50 steps + 1), about 12 s" for a run of `kind` now."""
    cost = state.cost(kind, first_level)
    if cost is None:
        return ""
    estimate = state.estimate(kind, first_level)
    if estimate is None:
        time_text = "time measured on the first run"
    else:
        time_text = ("about " if estimate.measured else "roughly ") + format_duration(estimate.seconds)
    return f"{cost.text()}, {time_text}"


class SamplePanel(QWidget):
    """Generate a batch, watch it denoise level by level, enlarge, save, copy."""

    def __init__(
        self, state: AppState, controller: Controller, dialogs: FileDialogs, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.state, self.controller = state, controller
        self.batch = QSpinBox()
        self.batch.setRange(1, MAX_BATCH)
        self.batch.setToolTip("How many images to make (image k uses seed + k)")
        self.generate_button = QPushButton("Generate")
        self.generate_button.setDefault(True)
        self.generate_button.setMinimumWidth(100)
        self.generate_button.setToolTip("Make new images (Ctrl+Return)")
        self.estimate = plain_label(wrap=True)
        self.estimate.setToolTip(
            "Each network call evaluates the score network once on the whole batch; the time per call is "
            "measured on this computer for this model (a short test run when it opens, then every run)"
        )
        self.results = ResultsView("sample", state, controller, dialogs)
        self.grid = self.results.grid

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Images"))
        bar.addWidget(self.batch)
        bar.addWidget(self.generate_button)
        bar.addWidget(self.estimate, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.results, 1)

        self.batch.valueChanged.connect(self._batch_changed)
        self.generate_button.clicked.connect(controller.generate)
        state.sampler_changed.connect(self.refresh)
        state.busy_changed.connect(self.refresh)
        state.model_changed.connect(self.refresh)
        state.loading_changed.connect(self.refresh)
        self.refresh()

    def _batch_changed(self, value: int) -> None:
        try:
            self.state.update_sampler(batch_size=value)
        except ValueError:
            self.refresh()

    def refresh(self, *args: object) -> None:
        state = self.state
        self.batch.blockSignals(True)
        self.batch.setValue(state.sampler.batch_size)
        self.batch.blockSignals(False)
        idle = not state.busy and not state.loading
        self.batch.setEnabled(idle)
        self.generate_button.setEnabled(idle and state.backend is not None)
        if state.loading:
            placeholder = "Opening the model ..."
        elif state.backend is None:
            placeholder = NO_MODEL_HINT
        else:
            count = state.sampler.batch_size
            placeholder = f"Press Generate to make {count} image{'s' if count != 1 else ''}."
        self.grid.set_placeholder(placeholder)
        self.estimate.setText(estimate_text(state, "sample"))
