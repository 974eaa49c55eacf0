"""The onnxruntime back end: `export_format.runners.OnnxRunner` (never imports TensorFlow).

Every ONNX file passes the safety gate before a session is made; Cancel aborts the
running call (`RunOptions.terminate` stops a running ONNX `Loop`).
`open_backend(path, "onnxruntime")` returns an `ExportedSampler` running on it.
"""

from __future__ import annotations

from export_format.runners import CPU_PROVIDER, NON_COMPUTE_PROVIDERS, OnnxRunner, available_providers

__all__ = ["CPU_PROVIDER", "NON_COMPUTE_PROVIDERS", "OnnxRunner", "available_providers"]
