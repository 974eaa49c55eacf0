"""Tests of the score network CondRefineNetDilated and its building blocks.

Closed-form / NumPy references for CIN++, align-corners upsampling and the
zero-padded average pool; exact parameter counts of the reference networks;
shape, conditioning, per-example independence, serialisation and mixed precision
on a tiny configuration (2 levels, 8x8x1, ngf 8).
"""

from __future__ import annotations

import ast
import pathlib

import keras
import numpy as np
import pytest
import tensorflow as tf

from ncsn_tf.configs import Config, apply_overrides, get_config
from ncsn_tf.losses import denoising_score_matching
from ncsn_tf.models import build_score_model
from ncsn_tf.models.layers import (
    ConditionalInstanceNormPlus,
    ConditionalResidualBlock,
    ConvMeanPool,
    align_corners_interpolation_matrix,
    resize_bilinear_align_corners,
    zero_padded_average_pool,
)
from ncsn_tf.models.refinenet import CondRefineNetDilated
from ncsn_tf.schedule import geometric_sigmas

MODELS_DIR = pathlib.Path(__file__).resolve().parents[1] / "ncsn_tf" / "models"


# ---------------------------------------------------------------------------
# Fixtures
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_config() -> Config:
    return apply_overrides(get_config("digits"), ["noise.num_levels=2", "model.ngf=8"])


@pytest.fixture(scope="module")
def tiny_model(tiny_config: Config) -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_score_model(tiny_config)


@pytest.fixture(scope="module")
def tiny_batch() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.uniform(0.0, 1.0, size=(4, 8, 8, 1)).astype(np.float32)  # [4, 8, 8, 1] in [0, 1]
    sigma_indices = np.array([0, 1, 1, 0], np.int32)  # [4]
    return images, sigma_indices


# ---------------------------------------------------------------------------
# NumPy references
# ---------------------------------------------------------------------------


def cin_plus_reference(
    x: np.ndarray, table: np.ndarray, sigma_indices: np.ndarray, eps: float = 1e-5, channel_ddof: int = 1
) -> np.ndarray:
    """CIN++ in float64 as in ermongroup/ncsn (torch.var is unbiased, InstanceNorm2d biased)."""
    x = x.astype(np.float64)  # [B, H, W, C]
    means = x.mean(axis=(1, 2))  # [B, C]
    standardized = (means - means.mean(-1, keepdims=True)) / np.sqrt(
        means.var(-1, ddof=channel_ddof, keepdims=True) + eps
    )
    normalized = (x - means[:, None, None, :]) / np.sqrt(x.var(axis=(1, 2))[:, None, None, :] + eps)
    gamma, alpha, beta = (p[:, None, None, :] for p in np.split(table[sigma_indices].astype(np.float64), 3, axis=-1))
    return gamma * (normalized + alpha * standardized[:, None, None, :]) + beta


