"""The errors of the export contract. Each message is one line: the file, the problem, what to do."""

from __future__ import annotations


class ExportFormatError(ValueError):
    """Base class: an export folder, file or input does not meet the contract."""


class ManifestError(ExportFormatError):
    """`manifest.json` (or an embedded copy) is missing, malformed, of an unknown version, or absurd."""


class UnsafeExportError(ExportFormatError):
    """A model file asks for something our exporter never writes (file, process or network
    operations, custom operators, data or paths outside the export folder); refused, never run."""


class ExportInputError(ExportFormatError):
    """An input to an exported endpoint (seeds, images, masks, sampler settings) is out of contract."""
