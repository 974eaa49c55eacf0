"""Exact score models against closed forms and autodiff of the perturbed log-density."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from ncsn_tf.models.analytic import GaussianMixtureScore, GaussianScore, paper_toy_mixture


def _mixture_log_density(points, weights, means, variance):
    """log sum_k w_k N(x; mu_k, variance I) in float64, by logsumexp (tf, differentiable)."""
    dim = means.shape[1]
    squared = tf.reduce_sum(tf.square(points[:, None, :] - means[None]), axis=-1)  # [B, K]
    log_normals = -0.5 * squared / variance - 0.5 * dim * np.log(2 * np.pi * variance)
    return tf.reduce_logsumexp(np.log(weights)[None] + log_normals, axis=-1)  # [B]


def test_gaussian_score_closed_form_any_shape():
    sigmas = [1.0, 0.1, 0.01]
    model = GaussianScore(std=0.5, sigmas=sigmas)
    noisy = np.random.default_rng(0).normal(size=(3, 4, 4, 2)).astype(np.float32)
    indices = np.array([0, 1, 2], np.int32)
    scores = model(noisy, indices).numpy()
    expected = -noisy / (0.25 + np.square(sigmas)[:, None, None, None])
    np.testing.assert_allclose(scores, expected, rtol=1e-6)


def test_mixture_score_is_the_gradient_of_the_perturbed_log_density():
    sigmas = np.array([20.0, 3.0, 1.0, 0.1])
    weights, means, variance = np.array([0.2, 0.8]), np.array([[-5.0, -5.0], [5.0, 5.0]]), 1.0
    model = GaussianMixtureScore(weights=weights, means=means, variance=variance, sigmas=sigmas)
    points = np.random.default_rng(1).uniform(-10, 10, size=(64, 2))
    indices = np.arange(64, dtype=np.int32) % len(sigmas)
    scores = model(points.astype(np.float32), indices).numpy()
    x = tf.constant(points, tf.float64)
    with tf.GradientTape() as tape:
        tape.watch(x)
        # each point's own level: mixture convolved with N(0, sigma^2 I) = variance + sigma^2
        log_p = _mixture_log_density(x, weights, means, (variance + sigmas[indices] ** 2)[:, None])
    expected = tape.gradient(log_p, x).numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-4, atol=1e-5)


def test_one_component_mixture_is_a_shifted_gaussian():
    mean = np.array([[1.5, -2.0, 0.5]])
    model = GaussianMixtureScore(weights=[3.0], means=mean, variance=0.25, sigmas=[2.0, 0.5])
    gaussian = GaussianScore(std=0.5, sigmas=[2.0, 0.5])
    points = np.random.default_rng(2).normal(size=(5, 3)).astype(np.float32)
    indices = np.array([0, 1, 1, 0, 1], np.int32)
    np.testing.assert_allclose(
        model(points, indices).numpy(), gaussian(points - mean.astype(np.float32), indices).numpy(), rtol=1e-5
    )


def test_far_from_the_modes_the_score_points_home_without_overflow():
    model = paper_toy_mixture([1.0])
    scores = model(np.array([[1e3, 1e3], [-1e3, -1e3]], np.float32), np.zeros(2, np.int32)).numpy()
    assert np.all(np.isfinite(scores))
    np.testing.assert_allclose(scores, [[-(1e3 - 5) / 2] * 2, [(1e3 - 5) / 2] * 2], rtol=1e-5)


@pytest.mark.parametrize(
    "model",
    [
        GaussianScore(std=0.3, sigmas=[1.0, 0.1]),
        GaussianMixtureScore(weights=[0.2, 0.8], means=[[-5, -5], [5, 5]], variance=1.0, sigmas=[20.0, 1.0]),
    ],
    ids=["gaussian", "mixture"],
)
def test_serialisable_via_get_config(model):
    points = np.random.default_rng(3).normal(size=(4, 2)).astype(np.float32)
    indices = np.array([0, 1, 0, 1], np.int32)
    rebuilt = type(model).from_config(model.get_config())
    np.testing.assert_array_equal(rebuilt(points, indices).numpy(), model(points, indices).numpy())
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert type(restored) is type(model) and restored.sigmas == model.sigmas
    np.testing.assert_array_equal(restored(points, indices).numpy(), model(points, indices).numpy())


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="sigmas"):
        GaussianScore(std=1.0, sigmas=[])
    with pytest.raises(ValueError, match="std"):
        GaussianScore(std=0.0, sigmas=[1.0])
    with pytest.raises(ValueError, match=r"means must be \[K, D\]"):
        GaussianMixtureScore(weights=[0.5, 0.5], means=[[0.0, 0.0]], variance=1.0, sigmas=[1.0])
    with pytest.raises(ValueError, match="weights"):
        GaussianMixtureScore(weights=[1.0, -1.0], means=[[0.0], [1.0]], variance=1.0, sigmas=[1.0])
