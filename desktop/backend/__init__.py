"""Inference back end of the desktop app: exported files in, NumPy images out. No Qt.

`open_backend(path, runtime)` locates an export (`locate_model`), checks its files
(`safety`) and returns an `InferenceBackend`: `OnnxBackend` (onnxruntime; never
imports TensorFlow) or `SavedModelBackend` (TensorFlow). `runs.iter_sample` /
`runs.iter_inpaint` drive them chunk by chunk.
"""

from __future__ import annotations

import os

from desktop.backend.base import InferenceBackend, SamplerSettings, seeds_for
from desktop.backend.errors import ModelError, RunInterrupted, UnsafeModelError
from desktop.backend.locate import RUNTIMES, ModelFiles, locate_model

__all__ = [
    "RUNTIMES",
    "InferenceBackend",
    "ModelError",
    "ModelFiles",
    "RunInterrupted",
    "SamplerSettings",
    "UnsafeModelError",
    "locate_model",
    "open_backend",
    "seeds_for",
]


def open_backend(
    location: str | os.PathLike[str] | ModelFiles, runtime: str = "onnxruntime", provider: str | None = None
) -> InferenceBackend:
    """Locate, check and load an export.

    Args:
        location: an .onnx file, SavedModel folder or export folder (or located files).
        runtime: preferred runtime, "onnxruntime" or "tensorflow"; the other one is
            used when the preferred one's files are absent.
        provider: onnxruntime execution provider (ignored for TensorFlow).

    Returns:
        A ready back end; `backend.runtime` says which runtime was used.

    Raises:
        ModelError: missing, corrupt, refused (`UnsafeModelError`) or not an export.
    """
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; use one of {RUNTIMES}")
    files = location if isinstance(location, ModelFiles) else locate_model(location)
    chosen = files.choose_runtime(runtime)
    if chosen == "onnxruntime":
        from desktop.backend.onnx_backend import OnnxBackend

        return OnnxBackend(files, provider=provider)
    from desktop.backend.tf_backend import SavedModelBackend

    return SavedModelBackend(files)
