"""Input pipelines: `make_dataset(config, batch_size=...)` for every data source.

Sources (`config.data.dataset`):
- "toy": 2-D points from 0.2 N((-5,-5), I) + 0.8 N((5,5), I) (paper Section 3.2),
  drawn afresh for every batch; unscaled.
- "digits": scikit-learn's bundled 8x8 handwritten digits (1,797 images, no network),
  with a fixed stratified 80/20 train/test split (`digits_arrays`).
- "mnist", "cifar10", "celeba" (TFDS `celeb_a`) and "tfds:<name>" (any TFDS dataset
  with an `image` feature), read from prepared TFDS data only (`download=False`).
- "folder": PNG / JPEG / BMP files under `config.data.path` (recursively), streamed by
  file name, so folders larger than memory work; unreadable files (corrupt, not an
  image, or more than `images.MAX_IMAGE_PIXELS` pixels, such as decompression bombs)
  are skipped and reported by name (a `logging` warning).

Reference preprocessing (Song & Ermon 2019; ermongroup/ncsn): images in [0, 1];
channels converted to `config.data.channels`; a central square crop
(`config.data.center_crop` if set, CelebA 140) and an antialiased bilinear resize to
`config.data.image_size`; random horizontal flips when `config.data.random_flip`
(and `augment`); uniform dequantisation when `config.data.dequantize`:

    x <- (x * (K - 1) + u) / K,  u ~ U[0, 1),

with K the number of intensity levels of the source: K = 256 for 8-bit images, which
is the reference's x * 255/256 + u/256, and K = 17 for the digits (values 0..16).
Dequantised images stay in [0, 1].

Every random choice (shuffling, flips, dequantisation noise, toy points) is derived
from `seed`, so the same seed gives the same batches.
"""

from __future__ import annotations

import functools
import logging
import os
import zlib

import numpy as np
import tensorflow as tf

from ncsn_tf import toy as toy_experiment
from ncsn_tf.configs import Config
from ncsn_tf.images import IMAGE_EXTENSIONS, UnreadableImageError, read_image

logger = logging.getLogger(__name__)


class DataError(ValueError):
    """The data cannot be loaded as configured; the message says why and what to do."""


# ---------------------------------------------------------------------------
# Toy mixture (paper Section 3.2).
# ---------------------------------------------------------------------------

TOY_WEIGHTS = toy_experiment.WEIGHTS  # [2] mixture weights, sum to 1
TOY_MEANS = toy_experiment.MEANS  # [2 components, 2 dims]
TOY_STD = toy_experiment.STD  # each component has covariance TOY_STD^2 * I
TOY_EPOCH_SIZE = 10_000  # points in one "epoch" when repeat=False (the stream itself is endless)
_TOY_CHUNK = 1_024  # points drawn per stateless random call


def sample_toy_mixture(num: int, seed: int) -> np.ndarray:
    """Draw `num` points from 0.2 N((-5,-5), I) + 0.8 N((5,5), I) with NumPy.

    Args:
        num: number of points (>= 0).
        seed: NumPy `default_rng` seed; the same seed gives the same points.

    Returns:
        float32 [num, 2], unscaled.
    """
    if num < 0:
        raise DataError(f"num must be >= 0, got {num}")
    rng = np.random.default_rng(seed)
    components = rng.choice(len(TOY_WEIGHTS), size=num, p=TOY_WEIGHTS)  # [num] in {0, 1}
    points = TOY_MEANS[components] + TOY_STD * rng.standard_normal((num, 2))  # [num, 2]
    return points.astype(np.float32)


def _split_id(split: str) -> int:
    """A stable 31-bit number for a split name (Python's hash() is salted per process)."""
    return zlib.crc32(split.encode("utf-8")) & 0x7FFFFFFF


