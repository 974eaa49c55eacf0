"""The run history: every finished and every cancelled run, with its images and settings. No Qt.

Entries are kept newest last, bounded in number (MAX_ENTRIES) and in pixel
bytes (MAX_PIXEL_BYTES, counted as 8-bit pixels: the same bound holds for
memory and, with PNG's compression, for the disk). The oldest entries go first.

On disk (the app passes a folder in the user's data folder):

```
history/index.json                 the entries' settings (bounded JSON, see below)
history/ENTRY_ID/images.png        the run's images tiled in a grid without gaps
history/ENTRY_ID/thumb.png         the strip's thumbnail
history/ENTRY_ID/original.png      inpainting: the picture; variations: the source image
history/ENTRY_ID/mask.png          inpainting: the mask, 255 = known pixel
```

The folder may have been edited, truncated or crafted, so it is read as
untrusted data: the index through `export_format.safe_json` (size and depth
bound), every field against an allowlist of types and ranges (an invalid entry
is dropped, the rest kept), entry ids against a fixed pattern (no paths from
the file are ever used), and PNGs only as 8-bit grey or RGB of exactly the size
the index states, checked before decoding. A corrupt index is set aside
(`index.json.corrupt`) and the history starts empty. Nothing is pickled.
Files are written by one background thread, each entry's images before the
index that names them, the index atomically (temporary file + rename).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from desktop.backend.base import MAX_BATCH, MAX_SEED, SamplerSettings
from desktop.imaging import grid_columns, image_grid, to_uint8
from desktop.masks import overlay_mask
from desktop.png_metadata import MAX_NAME_CHARS, ImageRecord
from desktop.samplers import ANNEALED_LANGEVIN, SAMPLERS, settings_text
from export_format import safe_json

HISTORY_FORMAT = "ncsn-desktop-history"
HISTORY_VERSION = 1
INDEX_FILE = "index.json"
CORRUPT_SUFFIX = ".corrupt"
MAX_ENTRIES = 100
MAX_PIXEL_BYTES = 256 * 2**20  # all entries' 8-bit pixels together
MAX_INDEX_BYTES = 4 * 2**20  # 100 entries of at most MAX_BATCH seeds each fit easily
MAX_INDEX_DEPTH = 6  # {"entries": [{"settings": {...}, "seeds": [...]}]}
MAX_IMAGE_SIDE = 4096  # the app's largest model side (desktop.state.MAX_MODEL_SIDE)
MAX_PATH_CHARS = 4096
THUMBNAIL_SIDE = 96
THUMBNAIL_IMAGES = 16
KINDS = ("sample", "inpaint", "variation")
STATUSES = ("finished", "cancelled")
ENTRY_FILES = ("images.png", "thumb.png", "original.png", "mask.png")
_ENTRY_ID = re.compile(r"\d{8}T\d{6}-[0-9a-f]{8}")


class HistoryError(ValueError):
    """A history entry is malformed; the message names the field."""


@dataclass(frozen=True)
class RunSettings:
    """The sampler settings of one run (every image's seed is in `HistoryEntry.seeds`).

    Attributes:
        sampler_settings: the sampler and its complete settings.
        start_level: the level the chain started at (variations; else 0).
    """

    sampler_settings: SamplerSettings
    start_level: int = 0

    @property
    def sampler(self) -> str:
        return self.sampler_settings.sampler


@dataclass(frozen=True)
class EntryImages:
    """The pictures of one entry (8-bit values as float32 in [0, 1]).

    Attributes:
        images: [B, H, W, C], or None when the run was cancelled before its first level.
        original: [H, W, C], the inpainted picture or the varied image, else None.
        mask: [H, W], 1 = known pixel (inpainting), else None.
    """

    images: np.ndarray | None
    original: np.ndarray | None = None
    mask: np.ndarray | None = None


@dataclass(frozen=True)
class HistoryEntry:
    """One run: what ran, on which model, how far it got, and with which seeds.

    Attributes:
        entry_id: "YYYYMMDDTHHMMSS-xxxxxxxx" (names its folder).
        kind: "sample", "inpaint" or "variation".
        status: "finished" or "cancelled".
        created: when it ended (Unix seconds).
        model, dataset: the manifest's names.
        model_path: the model as opened.
        runtime: "onnxruntime" or "tensorflow".
        image_shape: (H, W, C).
        seeds: one per image.
        settings: the sampler settings.
        levels_done, num_levels: levels run (of the model's L); equal when finished.
        seconds: the run's duration.
        has_images: False when cancelled before its first level (nothing to show).
    """

    entry_id: str
    kind: str
    status: str
    created: float
    model: str
    dataset: str
    model_path: str
    runtime: str
    image_shape: tuple[int, int, int]
    seeds: tuple[int, ...]
    settings: RunSettings
    levels_done: int
    num_levels: int
    seconds: float
    has_images: bool = True

    @property
    def count(self) -> int:
        return len(self.seeds)

    @property
    def cancelled(self) -> bool:
        return self.status == "cancelled"

    def records(self) -> tuple[ImageRecord, ...]:
        """One PNG record per image."""
        settings = self.settings
        return tuple(
            ImageRecord(
                mode=self.kind,
                model=self.model,
                dataset=self.dataset,
                seed=seed,
                settings=settings.sampler_settings,
                runtime=self.runtime,
                start_level=settings.start_level,
            )
            for seed in self.seeds
        )

    def pixel_bytes(self) -> int:
        """8-bit pixels of its images, original and mask (what the bound counts)."""
        height, width, channels = self.image_shape
        extra = (height * width * channels + height * width) if self.kind != "sample" else 0
        return self.count * height * width * channels + extra

    def label(self) -> str:
        """Two short lines for the history strip."""
        what = {"sample": "image", "inpaint": "variant", "variation": "variation"}[self.kind]
        first = f"{self.count} {what}{'s' if self.count != 1 else ''}"
        if self.cancelled:
            return f"{first}\ncancelled {self.levels_done}/{self.num_levels}"
        return f"{first}\n{time.strftime('%H:%M', time.localtime(self.created))}"

    def describe(self) -> str:
        """Several lines for a tooltip (plain text)."""
        seeds = f"seed {self.seeds[0]}" if self.count == 1 else f"seeds {self.seeds[0]} to {self.seeds[-1]}"
        settings = self.settings
        lines = [
            f"{self.kind.capitalize()}, {self.count} image(s), {seeds}",
            f"model {self.model} ({self.dataset}), {self.runtime}",
            settings_text(settings.sampler_settings, inpainting=self.kind == "inpaint"),
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.created)) + f", {self.seconds:.1f} s",
        ]
        if settings.start_level:
            lines.insert(3, f"re-noised to level {settings.start_level + 1} of {self.num_levels}")
        if self.cancelled:
            lines.append(
                f"CANCELLED after {self.levels_done} of {self.num_levels} levels: the images are unfinished"
                if self.has_images
                else "CANCELLED before the first level finished: no images"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        settings = self.settings
        return {
            "id": self.entry_id,
            "kind": self.kind,
            "status": self.status,
            "created": self.created,
            "model": self.model,
            "dataset": self.dataset,
            "model_path": self.model_path,
            "runtime": self.runtime,
            "image_shape": list(self.image_shape),
            "seeds": list(self.seeds),
            "settings": {  # flat: the sampler, its settings, the start level
                "sampler": settings.sampler,
                **settings.sampler_settings.values(),
                "start_level": settings.start_level,
            },
            "levels_done": self.levels_done,
            "num_levels": self.num_levels,
            "seconds": self.seconds,
            "has_images": self.has_images,
        }


def new_entry_id(now: float | None = None) -> str:
    """A fresh entry id: time of day plus 32 random bits."""
    return time.strftime("%Y%m%dT%H%M%S", time.localtime(now)) + "-" + secrets.token_hex(4)


# ----------------------------------------------------------------------------- validation


def _value(data: dict[str, Any], key: str, kind: type) -> Any:
    if key not in data:
        raise HistoryError(f"lacks {key!r}")
    value = data[key]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        raise HistoryError(f"{key!r} must be {kind.__name__}")
    return value


def _integer(data: dict[str, Any], key: str, low: int, high: int) -> int:
    value = _value(data, key, int)
    if not low <= value <= high:
        raise HistoryError(f"{key!r} must be in [{low}, {high}]")
    return value


def _text(data: dict[str, Any], key: str, limit: int = MAX_NAME_CHARS) -> str:
    value = _value(data, key, str)
    if len(value) > limit:
        raise HistoryError(f"{key!r} is longer than {limit} characters")
    return value


def _sampler_settings(data: dict[str, Any], num_levels: int) -> SamplerSettings:
    """An entry's sampler and settings, checked by `export_format.settings` against its ladder.

    An entry without `sampler` (written before there was a choice) is annealed Langevin;
    inpainting-only settings may be left out (off).

    Raises:
        HistoryError: an unknown sampler, or a missing, mistyped or out-of-range setting.
    """
    sampler = _value(data, "sampler", str) if "sampler" in data else ANNEALED_LANGEVIN
    if sampler not in SAMPLERS:
        raise HistoryError(f"unknown sampler {sampler[:40]!r}")
    values = {}
    for setting in SAMPLERS[sampler].settings:
        if setting.name not in data and setting.inpainting_only:
            values[setting.name] = 0
        elif setting.name not in data:
            raise HistoryError(f"lacks {setting.name!r}")
        else:
            values[setting.name] = setting.check(data[setting.name], repr(setting.name), HistoryError)
    return SamplerSettings(sampler=sampler, **values).validate(num_levels, error=HistoryError)


def entry_from_dict(data: Any) -> HistoryEntry:
    """Validate one index entry (an allowlist of fields, types and ranges; unknown fields ignored).

    Raises:
        HistoryError: a field is missing, of the wrong type or out of range.
    """
    if not isinstance(data, dict):
        raise HistoryError("an entry is not a JSON object")
    entry_id = _value(data, "id", str)
    if not _ENTRY_ID.fullmatch(entry_id):
        raise HistoryError("'id' is not an entry id")
    kind, status = _value(data, "kind", str), _value(data, "status", str)
    if kind not in KINDS or status not in STATUSES:
        raise HistoryError("unknown kind or status")
    shape = _value(data, "image_shape", list)
    if (
        len(shape) != 3
        or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape)
        or not (1 <= shape[0] <= MAX_IMAGE_SIDE and 1 <= shape[1] <= MAX_IMAGE_SIDE and shape[2] in (1, 3))
    ):
        raise HistoryError("'image_shape' must be [H, W, 1 or 3] within the app's bounds")
    seeds = _value(data, "seeds", list)
    if not 1 <= len(seeds) <= MAX_BATCH or not all(
        isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= MAX_SEED for s in seeds
    ):
        raise HistoryError(f"'seeds' must be 1 to {MAX_BATCH} seeds in [0, {MAX_SEED}]")
    num_levels = _integer(data, "num_levels", 1, 100_000)
    raw_settings = _value(data, "settings", dict)
    settings = RunSettings(
        sampler_settings=_sampler_settings(raw_settings, num_levels),
        start_level=_integer(raw_settings, "start_level", 0, num_levels - 1),
    )
    created, seconds = _value(data, "created", float), _value(data, "seconds", float)
    if not (math.isfinite(created) and math.isfinite(seconds) and seconds >= 0):
        raise HistoryError("'created' and 'seconds' must be finite")
    entry = HistoryEntry(
        entry_id=entry_id,
        kind=kind,
        status=status,
        created=created,
        model=_text(data, "model"),
        dataset=_text(data, "dataset"),
        model_path=_text(data, "model_path", MAX_PATH_CHARS),
        runtime=_text(data, "runtime"),
        image_shape=(shape[0], shape[1], shape[2]),
        seeds=tuple(seeds),
        settings=settings,
        levels_done=_integer(data, "levels_done", 0, num_levels),
        num_levels=num_levels,
        seconds=seconds,
        has_images=_value(data, "has_images", bool),
    )
    if entry.pixel_bytes() > MAX_PIXEL_BYTES:
        raise HistoryError("its images are larger than the history keeps")
    if status == "finished" and (entry.levels_done != num_levels or not entry.has_images):
        raise HistoryError("a finished run must have run every level")
    return entry


# ----------------------------------------------------------------------------- pictures


def _tile(images: np.ndarray) -> np.ndarray:
    """[B, H, W, C] -> one [rows*H, columns*W, C] picture without gaps (the storage layout)."""
    return image_grid(images, grid_columns(len(images)), padding=0, pad_value=0.0)


def _untile(picture: np.ndarray, count: int, shape: tuple[int, int, int]) -> np.ndarray:
    """The inverse of `_tile`: [rows*H, columns*W, C] -> [count, H, W, C]."""
    height, width, _ = shape
    columns = grid_columns(count)
    return np.stack(
        [
            picture[row * height : (row + 1) * height, column * width : (column + 1) * width]
            for row, column in (divmod(index, columns) for index in range(count))
        ]
    )


def thumbnail(images: EntryImages) -> np.ndarray | None:
    """A small picture for the strip: the original (if any) and the first images, at most THUMBNAIL_SIDE px.

    Returns:
        [h, w, C] float32 in [0, 1], or None when there is nothing to show.
    """
    from PIL import Image

    from desktop.imaging import to_pil

    tiles = []
    if images.original is not None:
        original = images.original
        if images.mask is not None:
            original = overlay_mask(original, images.mask)  # [H, W, 3]
        tiles.append(original)
    if images.images is not None:
        tiles.extend(images.images[: THUMBNAIL_IMAGES - len(tiles)])
    if not tiles:
        return None
    if any(tile.shape[-1] == 3 for tile in tiles):
        tiles = [np.repeat(tile, 3, axis=-1) if tile.shape[-1] == 1 else tile for tile in tiles]
    grid = image_grid(np.stack(tiles), padding=1, pad_value=0.15)  # [gh, gw, C]
    side = max(grid.shape[:2])
    if side <= THUMBNAIL_SIDE:
        zoom = THUMBNAIL_SIDE // side
        return np.repeat(np.repeat(grid, zoom, axis=0), zoom, axis=1)
    factor = THUMBNAIL_SIDE / side
    size = (max(1, round(grid.shape[1] * factor)), max(1, round(grid.shape[0] * factor)))
    small = np.asarray(to_pil(grid).resize(size, Image.Resampling.LANCZOS), dtype=np.float32) / 255.0
    return small[:, :, None] if small.ndim == 2 else small


def _write_png(path: Path, pixels: np.ndarray) -> None:
    """[h, w, C] float32 in [0, 1] (or [h, w]) as an 8-bit PNG."""
    from PIL import Image

    data = to_uint8(pixels)
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[:, :, 0]
    Image.fromarray(data, mode="L" if data.ndim == 2 else "RGB").save(path, format="PNG", compress_level=6)


def _read_png(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    """A PNG that must be exactly (width, height) and grey (1) or RGB (3); checked before decoding.

    Returns:
        [h, w, C] float32 in [0, 1].

    Raises:
        HistoryError: missing, not such a PNG, or too large a file.
    """
    from PIL import Image, UnidentifiedImageError

    width, height = size
    try:
        if path.is_symlink() or not path.is_file():
            raise HistoryError(f"{path.name} is missing")
        if path.stat().st_size > 2 * width * height * channels + 65_536:  # far more than any PNG of that size
            raise HistoryError(f"{path.name} is larger than such a picture can be")
        with Image.open(path) as picture:
            if picture.format != "PNG" or picture.size != (width, height):
                raise HistoryError(f"{path.name} is not a {width} x {height} PNG")
            if picture.mode != ("L" if channels == 1 else "RGB"):
                raise HistoryError(f"{path.name} is not {'grey' if channels == 1 else 'RGB'}")
            pixels = np.asarray(picture, dtype=np.float32) / 255.0
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError, SyntaxError) as error:
        if isinstance(error, HistoryError):
            raise
        raise HistoryError(f"{path.name} cannot be read ({type(error).__name__})") from None
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


# ----------------------------------------------------------------------------- the history


class History:
    """The bounded run history, optionally kept in a folder.

    Args:
        folder: where to keep it (None: this session only).
        writable: False to read the folder but never change it (a second
            instance of the app: the first one owns the folder).
    """

    def __init__(self, folder: str | os.PathLike[str] | None = None, writable: bool = True) -> None:
        self.folder = Path(folder) if folder is not None else None
        self.writable = writable and self.folder is not None
        self.entries: list[HistoryEntry] = []  # oldest first
        self._images: dict[str, _Pixels] = {}  # 8-bit, so memory holds what the byte bound counts
        self._thumbnails: dict[str, np.ndarray | None] = {}
        self._writer: ThreadPoolExecutor | None = None
        self._pending: list[Future[None]] = []
        self.errors: list[str] = []  # problems writing, for the app to report

    # ------------------------------------------------------------------ reading

    def load(self) -> str:
        """Read the folder's index and thumbnails; "" or a one-line note of what was skipped."""
        self.entries, self._images, self._thumbnails = [], {}, {}
        if self.folder is None:
            return ""
        index = self.folder / INDEX_FILE
        try:
            data = safe_json.load(index, max_bytes=MAX_INDEX_BYTES, max_depth=MAX_INDEX_DEPTH)
        except FileNotFoundError:
            return ""
        except ValueError as error:
            self._set_aside(index)
            return f"The history could not be read and starts empty ({error})."
        if not isinstance(data, dict) or data.get("format") != HISTORY_FORMAT or data.get("version") != HISTORY_VERSION:
            self._set_aside(index)
            return f"{index} is not a history this app wrote; the history starts empty."
        raw_entries = data.get("entries")
        if not isinstance(raw_entries, list):
            self._set_aside(index)
            return f"{index} has no list of entries; the history starts empty."
        skipped, seen = 0, set()
        for raw in raw_entries[-MAX_ENTRIES:]:
            try:
                entry = entry_from_dict(raw)
            except HistoryError:
                skipped += 1
                continue
            if entry.entry_id in seen:
                skipped += 1
                continue
            seen.add(entry.entry_id)
            self.entries.append(entry)
        self._trim(delete=False)
        for entry in self.entries:
            self._thumbnails[entry.entry_id] = self._read_thumbnail(entry)
        return f"{skipped} damaged history entries were skipped." if skipped else ""

    def _entry_folder(self, entry_id: str) -> Path | None:
        """The folder of an entry, only for well-formed ids inside the history folder (never a symlink)."""
        if self.folder is None or not _ENTRY_ID.fullmatch(entry_id):
            return None
        folder = self.folder / entry_id
        return None if folder.is_symlink() else folder

    def _read_thumbnail(self, entry: HistoryEntry) -> np.ndarray | None:
        folder = self._entry_folder(entry.entry_id)
        if folder is None:
            return None
        path = folder / "thumb.png"
        try:
            from PIL import Image

            with Image.open(path) as picture:
                size = picture.size
        except (OSError, ValueError, SyntaxError):
            return None
        if max(size) > THUMBNAIL_SIDE or min(size) < 1:
            return None
        try:
            channels = 3 if entry.image_shape[2] == 3 or entry.kind == "inpaint" else 1  # the mask tint is RGB
            return _read_png(path, size, channels)
        except HistoryError:
            return None

    def get(self, entry_id: str) -> HistoryEntry | None:
        return next((entry for entry in self.entries if entry.entry_id == entry_id), None)

    def thumbnail(self, entry_id: str) -> np.ndarray | None:
        """[h, w, C] float32 in [0, 1] for the strip, or None."""
        return self._thumbnails.get(entry_id)

    def images(self, entry_id: str) -> EntryImages | None:
        """The entry's pictures (read from disk the first time), or None when they are gone or damaged."""
        if entry_id in self._images:
            return self._images[entry_id].as_float()
        entry = self.get(entry_id)
        folder = self._entry_folder(entry_id)
        if entry is None or folder is None:
            return None
        self.flush()  # the entry may still be being written
        height, width, channels = entry.image_shape
        try:
            images = None
            if entry.has_images:
                columns = grid_columns(entry.count)
                rows = -(-entry.count // columns)
                tiled = _read_png(folder / "images.png", (columns * width, rows * height), channels)
                images = _untile(tiled, entry.count, entry.image_shape)
            original = mask = None
            if entry.kind != "sample":
                original = _read_png(folder / "original.png", (width, height), channels)
            if entry.kind == "inpaint":
                mask = (_read_png(folder / "mask.png", (width, height), 1)[:, :, 0] >= 0.5).astype(np.float32)
        except HistoryError:
            return None
        pixels = _Pixels.of(EntryImages(images, original, mask))
        self._images[entry_id] = pixels
        return pixels.as_float()

    # ------------------------------------------------------------------ writing

    def add(self, entry: HistoryEntry, images: EntryImages) -> HistoryEntry | None:
        """Append a run (evicting the oldest beyond the bounds).

        Returns:
            The entry stored, or None when it alone is larger than the history keeps.
        """
        if entry.pixel_bytes() > MAX_PIXEL_BYTES:
            return None
        if images.images is None:
            entry = replace(entry, has_images=False)
        pixels = _Pixels.of(images)
        stored = pixels.as_float()  # what the disk will hold, exactly
        self.entries.append(entry)
        self._images[entry.entry_id] = pixels
        self._thumbnails[entry.entry_id] = thumbnail(stored)
        removed = self._trim(delete=True)
        if self.writable:
            self._submit(self._write_entry, entry, stored, self._thumbnails[entry.entry_id])
            self._submit_index(removed)
        return entry

    def remove(self, entry_id: str) -> None:
        """Forget one entry (and its files)."""
        entry = self.get(entry_id)
        if entry is None:
            return
        self.entries.remove(entry)
        self._images.pop(entry_id, None)
        self._thumbnails.pop(entry_id, None)
        if self.writable:
            self._submit_index([entry_id])

    def clear(self) -> None:
        """Forget every entry (and their files)."""
        removed = [entry.entry_id for entry in self.entries]
        self.entries, self._images, self._thumbnails = [], {}, {}
        if self.writable:
            self._submit_index(removed)

    def total_pixel_bytes(self) -> int:
        return sum(entry.pixel_bytes() for entry in self.entries)

    def _trim(self, delete: bool) -> list[str]:
        """Drop the oldest entries beyond MAX_ENTRIES / MAX_PIXEL_BYTES; their ids."""
        removed = []
        while self.entries and (len(self.entries) > MAX_ENTRIES or self.total_pixel_bytes() > MAX_PIXEL_BYTES):
            oldest = self.entries.pop(0)
            self._images.pop(oldest.entry_id, None)
            self._thumbnails.pop(oldest.entry_id, None)
            removed.append(oldest.entry_id)
        return removed if delete else []

    def _submit(self, function: Any, *args: Any) -> None:
        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="history-writer")
        self._pending = [future for future in self._pending if not future.done()]
        self._pending.append(self._writer.submit(self._guarded, function, *args))

    def _guarded(self, function: Any, *args: Any) -> None:
        try:
            function(*args)
        except OSError as error:
            self.errors.append(f"Could not write the history in {self.folder}: {error.strerror or error}")

    def _submit_index(self, removed: list[str]) -> None:
        text = json.dumps(
            {
                "format": HISTORY_FORMAT,
                "version": HISTORY_VERSION,
                "entries": [entry.to_dict() for entry in self.entries],
            }
        )
        self._submit(self._write_index, text, removed)

    def _write_entry(self, entry: HistoryEntry, images: EntryImages, thumb: np.ndarray | None) -> None:
        folder = self._entry_folder(entry.entry_id)
        assert folder is not None
        folder.mkdir(parents=True, exist_ok=True)
        if images.images is not None:
            _write_png(folder / "images.png", _tile(images.images))
        if images.original is not None:
            _write_png(folder / "original.png", images.original)
        if images.mask is not None:
            _write_png(folder / "mask.png", images.mask)
        if thumb is not None:
            _write_png(folder / "thumb.png", thumb)

    def _write_index(self, text: str, removed: list[str]) -> None:
        assert self.folder is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        index = self.folder / INDEX_FILE
        temporary = index.with_name(f".{INDEX_FILE}.{os.getpid()}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, index)
        for entry_id in removed:
            self._delete_files(entry_id)

    def _delete_files(self, entry_id: str) -> None:
        """Remove an entry's own files and then its folder (only the names the app writes; never recursive)."""
        folder = self._entry_folder(entry_id)
        if folder is None or not folder.is_dir():
            return
        for name in ENTRY_FILES:
            path = folder / name
            if path.is_file() or path.is_symlink():
                path.unlink()
        with contextlib.suppress(OSError):  # something else in there: leave the folder
            folder.rmdir()

    def _set_aside(self, index: Path) -> None:
        """Keep a corrupt index for inspection instead of overwriting it (writable histories only)."""
        if self.writable:
            with contextlib.suppress(OSError):
                os.replace(index, index.with_name(INDEX_FILE + CORRUPT_SUFFIX))

    def flush(self) -> None:
        """Wait until every write so far is on disk."""
        for future in list(self._pending):
            future.result()
        self._pending = []

    def close(self) -> None:
        """Finish writing and stop the writer thread."""
        self.flush()
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None


@dataclass(frozen=True)
class _Pixels:
    """An entry's pictures as 8-bit arrays (images [B, H, W, C], original [H, W, C], mask [H, W] 0/1)."""

    images: np.ndarray | None
    original: np.ndarray | None
    mask: np.ndarray | None

    @classmethod
    def of(cls, pictures: EntryImages) -> _Pixels:
        return cls(
            None if pictures.images is None else to_uint8(np.asarray(pictures.images, dtype=np.float32)),
            None if pictures.original is None else to_uint8(np.asarray(pictures.original, dtype=np.float32)),
            None if pictures.mask is None else (np.asarray(pictures.mask) >= 0.5).astype(np.uint8),
        )

    def as_float(self) -> EntryImages:
        """float32 in [0, 1] (the 8-bit values), as the app uses them."""
        return EntryImages(
            None if self.images is None else self.images.astype(np.float32) / 255.0,
            None if self.original is None else self.original.astype(np.float32) / 255.0,
            None if self.mask is None else self.mask.astype(np.float32),
        )
