"""Pictures in and out: loading, fitting to the model's size and channels, grids. No Qt.

Images are float32 in [0, 1], [H, W, C] (one) or [B, H, W, C] (a batch), C in {1, 3}.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

PICTURE_FORMATS = ("PNG", "JPEG", "BMP")
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
MAX_PICTURE_PIXELS = 64_000_000  # refuse larger pictures instead of exhausting memory
FIT_MODES = ("crop", "stretch", "pad")  # centre-crop to the model's aspect / squash / letterbox


class PictureError(ValueError):
    """A picture cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class FittedPicture:
    """A picture converted to the model's size and channels.

    Attributes:
        image: [H, W, C] float32 in [0, 1], the model-sized picture.
        source_size: (width, height) of the original picture in pixels.
        box: (left, top, right, bottom) of the region used, in original pixels;
            extends past the picture for "pad" (the padding is black).
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


def load_picture(path: str | os.PathLike[str]) -> Image.Image:
    """Open a PNG/JPEG/BMP picture, fully decoded.

    Raises:
        PictureError: missing, unreadable, too large, or another format.
    """
    from PIL import Image, UnidentifiedImageError

    name = os.path.basename(path)
    try:
        picture = Image.open(os.fspath(path))
        if picture.format not in PICTURE_FORMATS:
            raise PictureError(f"{name} is a {picture.format} picture; open a PNG, JPEG or BMP file")
        if picture.width * picture.height > MAX_PICTURE_PIXELS:
            raise PictureError(f"{name} has {picture.width}x{picture.height} pixels, too many; scale it down first")
        picture.load()
    except PictureError:
        raise
    except FileNotFoundError as error:
        raise PictureError(f"picture not found: {path}") from error
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError, SyntaxError) as error:
        raise PictureError(
            f"cannot read {name} as a picture ({type(error).__name__}); is it a PNG, JPEG or BMP?"
        ) from error
    return picture


def _to_channels(picture: Image.Image, channels: int) -> Image.Image:
    """The picture in "L" (channels 1) or "RGB" (channels 3); transparency becomes white."""
    from PIL import Image

    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))  # transparent -> white
        picture = Image.alpha_composite(background, rgba)
    return picture.convert("L" if channels == 1 else "RGB")


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


def fit_picture(picture: Image.Image, image_shape: tuple[int, int, int], mode: str = "crop") -> FittedPicture:
    """Convert a picture to the model's channels and crop/stretch/pad it to the model's size.

    Args:
        picture: a PIL image (from `load_picture`).
        image_shape: the model's (H, W, C).
        mode: one of FIT_MODES.

    Returns:
        The fitted picture, with the source region used (shown to the user).
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
    return FittedPicture(image=pixels, source_size=picture.size, box=box, mode=mode)


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
