"""Input pipelines: digits, toy mixture, image folders, TFDS (mocked) and the offline errors."""

import logging
import tracemalloc

import numpy as np
import pytest
import tensorflow as tf
from bomb_images import write_bomb_png
from PIL import Image

from ncsn_tf import configs, data, images
from ncsn_tf.data import DataError

pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # PIL's own, for 1x-2x its limit


def batches(dataset):
    return [batch.numpy() for batch in dataset]


def one_epoch(config, split, **kwargs):
    """All examples of a split, in order, as one array."""
    options = dict(batch_size=1000, seed=0, split=split, shuffle=False, repeat=False, drop_remainder=False)
    options.update(kwargs)
    return np.concatenate(batches(data.make_dataset(config, **options)))


# ---------------------------------------------------------------------------
# Digits.
# ---------------------------------------------------------------------------


def test_digits_shapes_ranges_and_split_sizes():
    train_images, train_labels = data.digits_arrays("train")
    test_images, test_labels = data.digits_arrays("test")
    all_images, all_labels = data.digits_arrays("all")
    assert train_images.shape == (1437, 8, 8, 1) and test_images.shape == (360, 8, 8, 1)
    assert all_images.shape == (1797, 8, 8, 1) and all_labels.shape == (1797,)
    assert train_images.dtype == np.float32 and train_labels.shape == (1437,)
    assert all_images.min() == 0.0 and all_images.max() == 1.0
    np.testing.assert_array_equal(all_images * 16, np.round(all_images * 16))  # the 17 levels k / 16
    # Stratified: every digit has 20% (+-1 image) of its examples in "test".
    per_class_all, per_class_test = np.bincount(all_labels), np.bincount(test_labels)
    assert np.all(np.abs(per_class_test - 0.2 * per_class_all) <= 1)
    assert sorted(set(train_labels.tolist())) == list(range(10))


def test_digits_train_and_test_are_disjoint_and_cover_all():
    # The 1,797 images are pairwise distinct, so comparing bytes compares identities.
    keys = {split: [image.tobytes() for image in data.digits_arrays(split)[0]] for split in ("train", "test", "all")}
    assert len(set(keys["all"])) == 1797
    assert not set(keys["train"]) & set(keys["test"])
    assert set(keys["train"]) | set(keys["test"]) == set(keys["all"])
    # And the split is fixed: the same call gives the same arrays.
    np.testing.assert_array_equal(data.digits_arrays("test")[0], data.digits_arrays("test")[0])


def test_digits_unknown_split():
    with pytest.raises(DataError, match="validation"):
        data.digits_arrays("validation")
    with pytest.raises(DataError, match="validation"):
        data.make_dataset(configs.digits(), batch_size=4, split="validation")


def test_digits_batches_shape_dtype_range():
    config = configs.get_config("digits")
    batch = next(iter(data.make_dataset(config, batch_size=32, seed=3))).numpy()
    assert batch.shape == (32, 8, 8, 1) and batch.dtype == np.float32
    assert batch.min() >= 0.0 and batch.max() <= 1.0


def test_digits_without_dequantisation_are_the_arrays():
    config = configs.apply_overrides(configs.digits(), ["data.dequantize=false"])
    np.testing.assert_array_equal(one_epoch(config, "test"), data.digits_arrays("test")[0])


def test_dequantisation_adds_uniform_noise_within_the_level():
    # (x * 16 + u) / 17 with u ~ U[0, 1): level k maps into [k / 17, (k + 1) / 17).
    config = configs.apply_overrides(configs.digits(), ["data.dequantize=true"])
    dequantised = one_epoch(config, "test")  # [360, 8, 8, 1]
    levels = np.round(data.digits_arrays("test")[0] * 16)  # [360, 8, 8, 1] in 0..16
    uniform = dequantised.astype(np.float64) * data.DIGITS_LEVELS - levels
    assert dequantised.min() >= 0.0 and dequantised.max() <= 1.0
    assert uniform.min() >= -1e-5 and uniform.max() < 1 + 1e-5
    assert abs(uniform.mean() - 0.5) < 0.01 and abs(uniform.std() - np.sqrt(1 / 12)) < 0.01
    # Every pixel gets its own noise (no pixel left on the grid).
    assert np.mean(np.abs(uniform) < 1e-6) < 1e-3


