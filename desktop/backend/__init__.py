"""Inference back end of the desktop app: a thin, Qt-free adapter over `export_format`.

`open_backend(path, runtime)` locates an export (`locate_model`), which passes every
file through the safety gate, and returns an `export_format.ExportedSampler` (the
`InferenceBackend`): onnxruntime never imports TensorFlow; TensorFlow is imported only
for the SavedModel. An export without the asked runtime's files raises
`RuntimeMissingError` (with `.wanted` and `.available`): nothing switches runtime
silently. `runs.iter_sample` / `runs.iter_inpaint` drive a run chunk by chunk.
"""

from __future__ import annotations

import os

from desktop.backend.base import (
    MAX_BATCH,
    MAX_SEED,
    MAX_STEPS_PER_LEVEL,
    InferenceBackend,
    SamplerSettings,
    seeds_for,
)
from desktop.backend.errors import ModelError, RunInterrupted, RuntimeMissingError, UnsafeModelError
from desktop.backend.locate import RUNTIMES, ModelFiles, locate_model
from desktop.backend.onnx_backend import available_providers
from desktop.backend.runs import ChunkDone, iter_inpaint, iter_sample
from export_format import ExportedSampler

__all__ = [
    "MAX_BATCH",
    "MAX_SEED",
    "MAX_STEPS_PER_LEVEL",
    "RUNTIMES",
    "ChunkDone",
    "InferenceBackend",
    "ModelError",
    "ModelFiles",
    "RunInterrupted",
    "RuntimeMissingError",
    "SamplerSettings",
    "UnsafeModelError",
    "available_providers",
    "iter_inpaint",
    "iter_sample",
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
        runtime: "onnxruntime" or "tensorflow"; its files must be there.
        provider: onnxruntime execution provider (ignored for TensorFlow).

    Returns:
        A ready back end; `backend.runtime` is `runtime`.

    Raises:
        ValueError: an unknown runtime.
        RuntimeMissingError: the export has no files for `runtime` (`.available` says which it has).
        ModelError: missing, corrupt, refused (`UnsafeModelError`) or not an image export.
    """
    files = location if isinstance(location, ModelFiles) else locate_model(location)
    return ExportedSampler(files, runtime=runtime, provider=provider)
