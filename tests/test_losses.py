"""Denoising score matching against closed forms (Gaussian data has an exact perturbed score)."""

import numpy as np
import pytest
import tensorflow as tf

from ncsn_tf.losses import denoising_score_matching


def test_hand_computed_value_on_a_tiny_input():
    sigmas = np.array([2.0, 0.5], np.float32)  # [L]
    clean = np.array([[1.0, 2.0], [0.0, -1.0]], np.float32)  # [B=2, 2]
    noise = np.array([[0.5, -1.0], [1.0, 2.0]], np.float32)  # [B, 2]
    sigma_indices = np.array([1, 0], np.int32)  # [B]

    def score_fn(noisy, indices):  # s(x, i) = (i + 1) * x: uses the level index
        return noisy * tf.cast(indices + 1, tf.float32)[:, None]

    loss = denoising_score_matching(score_fn, clean, sigma_indices, noise, sigmas)
    # Example 0: sigma 0.5, noisy = (1.25, 1.5), score = 2 * noisy = (2.5, 3.0),
    #   sigma * score + z = (1.25 + 0.5, 1.5 - 1.0) = (1.75, 0.5), loss = (3.0625 + 0.25) / 2.
    # Example 1: sigma 2, noisy = (2, 3), score = (2, 3),
    #   sigma * score + z = (4 + 1, 6 + 2) = (5, 8), loss = (25 + 64) / 2.
    assert tuple(loss.shape) == (2,)
    np.testing.assert_allclose(np.asarray(loss), [1.65625, 44.5], rtol=1e-6)


def test_one_value_per_example_for_images_and_same_in_tf_function():
    rng = np.random.default_rng(0)
    clean = rng.uniform(size=(3, 8, 8, 1)).astype(np.float32)  # [B, H, W, C] in [0, 1]
    noise = rng.standard_normal((3, 8, 8, 1)).astype(np.float32)
    sigmas = np.array([1.0, 0.1], np.float32)
    sigma_indices = np.array([0, 1, 1], np.int32)

    def zero_score(noisy, indices):
        return tf.zeros_like(noisy)

    loss = denoising_score_matching(zero_score, clean, sigma_indices, noise, sigmas)
    assert tuple(loss.shape) == (3,)
    # With a zero score the loss is ||z||^2 / 2 per example, whatever sigma is.
    np.testing.assert_allclose(np.asarray(loss), 0.5 * np.sum(noise**2, axis=(1, 2, 3)), rtol=1e-5)
    compiled = tf.function(lambda c, i, z: denoising_score_matching(zero_score, c, i, z, sigmas))
    np.testing.assert_allclose(np.asarray(compiled(clean, sigma_indices, noise)), np.asarray(loss), rtol=1e-6)


class TestGaussianData:
    """Data N(0, s^2 I) in D dims: the perturbed density is N(0, (s^2 + sigma^2) I) and its score
    is -x~ / (s^2 + sigma^2). For a linear score a * x~ the expected loss is
    D/2 * (sigma^2 a^2 s^2 + (sigma^2 a + 1)^2), minimised at the exact score with value
    D s^2 / (2 (s^2 + sigma^2)); a constant shift b adds D sigma^2 b^2 / 2.
    """

    data_std = 0.7
    dims = 4
    sigmas = np.array([1.0, 0.1], np.float32)  # 2 levels
    num = 100_000

    @pytest.fixture(scope="class")
    def samples(self):
        # Antithetic pairs (x, z) and (-x, -z): the residual of a linear score is odd in
        # (x, z), so the cross term of a shifted score cancels exactly, not just on average.
        rng = np.random.default_rng(1234)
        half = self.num // 2
        clean = (self.data_std * rng.standard_normal((half, self.dims))).astype(np.float32)  # [N/2, D]
        noise = rng.standard_normal((half, self.dims)).astype(np.float32)  # [N/2, D]
        sigma_indices = rng.integers(0, len(self.sigmas), half).astype(np.int32)  # [N/2]
        return (
            np.concatenate([clean, -clean]),  # [N, D]
            np.concatenate([noise, -noise]),  # [N, D]
            np.concatenate([sigma_indices, sigma_indices]),  # [N]
        )

    def score(self, scale=1.0, shift=0.0):
        variances = tf.constant(self.data_std**2 + self.sigmas.astype(np.float64) ** 2, tf.float32)  # [L]

        def score_fn(noisy, indices):
            exact = -noisy / tf.gather(variances, indices)[:, None]  # [N, D]
            return scale * exact + shift

        return score_fn

    def per_level_mean(self, samples, score_fn):
        clean, noise, sigma_indices = samples
        loss = np.asarray(denoising_score_matching(score_fn, clean, sigma_indices, noise, self.sigmas))  # [N]
        assert loss.shape == (self.num,)
        return np.array([loss[sigma_indices == level].mean() for level in range(len(self.sigmas))]), loss

    def test_exact_score_matches_the_closed_form_minimum(self, samples):
        means, _ = self.per_level_mean(samples, self.score())
        s2, sigma2 = self.data_std**2, self.sigmas.astype(np.float64) ** 2
        np.testing.assert_allclose(means, self.dims * s2 / (2 * (s2 + sigma2)), rtol=0.02)

    @pytest.mark.parametrize("delta", [0.1, 0.5])
    def test_scaled_scores_lose_by_the_closed_form_excess(self, samples, delta):
        exact_means, exact_loss = self.per_level_mean(samples, self.score())
        smaller_means, smaller_loss = self.per_level_mean(samples, self.score(scale=1 - delta))
        larger_means, larger_loss = self.per_level_mean(samples, self.score(scale=1 + delta))
        for means, loss in ((smaller_means, smaller_loss), (larger_means, larger_loss)):
            assert loss.mean() > exact_loss.mean()
            assert np.all(means > exact_means)
        # The Monte Carlo loss is exactly quadratic in the scale; averaging the two sides
        # cancels its (noisy, zero-mean) slope at the optimum and leaves the curvature term
        # D/2 * sigma^2 (s^2 + sigma^2) (delta * a*)^2 with a* = -1 / (s^2 + sigma^2).
        s2, sigma2 = self.data_std**2, self.sigmas.astype(np.float64) ** 2
        expected = 0.5 * self.dims * sigma2 * delta**2 / (s2 + sigma2)
        np.testing.assert_allclose(0.5 * (smaller_means + larger_means) - exact_means, expected, rtol=0.03)

    @pytest.mark.parametrize("shift", [0.1, -0.3])
    def test_shifted_scores_lose_by_the_closed_form_excess(self, samples, shift):
        exact_means, exact_loss = self.per_level_mean(samples, self.score())
        shifted_means, shifted_loss = self.per_level_mean(samples, self.score(shift=shift))
        assert shifted_loss.mean() > exact_loss.mean()
        # Antithetic samples cancel the cross term, so the excess is exactly D sigma^2 b^2 / 2.
        sigma2 = self.sigmas.astype(np.float64) ** 2
        np.testing.assert_allclose(shifted_means - exact_means, 0.5 * self.dims * sigma2 * shift**2, rtol=1e-3)
