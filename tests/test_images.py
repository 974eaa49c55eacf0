"""Image helpers: uint8 conversion, grid layout, PNG round trip, reading files."""

import numpy as np
import pytest
from PIL import Image

from ncsn_tf import images


def test_to_uint8_clips_then_rounds():
    values = np.array([-0.5, 0.0, 0.2, 0.5 / 255, 0.49 / 255, 1.0, 1.7, np.nan], np.float32)
    np.testing.assert_array_equal(images.to_uint8(values), [0, 0, 51, 0, 0, 255, 255, 0])
    np.testing.assert_array_equal(images.to_uint8(np.array([0.51 / 255, 254.6 / 255])), [1, 255])
    batch = np.random.default_rng(0).uniform(-1, 2, size=(2, 3, 3, 3))
    out = images.to_uint8(batch)
    assert out.dtype == np.uint8 and out.shape == batch.shape
    np.testing.assert_array_equal(out, np.round(np.clip(batch, 0, 1) * 255).astype(np.uint8))


def test_grid_layout_and_shape():
    batch = np.stack([np.full((2, 3, 1), (index + 1) / 10, np.float32) for index in range(5)])  # [5, 2, 3, 1]
    grid = images.make_grid(batch, ncols=3, padding=1, pad_value=0.0)
    # 2 rows x 3 columns of 2x3 images with 1-px padding.
    assert grid.shape == (2 * (2 + 1) + 1, 3 * (3 + 1) + 1, 1)
    for index in range(5):
        row, col = divmod(index, 3)
        top, left = 1 + row * 3, 1 + col * 4
        np.testing.assert_array_equal(grid[top : top + 2, left : left + 3], batch[index])
    # Padding lines and the unused sixth cell hold the pad value.
    assert np.all(grid[0] == 0) and np.all(grid[:, 0] == 0) and np.all(grid[3] == 0)
    assert np.all(grid[4:6, 9:12] == 0)
    assert grid.sum() == pytest.approx(batch.sum())


def test_grid_defaults_and_rgb():
    batch = np.zeros((10, 4, 4, 3), np.float32)
    grid = images.make_grid(batch)  # ncols = ceil(sqrt(10)) = 4, 3 rows, padding 1, white
    assert grid.shape == (3 * 5 + 1, 4 * 5 + 1, 3)
    assert grid.max() == 1.0 and grid.min() == 0.0
    single = images.make_grid(np.ones((1, 4, 4), np.float32), ncols=8, padding=0)  # [B, H, W] accepted
    assert single.shape == (4, 4, 1)
    assert images.make_grid(np.zeros((2, 4, 4, 1), np.uint8)).max() == 255  # uint8 padding scaled


@pytest.mark.parametrize("shape", [(4, 4), (2, 4, 4, 4), (2, 4, 4, 2, 1), (0, 4, 4, 1)])
def test_grid_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="images"):
        images.make_grid(np.zeros(shape, np.float32))


@pytest.mark.parametrize("channels", [1, 3])
def test_save_grid_png_round_trip(tmp_path, channels):
    rng = np.random.default_rng(channels)
    batch = rng.uniform(-0.1, 1.1, size=(6, 8, 8, channels)).astype(np.float32)  # chain output, unclipped
    path = images.save_grid(batch, tmp_path / "sub" / "grid.png", ncols=3)
    with Image.open(path) as picture:
        assert picture.format == "PNG"
        pixels = np.asarray(picture)
    expected = images.make_grid(images.to_uint8(batch), ncols=3)  # [19, 28, C] uint8
    scale = 4  # default: smallest factor making 8-px images at least 32 px
    assert pixels.shape[:2] == (expected.shape[0] * scale, expected.shape[1] * scale)
    if channels == 1:
        pixels = pixels[..., None]
    # Nearest-neighbour upscaling: every scale x scale block is one grid pixel.
    np.testing.assert_array_equal(pixels[::scale, ::scale], expected)
    np.testing.assert_array_equal(pixels[scale - 1 :: scale, scale - 1 :: scale], expected)


def test_save_grid_explicit_scale(tmp_path):
    path = images.save_grid(np.ones((1, 40, 40, 1), np.float32), tmp_path / "big.png")
    with Image.open(path) as picture:
        assert picture.size == (42, 42)  # 40 px images are not upscaled
    path = images.save_grid(np.ones((1, 8, 8, 1), np.float32), tmp_path / "x2.png", scale=2, padding=0)
    with Image.open(path) as picture:
        assert picture.size == (16, 16)


def test_read_image_converts_crops_and_resizes(tmp_path):
    # 12 wide x 8 high RGB: 2 black columns each side of an 8x8 pure red square.
    pixels = np.zeros((8, 12, 3), np.uint8)
    pixels[:, 2:10, 0] = 255
    Image.fromarray(pixels).save(tmp_path / "red.png")
    rgb = images.read_image(tmp_path / "red.png", image_size=4, channels=3)
    assert rgb.dtype == np.uint8 and rgb.shape == (4, 4, 3)
    np.testing.assert_array_equal(rgb, np.broadcast_to([255, 0, 0], (4, 4, 3)))  # largest central square
    gray = images.read_image(tmp_path / "red.png", image_size=8, channels=1)
    assert gray.shape == (8, 8, 1)
    np.testing.assert_array_equal(gray, 76)  # PIL "L": 0.299 * 255 = 76.2
    cropped = images.read_image(tmp_path / "red.png", image_size=2, channels=3, center_crop=4)
    np.testing.assert_array_equal(cropped, np.broadcast_to(np.array([255, 0, 0], np.uint8), (2, 2, 3)))


def test_read_image_transparency_and_16_bit(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)  # fully transparent black -> white
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "clear.png")
    np.testing.assert_array_equal(images.read_image(tmp_path / "clear.png", 4, 1), 255)
    deep = np.full((4, 4), 200 * 257, np.uint16)  # 16-bit 51400 is 8-bit 200, not clipped to 255
    Image.fromarray(deep).save(tmp_path / "deep.png")
    np.testing.assert_array_equal(images.read_image(tmp_path / "deep.png", 4, 1), 200)


def test_unreadable_files_raise_a_named_error(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    with pytest.raises(images.UnreadableImageError, match="broken.png"):
        images.read_image(broken, 8, 1)
    with pytest.raises(images.UnreadableImageError, match="missing.png"):
        images.read_image(tmp_path / "missing.png", 8, 1)
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(tmp_path / "small.png")
    with pytest.raises(images.UnreadableImageError, match="center_crop"):
        images.read_image(tmp_path / "small.png", 8, 1, center_crop=6)
