"""The export manifest as the app sees it: `export_format`'s, limited to what the app can show.

The app shows images of 1 or 3 channels; a point model (the toy) or another channel
count is a one-line `ModelError`. Everything else (reading, validation, versions) is
`export_format.manifest`.
"""

from __future__ import annotations

from typing import Any

from export_format import manifest as _manifest
from export_format.endpoints import INPAINTING_ENDPOINTS, SAMPLING_ENDPOINTS
from export_format.errors import ManifestError
from export_format.manifest import Manifest

__all__ = ["INPAINTING_ENDPOINTS", "SAMPLING_ENDPOINTS", "Manifest", "parse_manifest", "parse_manifest_text", "require_images"]


def require_images(manifest: Manifest, source: str) -> Manifest:
    """`manifest` when the app can show its samples: [H, W, C] images with C = 1 or 3.

    Raises:
        ManifestError (a ModelError): a point model or an unsupported channel count.
    """
    if not manifest.is_image:
        raise ManifestError(
            f"{source} is a model of {manifest.image_shape[0]}-D points (the toy experiment), not images; "
            "the app shows images (sample it with `export_format.load` instead)"
        )
    if manifest.channels not in (1, 3):
        raise ManifestError(f"{source}: the app handles 1 or 3 channels, the model has {manifest.channels}")
    return manifest


def parse_manifest(data: Any, source: str) -> Manifest:
    """A parsed manifest, validated by `export_format` and checked to be images the app can show."""
    return require_images(_manifest.parse(data, source), source)


def parse_manifest_text(text: str | bytes, source: str) -> Manifest:
    """`parse_manifest` of JSON text (bounded, plain data only)."""
    return require_images(_manifest.loads(text, source), source)
