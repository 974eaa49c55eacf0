"""Metrics against closed forms: Frechet distance, Inception score, MMD, mode weights."""

import numpy as np
import pytest
import scipy.linalg

from ncsn_tf import metrics


def _random_covariance(rng: np.random.Generator, dim: int) -> np.ndarray:
    factor = rng.normal(size=(dim, dim))
    return factor @ factor.T / dim + 0.1 * np.eye(dim)  # [D, D] symmetric positive definite


def test_frechet_distance_of_a_set_with_itself_is_zero():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 64)) @ rng.normal(size=(64, 64))  # [N, D] correlated
    distance = metrics.frechet_distance_between(features, features)
    scale = np.trace(np.cov(features, rowvar=False))
    assert distance < 1e-9 * scale


def test_frechet_distance_of_rank_deficient_set_with_itself_is_zero():
    # Fewer samples than dimensions (as with 2048-d Inception features on small sets):
    # the covariance is singular, the square root must stay real.
    rng = np.random.default_rng(1)
    features = rng.normal(size=(20, 50))
    assert metrics.frechet_distance_between(features, features) < 1e-9 * np.trace(np.cov(features, rowvar=False))


def test_frechet_distance_shifted_isotropic_gaussians_is_squared_shift():
    mean1, mean2 = np.array([0.0, 1.0, -2.0]), np.array([3.0, -1.0, 0.5])
    cov = 2.5 * np.eye(3)
    expected = float(np.sum((mean1 - mean2) ** 2))  # 9 + 4 + 6.25 = 19.25
    assert metrics.frechet_distance(mean1, cov, mean2, cov) == pytest.approx(expected, rel=1e-12)