def test_flips_only_when_configured_and_augmenting():
    originals = data.digits_arrays("test")[0]  # [360, 8, 8, 1]
    mirrored = originals[:, :, ::-1]
    asymmetric = np.any(originals != mirrored, axis=(1, 2, 3))  # [360]
    plain = configs.apply_overrides(configs.digits(), ["data.dequantize=false"])
    assert not plain.data.random_flip
    np.testing.assert_array_equal(one_epoch(plain, "test"), originals)

    flipping = configs.apply_overrides(plain, ["data.random_flip=true"])
    out = one_epoch(flipping, "test", seed=5)
    is_original = np.all(out == originals, axis=(1, 2, 3))
    is_mirrored = np.all(out == mirrored, axis=(1, 2, 3))
    assert np.all(is_original | is_mirrored)
    flipped_fraction = np.mean(is_mirrored[asymmetric])
    assert 0.35 < flipped_fraction < 0.65
    np.testing.assert_array_equal(one_epoch(flipping, "test", augment=False), originals)


def test_same_seed_same_batches_other_seed_other_batches():
    config = configs.get_config("digits")

    def first_batches(seed):
        return batches(data.make_dataset(config, batch_size=16, seed=seed).take(3))

    for left, right in zip(first_batches(7), first_batches(7), strict=True):
        np.testing.assert_array_equal(left, right)
    assert not np.array_equal(first_batches(7)[0], first_batches(8)[0])


@pytest.mark.parametrize("name", ["digits", "toy"])
def test_iterator_checkpoint_resumes_the_same_stream(tmp_path, name):
    iterator = iter(data.make_dataset(configs.get_config(name), batch_size=8, seed=4))
    next(iterator)
    checkpoint = tf.train.Checkpoint(iterator=iterator)
    path = checkpoint.save(str(tmp_path / "data"))
    expected = [next(iterator).numpy() for _ in range(2)]
    checkpoint.restore(path)
    for batch in expected:
        np.testing.assert_array_equal(next(iterator).numpy(), batch)


def test_epochs_are_reshuffled_and_complete():
    config = configs.apply_overrides(configs.digits(), ["data.dequantize=false"])
    test_images = data.digits_arrays("test")[0]
    stream = data.make_dataset(config, batch_size=360, seed=1, split="test")  # one batch = one epoch
    first, second = batches(stream.take(2))
    key = lambda block: sorted(image.tobytes() for image in block)  # noqa: E731
    assert key(first) == key(second) == key(test_images)
    assert not np.array_equal(first, second)


def test_one_epoch_smaller_than_a_batch_is_an_error():
    with pytest.raises(DataError, match="batch_size"):
        data.make_dataset(configs.digits(), batch_size=512, split="test", repeat=False)
    assert len(one_epoch(configs.digits(), "test", batch_size=512)) == 360  # fine without drop_remainder
    with pytest.raises(DataError, match="batch_size"):
        data.make_dataset(configs.digits(), batch_size=0)


def test_digits_resized_to_rgb():
    config = configs.apply_overrides(configs.digits(), ["data.image_size=16", "data.channels=3"])
    batch = next(iter(data.make_dataset(config, batch_size=8))).numpy()
    assert batch.shape == (8, 16, 16, 3)
    assert batch.min() >= 0.0 and batch.max() <= 1.0


# ---------------------------------------------------------------------------
# Toy mixture.
# ---------------------------------------------------------------------------


def mode_statistics(points):
    upper = points[:, 0] + points[:, 1] > 0  # nearer (5, 5)
    return upper.mean(), points[upper].mean(axis=0), points[~upper].mean(axis=0)


