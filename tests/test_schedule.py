"""The sigma ladder, Langevin step sizes and the two step conventions."""

import numpy as np
import pytest

from ncsn_tf import schedule


def test_paper_ladder_endpoints_length_and_ratio():
    sigmas = schedule.geometric_sigmas(1.0, 0.01, 10)  # paper Section 4.2
    assert sigmas.dtype == np.float32 and sigmas.shape == (10,)
    np.testing.assert_allclose([sigmas[0], sigmas[-1]], [1.0, 0.01], rtol=1e-6)
    ratios = sigmas[1:] / sigmas[:-1]
    np.testing.assert_allclose(ratios, 0.01 ** (1 / 9), rtol=1e-5)  # geometric: constant ratio
    assert np.all(np.diff(sigmas) < 0)  # index 0 is the largest sigma


def test_toy_ladder_and_single_level():
    sigmas = schedule.geometric_sigmas(20.0, 1.0, 10)
    np.testing.assert_allclose(sigmas, 20.0 ** (1 - np.arange(10) / 9), rtol=1e-5)
    np.testing.assert_array_equal(schedule.geometric_sigmas(0.5, 0.5, 1), [0.5])
    two = schedule.geometric_sigmas(1.0, 0.01, 2)
    np.testing.assert_allclose(two, [1.0, 0.01], rtol=1e-6)


@pytest.mark.parametrize(("sigma_max", "sigma_min", "levels"), [(1.0, 0.01, 0), (1.0, 0.0, 10), (0.01, 1.0, 10)])
def test_bad_ladders_raise(sigma_max, sigma_min, levels):
    with pytest.raises(ValueError):
        schedule.geometric_sigmas(sigma_max, sigma_min, levels)


def test_step_sizes_follow_algorithm_1():
    sigmas = schedule.geometric_sigmas(1.0, 0.01, 10)
    alphas = schedule.langevin_step_sizes(sigmas, 2e-5)
    assert alphas.dtype == np.float32 and alphas.shape == (10,)
    np.testing.assert_allclose(alphas, 2e-5 * sigmas.astype(np.float64) ** 2 / 0.01**2, rtol=1e-5)
    assert alphas[-1] == pytest.approx(2e-5, rel=1e-5)  # alpha_L = epsilon
    assert alphas[0] == pytest.approx(0.2, rel=1e-5)  # 2e-5 * (1 / 0.01)^2


def test_coefficients_of_both_conventions():
    alphas = np.array([0.2, 0.01, 2e-5])
    drift, noise = schedule.langevin_coefficients(alphas, "paper")  # x += (a/2) s + sqrt(a) z
    np.testing.assert_allclose(drift, alphas / 2, rtol=1e-6)
    np.testing.assert_allclose(noise, np.sqrt(alphas), rtol=1e-6)
    drift, noise = schedule.langevin_coefficients(alphas, "code")  # x += a s + sqrt(2a) z
    np.testing.assert_allclose(drift, alphas, rtol=1e-6)
    np.testing.assert_allclose(noise, np.sqrt(2 * alphas), rtol=1e-6)
    # "code" is "paper" with twice the step size.
    for pair_code, pair_paper in zip(
        schedule.langevin_coefficients(alphas, "code"), schedule.langevin_coefficients(2 * alphas, "paper"), strict=True
    ):
        np.testing.assert_allclose(pair_code, pair_paper, rtol=1e-6)
    assert schedule.langevin_coefficients(0.1)[0] == pytest.approx(0.1)  # default convention is "code"
    with pytest.raises(ValueError, match="convention"):
        schedule.langevin_coefficients(alphas, "other")


@pytest.mark.parametrize("convention", ["paper", "code"])
def test_coefficients_give_the_right_stationary_variance(convention):
    # For a Gaussian target N(0, v) the score is -x / v, so one step is the AR(1)
    # x' = (1 - d / v) x + n z, whose stationary variance is n^2 / (1 - (1 - d / v)^2).
    # A correct Langevin discretisation has n^2 = 2 d and so tends to v as the step shrinks.
    variance = 0.3
    for alpha in (1e-2, 1e-3, 1e-4):
        drift, noise = (float(c) for c in schedule.langevin_coefficients(alpha, convention))
        stationary = noise**2 / (1 - (1 - drift / variance) ** 2)
        np.testing.assert_allclose(stationary, variance / (1 - drift / (2 * variance)), rtol=1e-4)
        assert abs(stationary / variance - 1) < 2 * alpha / variance


# ---------------------------------------------------------------------------
# Tables of the predictor-corrector and probability-flow samplers
# ---------------------------------------------------------------------------


def test_next_sigmas_end_at_zero():
    sigmas = schedule.geometric_sigmas(1.0, 0.01, 4)
    following = schedule.next_sigmas(sigmas)
    assert following.dtype == np.float32 and following.shape == (4,)
    np.testing.assert_array_equal(following[:-1], sigmas[1:])
    assert following[-1] == 0.0  # sigma_{L+1} = 0
    np.testing.assert_array_equal(schedule.next_sigmas([0.5]), [0.0])


def test_reverse_diffusion_variances_and_flow_steps():
    sigmas = schedule.geometric_sigmas(20.0, 1.0, 10)
    variances = schedule.reverse_diffusion_variances(sigmas)
    wide = sigmas.astype(np.float64)
    np.testing.assert_allclose(variances[:-1], wide[:-1] ** 2 - wide[1:] ** 2, rtol=1e-6)
    assert variances[-1] == pytest.approx(1.0)  # the last step: sigma_L^2 (Tweedie)
    assert np.all(variances > 0) and variances.dtype == np.float32
    # summed they telescope to sigma_1^2: the predictor removes all of the prior's variance
    assert variances.astype(np.float64).sum() == pytest.approx(400.0, rel=1e-6)
    steps = schedule.flow_step_sizes(sigmas)
    np.testing.assert_allclose(steps[:-1], wide[1:] - wide[:-1], rtol=1e-6)
    assert steps[-1] == pytest.approx(-1.0) and np.all(steps < 0)
    assert steps.astype(np.float64).sum() == pytest.approx(-20.0, rel=1e-6)  # from sigma_1 down to 0


def test_nearby_sigmas_keep_their_variance_difference():
    """float64 arithmetic: sigma^2 - sigma'^2 of neighbours 1e-4 apart is not lost to float32 rounding."""
    variances = schedule.reverse_diffusion_variances(np.array([1.0, 0.9999], np.float32))
    expected = 1.0 - float(np.float32(0.9999)) ** 2
    assert variances[0] == pytest.approx(expected, rel=1e-6)


def test_prior_centre_is_the_middle_of_the_data_range():
    assert schedule.prior_centre((0.0, 1.0)) == 0.5
    assert schedule.prior_centre((-8.0, 8.0)) == 0.0
    assert schedule.prior_centre((-1.0, 3.0)) == 1.0
    for bad in ((1.0, 0.0), (0.0, 0.0), (0.0, float("inf"))):
        with pytest.raises(ValueError, match="value_range"):
            schedule.prior_centre(bad)
