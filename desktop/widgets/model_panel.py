"""The model in plain words (from its manifest), the runtime / device choice, and a Details dialog with the precise terms."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.backend.manifest import Manifest
from desktop.controller import Controller
from desktop.samplers import settings_text, short_label
from desktop.state import AppState
from desktop.widgets.text import plain_label, set_tooltip, shorten

RUNTIME_LABELS = {"onnxruntime": "ONNX Runtime", "tensorflow": "TensorFlow"}
CONVENTIONS = {
    "code": "code convention: x + alpha * score + sqrt(2 alpha) * z, as in the authors' released code (ermongroup/ncsn)",
    "paper": "paper convention: x + alpha / 2 * score + sqrt(alpha) * z, Algorithm 1 as printed",
}


def _value_label() -> QLabel:
    label = plain_label("-", selectable=True, wrap=True)
    return label


def weights_summary(manifest: Manifest) -> tuple[str, str]:
    """(plain words, precise terms) for the exported weights: training step, averaged or not, network class."""
    raw = manifest.raw
    checkpoint = raw.get("checkpoint") if isinstance(raw.get("checkpoint"), dict) else {}
    ema = checkpoint.get("ema") is True
    score_model = raw.get("score_model") if isinstance(raw.get("score_model"), str) else ""
    plain = []
    if manifest.checkpoint_step == 0:
        plain.append("not trained (step 0)")
    elif manifest.checkpoint_step is not None:
        plain.append(f"after {manifest.checkpoint_step:,} training steps")
    if ema:
        plain.append("averaged weights")
    precise = []
    if score_model:
        precise.append(f"score network: {shorten(score_model, 80)}")
    if manifest.checkpoint_step is not None:
        precise.append(f"checkpoint step {manifest.checkpoint_step}")
    if ema:
        precise.append("EMA (exponential moving average) of the weights")
    return ", ".join(plain) or "-", "; ".join(precise)


def details_text(manifest: Manifest) -> str:
    """The model's facts with their precise names (for the Details dialog), plain text."""
    sampler = manifest.sampler
    _, weights = weights_summary(manifest)
    lines = [
        f"Name: {manifest.name}",
        f"Data set: {manifest.dataset}",
        f"Image shape (H, W, C): {list(manifest.image_shape)}, value range {list(manifest.value_range)}",
        f"Noise levels L = {manifest.num_levels}: sigma_1 = {manifest.sigmas[0]:g} down to sigma_L = {manifest.sigmas[-1]:g}",
        f"Samplers: {', '.join(short_label(name) for name in sampler.settings)}; default {short_label(sampler.default)}",
    ]
    for name, settings in sampler.settings.items():
        recommended = settings_text(settings, inpainting=True).removeprefix(short_label(name) + ", ")
        lines.append(f"Recommended for {short_label(name)}: {recommended}")
    lines.append(
        "Langevin step (step size epsilon: alpha_i = epsilon * sigma_i^2 / sigma_L^2): "
        + CONVENTIONS.get(sampler.convention, f"{shorten(sampler.convention, 40)} convention")
    )
    if weights:
        lines.append("Weights: " + weights)
    if manifest.tolerance is not None:
        lines.append(f"ONNX and SavedModel agree within {manifest.tolerance:g} (checked by the exporter)")
    return "\n".join(lines)