def test_sample_toy_mixture():
    np.testing.assert_allclose(data.TOY_WEIGHTS, [0.2, 0.8])
    np.testing.assert_allclose(data.TOY_MEANS, [[-5, -5], [5, 5]])
    points = data.sample_toy_mixture(20_000, seed=0)
    assert points.shape == (20_000, 2) and points.dtype == np.float32
    upper_fraction, upper_mean, lower_mean = mode_statistics(points)
    assert abs(upper_fraction - 0.8) < 0.015
    np.testing.assert_allclose(upper_mean, [5, 5], atol=0.05)
    np.testing.assert_allclose(lower_mean, [-5, -5], atol=0.05)
    np.testing.assert_allclose(points[points.sum(axis=1) > 0].std(axis=0), [1, 1], atol=0.03)
    np.testing.assert_array_equal(data.sample_toy_mixture(10, seed=3), data.sample_toy_mixture(10, seed=3))


def test_toy_dataset():
    config = configs.get_config("toy")
    points = np.concatenate(batches(data.make_dataset(config, batch_size=1000, seed=0).take(10)))  # [10000, 2]
    assert points.shape == (10_000, 2) and points.dtype == np.float32
    upper_fraction, upper_mean, lower_mean = mode_statistics(points)
    assert abs(upper_fraction - 0.8) < 0.015
    np.testing.assert_allclose(upper_mean, [5, 5], atol=0.06)
    np.testing.assert_allclose(lower_mean, [-5, -5], atol=0.1)
    again = np.concatenate(batches(data.make_dataset(config, batch_size=1000, seed=0).take(10)))
    np.testing.assert_array_equal(points, again)
    other_split = next(iter(data.make_dataset(config, batch_size=1000, seed=0, split="test"))).numpy()
    assert not np.array_equal(points[:1000], other_split)
    epoch = batches(data.make_dataset(config, batch_size=3000, repeat=False, drop_remainder=False))
    assert sum(len(batch) for batch in epoch) == data.TOY_EPOCH_SIZE


# ---------------------------------------------------------------------------
# Image folders.
# ---------------------------------------------------------------------------


@pytest.fixture
def image_folder(tmp_path):
    """Four good images (PNG, JPEG, BMP, RGBA PNG), one corrupt PNG, a text file, a hidden file."""
    folder = tmp_path / "images"
    (folder / "sub").mkdir(parents=True)
    green = np.zeros((10, 10, 3), np.uint8)
    green[..., 1] = 255
    Image.fromarray(green).save(folder / "a.png")
    Image.fromarray(np.full((12, 16, 3), 128, np.uint8)).save(folder / "b.jpg", quality=100)  # not square
    Image.fromarray(np.full((8, 8), 200, np.uint8)).save(folder / "sub" / "c.bmp")  # grayscale
    Image.fromarray(np.zeros((6, 6, 4), np.uint8), mode="RGBA").save(folder / "sub" / "d.PNG")  # transparent
    (folder / "zz_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.png").write_bytes(b"junk")
    return folder


def folder_config(folder, channels, *extra):
    overrides = ["data.dataset=folder", f"data.path={folder}", "data.image_size=4", f"data.channels={channels}"]
    return configs.apply_overrides(configs.digits(), overrides + list(extra))


def test_list_image_files(image_folder):
    names = [path[len(str(image_folder)) + 1 :] for path in data.list_image_files(image_folder)]
    assert names == ["a.png", "b.jpg", "sub/c.bmp", "sub/d.PNG", "zz_corrupt.png"]


@pytest.mark.parametrize("channels", [1, 3])
def test_load_image_folder_skips_and_reports_corrupt_files(image_folder, caplog, channels):
    with caplog.at_level(logging.WARNING, logger="ncsn_tf.data"):
        loaded = data.load_image_folder(image_folder, image_size=4, channels=channels)
    assert loaded.shape == (4, 4, 4, channels) and loaded.dtype == np.float32
    assert "zz_corrupt.png" in caplog.text
    assert "a.png" not in caplog.text
    if channels == 3:
        expected = [[0, 1, 0], [128 / 255] * 3, [200 / 255] * 3, [1, 1, 1]]
    else:
        expected = [[150 / 255], [128 / 255], [200 / 255], [1]]  # PIL "L" of pure green: 0.587 * 255
    for image, colour in zip(loaded, expected, strict=True):
        np.testing.assert_allclose(image, np.broadcast_to(colour, image.shape), atol=2 / 255)


