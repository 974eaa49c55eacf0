"""Find an export's files and manifest from whatever the user opened (`export_format.locate`).

Users open an exported `.onnx` file, a SavedModel folder, or the export folder
holding both; `ModelFiles` is `export_format.ExportFiles`. The app additionally
needs an image model (`manifest.require_images`).
"""

from __future__ import annotations

import os

from desktop.backend.manifest import require_images
from export_format.layout import MANIFEST_FILE, ONNX_METADATA_KEY, RUNTIMES
from export_format.locate import ExportFiles as ModelFiles
from export_format.locate import locate

MANIFEST_METADATA_KEY = ONNX_METADATA_KEY

__all__ = ["MANIFEST_FILE", "MANIFEST_METADATA_KEY", "RUNTIMES", "ModelFiles", "locate_model"]


def locate_model(location: str | os.PathLike[str]) -> ModelFiles:
    """The export behind a user-chosen path, checked to be an image model the app can show.

    Raises:
        ModelError: missing, not a model, no valid manifest, refused (`UnsafeModelError`), or not images.
    """
    files = locate(location)
    require_images(files.manifest, str(files.source))
    return files
