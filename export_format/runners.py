"""The two runners of exported endpoints: ONNX Runtime and TensorFlow (the one place that opens them).

`OnnxRunner` opens `onnx/ENDPOINT.onnx` files in ONNX Runtime; `SavedModelRunner`
loads the SavedModel in TensorFlow. Both pass every file through the safety gate
(`export_format.safety`) before anything loads or runs it, and both import their
runtime lazily, inside this module's functions: importing `export_format` never
imports onnxruntime or TensorFlow (tests/test_export_format.py checks this in a
fresh process; the import-linter contract in setup.cfg allows these lazy imports
here only).

A runner takes already-checked NumPy inputs named as the endpoint table says
(`export_format.endpoints`) and returns the endpoint's one output.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from export_format.endpoints import OUTPUT_NAMES, sampling_endpoints
from export_format.errors import ExportFormatError, RunInterrupted
from export_format.locate import ExportFiles

# Providers that do not compute here (Azure calls a remote endpoint); never offered.
NON_COMPUTE_PROVIDERS = frozenset({"AzureExecutionProvider"})
CPU_PROVIDER = "CPUExecutionProvider"
ORT_ERROR_LEVEL = 3  # sessions log errors only (shape-inference warnings inside Loop bodies are noise)
ORT_FATAL_LEVEL = 4  # runs: a cancel is not an error to log


def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0] if text else type(error).__name__


def available_providers() -> list[str]:
    """The onnxruntime execution providers usable here (CPU last, as the fallback)."""
    import onnxruntime

    providers = [p for p in onnxruntime.get_available_providers() if p not in NON_COMPUTE_PROVIDERS]
    if CPU_PROVIDER in providers:
        providers.remove(CPU_PROVIDER)
        providers.append(CPU_PROVIDER)
    return providers or [CPU_PROVIDER]


class OnnxRunner:
    """Endpoints run by onnxruntime from the export's ONNX files.

    Every listed ONNX file is checked by the gate when the runner is made (a protobuf
    parse, cheap), so a refused export fails at open; sessions are made lazily, the
    sampling ones at once. `interrupt()` aborts a running call from another thread
    (`RunOptions.terminate` stops a running ONNX `Loop`), which raises `RunInterrupted`.

    Args:
        files: the located export.
        provider: execution provider (CPU is always added as the fallback); None = the
            first of `available_providers()`.
        threads: intra-op threads (0 = onnxruntime's default).

    Raises:
        ExportFormatError: a file is missing or corrupt, or the provider is not available.
        UnsafeExportError: the gate refused a file.
    """

    runtime = "onnxruntime"

    def __init__(self, files: ExportFiles, provider: str | None = None, threads: int = 0) -> None:
        from export_format.safety import load_onnx_checked

        for path in files.onnx.values():
            load_onnx_checked(path)  # the gate, before any session exists
        import onnxruntime

        self._ort = onnxruntime
        self.files = files
        providers = available_providers()
        if provider is not None and provider not in providers:
            raise ExportFormatError(f"onnxruntime provider {provider!r} is not available here; choose one of {providers}")
        self.device = provider or providers[0]
        self._providers = [self.device] + ([CPU_PROVIDER] if self.device != CPU_PROVIDER else [])
        self._threads = threads
        self._sessions: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._current_run: Any = None
        self._interrupt_pending = False  # an interrupt that came while no call ran: stops the next one
        for endpoint in sampling_endpoints(files.manifest.sampler.default):  # the others' sessions when first used
            if endpoint in files.onnx:
                self._session(endpoint)

    def _session(self, endpoint: str) -> Any:
        session = self._sessions.get(endpoint)
        if session is not None:
            return session
        path = self.files.onnx.get(endpoint)
        if path is None:
            raise ExportFormatError(
                f"{self.files.source} has no ONNX file for {endpoint!r}; re-export it with --format both or use TensorFlow"
            )
        options = self._ort.SessionOptions()
        options.log_severity_level = ORT_ERROR_LEVEL
        if self._threads:
            options.intra_op_num_threads = self._threads
        try:
            session = self._ort.InferenceSession(str(path), sess_options=options, providers=self._providers)
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ExportFormatError(f"onnxruntime cannot load {path.name}: {_first_line(error)}") from error
        self._sessions[endpoint] = session
        return session

    def run(self, endpoint: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Run one endpoint on checked inputs; returns its output (float32)."""
        session = self._session(endpoint)
        feed = {}
        for spec in session.get_inputs():
            if spec.name not in inputs:
                raise ExportFormatError(
                    f"{endpoint}.onnx expects an input {spec.name!r} that the export contract does not define; "
                    "re-export the model"
                )
            feed[spec.name] = inputs[spec.name]
        run_options = self._ort.RunOptions()
        # Fatal only: a cancel makes every Loop level log "Exiting due to terminate flag" as an error;
        # real failures still raise, with onnxruntime's message.
        run_options.log_severity_level = ORT_FATAL_LEVEL
        with self._lock:
            if self._interrupt_pending:  # cancelled between the caller's last check and this call
                self._interrupt_pending = False
                raise RunInterrupted(f"{endpoint} cancelled")
            self._current_run = run_options
        try:
            (result,) = session.run([OUTPUT_NAMES[endpoint]], feed, run_options)
        except Exception as error:
            if run_options.terminate:
                raise RunInterrupted(f"{endpoint} cancelled") from error
            raise RuntimeError(f"onnxruntime failed in {endpoint}: {_first_line(error)}") from error
        finally:
            with self._lock:
                self._current_run = None
        return np.asarray(result, dtype=np.float32)

    def interrupt(self) -> None:
        """Abort the running call, or the next one when none runs (thread-safe).

        A cancel can arrive after a chunked run checked its stop flag and before it started
        the next call; remembering it closes that window. `clear_interrupt()` forgets it
        (a new run calls it first).
        """
        with self._lock:
            if self._current_run is not None:
                self._current_run.terminate = True
            else:
                self._interrupt_pending = True

    def clear_interrupt(self) -> None:
        """Forget an interrupt that no call has consumed yet (call before a new run)."""
        with self._lock:
            self._interrupt_pending = False

    def close(self) -> None:
        self._sessions.clear()


class SavedModelRunner:
    """Endpoints run by TensorFlow from the export's SavedModel (imports TensorFlow; slow start).

    The gate scans `saved_model.pb` before `tf.saved_model.load` runs anything in it.
    TensorFlow cannot abort a running signature: `interrupt()` does nothing, and a
    chunked run stops after the current chunk.

    Args:
        files: the located export; needs its SavedModel folder.

    Raises:
        ExportFormatError: no SavedModel, or TensorFlow cannot load it.
        UnsafeExportError: the gate refused it.
    """

    runtime = "tensorflow"

    def __init__(self, files: ExportFiles) -> None:
        from export_format.safety import check_savedmodel

        if files.savedmodel is None:
            raise ExportFormatError(f"{files.source} has no SavedModel; use onnxruntime or re-export with --format both")
        check_savedmodel(files.savedmodel)  # the gate, before TensorFlow reads the folder
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import tensorflow as tf

        self._tf = tf
        self.files = files
        try:
            self._loaded = tf.saved_model.load(str(files.savedmodel))
        except Exception as error:  # TF raises many types for a broken SavedModel
            raise ExportFormatError(f"TensorFlow cannot load {files.savedmodel}: {_first_line(error)}") from error
        self._signatures = dict(self._loaded.signatures)
        held = files.manifest.sampler.samplers
        for endpoint in dict.fromkeys(name for sampler in held for name in sampling_endpoints(sampler)):
            if endpoint not in self._signatures:
                raise ExportFormatError(f"SavedModel {files.savedmodel} has no {endpoint!r} signature; re-export the model")
        self.device = f"TensorFlow {'GPU' if tf.config.list_logical_devices('GPU') else 'CPU'}"

    def run(self, endpoint: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Run one endpoint's signature on checked inputs; returns its output (float32)."""
        signature = self._signatures.get(endpoint)
        if signature is None:
            raise ExportFormatError(f"SavedModel {self.files.savedmodel} has no {endpoint!r} signature; re-export the model")
        tf = self._tf
        feed = {}
        for name, spec in signature.structured_input_signature[1].items():
            if name not in inputs:
                raise ExportFormatError(f"signature {endpoint!r} expects an input {name!r} outside the export contract")
            feed[name] = tf.constant(inputs[name], dtype=spec.dtype)
        try:
            outputs = signature(**feed)
        except Exception as error:
            raise RuntimeError(f"TensorFlow failed in {endpoint}: {_first_line(error)}") from error
        return np.asarray(outputs[OUTPUT_NAMES[endpoint]].numpy(), dtype=np.float32)

    def interrupt(self) -> None:
        """TensorFlow cannot abort a running signature; a chunked run stops after this chunk."""

    def clear_interrupt(self) -> None:
        """Nothing to forget (`interrupt` keeps no state)."""

    def close(self) -> None:
        self._signatures.clear()
        self._loaded = None


Runner = OnnxRunner | SavedModelRunner


def open_runner(files: ExportFiles, runtime: str, provider: str | None = None, threads: int = 0) -> Runner:
    """The runner of `runtime` for these files (`files.require(runtime)` first: no silent switch)."""
    files.require(runtime)
    if runtime == "onnxruntime":
        return OnnxRunner(files, provider=provider, threads=threads)
    return SavedModelRunner(files)
