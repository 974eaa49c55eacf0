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


class RuntimeMissingError(ExportFormatError):
    """The export has no files for the runtime asked for; nothing switches runtime silently.

    Attributes:
        wanted: the runtime asked for ("onnxruntime" or "tensorflow").
        available: the runtimes this export's files do serve (possibly empty).
    """

    def __init__(self, message: str, wanted: str, available: tuple[str, ...]) -> None:
        super().__init__(message)
        self.wanted = wanted
        self.available = tuple(available)

    def __reduce__(self):  # keep the attributes through pickling (process pools, Qt queued signals)
        return type(self), (str(self), self.wanted, self.available)


class DivergedError(ExportInputError):
    """A sampler returned non-finite values: the chain diverged (the step size is too large)."""


class RunInterrupted(Exception):
    """A running endpoint call was aborted on request (cancel); not an error of the export."""
