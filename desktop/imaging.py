"""Pictures in and out: loading, fitting to the model's size and channels, grids, enlarging. No Qt.

Images are float32 in [0, 1], [H, W, C] (one) or [B, H, W, C] (a batch), C in {1, 3}.

Pictures to inpaint can be photos of any size while the model needs a few
pixels, so a picture is shrunk while it is loaded (`load_picture`, run off the
UI thread by the app) to a working copy of at most WORKING_SIDE pixels on its
long side; everything later (fitting, the preview) uses that copy. Decoding
needs the whole picture in memory once, so pictures of more than
MAX_DECODE_PIXELS pixels are refused before decoding (the bound is stated in
the error and in docs/desktop.md).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

PICTURE_FORMATS = ("PNG", "JPEG", "BMP")
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
# Decoding holds the full picture once (at most 4 bytes per pixel, plus 1 for a palette
# picture converted to RGBA): 100 megapixels need at most ~500 MB while loading.
MAX_DECODE_PIXELS = 100_000_000
DECODE_BYTES_PER_PIXEL = 5
WORKING_SIDE = 2048  # pictures are shrunk to at most this many pixels on the long side when loaded
FIT_MODES = ("crop", "stretch", "pad")  # centre-crop to the model's aspect / squash / letterbox
MIN_SAVED_SIDE = 256  # saved PNGs are enlarged (nearest neighbour) to at least this many pixels by default
MAX_SAVE_SCALE = 64


class PictureError(ValueError):
    """A picture cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class FittedPicture:
    """A picture converted to the model's size and channels.

    Attributes:
        image: [H, W, C] float32 in [0, 1], the model-sized picture.
        source_size: (width, height) of the original picture in pixels.
        box: (left, top, right, bottom) of the region used, in original pixels;
            extends past the picture for "pad" (the padding is black). In the
            pixels of the (possibly shrunk) working copy that was fitted.
        mode: the fit mode used.
    """

    image: np.ndarray
    source_size: tuple[int, int]
    box: tuple[float, float, float, float]
    mode: str


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] (clipped) -> uint8, rounding to nearest."""
    return np.round(np.clip(images, 0.0, 1.0) * 255.0).astype(np.uint8)


def to_pil(image: np.ndarray) -> Image.Image:
    """[H, W, C] float32 in [0, 1] (C 1 or 3) -> an "L" or "RGB" PIL image."""
    from PIL import Image

    pixels = to_uint8(image)  # [H, W, C] uint8
    if pixels.ndim != 3 or pixels.shape[2] not in (1, 3):
        raise ValueError(f"image must be [H, W, 1 or 3], got {list(pixels.shape)}")
    if pixels.shape[2] == 1:
        return Image.fromarray(pixels[:, :, 0], mode="L")
    return Image.fromarray(pixels, mode="RGB")


@dataclass(frozen=True)
class LoadedPicture:
    """A picture as loaded: a working copy of bounded size, and what the file was.

    Attributes:
        image: "L" or "RGB" PIL image, at most WORKING_SIDE pixels on its long
            side (transparency already composited on white).
        original_size: (width, height) of the picture in the file.
        path: the file it came from.
    """

    image: Image.Image
    original_size: tuple[int, int]
    path: str

    @property
    def shrunk(self) -> bool:
        return self.image.size != self.original_size


def _open_checked(path: str | os.PathLike[str]) -> Image.Image:
    """Open (not decode) a picture, refusing formats we do not read and sizes we cannot decode safely."""
    from PIL import Image

    name = os.path.basename(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own bound is checked below
            picture = Image.open(os.fspath(path))
    except Image.DecompressionBombError:  # Pillow's own, larger bound: state ours, with the picture's size
        width, height = _header_size(path)
        raise _too_large(name, width, height) from None
    if picture.format not in PICTURE_FORMATS:
        picture.close()
        raise PictureError(f"{name} is a {picture.format} picture; open a PNG, JPEG or BMP file")
    if picture.width * picture.height > MAX_DECODE_PIXELS:
        picture.close()
        raise _too_large(name, picture.width, picture.height)
    return picture


def _too_large(name: str, width: int, height: int) -> PictureError:
    return PictureError(
        f"{name} is {width} x {height} ({width * height / 1e6:.0f} megapixels); the app decodes at most "
        f"{MAX_DECODE_PIXELS / 1e6:.0f} megapixels (about {MAX_DECODE_PIXELS * DECODE_BYTES_PER_PIXEL / 1e9:.1f} "
        "GB while loading): shrink it first"
    )


def _header_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) from a PNG/JPEG/BMP header, read by the format's own Pillow plugin (no decoding)."""
    from PIL import BmpImagePlugin, JpegImagePlugin, PngImagePlugin

    for plugin in (PngImagePlugin.PngImageFile, JpegImagePlugin.JpegImageFile, BmpImagePlugin.BmpImageFile):
        try:
            with plugin(os.fspath(path)) as picture:
                return picture.size
        except (OSError, SyntaxError, ValueError):
            continue
    raise PictureError(f"cannot read {os.path.basename(path)} as a picture; is it a PNG, JPEG or BMP?")


