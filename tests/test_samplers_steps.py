"""One step of each sampler beyond the paper, against closed forms for Gaussian data N(mu, s^2 I).

For such data p_sigma = N(mu, (s^2 + sigma^2) I) and the exact score is -(x - mu) / (s^2 + sigma^2),
so every step has an exact answer: the probability-flow map
x(sigma') = mu + (x - mu) sqrt((s^2 + sigma'^2) / (s^2 + sigma^2)) and Gaussian moments.
"""

import math

import numpy as np
import pytest

from ncsn_tf import sampling
from ncsn_tf.schedule import flow_step_sizes, reverse_diffusion_variances

MU, STD = 0.3, 0.5  # data N(MU, STD^2 I)


def _score(x, sigma):
    return -(x - MU) / (STD**2 + sigma**2)


def _exact_flow(x, sigma, next_sigma):
    return MU + (x - MU) * math.sqrt((STD**2 + next_sigma**2) / (STD**2 + sigma**2))


def _euler(x, sigma, next_sigma):
    derivative = sampling.flow_derivative(_score(x, sigma), sigma)
    return sampling.euler_step(x, derivative, next_sigma - sigma).numpy()


def _heun(x, sigma, next_sigma):
    derivative = sampling.flow_derivative(_score(x, sigma), sigma)
    predicted = sampling.euler_step(x, derivative, next_sigma - sigma)
    next_derivative = sampling.flow_derivative(_score(predicted.numpy(), next_sigma), next_sigma)
    return sampling.heun_step(x, derivative, next_derivative, next_sigma - sigma).numpy()


# ---------------------------------------------------------------------------
# Probability flow: Euler and Heun steps against the exact map
# ---------------------------------------------------------------------------


def test_flow_derivative_is_minus_sigma_times_the_score_and_the_denoiser_form():
    x = np.random.default_rng(0).normal(size=(5, 3))  # float64
    sigma = 0.7
    derivative = sampling.flow_derivative(_score(x, sigma), sigma).numpy()
    denoised = x + sigma**2 * _score(x, sigma)  # D(x; sigma), Tweedie
    np.testing.assert_allclose(derivative, (x - denoised) / sigma, rtol=1e-12)


def test_euler_local_error_matches_its_leading_term_and_is_second_order():
    """Euler: error = -h^2 s^2 (x - mu) / (2 (s^2 + sigma^2)^2) + O(h^3), h = sigma' - sigma."""
    x = MU + np.random.default_rng(1).normal(size=(64,))  # float64, [D]
    sigma = 1.0
    errors = []
    for h in (0.2, 0.1, 0.05, 0.025):
        error = _euler(x, sigma, sigma - h) - _exact_flow(x, sigma, sigma - h)
        leading = -(h**2) * STD**2 * (x - MU) / (2 * (STD**2 + sigma**2) ** 2)
        # the next term is O(h^3): relative deviation from the leading term shrinks with h
        assert np.max(np.abs(error - leading)) <= 1.5 * h * np.max(np.abs(leading))
        errors.append(np.max(np.abs(error)))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    np.testing.assert_allclose(ratios, 4.0, rtol=0.15)  # local error O(h^2)


def test_heun_local_error_is_third_order_and_far_below_euler():
    x = MU + np.random.default_rng(2).normal(size=(64,))
    sigma = 1.0
    errors = []
    for h in (0.2, 0.1, 0.05, 0.025):
        heun_error = np.max(np.abs(_heun(x, sigma, sigma - h) - _exact_flow(x, sigma, sigma - h)))
        euler_error = np.max(np.abs(_euler(x, sigma, sigma - h) - _exact_flow(x, sigma, sigma - h)))
        assert heun_error < euler_error / 4
        errors.append(heun_error)
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    np.testing.assert_allclose(ratios, 8.0, rtol=0.2)  # local error O(h^3)