def bilinear_align_corners_reference(images: np.ndarray, out_height: int, out_width: int) -> np.ndarray:
    """Pixel-by-pixel bilinear interpolation with PyTorch's align_corners=True source index."""
    batch, in_height, in_width, channels = images.shape
    out = np.zeros((batch, out_height, out_width, channels))

    def source(dst: int, in_size: int, out_size: int) -> tuple[int, int, float]:
        position = dst * (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
        lower = int(np.floor(position))
        upper = lower + 1 if lower < in_size - 1 else lower
        return lower, upper, position - lower

    for y in range(out_height):
        y0, y1, wy = source(y, in_height, out_height)
        for x in range(out_width):
            x0, x1, wx = source(x, in_width, out_width)
            out[:, y, x] = (
                (1 - wy) * (1 - wx) * images[:, y0, x0]
                + (1 - wy) * wx * images[:, y0, x1]
                + wy * (1 - wx) * images[:, y1, x0]
                + wy * wx * images[:, y1, x1]
            )
    return out


def average_pool_count_pad_reference(images: np.ndarray, pool_size: int) -> np.ndarray:
    """AvgPool2d(k, stride 1, padding k // 2, count_include_pad=True): window sum / k^2."""
    _, height, width, _ = images.shape
    half = pool_size // 2
    out = np.zeros(images.shape)
    for y in range(height):
        for x in range(width):
            window = images[:, max(0, y - half) : y + half + 1, max(0, x - half) : x + half + 1]
            out[:, y, x] = window.sum(axis=(1, 2)) / pool_size**2
    return out


# ---------------------------------------------------------------------------
# Building blocks against closed forms
# ---------------------------------------------------------------------------


def test_cin_plus_matches_numpy_reference_with_unbiased_channel_variance() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4, 5, 6)).astype(np.float32) * 2.0 + rng.normal(size=(1, 1, 1, 6)).astype(np.float32)
    sigma_indices = np.array([2, 0, 2], np.int32)
    layer = ConditionalInstanceNormPlus(num_levels=3)
    layer.build(x.shape)
    table = rng.normal(size=(3, 18)).astype(np.float32)  # [L, 3C] = [gamma | alpha | beta]
    layer.embedding.assign(table)

    out = np.asarray(layer(x, sigma_indices))
    np.testing.assert_allclose(out, cin_plus_reference(x, table, sigma_indices), rtol=1e-4, atol=1e-4)

    # The check can tell the unbiased from the biased variance across channels.
    biased = cin_plus_reference(x, table, sigma_indices, channel_ddof=0)
    assert np.abs(out - biased).max() > 1e-2


def test_cin_plus_initialisation_follows_reference() -> None:
    keras.utils.set_random_seed(3)
    layer = ConditionalInstanceNormPlus(num_levels=10)
    layer.build((None, None, None, 64))
    table = np.asarray(layer.embedding)  # [10, 192]
    scales, shifts = table[:, :128], table[:, 128:]
    assert table.shape == (10, 192)
    assert abs(scales.mean() - 1.0) < 0.01 and 0.015 < scales.std() < 0.025  # gamma, alpha ~ N(1, 0.02)
    assert np.all(shifts == 0.0)  # beta = 0


def test_interpolation_matrix_rows_and_identity() -> None:
    np.testing.assert_array_equal(align_corners_interpolation_matrix(5, 5), np.eye(5, dtype=np.float32))
    matrix = align_corners_interpolation_matrix(3, 7)  # [7, 3]
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, rtol=0, atol=1e-7)
    # align_corners: output ends sit exactly on input ends; 7 -> 3 samples at 0, 1/3, ..., 2.
    np.testing.assert_allclose(matrix[:, 0], [1, 2 / 3, 1 / 3, 0, 0, 0, 0], atol=1e-7)


@pytest.mark.parametrize(("in_size", "out_size"), [((3, 4), (5, 7)), ((4, 4), (8, 8)), ((2, 5), (1, 9))])
def test_align_corners_upsampling_matches_numpy_and_tf_v1(in_size: tuple, out_size: tuple) -> None:
    rng = np.random.default_rng(2)
    images = rng.normal(size=(2, *in_size, 3)).astype(np.float32)
    out = np.asarray(resize_bilinear_align_corners(images, out_size))
    np.testing.assert_allclose(out, bilinear_align_corners_reference(images, *out_size), rtol=1e-5, atol=1e-5)
    independent = tf.compat.v1.image.resize_bilinear(images, out_size, align_corners=True, half_pixel_centers=False)
    np.testing.assert_allclose(out, independent.numpy(), rtol=1e-5, atol=1e-5)


def test_align_corners_upsampling_of_a_linear_ramp_is_exact() -> None:
    rows, cols = np.meshgrid(np.arange(4.0), np.arange(6.0), indexing="ij")
    ramp = (2.0 * rows - 0.5 * cols + 1.0)[None, :, :, None].astype(np.float32)  # [1, 4, 6, 1]
    out = np.asarray(resize_bilinear_align_corners(ramp, (7, 11)))[0, :, :, 0]
    out_rows, out_cols = np.meshgrid(np.linspace(0, 3, 7), np.linspace(0, 5, 11), indexing="ij")
    np.testing.assert_allclose(out, 2.0 * out_rows - 0.5 * out_cols + 1.0, atol=1e-5)