def _flatten(picture: Image.Image) -> Image.Image:
    """The picture as "L" or "RGB"; transparency becomes white."""
    from PIL import Image

    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))  # transparent -> white
        return Image.alpha_composite(background, rgba).convert("RGB")
    if picture.mode in ("L", "RGB"):
        return picture
    if picture.mode in ("1", "I;16", "I;16B", "I;16L", "I", "F"):
        return picture.convert("L") if picture.mode == "1" else _to_8bit_grey(picture)
    return picture.convert("RGB")  # P without transparency, CMYK, YCbCr, ...


def _to_8bit_grey(picture: Image.Image) -> Image.Image:
    """A 16-bit or float grey picture as 8-bit "L", scaled by its type's range."""
    from PIL import Image

    pixels = np.asarray(picture, dtype=np.float32)  # [h, w] (already shrunk to the working size)
    top = 1.0 if picture.mode == "F" else (65535.0 if pixels.max(initial=0) > 255 else 255.0)
    return Image.fromarray(np.round(np.clip(pixels / top, 0, 1) * 255).astype(np.uint8), mode="L")


def _shrink(picture: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The picture resized to `size` (Lanczos); palette and 1-bit pictures are flattened first."""
    from PIL import Image

    if picture.size == size:
        return picture
    if picture.mode in ("P", "PA", "1"):  # Pillow resizes these nearest-neighbour only
        picture = _flatten(picture)
    try:
        return picture.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    except ValueError:  # a mode Pillow cannot filter: flatten (full size, within the decode bound), then resize
        return _flatten(picture).resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def working_size(size: tuple[int, int], side: int = WORKING_SIDE) -> tuple[int, int]:
    """(width, height) shrunk to at most `side` on the long side, aspect kept (never enlarged)."""
    width, height = size
    factor = min(1.0, side / max(width, height))
    return max(1, round(width * factor)), max(1, round(height * factor))


def load_picture(path: str | os.PathLike[str]) -> LoadedPicture:
    """Open a PNG/JPEG/BMP picture and shrink it to a working copy (slow for big photos: run it off the UI thread).

    JPEGs are decoded at a reduced scale directly (libjpeg's DCT scaling) when that still gives
    at least the working size.

    Raises:
        PictureError: missing, unreadable, another format, or more pixels than MAX_DECODE_PIXELS.
    """
    from PIL import Image, UnidentifiedImageError

    name = os.path.basename(path)
    try:
        picture = _open_checked(path)
        original_size = picture.size
        target = working_size(original_size)
        with picture:
            if picture.format == "JPEG" and target != original_size:
                picture.draft("RGB" if picture.mode != "L" else "L", target)  # decode at 1/2, 1/4 or 1/8 scale
            picture.load()
            flat = _flatten(_shrink(picture, target))
            if flat is picture:
                flat = picture.copy()  # detach from the file, which closes here
    except PictureError:
        raise
    except FileNotFoundError as error:
        raise PictureError(f"picture not found: {path}") from error
    except MemoryError as error:
        raise PictureError(f"not enough memory to decode {name}; shrink it first") from error
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError, SyntaxError) as error:
        raise PictureError(
            f"cannot read {name} as a picture ({type(error).__name__}); is it a PNG, JPEG or BMP?"
        ) from error
    return LoadedPicture(image=flat, original_size=original_size, path=os.fspath(path))


def picture_from_array(image: np.ndarray, path: str = "") -> LoadedPicture:
    """A model-sized image ([H, W, C] float32 in [0, 1]) as a picture to inpaint."""
    picture = to_pil(image)
    return LoadedPicture(image=picture, original_size=picture.size, path=path)


def _to_channels(picture: Image.Image, channels: int) -> Image.Image:
    """The picture in "L" (channels 1) or "RGB" (channels 3); transparency becomes white."""
    return _flatten(picture).convert("L" if channels == 1 else "RGB")


def fit_box(source_size: tuple[int, int], target_size: tuple[int, int], mode: str) -> tuple[float, float, float, float]:
    """The region of a (width, height) picture that maps onto a (width, height) target.

    "crop": the largest centred region with the target's aspect ratio; "stretch":
    the whole picture; "pad": a centred region larger than the picture, with the
    target's aspect ratio, holding the whole picture.
    """
    if mode not in FIT_MODES:
        raise ValueError(f"unknown fit mode {mode!r}; use one of {FIT_MODES}")
    width, height = source_size
    target_w, target_h = target_size
    if mode == "stretch":
        return (0.0, 0.0, float(width), float(height))
    target_aspect = target_w / target_h
    if (width / height > target_aspect) == (mode == "crop"):
        box_w, box_h = height * target_aspect, float(height)
    else:
        box_w, box_h = float(width), width / target_aspect
    left, top = (width - box_w) / 2.0, (height - box_h) / 2.0
    return (left, top, left + box_w, top + box_h)


def fit_picture(
    picture: Image.Image,
    image_shape: tuple[int, int, int],
    mode: str = "crop",
    original_size: tuple[int, int] | None = None,
) -> FittedPicture:
    """Convert a picture to the model's channels and crop/stretch/pad it to the model's size.

    Args:
        picture: a PIL image (the working copy of `load_picture`).
        image_shape: the model's (H, W, C).
        mode: one of FIT_MODES.
        original_size: (width, height) of the file's picture when `picture` is a shrunk copy.

    Returns:
        The fitted picture, with the region used in `picture`'s pixels (shown to the user).
    """
    from PIL import Image

    height, width, channels = image_shape
    converted = _to_channels(picture, channels)
    box = fit_box(converted.size, (width, height), mode)
    left, top, right, bottom = (round(value) for value in box)
    if mode == "pad":
        canvas = Image.new(converted.mode, (right - left, bottom - top), 0)  # black padding
        canvas.paste(converted, (-left, -top))
        region = canvas
    else:
        region = converted.crop((left, top, right, bottom))  # crop first: no bleeding from outside
    resized = region.resize((width, height), Image.Resampling.LANCZOS)
    pixels = np.asarray(resized, dtype=np.float32) / 255.0  # [H, W] or [H, W, 3] in [0, 1]
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]  # [H, W, 1]
    return FittedPicture(image=pixels, source_size=original_size or picture.size, box=box, mode=mode)


def grid_columns(count: int) -> int:
    """Columns of a near-square grid for `count` images."""
    return max(1, int(np.ceil(np.sqrt(count))))


def image_grid(images: np.ndarray, columns: int | None = None, padding: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile a batch into one image.

    Args:
        images: [B, H, W, C] float32 in [0, 1].
        columns: images per row (default: near-square).
        padding: pixels between images and around the border.
        pad_value: colour of the padding in [0, 1].

    Returns:
        [rows*(H+p)+p, columns*(W+p)+p, C] float32 in [0, 1].
    """
    count, height, width, channels = images.shape
    columns = columns or grid_columns(count)
    rows = -(-count // columns)
    grid = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, channels), pad_value, np.float32
    )
    for index in range(count):
        row, column = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        grid[top : top + height, left : left + width] = images[index]
    return grid


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Enlarge [H, W, C] by a whole factor, nearest neighbour: [H * scale, W * scale, C]."""
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or not 1 <= scale <= MAX_SAVE_SCALE:
        raise ValueError(f"scale must be an integer in [1, {MAX_SAVE_SCALE}], got {scale!r}")
    if scale == 1:
        return image
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def auto_save_scale(height: int, width: int, min_side: int = MIN_SAVED_SIDE) -> int:
    """The smallest whole factor that makes the shorter side at least `min_side` (1 for big images)."""
    return max(1, min(MAX_SAVE_SCALE, math.ceil(min_side / max(1, min(height, width)))))