def _toy_dataset(split: str, seed: int, repeat: bool) -> tf.data.Dataset:
    """Endless (or TOY_EPOCH_SIZE-long) stream of toy points [2], fresh draws per chunk."""
    key = tf.constant([seed, _split_id(split)], dtype=tf.int64)  # [2] stateless seed
    weight_first = float(TOY_WEIGHTS[0])
    means = tf.constant(TOY_MEANS, dtype=tf.float32)  # [2, 2]

    def draw_chunk(chunk_index: tf.Tensor) -> tf.Tensor:
        chunk_key = tf.random.experimental.stateless_fold_in(key, chunk_index)  # [2]
        component_key = tf.random.experimental.stateless_fold_in(chunk_key, 0)
        normal_key = tf.random.experimental.stateless_fold_in(chunk_key, 1)
        uniform = tf.random.stateless_uniform([_TOY_CHUNK], seed=component_key)  # [N] in [0, 1)
        components = tf.cast(uniform >= weight_first, tf.int32)  # [N], 0 with probability 0.2
        normal = tf.random.stateless_normal([_TOY_CHUNK, 2], seed=normal_key)  # [N, 2]
        return tf.gather(means, components) + TOY_STD * normal  # [N, 2], unscaled

    chunks = tf.data.Dataset.range(-(-TOY_EPOCH_SIZE // _TOY_CHUNK)) if not repeat else tf.data.Dataset.counter()
    points = chunks.map(draw_chunk, num_parallel_calls=tf.data.AUTOTUNE).unbatch()  # [2] each
    return points if repeat else points.take(TOY_EPOCH_SIZE)


# ---------------------------------------------------------------------------
# scikit-learn digits.
# ---------------------------------------------------------------------------

DIGITS_LEVELS = 17  # pixel values 0..16
DIGITS_TEST_FRACTION = 0.2  # 360 of the 1,797 images are held out as "test"
DIGITS_SPLIT_SEED = 0  # random_state of the stratified split; fixed forever
DIGITS_SPLITS = ("train", "test", "all")


@functools.lru_cache(maxsize=1)
def _digits_split_indices() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = (bunch.images.astype(np.float32) / (DIGITS_LEVELS - 1))[..., None]  # [N, 8, 8, 1] in [0, 1]
    labels = bunch.target.astype(np.int64)  # [N] in 0..9
    indices = np.arange(len(labels))
    train, test = train_test_split(
        indices, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=labels
    )
    return images, labels, np.sort(train), np.sort(test)


def digits_arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 8x8 handwritten digits (1,797 images), bundled, no network.

    The split is fixed: `train_test_split(test_size=0.2, random_state=0,
    stratify=labels)` over the images in scikit-learn's order, so "train" (1,437
    images) and "test" (360 images) are disjoint and each has about 10% of every
    digit; "all" is both, in scikit-learn's order. The trainer uses "train"; the
    evaluator uses "test" as held-out real digits.

    Args:
        split: "train", "test" or "all".

    Returns:
        (images [N, 8, 8, 1] float32 in [0, 1], values k/16 for k in 0..16;
         labels [N] int64 in 0..9).
    """
    if split not in DIGITS_SPLITS:
        raise DataError(f"unknown digits split {split!r}; use one of {', '.join(DIGITS_SPLITS)}")
    images, labels, train, test = _digits_split_indices()
    if split == "all":
        return images.copy(), labels.copy()
    chosen = train if split == "train" else test
    return images[chosen], labels[chosen]


# ---------------------------------------------------------------------------
# Image folders.
# ---------------------------------------------------------------------------


def list_image_files(path: str | os.PathLike[str]) -> list[str]:
    """PNG / JPEG / BMP files under `path` (recursively, sorted; hidden files and folders skipped).

    Raises:
        DataError: the folder is missing, not a folder, or holds no image files.
    """
    root = os.fspath(path)
    if not os.path.exists(root):
        raise DataError(f"image folder {root} does not exist; check data.path")
    if not os.path.isdir(root):
        raise DataError(f"data.path {root} is not a folder; point it at a folder of PNG/JPEG/BMP images")
    files = []
    for folder, subfolders, names in os.walk(root, followlinks=True):
        subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        files.extend(
            os.path.join(folder, name)
            for name in names
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)
        )
    if not files:
        raise DataError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {root}; add images or fix data.path")
    return sorted(files)


def load_image_folder(
    path: str | os.PathLike[str],
    image_size: int,
    channels: int,
    center_crop: int = 0,
) -> np.ndarray:
    """Every readable image under `path`, in memory (for small folders; `make_dataset` streams).

    Each file goes through `ncsn_tf.images.read_image` (channels, central square
    crop, antialiased resize); unreadable files are skipped with a warning naming them.

    Returns:
        [N, image_size, image_size, channels] float32 in [0, 1], files in sorted order.

    Raises:
        DataError: missing folder, no image files, or no readable image.
    """
    files = list_image_files(path)
    images = np.empty((len(files), image_size, image_size, channels), dtype=np.float32)  # [N, S, S, C]
    count = 0
    for name in files:
        try:
            images[count] = read_image(name, image_size, channels, center_crop).astype(np.float32) / 255.0
        except UnreadableImageError as error:
            logger.warning("skipping unreadable image: %s", error)
            continue
        count += 1
    if count == 0:
        raise DataError(f"none of the {len(files)} image files in {os.fspath(path)} could be read; see the warnings above")
    return images[:count]  # [N', S, S, C] in [0, 1]


def _folder_dataset(config: Config, seed: int, shuffle: bool) -> tf.data.Dataset:
    """Stream file names (shuffled per epoch), decode each with PIL, drop unreadable ones.

    Yields uint8 [S, S, C]. Only names are held in memory; a corrupt file is reported
    once per dataset, however many epochs read it.
    """
    data = config.data
    size, channels, crop = data.image_size, data.channels, data.center_crop
    files = list_image_files(data.path)
    reported: set[str] = set()

    def decode(path: bytes) -> tuple[np.ndarray, np.bool_]:
        name = path.decode("utf-8")
        try:
            return read_image(name, size, channels, crop), np.bool_(True)
        except UnreadableImageError as error:
            if name not in reported:
                reported.add(name)
                logger.warning("skipping unreadable image: %s", error)
            return np.zeros((size, size, channels), np.uint8), np.bool_(False)

    # Fail now, not inside an endless empty stream, when nothing in the folder decodes.
    # This reads files only until the first good one (usually just the first).
    if not any(decode(name.encode("utf-8"))[1] for name in files):
        raise DataError(f"none of the {len(files)} image files in {data.path} could be read; see the warnings above")

    def decode_tensor(path: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image, ok = tf.numpy_function(decode, [path], [tf.uint8, tf.bool], stateful=False)
        image.set_shape((size, size, channels))  # [S, S, C] uint8
        ok.set_shape(())
        return image, ok

    names = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        names = names.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    def is_readable(image: tf.Tensor, ok: tf.Tensor) -> tf.Tensor:
        return ok

    def image_only(image: tf.Tensor, ok: tf.Tensor) -> tf.Tensor:
        return image  # [S, S, C] uint8

    decoded = names.map(decode_tensor, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return decoded.filter(is_readable).map(image_only)


# ---------------------------------------------------------------------------
# TFDS.
# ---------------------------------------------------------------------------

TFDS_NAMES = {"mnist": "mnist", "cifar10": "cifar10", "celeba": "celeb_a"}


def tfds_name(dataset: str) -> str:
    """The TFDS builder name for `config.data.dataset` ("celeba" -> "celeb_a", "tfds:x" -> "x")."""
    if dataset in TFDS_NAMES:
        return TFDS_NAMES[dataset]
    if dataset.startswith("tfds:") and len(dataset) > len("tfds:"):
        return dataset[len("tfds:") :]
    raise DataError(f"{dataset!r} is not a TFDS dataset; use mnist, cifar10, celeba or tfds:<name>")


def _not_prepared_message(name: str, data_dir: str) -> str:
    where = data_dir or "the default TFDS data_dir (~/tensorflow_datasets)"
    message = (
        f"TFDS dataset {name!r} is not prepared in {where} and downloads are off; on a machine with network run "
        f"`tfds build {name} --data_dir DIR` (or copy a prepared tensorflow_datasets folder here), "
        f"then pass data.data_dir=DIR (--data-dir DIR)"
    )
    if name == "celeb_a":
        message += (
            "; CelebA's automatic download often fails (Google Drive quota): alternatively download "
            "img_align_celeba.zip yourself, unzip it and train with data.dataset=folder data.path=.../img_align_celeba "
            "(the celeba config's center_crop=140, image_size=32 give the reference preprocessing)"
        )
    return message


def _load_tfds(config: Config, split: str, seed: int, shuffle: bool) -> tf.data.Dataset:
    """Raw `image` tensors [h, w, c] uint8 of a prepared TFDS dataset."""
    import tensorflow_datasets as tfds  # heavy; only the TFDS sources need it

    name = tfds_name(config.data.dataset)
    data_dir = config.data.data_dir
    try:
        dataset = tfds.load(
            name,
            split=split,
            data_dir=data_dir or None,
            download=False,
            shuffle_files=shuffle,
            read_config=tfds.ReadConfig(shuffle_seed=seed),
        )
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(f"unknown TFDS dataset {name!r}; check the name in the TFDS catalog (tfds:<name>)") from None
    except AssertionError as error:  # TFDS asserts when the prepared files are missing
        if "could not find data" in str(error):
            raise DataError(_not_prepared_message(name, data_dir)) from None
        raise DataError(f"TFDS dataset {name!r} cannot be read: {str(error).splitlines()[0]}") from None
    except ValueError as error:  # e.g. an unknown split name
        raise DataError(f"TFDS dataset {name!r}, split {split!r}: {str(error).splitlines()[0]}") from None
    if not isinstance(dataset.element_spec, dict) or "image" not in dataset.element_spec:
        raise DataError(f"TFDS dataset {name!r} has no 'image' feature; only image datasets can be used")
    spec = dataset.element_spec["image"]
    if spec.shape.rank != 3 or spec.shape[-1] is None or spec.dtype != tf.uint8:
        raise DataError(f"TFDS dataset {name!r}: 'image' is {spec}, expected uint8 [height, width, channels]")
    return dataset.map(lambda example: example["image"], num_parallel_calls=tf.data.AUTOTUNE)


def _square_image(image: tf.Tensor, image_size: int, channels: int, center_crop: int) -> tf.Tensor:
    """uint8 [h, w, c] -> uint8 [S, S, channels]: channels, central square crop, antialiased resize.

    The TF twin of `ncsn_tf.images.read_image` (the folder loader), except that an
    image smaller than `center_crop` is zero-padded (as torchvision's CenterCrop)
    rather than rejected. The result is rounded back to 8 bits, as PIL would.
    """
    source_channels = image.shape[-1]
    pixels = tf.cast(image, tf.float32)  # [h, w, c] in [0, 255]
    if source_channels in (2, 4):  # drop alpha
        pixels = pixels[..., : source_channels - 1]
    if pixels.shape[-1] == 3 and channels == 1:
        pixels = tf.image.rgb_to_grayscale(pixels)  # [h, w, 1], ITU-R 601 weights as PIL's "L"
    elif pixels.shape[-1] == 1 and channels == 3:
        pixels = tf.tile(pixels, [1, 1, 3])  # [h, w, 3]
    height, width = tf.shape(pixels)[0], tf.shape(pixels)[1]
    if center_crop > 0:
        pixels = tf.image.resize_with_crop_or_pad(pixels, center_crop, center_crop)  # [cc, cc, C]
    else:
        side = tf.minimum(height, width)
        pixels = tf.image.crop_to_bounding_box(pixels, (height - side) // 2, (width - side) // 2, side, side)
    static_side = pixels.shape[0]
    if static_side != image_size or pixels.shape[1] != image_size:
        pixels = tf.image.resize(pixels, (image_size, image_size), method="bilinear", antialias=True)
    pixels = tf.ensure_shape(pixels, (image_size, image_size, channels))  # [S, S, C] in [0, 255]
    return tf.cast(tf.round(tf.clip_by_value(pixels, 0.0, 255.0)), tf.uint8)


# ---------------------------------------------------------------------------
# The pipeline.
# ---------------------------------------------------------------------------


def _image_source(config: Config, split: str, seed: int, shuffle: bool) -> tuple[tf.data.Dataset, int, int | None]:
    """(examples after deterministic preprocessing, intensity levels K, size or None if unknown).

    Examples are uint8 [S, S, C] (K = 256) or, for the digits, float32 [S, S, C] in [0, 1] (K = 17).
    """
    data = config.data
    if data.dataset == "digits":
        images, _ = digits_arrays(split)  # [N, 8, 8, 1] in [0, 1]
        examples = tf.data.Dataset.from_tensor_slices(images)
        if (data.image_size, data.channels) != (8, 1):
            # Resized digits leave the 17-level grid; dequantising with K = 17 still keeps them in [0, 1].
            def resize(image: tf.Tensor) -> tf.Tensor:
                image = tf.tile(image, [1, 1, data.channels])  # [8, 8, C]
                image = tf.image.resize(image, (data.image_size, data.image_size), method="bilinear", antialias=True)
                return tf.clip_by_value(image, 0.0, 1.0)  # [S, S, C] in [0, 1]

            examples = examples.map(resize, num_parallel_calls=tf.data.AUTOTUNE)
        return examples, DIGITS_LEVELS, len(images)
    if data.dataset == "folder":
        return _folder_dataset(config, seed, shuffle), 256, None
    raw = _load_tfds(config, split, seed, shuffle)  # uint8 [h, w, c]
    examples = raw.map(
        lambda image: _square_image(image, data.image_size, data.channels, data.center_crop),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return examples, 256, None


def make_dataset(
    config: Config,
    *,
    batch_size: int,
    seed: int = 0,
    split: str | None = None,
    shuffle: bool = True,
    repeat: bool = True,
    augment: bool = True,
    drop_remainder: bool = True,
) -> tf.data.Dataset:
    """The training (or evaluation) input pipeline described by `config.data`.

    Args:
        config: the experiment config; `config.data` picks the source and preprocessing.
        batch_size: examples per batch (the global batch; a distribution strategy splits it).
        seed: seeds shuffling, flips, dequantisation noise and toy points; same seed, same batches.
        split: source split; None means `config.data.split`. Digits: train | test | all;
            TFDS: any TFDS split string ("train", "test[:10%]", ...); toy: any name (its own
            random stream); folder: ignored (every file is used).
        shuffle: shuffle examples (file order for TFDS and folders, then a buffer of
            `config.data.shuffle_buffer` examples; folders shuffle all file names).
        repeat: repeat endlessly (the toy stream draws new points forever); else one epoch.
        augment: random horizontal flips when `config.data.random_flip`. Dequantisation
            follows `config.data.dequantize` alone (it is part of the data model).
        drop_remainder: drop a final partial batch (keeps batch shapes static).

    Under `tf.distribute` the dataset asks for DATA auto-sharding; give every worker
    the same `seed` so they all see the same stream before it is split.

    Returns:
        A `tf.data.Dataset` of float32 batches [batch_size, *config.data.shape]: images
        [B, H, W, C] in [0, 1], or toy points [B, 2] unscaled.

    Raises:
        DataError: unknown split, data not available (missing folder, TFDS data not
            prepared), or a one-epoch dataset with fewer examples than one batch.
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be positive, got {batch_size}")
    data = config.data
    split = data.split if split is None else split

    if data.dataset == "toy":
        points = _toy_dataset(split, seed, repeat)  # [2] each, unscaled
        points = points.batch(batch_size, drop_remainder=drop_remainder)  # [B, 2]
        return _with_data_sharding(points).prefetch(tf.data.AUTOTUNE)

    examples, levels, size = _image_source(config, split, seed, shuffle)
    if size is not None and not repeat and drop_remainder and size < batch_size:
        raise DataError(
            f"split {split!r} has {size} examples, fewer than batch_size={batch_size}; lower the batch size "
            f"or pass drop_remainder=False"
        )
    if shuffle and data.shuffle_buffer > 0 and data.dataset != "folder":  # folders shuffled all names already
        examples = examples.shuffle(data.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        examples = examples.repeat()

    flip = data.random_flip and augment
    dequantize = data.dequantize
    # Stateless randomness keyed by (seed, position in the stream): deterministic and
    # independent of how tf.data parallelises the map.
    key = tf.constant([seed, 0x5EED], dtype=tf.int64)  # [2]

    def finish(position: tf.Tensor, image: tf.Tensor) -> tf.Tensor:
        if image.dtype == tf.uint8:
            image = tf.cast(image, tf.float32) / 255.0  # [S, S, C] in [0, 1]
        example_key = tf.random.experimental.stateless_fold_in(key, position)  # [2]
        if flip:
            flip_key = tf.random.experimental.stateless_fold_in(example_key, 0)
            image = tf.image.stateless_random_flip_left_right(image, seed=flip_key)
        if dequantize:
            noise_key = tf.random.experimental.stateless_fold_in(example_key, 1)
            uniform = tf.random.stateless_uniform(tf.shape(image), seed=noise_key)  # [S, S, C] in [0, 1)
            image = tf.clip_by_value((image * (levels - 1) + uniform) / levels, 0.0, 1.0)  # [S, S, C] in [0, 1]
        return image

    examples = examples.enumerate().map(finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    batches = examples.batch(batch_size, drop_remainder=drop_remainder)  # [B, S, S, C] in [0, 1]
    return _with_data_sharding(batches).prefetch(tf.data.AUTOTUNE)


def _with_data_sharding(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Ask tf.distribute to shard by element (DATA), not by file.

    Generated and in-memory sources have no files, and small TFDS datasets have
    fewer files than workers; with DATA every worker runs the same seeded pipeline
    and keeps its share of the batches.
    """
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)