def test_zero_padded_average_pool_counts_padding_like_pytorch() -> None:
    ones = np.ones((1, 5, 5, 1), np.float32)
    pooled = np.asarray(zero_padded_average_pool(ones, 5))[0, :, :, 0]
    assert pooled[0, 0] == pytest.approx(9 / 25)  # corner: 3x3 real pixels of a 5x5 window
    assert pooled[0, 2] == pytest.approx(15 / 25)  # edge middle: 3x5 real pixels
    assert pooled[2, 2] == pytest.approx(1.0)  # centre: the whole window is inside
    rng = np.random.default_rng(4)
    images = rng.normal(size=(2, 6, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(
        np.asarray(zero_padded_average_pool(images, 5)), average_pool_count_pad_reference(images, 5), atol=1e-5
    )


def test_conv_mean_pool_is_conv_then_mean_of_four_subsamples() -> None:
    rng = np.random.default_rng(5)
    images = rng.normal(size=(2, 6, 6, 3)).astype(np.float32)
    layer = ConvMeanPool(3, 4, kernel_size=3)
    out = np.asarray(layer(images))
    conv = np.asarray(layer.conv(images))  # [2, 6, 6, 4]
    expected = (conv[:, ::2, ::2] + conv[:, 1::2, ::2] + conv[:, ::2, 1::2] + conv[:, 1::2, 1::2]) / 4.0
    np.testing.assert_allclose(out, expected, atol=1e-5)

    odd = rng.normal(size=(2, 7, 7, 3)).astype(np.float32)
    adjusted = ConvMeanPool(3, 4, kernel_size=3, adjust_padding=True)
    out = np.asarray(adjusted(odd))  # ZeroPad2d((1, 0, 1, 0)): 7 -> 8 -> 4
    conv = np.asarray(adjusted.conv(np.pad(odd, [(0, 0), (1, 0), (1, 0), (0, 0)])))  # [2, 8, 8, 4]
    expected = (conv[:, ::2, ::2] + conv[:, 1::2, ::2] + conv[:, ::2, 1::2] + conv[:, 1::2, 1::2]) / 4.0
    np.testing.assert_allclose(out, expected, atol=1e-5)
    with pytest.raises(ValueError, match="odd"):
        layer(odd)


@pytest.mark.parametrize(
    ("options", "spatial_out", "expected_params"),
    [
        # norm1 3*L*in + conv1 (9*in*in + in) + norm2 3*L*in + conv2 (9*in*out + out) + 1x1 shortcut (in*out + out)
        ({"resample": "down"}, 4, 3 * 2 * 4 + (9 * 16 + 4) + 3 * 2 * 4 + (9 * 24 + 6) + (24 + 6)),
        # dilated "down" keeps the size and has a 3x3 dilated shortcut (9*in*out + out)
        ({"resample": "down", "dilation": 2}, 8, 3 * 2 * 4 + (9 * 16 + 4) + 3 * 2 * 4 + (9 * 24 + 6) + (9 * 24 + 6)),
        # conv1 in->out, norm2 over out channels, no downsampling, 3x3 dilated shortcut
        ({"dilation": 4}, 8, 3 * 2 * 4 + (9 * 24 + 6) + 3 * 2 * 6 + (9 * 36 + 6) + (9 * 24 + 6)),
    ],
)
def test_residual_block_variants(options: dict, spatial_out: int, expected_params: int) -> None:
    block = ConditionalResidualBlock(4, 6, num_levels=2, **options)
    images = np.random.default_rng(6).normal(size=(2, 8, 8, 4)).astype(np.float32)
    out = block(images, np.array([0, 1], np.int32))
    assert tuple(out.shape) == (2, spatial_out, spatial_out, 6)
    assert block.count_params() == expected_params


def test_identity_shortcut_when_channels_match() -> None:
    block = ConditionalResidualBlock(4, 4, num_levels=2)
    images = np.random.default_rng(7).normal(size=(2, 8, 8, 4)).astype(np.float32)
    sigma_indices = np.array([0, 1], np.int32)
    out = np.asarray(block(images, sigma_indices))
    for weight in block.conv2.weights:  # zero the residual branch: the block becomes the identity
        weight.assign(np.zeros(weight.shape, np.float32))
    np.testing.assert_allclose(np.asarray(block(images, sigma_indices)), images, atol=1e-6)
    assert block.shortcut is None and not np.allclose(out, images)


# ---------------------------------------------------------------------------
# The whole network
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected_params", "image_shape"),
    [("mnist", 7_638_657, (28, 28, 1)), ("cifar10", 30_117_635, (32, 32, 3))],
)
def test_parameter_counts_and_shapes_match_reference(name: str, expected_params: int, image_shape: tuple) -> None:
    config = get_config(name)
    model = build_score_model(config)  # built at batch 1
    assert model.count_params() == expected_params
    images = np.full((1, *image_shape), 0.5, np.float32)
    scores = model(images, np.array([config.noise.num_levels - 1], np.int32))
    assert tuple(scores.shape) == (1, *image_shape)
    assert scores.dtype == "float32"


def test_output_shape_dtype_and_conditioning(tiny_model: keras.Model, tiny_batch: tuple) -> None:
    images, sigma_indices = tiny_batch
    scores = np.asarray(tiny_model(images, sigma_indices))
    assert scores.shape == images.shape and scores.dtype == np.float32
    assert np.all(np.isfinite(scores))
    other_level = np.asarray(tiny_model(images, 1 - sigma_indices))
    assert np.abs(other_level - scores).max() > 1e-3 * np.abs(scores).max()  # depends on the level
    same_image = np.repeat(images[:1], 2, axis=0)  # the same image at the same level gives the same scores
    repeated = np.asarray(tiny_model(same_image, np.array([1, 1], np.int32)))
    # to float32 round-off: oneDNN's kernels may split one batch's rows differently (seen: 6e-7)
    np.testing.assert_allclose(repeated[0], repeated[1], rtol=1e-5, atol=1e-6)


def test_examples_are_independent_of_the_batch(tiny_model: keras.Model, tiny_batch: tuple) -> None:
    images, sigma_indices = tiny_batch
    batched = np.asarray(tiny_model(images, sigma_indices))
    alone = np.asarray(tiny_model(images[2:3], sigma_indices[2:3]))
    np.testing.assert_allclose(batched[2:3], alone, rtol=1e-5, atol=1e-5)
    order = np.array([3, 0, 2, 1])
    shuffled = np.asarray(tiny_model(images[order], sigma_indices[order]))
    np.testing.assert_allclose(shuffled, batched[order], rtol=1e-5, atol=1e-5)
    changed = images.copy()
    changed[0] = 1.0 - changed[0]  # change another example only
    np.testing.assert_allclose(np.asarray(tiny_model(changed, sigma_indices))[1:], batched[1:], rtol=1e-5, atol=1e-5)


def test_rescale_input_maps_to_minus_one_one(tiny_model: keras.Model, tiny_batch: tuple) -> None:
    images, sigma_indices = tiny_batch
    raw = CondRefineNetDilated(num_levels=2, ngf=8, channels=1, rescale_input=False)
    raw(images[:1], sigma_indices[:1])
    raw.set_weights(tiny_model.get_weights())
    np.testing.assert_allclose(
        np.asarray(raw(2.0 * images - 1.0, sigma_indices)),
        np.asarray(tiny_model(images, sigma_indices)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_every_variable_gets_a_gradient_from_the_dsm_loss(tiny_model: keras.Model, tiny_batch: tuple) -> None:
    images, sigma_indices = tiny_batch  # both levels present
    noise = np.random.default_rng(8).normal(size=images.shape).astype(np.float32)
    sigmas = geometric_sigmas(1.0, 0.01, 2)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(denoising_score_matching(tiny_model, images, sigma_indices, noise, sigmas))
    grads = tape.gradient(loss, tiny_model.trainable_variables)
    unused = [v.path for v, g in zip(tiny_model.trainable_variables, grads, strict=True) if g is None or not np.any(g)]
    assert not unused, f"variables without gradient: {unused}"


def test_bad_inputs_raise_one_line_errors(tiny_model: keras.Model) -> None:
    with pytest.raises(ValueError, match="channels-last"):
        tiny_model(np.zeros((1, 8, 8, 3), np.float32), np.zeros((1,), np.int32))
    with pytest.raises(ValueError, match="odd"):
        tiny_model(np.zeros((1, 7, 7, 1), np.float32), np.zeros((1,), np.int32))
    with pytest.raises(ValueError, match="ngf"):
        CondRefineNetDilated(num_levels=2, ngf=1, channels=1)


def test_model_code_uses_only_keras_ops() -> None:
    """No TensorFlow inside the network, so it also runs on other Keras backends."""
    for path in (MODELS_DIR / "layers.py", MODELS_DIR / "refinenet.py"):
        tree = ast.parse(path.read_text())
        imported = {
            alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        imported |= {
            node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
        }
        assert imported <= {"__future__", "collections", "math", "typing", "keras", "numpy", "ncsn_tf"}, (
            path,
            imported,
        )
        assert not any(isinstance(node, ast.Name) and node.id == "tf" for node in ast.walk(tree)), path


# ---------------------------------------------------------------------------
# Serialisation and precision
# ---------------------------------------------------------------------------


def test_get_config_round_trip(tiny_model: keras.Model) -> None:
    config = tiny_model.get_config()
    assert {k: config[k] for k in ("num_levels", "ngf", "channels", "rescale_input")} == {
        "num_levels": 2,
        "ngf": 8,
        "channels": 1,
        "rescale_input": True,
    }
    clone = CondRefineNetDilated.from_config(config)
    clone(np.zeros((1, 8, 8, 1), np.float32), np.zeros((1,), np.int32))
    assert [v.shape for v in clone.weights] == [v.shape for v in tiny_model.weights]


def test_keras_file_round_trip_gives_identical_outputs(tiny_model: keras.Model, tiny_batch: tuple, tmp_path) -> None:
    images, sigma_indices = tiny_batch
    path = tmp_path / "score.keras"
    tiny_model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, CondRefineNetDilated)
    np.testing.assert_array_equal(
        np.asarray(restored(images, sigma_indices)), np.asarray(tiny_model(images, sigma_indices))
    )


def test_tf_checkpoint_round_trip_gives_identical_outputs(
    tiny_config: Config, tiny_model: keras.Model, tiny_batch: tuple, tmp_path
) -> None:
    images, sigma_indices = tiny_batch
    path = tf.train.Checkpoint(model=tiny_model).write(str(tmp_path / "ckpt"))
    saved_names = [name for name, _ in tf.train.list_variables(path) if name != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert len(saved_names) == len(tiny_model.weights)  # nothing hidden from the checkpoint (e.g. in lists)

    fresh = build_score_model(tiny_config)  # built before restoring (docs/pitfalls.md)
    expected = np.asarray(tiny_model(images, sigma_indices))
    assert not np.allclose(np.asarray(fresh(images, sigma_indices)), expected)
    tf.train.Checkpoint(model=fresh).read(path).assert_consumed()
    np.testing.assert_array_equal(np.asarray(fresh(images, sigma_indices)), expected)


def test_mixed_bfloat16_gives_float32_scores_close_to_float32(
    tiny_config: Config, tiny_model: keras.Model, tiny_batch: tuple
) -> None:
    images, sigma_indices = tiny_batch
    reference = np.asarray(tiny_model(images, sigma_indices))
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = build_score_model(tiny_config)
        model.set_weights(tiny_model.get_weights())
        scores = model(images, sigma_indices)
        assert model.compute_dtype == "bfloat16"
        assert all(v.dtype == "float32" for v in model.weights)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert scores.dtype == "float32"
    relative_error = np.abs(np.asarray(scores) - reference).max() / np.abs(reference).max()
    assert relative_error < 0.1  # bfloat16 activations (8-bit mantissa) through ~75 convs
