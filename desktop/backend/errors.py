"""Errors of the inference back end: those of the export contract, under the app's names.

`ModelError` is `export_format.ExportFormatError` (a model cannot be opened or run:
missing, corrupt, refused, not an ncsn-tf export), `UnsafeModelError` is
`export_format.UnsafeExportError` (refused by the safety gate, never run), and
`RuntimeMissingError` says which runtimes an export does have (`.wanted`,
`.available`) so the app can let the user choose instead of switching silently.
"""

from __future__ import annotations

from export_format.errors import ExportFormatError as ModelError
from export_format.errors import RunInterrupted, RuntimeMissingError
from export_format.errors import UnsafeExportError as UnsafeModelError

__all__ = ["ModelError", "RunInterrupted", "RuntimeMissingError", "UnsafeModelError"]
