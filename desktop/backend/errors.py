"""Errors of the inference back end; each message says what is wrong and what to do."""

from __future__ import annotations


class ModelError(Exception):
    """A model cannot be opened or run: missing, corrupt, or not an ncsn-tf export."""


class UnsafeModelError(ModelError):
    """A model file asks for something an image model never needs (files, processes,
    network, custom operators, data outside its folder); it is refused, not run."""


class RunInterrupted(Exception):
    """A running endpoint call was aborted on request (Cancel)."""
