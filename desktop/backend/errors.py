"""Errors of the inference back end; each message says what is wrong and what to do."""

from __future__ import annotations


class ModelError(Exception):
    """A model cannot be opened or run: missing, corrupt, or not an ncsn-tf export."""


class UnsafeModelError(ModelError):
    """A model file asks for something an image model never needs (files, processes,
    network, custom operators, data outside its folder); it is refused, not run."""


class RunInterrupted(Exception):
    """A running endpoint call was aborted on request (Cancel)."""


class RuntimeMissingError(ModelError):
    """The export has no files for the requested runtime (e.g. no ONNX files); nothing was opened.

    Attributes:
        wanted: the runtime asked for ("onnxruntime" or "tensorflow").
        available: the runtimes whose files the export has, preferred first.
    """

    def __init__(self, message: str, wanted: str, available: tuple[str, ...]) -> None:
        super().__init__(message)
        self.wanted = wanted
        self.available = tuple(available)
