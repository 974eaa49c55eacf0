"""The model's facts (from its manifest) and the runtime / execution-provider choice."""

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

from desktop.controller import Controller
from desktop.state import AppState

RUNTIME_LABELS = {"onnxruntime": "ONNX Runtime", "tensorflow": "TensorFlow"}


def _label() -> QLabel:
    label = QLabel("-")
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setWordWrap(True)
    return label


class ModelPanel(QGroupBox):
    """Shows name, dataset, image size, levels, sampler defaults; picks runtime and provider."""

    def __init__(
        self, state: AppState, controller: Controller, providers: list[str], parent: QWidget | None = None
    ) -> None:
        super().__init__("Model", parent)
        self.state, self.controller = state, controller
        self.name = _label()
        self.dataset = _label()
        self.image = _label()
        self.levels = _label()
        self.defaults = _label()
        self.trained = _label()
        self.location = _label()
        self.runtime = QComboBox()
        for runtime, label in RUNTIME_LABELS.items():
            self.runtime.addItem(label, runtime)
        self.runtime.setToolTip("ONNX Runtime starts fast; TensorFlow runs the SavedModel")
        self.provider = QComboBox()
        for provider in providers:
            self.provider.addItem(provider.removesuffix("ExecutionProvider"), provider)
        self.provider.setToolTip("onnxruntime execution provider (CPU is always the fallback)")
        self.manifest_button = QPushButton("Manifest...")
        self.manifest_button.setToolTip("Show the export's manifest.json")
        self.manifest_button.clicked.connect(self.show_manifest)

        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.addRow("Name", self.name)
        form.addRow("Dataset", self.dataset)
        form.addRow("Image", self.image)
        form.addRow("Noise levels", self.levels)
        form.addRow("Sampler", self.defaults)
        form.addRow("Weights", self.trained)
        form.addRow("File", self.location)
        form.addRow("Runtime", self.runtime)
        form.addRow("Device", self.provider)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.manifest_button, 0, Qt.AlignmentFlag.AlignRight)

        self.runtime.activated.connect(self._runtime_chosen)
        self.provider.activated.connect(self._provider_chosen)
        state.model_changed.connect(self.refresh)
        state.loading_changed.connect(self.refresh)
        state.busy_changed.connect(self.refresh)
        state.runtime_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        state = self.state
        manifest = state.manifest
        backend = state.backend
        if manifest is None or backend is None:
            for label in (self.name, self.dataset, self.image, self.levels, self.defaults, self.trained):
                label.setText("-")
            self.location.setText("Loading ..." if state.loading else "No model open")
        else:
            kind = "grayscale" if manifest.channels == 1 else "RGB"
            self.name.setText(manifest.name)
            self.dataset.setText(manifest.dataset)
            self.image.setText(f"{manifest.width} \u00d7 {manifest.height} {kind}")
            self.levels.setText(f"{manifest.num_levels} (\u03c3 {manifest.sigmas[0]:g} \u2192 {manifest.sigmas[-1]:g})")
            sampler = manifest.sampler
            self.defaults.setText(
                f"{sampler.steps_per_level} steps/level, \u03b5 {sampler.epsilon:g}, {sampler.convention} convention"
            )
            score_model = manifest.raw.get("score_model")
            checkpoint = manifest.raw.get("checkpoint") if isinstance(manifest.raw.get("checkpoint"), dict) else {}
            parts = [str(score_model)] if isinstance(score_model, str) else []
            if manifest.checkpoint_step is not None:
                parts.append(f"step {manifest.checkpoint_step}" + (" (EMA)" if checkpoint.get("ema") is True else ""))
            self.trained.setText(", ".join(parts) or "-")
            self.location.setText(str(backend.files.source.name))
            self.location.setToolTip(str(backend.files.source))
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
        self.manifest_button.setEnabled(manifest is not None)

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

    def show_manifest(self) -> None:
        """The manifest as read-only text in a non-modal window."""
        manifest = self.state.manifest
        if manifest is None:
            return
        dialog = QDialog(self)
        dialog.setWindowTitle(f"Manifest of {manifest.name}")
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        text = QPlainTextEdit(json.dumps(manifest.raw, indent=2, sort_keys=True))
        text.setReadOnly(True)
        QVBoxLayout(dialog).addWidget(text)
        dialog.resize(560, 600)
        dialog.show()
