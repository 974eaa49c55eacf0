"""The TensorFlow back end: runs the SavedModel's signatures (imports TensorFlow, slow start).

The SavedModel is scanned by `desktop.backend.safety.check_savedmodel` before
`tf.saved_model.load` runs anything in it. TensorFlow cannot abort a running
signature, so Cancel takes effect at the end of the current chunk.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from desktop.backend.base import EndpointBackend
from desktop.backend.errors import ModelError
from desktop.backend.locate import ModelFiles
from desktop.backend.safety import check_savedmodel


class SavedModelBackend(EndpointBackend):
    """Exported endpoints run by TensorFlow from the SavedModel.

    Args:
        files: the located export; needs its SavedModel folder.

    Raises:
        ModelError / UnsafeModelError: the SavedModel is missing, corrupt or refused.
    """

    runtime = "tensorflow"

    def __init__(self, files: ModelFiles) -> None:
        if files.savedmodel is None:
            raise ModelError(f"{files.source} has no SavedModel folder; use onnxruntime or re-export with one")
        check_savedmodel(files.savedmodel)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        self._tf = tf
        self.files = files
        try:
            self._loaded = tf.saved_model.load(str(files.savedmodel))
        except Exception as error:  # TF raises many types for a broken SavedModel
            raise ModelError(f"TensorFlow cannot load {files.savedmodel}: {str(error).splitlines()[0]}") from error
        self._signatures = dict(self._loaded.signatures)
        for endpoint in ("initial_images", "sample_levels"):
            if endpoint not in self._signatures:
                raise ModelError(f"SavedModel {files.savedmodel} has no {endpoint!r} signature; re-export the model")
        gpus = tf.config.list_logical_devices("GPU")
        self.device = f"TensorFlow {'GPU' if gpus else 'CPU'}"

    def _run(self, endpoint: str, inputs: dict[str, Any]) -> np.ndarray:
        signature = self._signatures.get(endpoint)
        if signature is None:
            raise ModelError(f"SavedModel has no {endpoint!r} signature; re-export the model")
        tf = self._tf
        specs = signature.structured_input_signature[1]
        feed = {}
        for name, spec in specs.items():
            if name not in inputs:
                raise ModelError(f"signature {endpoint!r} expects an input {name!r} outside the export contract")
            feed[name] = tf.constant(inputs[name], dtype=spec.dtype)
        try:
            outputs = signature(**feed)
        except Exception as error:
            raise RuntimeError(f"TensorFlow failed in {endpoint}: {str(error).splitlines()[0]}") from error
        result = outputs["images"] if "images" in outputs else next(iter(outputs.values()))
        return np.asarray(result.numpy(), dtype=np.float32)

    def interrupt(self) -> None:
        """TensorFlow cannot abort a running signature; the run stops after this chunk."""

    def close(self) -> None:
        self._signatures.clear()
        self._loaded = None