def test_streaming_folder_dataset_matches_in_memory_loader(image_folder, caplog):
    config = folder_config(image_folder, 3, "data.dequantize=false")
    with caplog.at_level(logging.WARNING, logger="ncsn_tf.data"):
        streamed = one_epoch(config, "train", batch_size=3)
    np.testing.assert_array_equal(streamed, data.load_image_folder(image_folder, 4, 3))
    assert "zz_corrupt.png" in caplog.text  # found and reported while streaming


def test_streaming_folder_reshuffles_each_epoch_and_reports_once(image_folder, caplog):
    config = folder_config(image_folder, 1)
    with caplog.at_level(logging.WARNING, logger="ncsn_tf.data"):
        epochs = batches(data.make_dataset(config, batch_size=4, seed=2).take(6))  # 4 good images: batch = epoch
    means = [np.sort(epoch.mean(axis=(1, 2, 3))) for epoch in epochs]
    for mean in means[1:]:
        np.testing.assert_allclose(mean, means[0], atol=1 / 255)  # each epoch holds every image once
    assert len({tuple(np.argsort(epoch.mean(axis=(1, 2, 3)))) for epoch in epochs}) > 1  # in new orders
    reports = [record for record in caplog.records if record.name == "ncsn_tf.data"]
    assert len(reports) == 1 and "zz_corrupt.png" in reports[0].getMessage()
    assert all(epoch.min() >= 0 and epoch.max() <= 1 for epoch in epochs)


def test_empty_missing_and_unreadable_folders(tmp_path):
    with pytest.raises(DataError, match="no image files"):
        data.load_image_folder(tmp_path, 8, 1)
    (tmp_path / "readme.txt").write_text("no images here")
    with pytest.raises(DataError, match="no image files"):
        data.make_dataset(folder_config(tmp_path, 1), batch_size=2)
    with pytest.raises(DataError, match="does not exist"):
        data.load_image_folder(tmp_path / "nope", 8, 1)
    with pytest.raises(DataError, match="not a folder"):
        data.list_image_files(tmp_path / "readme.txt")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(DataError, match="could be read"):
        data.load_image_folder(tmp_path, 8, 1)
    with pytest.raises(DataError, match="could be read"):
        data.make_dataset(folder_config(tmp_path, 1), batch_size=2)


# Between PIL's limit and twice it PIL only warns (and would decode 144 M pixels); above twice
# it Image.open raises DecompressionBombError. Both must be skipped by name, without decoding.
BOMBS = [("bomb_144mp.png", 12_000, 12_000), ("bomb_182mp.png", 13_500, 13_500)]


