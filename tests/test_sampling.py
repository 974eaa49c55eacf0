"""Langevin step, annealed Langevin and inpainting against closed forms and the paper's toy experiment."""

import math

import numpy as np
import pytest
import tensorflow as tf

from ncsn_tf import portable_random, sampling
from ncsn_tf.models.analytic import GaussianScore, paper_toy_mixture
from ncsn_tf.models.mlp import ConditionalMLP
from ncsn_tf.schedule import geometric_sigmas, langevin_coefficients, langevin_step_sizes

SHAPE = (8, 8, 1)
DATA_STD = 0.5
SIGMAS = geometric_sigmas(1.0, 0.1, 3)  # [1.0, 0.316, 0.1]


@pytest.fixture(scope="module")
def gaussian_model():
    return GaussianScore(std=DATA_STD, sigmas=SIGMAS)


@pytest.fixture(scope="module")
def toy_sigmas():
    return geometric_sigmas(20.0, 1.0, 10)  # the paper's toy ladder


@pytest.fixture(scope="module")
def toy_model(toy_sigmas):
    return paper_toy_mixture(toy_sigmas)


def _seeds(count, offset=0):
    return np.arange(offset, offset + count, dtype=np.int32)


# ---------------------------------------------------------------------------
# One step
# ---------------------------------------------------------------------------


def test_langevin_step_closed_form(gaussian_model):
    images = np.random.default_rng(0).uniform(size=(4, *SHAPE)).astype(np.float32)
    noise = np.random.default_rng(1).normal(size=(4, *SHAPE)).astype(np.float32)
    indices = np.array([0, 1, 2, 2], np.int32)
    out = sampling.langevin_step(gaussian_model, images, indices, noise, 0.03, 0.2).numpy()
    variances = (DATA_STD**2 + SIGMAS[indices] ** 2)[:, None, None, None]
    np.testing.assert_allclose(out, images - 0.03 * images / variances + 0.2 * noise, rtol=1e-6, atol=1e-7)


def test_langevin_step_as_tweedie_denoiser(gaussian_model):
    """drift = sigma^2, no noise: x + sigma^2 s(x) = E[x_clean | x] = s^2 / (s^2 + sigma^2) x for Gaussian data."""
    noisy = np.random.default_rng(2).normal(size=(3, *SHAPE)).astype(np.float32)
    sigma = float(SIGMAS[-1])
    out = sampling.langevin_step(gaussian_model, noisy, np.full(3, 2, np.int32), np.zeros_like(noisy), sigma**2, 0.0)
    np.testing.assert_allclose(out.numpy(), DATA_STD**2 / (DATA_STD**2 + sigma**2) * noisy, rtol=1e-6)


# ---------------------------------------------------------------------------
# Initial images and the whole loop on Gaussian data (exact moments)
# ---------------------------------------------------------------------------


def test_initial_images_are_seeded_uniform():
    images = sampling.initial_images(_seeds(64), SHAPE).numpy()
    assert images.shape == (64, *SHAPE) and images.min() >= 0 and images.max() < 1
    assert np.array_equal(images[10:12], sampling.initial_images(_seeds(2, 10), SHAPE).numpy())
    points = sampling.initial_images(_seeds(512), (2,), value_range=(-8.0, 8.0)).numpy()
    assert points.min() >= -8 and points.max() < 8 and abs(points.mean()) < 4 * 16 / math.sqrt(12 * points.size)


