"""Compatibility alias: the checked Python API of an export now lives in `export_format`.

`export.runtime.load` / `ExportedSampler` are `export_format.load` /
`export_format.ExportedSampler` (TF-free, through the safety gate); this module
stays so that code written against it keeps working. New code imports
`export_format` directly.
"""

from __future__ import annotations

import os
from typing import Any

from export_format import ExportedSampler, ExportInputError, load
from export_format import manifest as _manifest
from export_format.endpoints import OUTPUT_NAMES as ENDPOINT_OUTPUTS
from export_format.layout import MANIFEST_FILE, RUNTIMES

__all__ = ["ENDPOINT_OUTPUTS", "MANIFEST_FILE", "RUNTIMES", "ExportInputError", "ExportedSampler", "load", "read_manifest"]


def read_manifest(export_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of an export folder as validated JSON (`export_format.read_manifest` gives the typed one)."""
    return _manifest.read(export_dir).raw