def test_frechet_distance_diagonal_covariances_closed_form():
    rng = np.random.default_rng(2)
    a, b = rng.uniform(0.1, 4.0, 10), rng.uniform(0.1, 4.0, 10)
    mean1, mean2 = rng.normal(size=10), rng.normal(size=10)
    expected = np.sum((mean1 - mean2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = metrics.frechet_distance(mean1, np.diag(a), mean2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_general_covariances_matches_scipy_sqrtm_formula():
    # Non-commuting covariances: cross-check against the textbook formula with scipy.
    rng = np.random.default_rng(3)
    cov1, cov2 = _random_covariance(rng, 8), _random_covariance(rng, 8)
    mean1, mean2 = rng.normal(size=8), rng.normal(size=8)
    reference = np.sum((mean1 - mean2) ** 2) + np.trace(cov1 + cov2 - 2 * scipy.linalg.sqrtm(cov1 @ cov2).real)
    assert metrics.frechet_distance(mean1, cov1, mean2, cov2) == pytest.approx(reference, rel=1e-8)
    # symmetric in its arguments
    assert metrics.frechet_distance(mean2, cov2, mean1, cov1) == pytest.approx(reference, rel=1e-8)


def test_frechet_distance_of_samples_converges_to_closed_form():
    rng = np.random.default_rng(4)
    shift = np.array([1.0, -2.0])
    first = rng.normal(size=(200_000, 2))
    second = rng.normal(size=(200_000, 2)) * np.sqrt([4.0, 0.25]) + shift
    expected = 5.0 + (1 - 2) ** 2 + (1 - 0.5) ** 2  # ||shift||^2 + sum (sqrt a - sqrt b)^2 = 6.25
    assert metrics.frechet_distance_between(first, second) == pytest.approx(expected, abs=0.05)


def test_frechet_distance_rejects_mismatched_shapes():
    with pytest.raises(metrics.MetricsError, match="frechet_distance needs"):
        metrics.frechet_distance(np.zeros(3), np.eye(3), np.zeros(2), np.eye(2))


def test_inception_score_uniform_predictions_is_one():
    probabilities = np.full((100, 10), 0.1)
    mean, std = metrics.inception_score(probabilities, splits=10)
    assert mean == pytest.approx(1.0, abs=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_inception_score_confident_evenly_spread_is_number_of_classes():
    classes = 7
    labels = np.arange(classes * 20) % classes  # every split of 14 holds each class twice
    one_hot = np.eye(classes)[labels]
    mean, std = metrics.inception_score(one_hot, splits=10)
    assert mean == pytest.approx(classes, rel=1e-12)
    # smoothed confident predictions: IS = exp(log K - H(p)) for p = one-hot smoothed by delta
    smoothed = 0.9 * one_hot + 0.1 / classes
    row = smoothed[0]
    expected = np.exp(np.log(classes) + np.sum(row * np.log(row)))
    assert metrics.inception_score(smoothed, splits=10)[0] == pytest.approx(expected, rel=1e-10)


def test_inception_score_all_same_confident_class_is_one():
    probabilities = np.tile(np.eye(5)[2], (50, 1))
    assert metrics.inception_score(probabilities, splits=5)[0] == pytest.approx(1.0, abs=1e-12)


def test_confidence_entropy_and_class_shares():
    probabilities = np.array([[0.95, 0.05, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.2, 0.3, 0.1]])
    assert metrics.confident_share(probabilities, 0.9) == pytest.approx(0.5)
    # last row: rest class 0.4 -> entropy over (0.2, 0.3, 0.1, 0.4)
    entropies = [
        -(0.95 * np.log(0.95) + 0.05 * np.log(0.05)),
        np.log(2.0),
        0.0,
        -sum(p * np.log(p) for p in (0.2, 0.3, 0.1, 0.4)),
    ]
    assert metrics.mean_entropy(probabilities) == pytest.approx(np.mean(entropies), rel=1e-12)
    np.testing.assert_allclose(metrics.class_shares(probabilities), [0.5, 0.25, 0.25])  # ties go to the first class


def _rbf_gaussian_mmd2(mean_x, var_x, mean_y, var_y, bandwidth, dim):
    """Population MMD^2 between N(mean_x, var_x I) and N(mean_y, var_y I), kernel exp(-d^2 / 2h^2)."""
    h2 = bandwidth**2

    def expected_kernel(mean_a, var_a, mean_b, var_b):
        total = h2 + var_a + var_b
        return (h2 / total) ** (dim / 2) * np.exp(-np.sum((mean_a - mean_b) ** 2) / (2 * total))

    return (
        expected_kernel(mean_x, var_x, mean_x, var_x)
        + expected_kernel(mean_y, var_y, mean_y, var_y)
        - 2 * expected_kernel(mean_x, var_x, mean_y, var_y)
    )


def test_mmd_matches_gaussian_closed_form():
    rng = np.random.default_rng(5)
    mean_x, mean_y = np.zeros(2), np.array([1.0, 0.5])
    x = rng.normal(size=(3000, 2)) + mean_x
    y = rng.normal(size=(3000, 2)) * np.sqrt(2.0) + mean_y
    expected = _rbf_gaussian_mmd2(mean_x, 1.0, mean_y, 2.0, bandwidth=1.5, dim=2)
    got = metrics.mmd_rbf_unbiased(x, y, bandwidth=1.5)
    assert expected > 0.05
    assert got == pytest.approx(expected, abs=0.01)  # sampling error ~ 1/sqrt(3000) * O(kernel)


def test_mmd_of_same_distribution_is_near_zero_and_unbiased():
    rng = np.random.default_rng(6)
    estimates = [
        metrics.mmd_rbf_unbiased(rng.normal(size=(300, 2)), rng.normal(size=(300, 2)), bandwidth=1.0) for _ in range(20)
    ]
    assert abs(np.mean(estimates)) < 3 * np.std(estimates) / np.sqrt(len(estimates)) + 1e-4
    assert min(estimates) < 0 < max(estimates)  # unbiased: straddles zero


def test_mode_weights_counts_nearest_mode():
    modes = np.array([[-5.0, -5.0], [5.0, 5.0]])
    points = np.array([[-4.0, -6.0], [6.0, 5.0], [0.1, 0.2], [10.0, 10.0], [np.nan, 0.0]])
    np.testing.assert_allclose(metrics.mode_weights(points, modes), [0.2, 0.6])
    assert metrics.binomial_standard_error(0.2, 1280) == pytest.approx(np.sqrt(0.16 / 1280))


def test_statistics_cache_round_trip(tmp_path):
    rng = np.random.default_rng(7)
    features = rng.normal(size=(50, 4))
    path = metrics.statistics_cache_path(tmp_path, "digits", "test", 50, "digits_classifier v1")
    assert path.name == "stats_digits_test_50_digits_classifier-v1.npz"
    calls = []

    def compute():
        calls.append(1)
        return features

    first = metrics.cached_statistics(path, compute)
    second = metrics.cached_statistics(path, compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(first.covariance, second.covariance)
    np.testing.assert_allclose(second.mean, features.mean(0))
    assert second.count == 50


def test_inception_weights_missing_offline_gives_one_line_message(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(metrics.MetricsError, match="--inception-weights") as error:
        metrics.resolve_inception_weights(None)
    assert "\n" not in str(error.value)
    with pytest.raises(metrics.MetricsError, match="does not exist"):
        metrics.resolve_inception_weights(tmp_path / "missing.h5")


@pytest.mark.slow
def test_inception_network_shapes_with_random_weights():
    network = metrics.InceptionNetwork(weights=None, batch_size=2)
    images = np.random.default_rng(8).uniform(size=(3, 8, 8, 1)).astype(np.float32)
    features, logits = network(images)
    assert features.shape == (3, metrics.INCEPTION_FEATURE_DIM)
    assert logits.shape == (3, 1000)
    assert np.all(np.isfinite(features)) and np.all(features >= 0)  # ReLU then average pool
    mean, _ = metrics.inception_score(metrics.softmax(logits), splits=1)
    assert 1.0 <= mean <= 1000.0