def test_last_euler_step_to_zero_is_the_tweedie_denoiser():
    """sigma_{L+1} = 0: x + (0 - sigma_L)(-sigma_L s) = x + sigma_L^2 s = E[clean | x] = mu + s^2/(s^2+sigma^2)(x - mu)."""
    x = np.random.default_rng(3).normal(size=(8, 4))
    sigma = 0.1
    out = _euler(x, sigma, 0.0)
    np.testing.assert_allclose(out, MU + STD**2 / (STD**2 + sigma**2) * (x - MU), rtol=1e-12)
    assert flow_step_sizes([1.0, 0.1])[-1] == pytest.approx(-0.1)


# ---------------------------------------------------------------------------
# Reverse-diffusion predictor and RePaint's re-noising (moments of many chains)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(("sigma", "next_sigma"), [(1.0, 0.6), (0.6, 0.36), (0.2, 0.19)])
def test_reverse_diffusion_step_moves_the_perturbed_gaussian_down_a_level(sigma, next_sigma):
    """From N(mu, v I), v = s^2 + sigma^2: mean stays mu, variance (1 - d/v)^2 v + d, d = sigma^2 - sigma'^2.

    That is s^2 + sigma'^2 + d^2 / v: the target of the next level plus a discretisation excess
    d^2 / v that vanishes quadratically as the ladder gets finer (first order per step).
    """
    rng = np.random.default_rng(4)
    count, dim = 4000, 16
    variance = STD**2 + sigma**2
    x = MU + math.sqrt(variance) * rng.normal(size=(count, dim))
    d = float(reverse_diffusion_variances([sigma, next_sigma])[0])
    assert d == pytest.approx(sigma**2 - next_sigma**2, rel=1e-6)
    out = sampling.reverse_diffusion_step(x, _score(x, sigma), rng.normal(size=x.shape), d).numpy()
    expected_variance = (1 - d / variance) ** 2 * variance + d
    assert expected_variance == pytest.approx(STD**2 + next_sigma**2 + d**2 / variance)
    n = out.size
    assert abs(out.mean() - MU) < 4 * math.sqrt(expected_variance / n)
    assert abs(out.var() / expected_variance - 1) < 4 * math.sqrt(2 / n)


def test_reverse_diffusion_excess_variance_vanishes_quadratically():
    """Splitting a step in two divides the excess d^2 / v by about 2 (each half has a quarter of it)."""
    sigma, next_sigma = 1.0, 0.5
    middle = math.sqrt((sigma**2 + next_sigma**2) / 2)  # halves d
    one = _moment_after([sigma, next_sigma])
    two = _moment_after([sigma, middle, next_sigma])
    target = STD**2 + next_sigma**2
    assert 1.7 < (one - target) / (two - target) < 2.3


def _moment_after(ladder):
    """The exact variance after reverse-diffusion steps down `ladder`, starting at N(mu, (s^2 + ladder[0]^2) I)."""
    variance = STD**2 + ladder[0] ** 2
    for sigma, next_sigma in zip(ladder[:-1], ladder[1:], strict=True):
        d = sigma**2 - next_sigma**2
        variance = (1 - d / (STD**2 + sigma**2)) ** 2 * variance + d
    return variance


def test_last_predictor_step_without_noise_is_the_tweedie_denoiser():
    x = np.random.default_rng(5).normal(size=(6, 5))
    sigma = 0.05
    d = float(reverse_diffusion_variances([0.3, sigma])[-1])  # sigma_{L+1} = 0: d = sigma_L^2
    assert d == pytest.approx(sigma**2)
    out = sampling.reverse_diffusion_step(x, _score(x, sigma), np.zeros_like(x), d).numpy()
    np.testing.assert_allclose(out, MU + STD**2 / (STD**2 + sigma**2) * (x - MU), rtol=1e-7)


def test_renoise_adds_the_variance_between_two_levels():
    rng = np.random.default_rng(6)
    sigma, next_sigma = 0.8, 0.5
    x = MU + math.sqrt(STD**2 + next_sigma**2) * rng.normal(size=(4000, 16))  # p at sigma'
    z = rng.normal(size=x.shape)
    out = sampling.renoise(x, z, sigma**2 - next_sigma**2).numpy()
    np.testing.assert_allclose(out, x + math.sqrt(sigma**2 - next_sigma**2) * z, rtol=1e-12)
    target = STD**2 + sigma**2  # back at p_sigma
    assert abs(out.var() / target - 1) < 4 * math.sqrt(2 / out.size)