def test_last_step_adds_noise_exactly_once():
    """L = 1, T = 1: x1 = x0 + drift s(x0) + noise_std z with z from the seed's stream at step 0."""
    seeds = _seeds(5, 100)
    start = sampling.initial_images(seeds, SHAPE)
    sigmas, epsilon = SIGMAS[-1:], 0.01
    gaussian_model = GaussianScore(std=DATA_STD, sigmas=sigmas)
    out = sampling.annealed_langevin(gaussian_model, start, seeds, sigmas, steps_per_level=1, epsilon=epsilon).numpy()
    drift, noise_std = langevin_coefficients(langevin_step_sizes(sigmas, epsilon), "code")
    z = portable_random.normal(seeds, SHAPE, 0, portable_random.STREAM_LANGEVIN).numpy()
    x0 = start.numpy()
    expected = x0 - drift[0] * x0 / (DATA_STD**2 + sigmas[0] ** 2) + noise_std[0] * z
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("convention, final_denoise", [("code", False), ("paper", False), ("code", True)])
def test_annealed_langevin_matches_exact_gaussian_moments(gaussian_model, convention, final_denoise):
    """For Gaussian data the chain is linear: mean and variance follow an exact recursion."""
    steps_per_level, epsilon, count = 8, 0.01, 512
    seeds = _seeds(count, 7)
    out = sampling.annealed_langevin(
        gaussian_model, sampling.initial_images(seeds, SHAPE), seeds, SIGMAS,
        steps_per_level=steps_per_level, epsilon=epsilon, convention=convention, final_denoise=final_denoise,
    ).numpy()  # fmt: skip
    mean, variance = 0.5, 1.0 / 12.0  # Uniform[0, 1)
    drifts, noise_stds = langevin_coefficients(langevin_step_sizes(SIGMAS, epsilon), convention)
    for sigma, drift, noise_std in zip(SIGMAS, drifts, noise_stds, strict=True):
        factor = 1.0 - float(drift) / (DATA_STD**2 + float(sigma) ** 2)
        for _ in range(steps_per_level):
            mean, variance = factor * mean, factor**2 * variance + float(noise_std) ** 2
    if final_denoise:
        factor = DATA_STD**2 / (DATA_STD**2 + float(SIGMAS[-1]) ** 2)
        mean, variance = factor * mean, factor**2 * variance
    n = out.size  # 32768 pixels, independent
    assert abs(out.mean() - mean) < 5 * math.sqrt(variance / n)
    assert abs(out.var() / variance - 1.0) < 5 * math.sqrt(2.0 / n)


# ---------------------------------------------------------------------------
# Paper Figure 3 as a test: mode weights of 0.2 N((-5,-5), I) + 0.8 N((5,5), I)
# ---------------------------------------------------------------------------

TOY_CHAINS = 1280  # the paper's count
# Binomial standard error of the fraction in the 0.2-mode: sqrt(0.2 * 0.8 / 1280) = 0.0112. Tolerance
# 4 SE = 0.045; the sampler's own bias at T = 100 (measured with 20000 chains: 0.217) is 1.5 SE of it.
TOY_TOLERANCE = 4 * math.sqrt(0.2 * 0.8 / TOY_CHAINS)


def _fraction_in_small_mode(points):
    return float(np.mean(points.sum(axis=1) < 0))  # modes at (-5,-5) and (5,5): split by x + y = 0


def test_annealed_langevin_recovers_the_mode_weights(toy_model, toy_sigmas):
    seeds = _seeds(TOY_CHAINS)
    start = sampling.initial_images(seeds, (2,), value_range=(-8.0, 8.0))
    points = sampling.annealed_langevin(
        toy_model, start, seeds, toy_sigmas, steps_per_level=100, epsilon=0.1, convention="paper"
    ).numpy()
    assert abs(_fraction_in_small_mode(points) - 0.2) < TOY_TOLERANCE
    # samples are at the modes (perturbed by sigma_L = 1: per-coordinate std sqrt(2))
    assert np.mean(np.linalg.norm(np.abs(points) - 5.0, axis=1) < 4.0) > 0.95


def test_plain_langevin_gets_the_mode_weights_wrong():
    """One level, the data's own score (sigma 0.01), step 0.1, 1000 steps: the paper's plain Langevin."""
    sigmas = [0.01]
    model = paper_toy_mixture(sigmas)
    seeds = _seeds(TOY_CHAINS)
    start = sampling.initial_images(seeds, (2,), value_range=(-8.0, 8.0))
    points = sampling.annealed_langevin(
        model, start, seeds, sigmas, steps_per_level=1000, epsilon=0.1, convention="paper"
    ).numpy()
    fraction = _fraction_in_small_mode(points)
    assert abs(fraction - 0.2) > 4 * TOY_TOLERANCE  # close to the initial split, about 0.5
    assert np.mean(np.linalg.norm(np.abs(points) - 5.0, axis=1) < 4.0) > 0.95  # still at the modes


# ---------------------------------------------------------------------------
# Seeds, chunks and batches
# ---------------------------------------------------------------------------


def _toy_run(model, sigmas, seeds, start, **kwargs):
    options = dict(steps_per_level=5, epsilon=0.1, convention="paper")
    options.update(kwargs)
    return sampling.annealed_langevin(model, start, seeds, sigmas, **options).numpy()