class ModelPanel(QGroupBox):
    """Shows what the model makes, in plain words; picks runtime and device; Details... shows the precise terms."""

    def __init__(
        self, state: AppState, controller: Controller, providers: list[str], parent: QWidget | None = None
    ) -> None:
        super().__init__("Model", parent)
        self.state, self.controller = state, controller
        self.dialog: QDialog | None = None
        self.name = _value_label()
        self.image = _value_label()
        self.levels = _value_label()
        self.trained = _value_label()
        self.runtime = QComboBox()
        for runtime, label in RUNTIME_LABELS.items():
            self.runtime.addItem(label, runtime)
        self.runtime.setToolTip("ONNX Runtime starts fast; TensorFlow runs the SavedModel (slower to start)")
        self.provider = QComboBox()
        for provider in providers:
            self.provider.addItem(provider.removesuffix("ExecutionProvider"), provider)
        self.provider.setToolTip("Where ONNX Runtime computes (its execution provider; CPU is always the fallback)")
        self.details_button = QPushButton("Details...")
        self.details_button.setToolTip("The model's facts with their precise names, and its whole manifest")
        self.details_button.clicked.connect(self.show_details)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Name", self.name)
        form.addRow("Makes", self.image)
        form.addRow("Noise levels", self.levels)
        form.addRow("Weights", self.trained)
        form.addRow("Runtime", self.runtime)
        form.addRow("Device", self.provider)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.details_button, 0, Qt.AlignmentFlag.AlignRight)

        self.runtime.activated.connect(self._runtime_chosen)
        self.provider.activated.connect(self._provider_chosen)
        state.model_changed.connect(self.refresh)
        state.loading_changed.connect(self.refresh)
        state.busy_changed.connect(self.refresh)
        state.runtime_changed.connect(self.refresh)
        self.refresh()

    def refresh(self, *args: object) -> None:
        state = self.state
        manifest = state.manifest
        backend = state.backend
        if manifest is None or backend is None:
            for label in (self.image, self.levels, self.trained, self.name):
                label.setText("-")
                label.setToolTip("")
            self.name.setText("Opening ..." if state.loading else "No model open")
        else:
            kind = "grey" if manifest.channels == 1 else "colour"
            self.name.setText(shorten(manifest.name, 60))
            self.image.setText(
                f"{manifest.width} \u00d7 {manifest.height} {kind} images ({shorten(manifest.dataset, 40)})"
            )
            set_tooltip(self.image, f"trained on the data set {manifest.dataset}")
            self.levels.setText(f"{manifest.num_levels}")
            set_tooltip(
                self.levels,
                f"L = {manifest.num_levels} noise levels, sigma from {manifest.sigmas[0]:g} down to "
                f"{manifest.sigmas[-1]:g}; the sampler removes noise level by level",
            )
            plain, precise = weights_summary(manifest)
            self.trained.setText(plain)
            set_tooltip(self.trained, precise)
            set_tooltip(self.name, f"{manifest.name}\nopened from {backend.files.source}")
        # Runtime: what is in use when a model is open, else the preference.
        runtime = backend.runtime if backend is not None else state.preferred_runtime
        self.runtime.setCurrentIndex(max(0, self.runtime.findData(runtime)))
        available = backend.files.runtimes() if backend is not None else list(RUNTIME_LABELS)
        model = self.runtime.model()
        for row in range(self.runtime.count()):
            item = model.item(row)
            item.setEnabled(self.runtime.itemData(row) in available)
        provider = backend.device if backend is not None and backend.runtime == "onnxruntime" else state.provider
        index = self.provider.findData(provider)
        self.provider.setCurrentIndex(index if index >= 0 else self.provider.count() - 1)
        idle = not state.busy and not state.loading
        self.runtime.setEnabled(idle)
        self.provider.setEnabled(idle and runtime == "onnxruntime")
        self.details_button.setEnabled(manifest is not None)

    def _runtime_chosen(self, index: int) -> None:
        runtime = self.runtime.itemData(index)
        self.state.set_runtime(runtime=runtime)
        backend = self.state.backend
        if backend is not None and backend.runtime != runtime:
            self.controller.reload_model()

    def _provider_chosen(self, index: int) -> None:
        provider = self.provider.itemData(index)
        self.state.set_runtime(provider=provider)
        backend = self.state.backend
        if backend is not None and backend.runtime == "onnxruntime" and backend.device != provider:
            self.controller.reload_model()

    def show_details(self) -> None:
        """The facts with their precise names and the whole manifest, as read-only plain text, non-modal."""
        manifest = self.state.manifest
        if manifest is None:
            return
        dialog = QDialog(self)
        dialog.setWindowTitle(f"Details of {shorten(manifest.name, 80)}")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        facts = plain_label(details_text(manifest), selectable=True, wrap=True)
        text = QPlainTextEdit(json.dumps(manifest.raw, indent=2, sort_keys=True))  # plain text by construction
        text.setReadOnly(True)
        layout = QVBoxLayout(dialog)
        layout.addWidget(facts)
        layout.addWidget(plain_label("The manifest (manifest.json) as exported:"))
        layout.addWidget(text, 1)
        dialog.resize(620, 620)
        self.dialog = dialog
        dialog.show()