# ---------------------------------------------------------------------------
# Langevin corrector with the signal-to-noise step size
# ---------------------------------------------------------------------------


def test_corrector_step_size_is_per_image_closed_form():
    rng = np.random.default_rng(7)
    scores = rng.normal(size=(4, 3, 3, 2))
    noise = rng.normal(size=scores.shape)
    scores[2] *= 10.0  # a larger score -> a smaller step, for that image only
    step = sampling.corrector_step_size(scores, noise, 0.16).numpy()
    score_norm = np.linalg.norm(scores.reshape(4, -1), axis=1)
    noise_norm = np.linalg.norm(noise.reshape(4, -1), axis=1)
    np.testing.assert_allclose(step, 2 * (0.16 * noise_norm / score_norm) ** 2, rtol=1e-12)
    # the drift/noise norm ratio of the resulting step is the snr
    drift = step[:, None] * scores.reshape(4, -1)
    diffusion = np.sqrt(2 * step)[:, None] * noise.reshape(4, -1)
    np.testing.assert_allclose(np.linalg.norm(drift, axis=1) / np.linalg.norm(diffusion, axis=1), 0.16, rtol=1e-12)


def test_corrector_step_formula_and_zero_score():
    rng = np.random.default_rng(8)
    x, scores, noise = (rng.normal(size=(3, 4)) for _ in range(3))
    scores[1] = 0.0  # ||s|| = 0: step 0, no NaN
    eps = sampling.corrector_step_size(scores, noise, 0.2).numpy()
    assert eps[1] == 0.0 and np.all(eps[[0, 2]] > 0)
    out = sampling.corrector_step(x, scores, noise, eps).numpy()
    np.testing.assert_allclose(out, x + eps[:, None] * scores + np.sqrt(2 * eps)[:, None] * noise, rtol=1e-12)
    np.testing.assert_array_equal(out[1], x[1])


def _variance_after_one_corrector_step(variance, target, snr, dim):
    """E[||x' - mu||^2] / D after one corrector step from N(mu, V I) with the exact score -(x - mu) / v.

    With y = x - mu, R = ||y||^2 ~ V chi2_D and Z = ||z||^2 ~ chi2_D independent, eps = 2 r^2 v^2 Z / R,
    and x' - mu = (1 - eps / v) y + sqrt(2 eps) z (the cross term has mean 0), so with E[Z^2] = D (D + 2)
    and E[1 / R] = 1 / (V (D - 2)):  V' = V - 4 r^2 v + 4 r^2 (1 + r^2) v^2 (D + 2) / ((D - 2) V).
    Its fixed point is v (1 + r^2)(D + 2) / (D - 2): the SNR rule's bias, O(r^2 + 1/D).
    """
    return variance - 4 * snr**2 * target + 4 * snr**2 * (1 + snr**2) * target**2 * (dim + 2) / ((dim - 2) * variance)


@pytest.mark.parametrize(("dim", "start"), [(8, 1.0), (8, 2.0), (64, 1.0), (64, 2.0)])
def test_corrector_step_moments_match_the_closed_form(dim, start):
    rng = np.random.default_rng(9)
    count, snr, sigma = 160_000 // dim, 0.16, 0.5
    target = STD**2 + sigma**2
    x = MU + math.sqrt(start * target) * rng.normal(size=(count, dim))
    scores, noise = _score(x, sigma), rng.normal(size=x.shape)
    out = sampling.corrector_step(x, scores, noise, sampling.corrector_step_size(scores, noise, snr)).numpy()
    expected = _variance_after_one_corrector_step(start * target, target, snr, dim)
    if start == 2.0:
        assert expected < start * target  # a too-wide chain narrows toward v
    n = out.size
    assert abs(out.mean() - MU) < 4 * math.sqrt(expected / n)
    assert abs(out.var() / expected - 1) < 4 * math.sqrt(2 / n)
    # the closed form is not the trivial "no change": at the target it adds 7.3% (D = 8) or 0.94% (D = 64)
    if start == 1.0:
        assert expected / target - 1 == pytest.approx({8: 0.0727, 64: 0.0094}[dim], abs=5e-4)