def test_chunks_chain_exactly_to_the_full_run(toy_model, toy_sigmas):
    seeds = _seeds(32, 5)
    start = sampling.initial_images(seeds, (2,), value_range=(-8.0, 8.0))
    for final_denoise in (False, True):
        full = _toy_run(toy_model, toy_sigmas, seeds, start, final_denoise=final_denoise)
        chunk = start
        for first, last in ((0, 3), (3, 3), (3, 7), (7, 10)):
            chunk = _toy_run(
                toy_model, toy_sigmas, seeds, chunk, first_level=first, last_level=last, final_denoise=final_denoise
            )
        np.testing.assert_array_equal(chunk, full)
    # denoising is applied only by a chunk that ends at level L
    middle = _toy_run(toy_model, toy_sigmas, seeds, start, last_level=3)
    np.testing.assert_array_equal(
        _toy_run(toy_model, toy_sigmas, seeds, start, last_level=3, final_denoise=True), middle
    )


def test_denoise_changes_only_the_end(toy_model, toy_sigmas):
    seeds = _seeds(16)
    start = sampling.initial_images(seeds, (2,), value_range=(-8.0, 8.0))
    plain = _toy_run(toy_model, toy_sigmas, seeds, start)
    denoised = _toy_run(toy_model, toy_sigmas, seeds, start, final_denoise=True)
    expected = plain + toy_sigmas[-1] ** 2 * toy_model(plain, np.full(16, 9, np.int32)).numpy()
    np.testing.assert_allclose(denoised, expected, rtol=1e-6, atol=1e-6)


def test_same_seed_same_images_different_seed_different_and_batch_independent(toy_model, toy_sigmas):
    seeds = _seeds(8)
    start = sampling.initial_images(seeds, (2,), value_range=(-8.0, 8.0))
    first = _toy_run(toy_model, toy_sigmas, seeds, start)
    np.testing.assert_array_equal(first, _toy_run(toy_model, toy_sigmas, seeds, start))
    other = _toy_run(toy_model, toy_sigmas, seeds + 1000, start)
    assert np.all(np.abs(other - first).max(axis=1) > 1e-3)
    # image 3 drawn alone: same as in the batch of 8 (float kernels may differ by an ulp)
    alone = _toy_run(toy_model, toy_sigmas, seeds[3:4], start[3:4])
    np.testing.assert_allclose(alone[0], first[3], rtol=0, atol=1e-5)


def test_keras_model_runs_and_the_loop_is_traced_once():
    sigmas = geometric_sigmas(1.0, 0.1, 2)
    model = ConditionalMLP(num_levels=2, hidden=8, num_layers=1)
    model(np.zeros((1, 2), np.float32), np.zeros(1, np.int32))
    for offset in (0, 50):
        seeds = _seeds(6, offset)
        out = sampling.annealed_langevin(
            model, sampling.initial_images(seeds, (2,)), seeds, sigmas, steps_per_level=3, epsilon=1e-3
        )
        assert out.shape == (6, 2) and np.all(np.isfinite(out.numpy()))
    compiled = sampling._compiled_loop(model, np.asarray(sigmas, np.float32), "code", False)
    assert compiled.experimental_get_tracing_count() == 1


# ---------------------------------------------------------------------------
# Inpainting
# ---------------------------------------------------------------------------


def _half_masks(count):
    masks = np.zeros((count, *SHAPE), np.float32)
    masks[:, :, :4] = 1.0  # left half known
    masks[1, 2:5, 5:7] = 1.0  # an arbitrary extra patch on one image
    return masks


def _inpaint(model, count=6, **kwargs):
    seeds = _seeds(count, 3)
    known = np.random.default_rng(4).uniform(size=(count, *SHAPE)).astype(np.float32)
    masks = _half_masks(count)
    start = sampling.initial_images(seeds, SHAPE)
    options = dict(steps_per_level=4, epsilon=0.01)
    options.update(kwargs)
    out = sampling.inpaint(model, start, known, masks, seeds, SIGMAS, **options).numpy()
    return out, known, masks.astype(bool), start.numpy(), seeds


def test_inpaint_noise_free_keeps_known_pixels_exactly(gaussian_model):
    out, known, masks, start, _ = _inpaint(gaussian_model, noise_scale=0.0)
    np.testing.assert_array_equal(out[masks], known[masks])
    assert np.all(np.abs(out[~masks] - start[~masks]) > 1e-4)  # the unknown pixels moved


def test_inpaint_known_pixels_carry_the_last_levels_noise(gaussian_model):
    out, known, masks, _, seeds = _inpaint(gaussian_model)
    z = portable_random.normal(seeds, SHAPE, len(SIGMAS) - 1, portable_random.STREAM_INPAINT).numpy()
    np.testing.assert_allclose(out[masks], (known + SIGMAS[-1] * z)[masks], rtol=0, atol=1e-6)
    assert np.abs(out - known)[masks].max() <= SIGMAS[-1] * 5.8  # |z| <= sqrt(2 ln 2^24)


