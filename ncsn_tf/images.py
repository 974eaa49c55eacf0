"""Image helpers: float <-> uint8, sample grids to PNG, reading one image file.

Images are float32 `[B, H, W, C]` in [0, 1] everywhere in ncsn_tf (C = 1 or 3).
Langevin chains are not clipped (Song & Ermon 2019, Algorithm 1 has no clipping;
docs/export.md: outputs are the raw chain), so `to_uint8` clips before it rounds;
only the displayed images are clipped.

`read_image` is shared with the folder loader in `data.py`: one place decides how
a file becomes a square, resized, 1- or 3-channel image.
"""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Files the folder loader picks up (compared lower-case).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")

# The most pixels (width x height) `read_image` decodes: PIL's own decompression-bomb
# threshold as shipped (Image.MAX_IMAGE_PIXELS = 1024 * 1024 * 1024 // 4 // 3, about
# 0.25 GiB decoded as 24-bit RGB; a 24-megapixel photo is far below it), fixed here so
# that a program changing PIL's global cannot lift it. PIL itself only warns between
# 1x and 2x this and raises DecompressionBombError above; files above it are refused
# here from the header alone, before anything is decoded.
MAX_IMAGE_PIXELS = 89_478_485

# Downscaling filter: bilinear with PIL's antialiasing, like the reference's
# torchvision `Resize` (and `tf.image.resize(..., antialias=True)` in data.py).
RESAMPLE = Image.Resampling.BILINEAR


class UnreadableImageError(ValueError):
    """An image file is missing, corrupt or not an image; the message names the file."""


def to_uint8(images: np.ndarray) -> np.ndarray:
    """Float images in [0, 1] to uint8 in [0, 255]: clip to [0, 1], then round.

    Args:
        images: float array of any shape, nominally in [0, 1] (e.g. [B, H, W, C]);
            values outside are clipped, NaN becomes 0.

    Returns:
        uint8 array of the same shape, round(255 * clip(images, 0, 1)).
    """
    values = np.nan_to_num(np.asarray(images, dtype=np.float32), nan=0.0)  # any shape
    return np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)  # same shape in [0, 255]


def _as_batch(images: np.ndarray) -> np.ndarray:
    """[B, H, W, C] or [B, H, W] (grayscale) -> [B, H, W, C]; anything else is an error."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]  # [B, H, W, 1]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be [B, H, W, C] with C = 1 or 3, got shape {images.shape}")
    if images.shape[0] == 0:
        raise ValueError("images is empty (batch of 0); pass at least one image")
    return images


def make_grid(images: np.ndarray, ncols: int | None = None, padding: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile a batch into one image, row-major (image b at row b // ncols, column b % ncols).

    Args:
        images: [B, H, W, C] (or [B, H, W]) float in [0, 1] or uint8; C = 1 or 3.
        ncols: images per row; default ceil(sqrt(B)), so the grid is about square.
        padding: pixels between images and around the border.
        pad_value: value of the padding, in the images' range (1.0 = white for float;
            for uint8 input it is scaled by 255).

    Returns:
        [rows * (H + padding) + padding, ncols * (W + padding) + padding, C], same
        dtype as `images`; unused cells (when B is not a multiple of ncols) are padding.
    """
    images = _as_batch(images)  # [B, H, W, C]
    batch, height, width, channels = images.shape
    if ncols is None:
        ncols = math.ceil(math.sqrt(batch))
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    ncols = min(ncols, batch)
    nrows = math.ceil(batch / ncols)
    fill = pad_value * 255 if images.dtype == np.uint8 else pad_value
    grid = np.full(
        (nrows * (height + padding) + padding, ncols * (width + padding) + padding, channels),
        fill,
        dtype=images.dtype,
    )  # [H', W', C]
    for index in range(batch):
        top = padding + (index // ncols) * (height + padding)
        left = padding + (index % ncols) * (width + padding)
        grid[top : top + height, left : left + width] = images[index]
    return grid


def save_grid(
    images: np.ndarray,
    path: str | os.PathLike[str],
    ncols: int | None = None,
    scale: int | None = None,
    padding: int = 1,
) -> str:
    """Write a batch as one PNG grid, upscaled with nearest neighbour so small images stay visible.

    Args:
        images: [B, H, W, C] (or [B, H, W]) float in [0, 1] (clipped) or uint8.
        path: output file; parent folders are created. Written as PNG whatever the suffix.
        ncols: images per row (default about square).
        scale: integer nearest-neighbour upscaling of the whole grid; default the
            smallest factor that makes each image at least 32 px (4 for 8x8 digits).
        padding: pixels between images before scaling.

    Returns:
        The path written, as a string.
    """
    batch = _as_batch(images)  # [B, H, W, C]
    if batch.dtype != np.uint8:
        batch = to_uint8(batch)  # [B, H, W, C] in [0, 255]
    if scale is None:
        scale = max(1, math.ceil(32 / min(batch.shape[1], batch.shape[2])))
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    grid = make_grid(batch, ncols=ncols, padding=padding)  # [H', W', C] uint8
    grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)  # [scale*H', scale*W', C]
    path = os.fspath(path)
    parent = os.path.dirname(path)
    if parent:
        os.makedirs(parent, exist_ok=True)
    picture = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    picture.save(path, format="PNG")
    return path


