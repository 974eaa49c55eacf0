"""What made an image, stored in and read back from PNG text chunks, strictly as data.

Saved PNGs carry a JSON text chunk `ncsn-desktop` (model, seed, sampler settings)
plus a human-readable `Description`. Dropping such a PNG on the app restores the
settings. The chunk is untrusted input: it is parsed with `json.loads` (never
evaluated), size-limited, and every used key is checked for type and range;
unknown keys are ignored.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from desktop import __version__
from desktop.backend.base import MAX_SEED, MAX_STEPS_PER_LEVEL

METADATA_KEY = "ncsn-desktop"
RECORD_FORMAT = "ncsn-desktop-image"
RECORD_VERSION = 1
MAX_METADATA_CHARS = 16_384  # a record is ~300 characters
MAX_NAME_CHARS = 256
MODES = ("sample", "inpaint")


class MetadataError(ValueError):
    """A PNG carries no (valid) ncsn-desktop record; the message says why."""


@dataclass(frozen=True)
class ImageRecord:
    """The settings that produced one image.

    Attributes:
        mode: "sample" or "inpaint".
        model: export name from the manifest.
        dataset: data set named in the manifest.
        seed: this image's seed (int32, non-negative).
        steps_per_level: T.
        epsilon: Langevin step-size scale.
        denoise: final denoising step on/off.
        runtime: "onnxruntime" or "tensorflow" (informational).
    """

    mode: str
    model: str
    dataset: str
    seed: int
    steps_per_level: int
    epsilon: float
    denoise: bool
    runtime: str = ""

    def to_json(self) -> str:
        return json.dumps({"format": RECORD_FORMAT, "version": RECORD_VERSION, **asdict(self)}, sort_keys=True)

    def describe(self) -> str:
        """One line for people (PNG `Description`, tooltips)."""
        return (
            f"ncsn {self.mode} - model {self.model} ({self.dataset}), seed {self.seed}, "
            f"{self.steps_per_level} steps/level, epsilon {self.epsilon:g}, denoise {'on' if self.denoise else 'off'}"
        )


def _reject_constant(name: str) -> Any:
    raise MetadataError(f"metadata holds {name}, which is not a number; the PNG was not written by ncsn-desktop")


def _field(data: dict[str, Any], key: str, kind: type) -> Any:
    if key not in data:
        raise MetadataError(f"metadata lacks {key!r}")
    value = data[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        raise MetadataError(f"metadata {key!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


def parse_record(text: str) -> ImageRecord:
    """Validate the JSON text of a record.

    Raises:
        MetadataError: not JSON, not an object, wrong format/version, or a key has
            the wrong type or is out of range.
    """
    if len(text) > MAX_METADATA_CHARS:
        raise MetadataError(f"metadata is {len(text)} characters, more than a record can be ({MAX_METADATA_CHARS})")
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except ValueError as error:
        if isinstance(error, MetadataError):
            raise
        raise MetadataError(f"metadata is not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise MetadataError("metadata is not a JSON object")
    if data.get("format") != RECORD_FORMAT:
        raise MetadataError(f"metadata format is {data.get('format')!r}, not {RECORD_FORMAT!r}")
    version = _field(data, "version", int)
    if version != RECORD_VERSION:
        raise MetadataError(f"metadata version {version} is not supported (this app reads {RECORD_VERSION})")
    mode = _field(data, "mode", str)
    if mode not in MODES:
        raise MetadataError(f"metadata mode must be one of {MODES}, got {mode!r}")
    seed = _field(data, "seed", int)
    if not 0 <= seed <= MAX_SEED:
        raise MetadataError(f"metadata seed must be in [0, {MAX_SEED}], got {seed}")
    steps = _field(data, "steps_per_level", int)
    if not 1 <= steps <= MAX_STEPS_PER_LEVEL:
        raise MetadataError(f"metadata steps_per_level must be in [1, {MAX_STEPS_PER_LEVEL}], got {steps}")
    epsilon = _field(data, "epsilon", float)
    if not (math.isfinite(epsilon) and 0.0 < epsilon < 1.0):
        raise MetadataError(f"metadata epsilon must be in (0, 1), got {epsilon}")
    texts = {key: _field(data, key, str) for key in ("model", "dataset")}
    texts["runtime"] = _field(data, "runtime", str) if "runtime" in data else ""
    if any(len(value) > MAX_NAME_CHARS for value in texts.values()):
        raise MetadataError(f"metadata names must be at most {MAX_NAME_CHARS} characters")
    return ImageRecord(
        mode=mode,
        seed=seed,
        steps_per_level=steps,
        epsilon=epsilon,
        denoise=_field(data, "denoise", bool),
        **texts,
    )


def save_png(path: str | os.PathLike[str], image: np.ndarray, record: ImageRecord) -> None:
    """Write one image as PNG with its record in text chunks.

    Args:
        path: target file.
        image: [H, W, C] float32 in [0, 1] (clipped) with C in {1, 3}.
        record: the settings that produced it.
    """
    from PIL import Image, PngImagePlugin

    from desktop.imaging import to_pil

    info = PngImagePlugin.PngInfo()
    info.add_text(METADATA_KEY, record.to_json())
    info.add_text("Description", record.describe())
    info.add_text("Software", f"ncsn-desktop {__version__}")
    picture: Image.Image = to_pil(image)
    picture.save(os.fspath(path), format="PNG", pnginfo=info)


def read_png_record(path: str | os.PathLike[str]) -> ImageRecord:
    """The record of a PNG written by `save_png`.

    Raises:
        MetadataError: the file cannot be read as PNG or carries no valid record.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(os.fspath(path)) as picture:
            if picture.format != "PNG":
                raise MetadataError(f"{os.path.basename(path)} is a {picture.format} file, not a PNG with settings")
            texts = dict(getattr(picture, "text", {}))
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
        if isinstance(error, MetadataError):
            raise
        raise MetadataError(f"cannot read {os.path.basename(path)} as an image ({error})") from error
    text = texts.get(METADATA_KEY)
    if text is None:
        raise MetadataError(f"{os.path.basename(path)} carries no ncsn-desktop settings")
    return parse_record(text)