def test_inpaint_with_final_denoise_ends_on_the_data(gaussian_model):
    out, known, masks, _, _ = _inpaint(gaussian_model, final_denoise=True)
    np.testing.assert_array_equal(out[masks], known[masks])


def test_inpaint_chunks_chain_exactly(gaussian_model):
    full, known, masks, start, seeds = _inpaint(gaussian_model, final_denoise=True)
    options = dict(steps_per_level=4, epsilon=0.01, final_denoise=True)
    masks = masks.astype(np.float32)
    half = sampling.inpaint(gaussian_model, start, known, masks, seeds, SIGMAS, last_level=1, **options)
    rest = sampling.inpaint(gaussian_model, half, known, masks, seeds, SIGMAS, first_level=1, **options)
    np.testing.assert_array_equal(rest.numpy(), full)


def test_inpaint_samples_the_conditional_of_the_mixture(toy_model, toy_sigmas):
    """Known x1 = 5 in 0.2 N((-5,-5), I) + 0.8 N((5,5), I): x2 | x1 is N(5, 1 + sigma_L^2)."""
    count = 256
    seeds = _seeds(count)
    known = np.tile(np.float32([[5.0, 0.0]]), (count, 1))
    masks = np.tile(np.float32([[1.0, 0.0]]), (count, 1))
    start = sampling.initial_images(seeds, (2,), value_range=(-8.0, 8.0))
    points = sampling.inpaint(
        toy_model, start, known, masks, seeds, toy_sigmas, steps_per_level=50, epsilon=0.1, convention="paper"
    ).numpy()
    conditional_std = math.sqrt(1.0 + toy_sigmas[-1] ** 2)
    assert abs(points[:, 1].mean() - 5.0) < 4 * conditional_std / math.sqrt(count)
    assert abs(points[:, 1].std() / conditional_std - 1.0) < 4 * math.sqrt(1 / (2 * count))


def test_inpaint_input_errors(gaussian_model):
    seeds = _seeds(2)
    images = np.zeros((2, *SHAPE), np.float32)
    masks = np.ones((2, *SHAPE), np.float32)
    kwargs = dict(steps_per_level=1, epsilon=0.01)
    with pytest.raises(ValueError, match="masks per-image shape"):
        sampling.inpaint(gaussian_model, images, images, masks[:, :4], seeds, SIGMAS, **kwargs)
    with pytest.raises(ValueError, match="known_images per-image shape"):
        sampling.inpaint(gaussian_model, images, images[..., :4, :], masks, seeds, SIGMAS, **kwargs)
    with pytest.raises(ValueError, match="only 0 .* and 1"):
        sampling.inpaint(gaussian_model, images, images, masks * 0.5, seeds, SIGMAS, **kwargs)
    with pytest.raises(ValueError, match="batch mismatch"):
        sampling.inpaint(gaussian_model, images, images, masks[:1], seeds, SIGMAS, **kwargs)
    with pytest.raises(ValueError, match="batch mismatch"):
        sampling.inpaint(gaussian_model, images, images, masks, _seeds(3), SIGMAS, **kwargs)


def test_sampler_input_errors(gaussian_model):
    seeds = _seeds(2)
    images = np.zeros((2, *SHAPE), np.float32)
    run = sampling.annealed_langevin
    with pytest.raises(ValueError, match="level range"):
        run(gaussian_model, images, seeds, SIGMAS, steps_per_level=1, epsilon=0.1, first_level=2, last_level=1)
    with pytest.raises(ValueError, match="level range"):
        run(gaussian_model, images, seeds, SIGMAS, steps_per_level=1, epsilon=0.1, last_level=4)
    with pytest.raises(ValueError, match="convention"):
        run(gaussian_model, images, seeds, SIGMAS, steps_per_level=1, epsilon=0.1, convention="torch")
    with pytest.raises(ValueError, match="steps_per_level"):
        run(gaussian_model, images, seeds, SIGMAS, steps_per_level=0, epsilon=0.1)
    with pytest.raises(ValueError, match="descending"):
        run(gaussian_model, images, seeds, SIGMAS[::-1], steps_per_level=1, epsilon=0.1)
    with pytest.raises(TypeError, match="integers"):
        run(gaussian_model, images, np.array([0.5, 1.5]), SIGMAS, steps_per_level=1, epsilon=0.1)
    with pytest.raises(TypeError, match="int32"):
        run(gaussian_model, images, tf.constant([1, 2], tf.int64), SIGMAS, steps_per_level=1, epsilon=0.1)
    with pytest.raises(ValueError, match="int32"):
        sampling.initial_images([2**31], SHAPE)
