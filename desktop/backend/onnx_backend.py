"""The onnxruntime back end: runs `onnx/ENDPOINT.onnx` files; never imports TensorFlow.

Every file is checked by `desktop.backend.safety` before a session is made. A
run can be aborted from another thread with `RunOptions.terminate`
(PITFALLS.md: it stops a running ONNX `Loop`), which is how Cancel stops
within the current chunk.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from desktop.backend.base import EndpointBackend
from desktop.backend.errors import ModelError, RunInterrupted
from desktop.backend.locate import ModelFiles
from desktop.backend.safety import load_onnx_checked

# Providers that do not compute (Azure calls a remote endpoint); never offered.
NON_COMPUTE_PROVIDERS = frozenset({"AzureExecutionProvider"})
CPU_PROVIDER = "CPUExecutionProvider"
ORT_ERROR_LEVEL = 3  # log errors only (shape-inference warnings inside Loop bodies are noise)


def available_providers() -> list[str]:
    """The onnxruntime execution providers usable here (CPU last as the fallback)."""
    import onnxruntime

    providers = [p for p in onnxruntime.get_available_providers() if p not in NON_COMPUTE_PROVIDERS]
    if CPU_PROVIDER in providers:
        providers.remove(CPU_PROVIDER)
        providers.append(CPU_PROVIDER)
    return providers or [CPU_PROVIDER]


class OnnxBackend(EndpointBackend):
    """Exported endpoints run by onnxruntime.

    Args:
        files: the located export; needs `initial_images` and `sample_levels` ONNX files.
        provider: execution provider to use (CPU is always added as the fallback);
            None picks the first of `available_providers()`.

    Raises:
        ModelError / UnsafeModelError: a file is missing, corrupt or refused.
    """

    runtime = "onnxruntime"

    def __init__(self, files: ModelFiles, provider: str | None = None) -> None:
        import onnxruntime

        self._ort = onnxruntime
        self.files = files
        providers = available_providers()
        if provider is not None and provider not in providers:
            raise ModelError(f"onnxruntime provider {provider!r} is not available here; choose one of {providers}")
        self.device = provider or providers[0]
        self._providers = [self.device] + ([CPU_PROVIDER] if self.device != CPU_PROVIDER else [])
        self._sessions: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._current_run: Any = None
        # Check every file now (cheap: a protobuf parse) so a refused model fails at open.
        for path in files.onnx.values():
            load_onnx_checked(path)
        for endpoint in ("initial_images", "sample_levels"):
            self._session(endpoint)

    def _session(self, endpoint: str) -> Any:
        session = self._sessions.get(endpoint)
        if session is not None:
            return session
        path = self.files.onnx.get(endpoint)
        if path is None:
            raise ModelError(f"this export has no onnx file for {endpoint!r}; re-export it or use TensorFlow")
        options = self._ort.SessionOptions()
        options.log_severity_level = ORT_ERROR_LEVEL
        try:
            session = self._ort.InferenceSession(str(path), sess_options=options, providers=self._providers)
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ModelError(f"onnxruntime cannot load {path.name}: {str(error).splitlines()[0]}") from error
        self._sessions[endpoint] = session
        return session

    def _run(self, endpoint: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
        session = self._session(endpoint)
        feed = {}
        for spec in session.get_inputs():
            if spec.name not in inputs:
                raise ModelError(
                    f"{endpoint}.onnx expects an input {spec.name!r} that the export contract does not define; "
                    "re-export the model"
                )
            feed[spec.name] = inputs[spec.name]
        output_names = [o.name for o in session.get_outputs()]
        wanted = "images" if "images" in output_names else output_names[0]
        run_options = self._ort.RunOptions()
        run_options.log_severity_level = ORT_ERROR_LEVEL
        with self._lock:
            self._current_run = run_options
        try:
            (result,) = session.run([wanted], feed, run_options)
        except Exception as error:
            if run_options.terminate:
                raise RunInterrupted(f"{endpoint} cancelled") from error
            raise RuntimeError(f"onnxruntime failed in {endpoint}: {str(error).splitlines()[0]}") from error
        finally:
            with self._lock:
                self._current_run = None
        return np.asarray(result, dtype=np.float32)

    def interrupt(self) -> None:
        with self._lock:
            if self._current_run is not None:
                self._current_run.terminate = True

    def close(self) -> None:
        self._sessions.clear()