def _to_mode(picture: Image.Image, channels: int) -> Image.Image:
    """Convert to "L" (channels 1) or "RGB" (channels 3); transparency over white, 16-bit to 8-bit."""
    if picture.mode in ("I;16", "I;16B", "I;16L", "I"):
        # PIL's convert("L") clips 16-bit values at 255; scale to 8 bit instead.
        values = np.asarray(picture, dtype=np.float64)  # [H, W] in [0, 65535]
        picture = Image.fromarray(np.round(np.clip(values, 0, 65535) / 257.0).astype(np.uint8), mode="L")
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        picture = Image.alpha_composite(background, rgba)
    return picture.convert("L" if channels == 1 else "RGB")


def _center_crop_box(width: int, height: int, side: int) -> tuple[int, int, int, int]:
    """PIL box (left, top, right, bottom) of the central `side` x `side` square."""
    left = (width - side) // 2
    top = (height - side) // 2
    return left, top, left + side, top + side


def read_image(
    path: str | os.PathLike[str],
    image_size: int,
    channels: int,
    center_crop: int = 0,
) -> np.ndarray:
    """Decode one PNG / JPEG / BMP file into a square uint8 image.

    Steps: refuse files larger than MAX_IMAGE_PIXELS (header only, nothing decoded),
    decode (EXIF orientation applied), convert to grayscale or RGB
    (transparency composited over white), crop the central square
    (`center_crop` x `center_crop` if set, else the largest square), resize to
    `image_size` x `image_size` (bilinear, antialiased) if needed.

    Args:
        path: the image file.
        image_size: output side in pixels.
        channels: 1 (grayscale) or 3 (RGB).
        center_crop: side of the central crop before resizing; 0 = largest square.

    Returns:
        uint8 array [image_size, image_size, channels] in [0, 255].

    Raises:
        UnreadableImageError: the file is missing, corrupt, not an image, larger than
            MAX_IMAGE_PIXELS (a decompression bomb, e.g.), or smaller than `center_crop`.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if image_size < 1 or center_crop < 0:
        raise ValueError(f"need image_size >= 1 and center_crop >= 0, got {image_size} and {center_crop}")
    name = os.fspath(path)
    try:
        with Image.open(name) as opened:
            width, height = opened.size  # from the header; nothing is decoded yet
            if width * height > MAX_IMAGE_PIXELS:
                raise UnreadableImageError(
                    f"image {name} is too large to decode safely ({width}x{height} = {width * height:,} pixels, "
                    f"more than {MAX_IMAGE_PIXELS:,}: a decompression bomb?); shrink it or remove it"
                )
            opened.load()  # decode now: truncated / corrupt data fails here, not later
            picture = ImageOps.exif_transpose(opened)
            picture = _to_mode(picture, channels)
    except UnreadableImageError:  # the size check above (a ValueError, so before the next clause)
        raise
    except Image.DecompressionBombError as error:  # Image.open refuses > 2x PIL's limit by itself
        raise UnreadableImageError(f"image {name} is too large to decode safely ({error}); shrink it or remove it") from None
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        # OSError covers missing files, truncated data and decoder errors;
        # PIL raises SyntaxError / ValueError for some malformed headers.
        raise UnreadableImageError(f"cannot read image {name}: {error}") from None
    width, height = picture.size
    side = center_crop if center_crop > 0 else min(width, height)
    if side > min(width, height):
        raise UnreadableImageError(
            f"image {name} is {width}x{height}, smaller than data.center_crop={center_crop}; lower center_crop or remove the file"
        )
    if (width, height) != (side, side):
        picture = picture.crop(_center_crop_box(width, height, side))
    if side != image_size:
        picture = picture.resize((image_size, image_size), RESAMPLE)
    pixels = np.asarray(picture, dtype=np.uint8)  # [S, S] or [S, S, 3] in [0, 255]
    if pixels.ndim == 2:
        pixels = pixels[..., None]  # [S, S, 1]
    return pixels

