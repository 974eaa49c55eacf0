"""evaluation.objective: the held-out DSM loss against its closed form for Gaussian data; the summary."""

import numpy as np
import pytest

from ncsn_tf import configs
from ncsn_tf.evaluation.generator import generator_from_model
from ncsn_tf.evaluation.objective import LOSS_NOISE_SEED, held_out_data, held_out_losses, loss_summary
from ncsn_tf.models.analytic import GaussianScore


def test_held_out_loss_matches_closed_form_for_gaussian_data():
    # Data N(0, s^2 I) in D dims with its exact perturbed score -x / (s^2 + sigma^2):
    # E 1/2 ||sigma s(x + sigma z) + z||^2 = D/2 * s^2 / (s^2 + sigma^2).
    std, dim, count = 0.5, 6, 4000
    sigmas = np.array([2.0, 0.5, 0.1], np.float32)
    config = configs.apply_overrides(configs.toy(), ["noise.num_levels=3"])
    generator = generator_from_model(GaussianScore(std, sigmas), config, label="exact")
    generator.sigmas = sigmas
    clean = (np.random.default_rng(0).standard_normal((count, dim)) * std).astype(np.float32)
    per_level = held_out_losses(generator, clean, batch_size=1000)
    assert per_level.shape == (3, count)
    expected = dim / 2 * std**2 / (std**2 + sigmas.astype(np.float64) ** 2)
    standard_errors = per_level.std(axis=1, ddof=1) / np.sqrt(count)
    np.testing.assert_array_less(np.abs(per_level.mean(axis=1) - expected), 4 * standard_errors)
    # fixed seed: identical perturbations on a second call, whatever the batch size
    np.testing.assert_array_equal(held_out_losses(generator, clean, batch_size=700), per_level)
    assert not np.array_equal(held_out_losses(generator, clean, seed=LOSS_NOISE_SEED + 1), per_level)


def test_loss_summary_means_and_standard_errors():
    per_level = np.array([[1.0, 3.0, 5.0], [0.0, 0.0, 3.0]])  # [L=2, N=3]
    summary = loss_summary(per_level, np.array([2.0, 1.0]))
    assert summary["count"] == 3 and summary["noise_seed"] == LOSS_NOISE_SEED
    assert summary["total"] == pytest.approx(2.0)  # per-example totals 0.5, 1.5, 4
    assert summary["total_standard_error"] == pytest.approx(np.std([0.5, 1.5, 4.0], ddof=1) / np.sqrt(3))
    assert [row["sigma"] for row in summary["per_level"]] == [2.0, 1.0]
    assert [row["loss"] for row in summary["per_level"]] == pytest.approx([3.0, 1.0])
    assert summary["per_level"][0]["standard_error"] == pytest.approx(2.0 / np.sqrt(3))
    single = loss_summary(per_level[:, :1], np.array([2.0, 1.0]))
    assert single["total_standard_error"] is None and single["per_level"][0]["standard_error"] is None


def test_held_out_digits_are_the_whole_test_split_in_file_order():
    config = configs.digits()
    first = held_out_data(config, 1000)
    assert first.shape == (360, 8, 8, 1) and 0.0 <= first.min() and first.max() <= 1.0
    np.testing.assert_array_equal(held_out_data(config, 10), first[:10])  # same order, same dequantisation
