"""What made an image, stored in and read back from PNG text chunks, strictly as data.

Saved PNGs carry a JSON text chunk `ncsn-desktop` (model, seed, the sampler and
its settings) plus a human-readable `Description`. Dropping such a PNG on the app restores the
settings. The chunk is untrusted input: it is parsed as bounded JSON
(`export_format.safe_json`: size and nesting depth limited, never evaluated),
and every used key is checked for type and range; unknown keys are ignored. The
sampler's settings are flat keys beside `sampler` (`steps_per_level`, `epsilon`,
`denoise` for annealed Langevin; `corrector_steps`, `snr`, `resample_steps` for
predictor-corrector; `order` for probability flow), checked by
`export_format.settings` (`Setting.check`, `SamplerSettings.validate`). A record
without `sampler` (written before there was a choice) is annealed Langevin.

A grid PNG (many images in one file) carries the record of its first image with
`count` = the number of images, so dropping it restores the whole batch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from desktop import __version__
from desktop.backend.base import MAX_BATCH, MAX_SEED, SamplerSettings
from desktop.samplers import ANNEALED_LANGEVIN, SAMPLERS, settings_text, short_label
from export_format import safe_json

METADATA_KEY = "ncsn-desktop"
RECORD_FORMAT = "ncsn-desktop-image"
RECORD_VERSION = 1
MAX_METADATA_CHARS = 16_384  # a record is ~300 characters
MAX_METADATA_DEPTH = 4  # a record is one flat object
MAX_NAME_CHARS = 256
MAX_START_LEVEL = 100_000
MODES = ("sample", "inpaint", "variation")


class MetadataError(ValueError):
    """A PNG carries no (valid) ncsn-desktop record; the message says why."""


@dataclass(frozen=True)
class ImageRecord:
    """The settings that produced one image.

    Attributes:
        mode: "sample", "inpaint" or "variation" (an image re-noised to level
            `start_level` and sampled again from there).
        model: export name from the manifest.
        dataset: data set named in the manifest.
        seed: this image's seed (int32, non-negative).
        settings: the sampler and its complete settings (inpainting-only ones 0 unless inpainting).
        runtime: "onnxruntime" or "tensorflow" (informational).
        start_level: the noise level the chain started at (0 = pure noise).
        count: images in the file (1; more for a grid, whose first image this record describes).
    """

    mode: str
    model: str
    dataset: str
    seed: int
    settings: SamplerSettings
    runtime: str = ""
    start_level: int = 0
    count: int = 1

    @property
    def sampler(self) -> str:
        return self.settings.sampler

    def to_json(self) -> str:
        fields = {
            "mode": self.mode,
            "model": self.model,
            "dataset": self.dataset,
            "seed": self.seed,
            "runtime": self.runtime,
            "sampler": self.sampler,
            "start_level": self.start_level,
            "count": self.count,
            **self.settings.values(),
        }
        return json.dumps({"format": RECORD_FORMAT, "version": RECORD_VERSION, **fields}, sort_keys=True)

    def describe(self) -> str:
        """One line for people (PNG `Description`, tooltips)."""
        seeds = f"seed {self.seed}" if self.count == 1 else f"{self.count} images, seeds {self.seed} and on"
        start = f", from level {self.start_level + 1}" if self.start_level else ""
        settings = settings_text(self.settings, inpainting=self.mode == "inpaint")
        return f"ncsn {self.mode} - model {self.model} ({self.dataset}), {seeds}, {settings}{start}"

    def for_image(self, seed: int) -> ImageRecord:
        """The same settings for one image of another seed."""
        return replace(self, seed=seed, count=1)


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
        data = safe_json.loads(text, source="metadata", max_bytes=4 * MAX_METADATA_CHARS, max_depth=MAX_METADATA_DEPTH)
    except safe_json.JsonLimitError as error:
        raise MetadataError(f"{error}; the PNG was not written by ncsn-desktop") from None
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
    settings = _sampler_settings(data)
    start_level = _field(data, "start_level", int) if "start_level" in data else 0
    if not 0 <= start_level <= MAX_START_LEVEL:
        raise MetadataError(f"metadata start_level must be in [0, {MAX_START_LEVEL}], got {start_level}")
    count = _field(data, "count", int) if "count" in data else 1
    if not 1 <= count <= MAX_BATCH:
        raise MetadataError(f"metadata count must be in [1, {MAX_BATCH}], got {count}")
    texts = {key: _field(data, key, str) for key in ("model", "dataset")}
    texts["runtime"] = _field(data, "runtime", str) if "runtime" in data else ""
    if any(len(value) > MAX_NAME_CHARS for value in texts.values()):
        raise MetadataError(f"metadata names must be at most {MAX_NAME_CHARS} characters")
    return ImageRecord(mode=mode, seed=seed, settings=settings, start_level=start_level, count=count, **texts)


def _sampler_settings(data: dict[str, Any]) -> SamplerSettings:
    """The record's sampler and settings, checked by `export_format.settings` (one validation).

    Raises:
        MetadataError: an unknown sampler, or a missing, mistyped or out-of-range setting.
    """
    sampler = _field(data, "sampler", str) if "sampler" in data else ANNEALED_LANGEVIN
    if sampler not in SAMPLERS:
        known = ", ".join(short_label(name) for name in SAMPLERS)
        raise MetadataError(f"metadata sampler {sampler[:40]!r} is not one this app has ({known})")
    values = {}
    for setting in SAMPLERS[sampler].settings:
        if setting.name not in data:
            if setting.inpainting_only:  # a sampling run's record may leave it out: off
                values[setting.name] = 0
                continue
            raise MetadataError(f"metadata lacks {setting.name!r}")
        values[setting.name] = setting.check(data[setting.name], f"metadata {setting.name}", MetadataError)
    # One level: the per-level call count must fit the graphs' int32 counters (no sane record comes near).
    return SamplerSettings(sampler=sampler, **values).validate(1, label="metadata ", error=MetadataError)


def save_png(path: str | os.PathLike[str], image: np.ndarray, record: ImageRecord, scale: int = 1) -> None:
    """Write one image (or a grid) as PNG with its record in text chunks.

    Args:
        path: target file.
        image: [H, W, C] float32 in [0, 1] (clipped) with C in {1, 3}.
        record: the settings that produced it (for a grid: its first image, `count` set).
        scale: whole-number enlargement, nearest neighbour (every pixel becomes scale x scale).
    """
    from PIL import Image, PngImagePlugin

    from desktop.imaging import to_pil, upscale

    info = PngImagePlugin.PngInfo()
    info.add_text(METADATA_KEY, record.to_json())
    info.add_text("Description", record.describe())
    info.add_text("Software", f"ncsn-desktop {__version__}")
    picture: Image.Image = to_pil(upscale(image, scale))
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