@pytest.mark.parametrize(("name", "width", "height"), BOMBS)
def test_read_image_refuses_a_decompression_bomb_from_its_header(tmp_path, name, width, height):
    path = tmp_path / name
    size = write_bomb_png(path, width, height)
    assert size < 64 * 1024 and width * height > images.MAX_IMAGE_PIXELS
    tracemalloc.start()
    try:
        with pytest.raises(images.UnreadableImageError) as raised:
            images.read_image(path, 8, 1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(raised.value)
    assert f"image {path} is too large to decode safely" in message and "\n" not in message
    assert peak < 16 * 1024 * 1024  # nothing was decoded (one decoded frame would be 144-182 MB)


def test_read_image_decodes_up_to_the_bound(tmp_path):
    path = tmp_path / "wide.png"
    write_bomb_png(path, images.MAX_IMAGE_PIXELS // 4, 4)  # 89,478,484 pixels: allowed, all black
    assert images.read_image(path, 2, 1).max() == 0


@pytest.mark.parametrize("bomb_name", ["a_bomb.png", "z_bomb.png"])  # checked first / met in the stream
def test_streaming_folder_skips_a_decompression_bomb_by_name(image_folder, caplog, bomb_name):
    write_bomb_png(image_folder / bomb_name, *BOMBS[1][1:])
    config = folder_config(image_folder, 1, "data.dequantize=false")
    with caplog.at_level(logging.WARNING, logger="ncsn_tf.data"):
        streamed = one_epoch(config, "train", batch_size=2)
    np.testing.assert_array_equal(streamed, data.load_image_folder(image_folder, 4, 1))
    assert streamed.shape == (4, 4, 4, 1)
    skipped = [r.getMessage() for r in caplog.records if bomb_name in r.getMessage()]
    assert skipped and all("too large to decode safely" in message for message in skipped)


def test_a_folder_of_only_bombs_is_a_data_error(tmp_path):
    write_bomb_png(tmp_path / "bomb.png", *BOMBS[0][1:])
    with pytest.raises(DataError, match="none of the 1 image files"):
        data.make_dataset(folder_config(tmp_path, 1), batch_size=2)


# ---------------------------------------------------------------------------
# TFDS.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "extra", "shape"),
    [
        ("mnist", [], (28, 28, 1)),
        ("cifar10", [], (32, 32, 3)),
        ("celeba", [], (32, 32, 3)),  # 218x178 -> center crop 140 -> 32
        ("mnist", ["data.image_size=16", "data.channels=3", "data.dequantize=false"], (16, 16, 3)),
    ],
)
def test_tfds_sources_with_mock_data(name, extra, shape):
    import tensorflow_datasets as tfds

    config = configs.apply_overrides(configs.get_config(name), extra)
    with tfds.testing.mock_data(num_examples=6):
        dataset = data.make_dataset(config, batch_size=4, seed=0)
        first, second = batches(dataset.take(2))
    assert first.shape == (4, *shape) and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 1.0 and first.std() > 0.01  # mock pixels are random
    assert second.shape == first.shape
    if not config.data.dequantize:
        np.testing.assert_array_equal(first * 255, np.round(first * 255))  # still 8-bit values
        np.testing.assert_array_equal(first[..., 0], first[..., 2])  # gray tiled to RGB


def test_tfds_crop_and_resize_matches_the_folder_loader(tmp_path):
    # A CelebA-sized picture: white 140x140 centre, black outside.
    picture = np.zeros((218, 178, 3), np.uint8)
    picture[39:179, 19:159] = 255
    cropped = data._square_image(tf.constant(picture), image_size=32, channels=3, center_crop=140).numpy()
    assert cropped.shape == (32, 32, 3) and cropped.dtype == np.uint8
    assert np.all(cropped == 255)  # exactly the white square survives the crop
    largest = data._square_image(tf.constant(picture), image_size=32, channels=1, center_crop=0).numpy()
    assert largest.shape == (32, 32, 1)
    assert largest[16, 0, 0] < 100 and largest[16, 16, 0] == 255  # 178x178 square keeps black side bands
    # The TF path and the PIL path (folder loader) agree on a smooth image.
    rows, cols = np.mgrid[0:218, 0:178]
    smooth = np.stack([rows * 255 / 217, cols * 255 / 177, (rows + cols) * 255 / 395], -1).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "smooth.png")
    for crop in (140, 0):
        through_tf = data._square_image(tf.constant(smooth), 32, 3, crop).numpy().astype(int)
        through_pil = images.read_image(tmp_path / "smooth.png", 32, 3, crop).astype(int)
        assert np.abs(through_tf - through_pil).max() <= 2


def test_tfds_not_prepared_gives_offline_instructions(tmp_path):
    config = configs.apply_overrides(configs.get_config("mnist"), [f"data.data_dir={tmp_path}"])
    with pytest.raises(DataError) as raised:
        data.make_dataset(config, batch_size=4)
    message = str(raised.value)
    assert "tfds build mnist" in message and str(tmp_path) in message and "data.data_dir" in message
    assert "\n" not in message

    celeba = configs.apply_overrides(configs.get_config("celeba"), [f"data.data_dir={tmp_path}"])
    with pytest.raises(DataError, match="data.dataset=folder"):
        data.make_dataset(celeba, batch_size=4)

    unknown = configs.apply_overrides(configs.get_config("mnist"), ["data.dataset=tfds:no_such_dataset_xyz"])
    with pytest.raises(DataError, match="unknown TFDS dataset 'no_such_dataset_xyz'"):
        data.make_dataset(unknown, batch_size=4)


def test_tfds_names():
    assert data.tfds_name("celeba") == "celeb_a" and data.tfds_name("tfds:fashion_mnist") == "fashion_mnist"
    with pytest.raises(DataError):
        data.tfds_name("digits")
