"""evaluation.dataset_metrics: toy metrics on true samples and on a known wrong split; defaults per data set."""

import numpy as np
import pytest

from ncsn_tf import configs, toy
from ncsn_tf.data import sample_toy_mixture
from ncsn_tf.evaluation.dataset_metrics import dataset_metrics, default_num_samples, toy_metrics, uses_inception


def test_toy_metrics_of_true_samples():
    found = toy_metrics(sample_toy_mixture(4000, seed=11))
    assert abs(found["mode_weights"][0] - 0.2) < 4 * np.sqrt(0.16 / 4000)
    assert found["binomial_standard_error"] == pytest.approx(np.sqrt(0.16 / 4000))
    assert found["within_mode_variance"] == pytest.approx(1.0, rel=0.1)  # unit-variance components
    assert abs(found["mmd2"]) < 0.01 and abs(found["mmd2_true_vs_true"]) < 0.01


def test_toy_metrics_see_a_wrong_mode_split():
    rng = np.random.default_rng(0)
    even = np.concatenate([toy.MEANS[0] + rng.standard_normal((500, 2)), toy.MEANS[1] + rng.standard_normal((500, 2))])
    found = dataset_metrics(even, configs.toy())
    assert found["mode_weights"] == pytest.approx([0.5, 0.5])
    assert found["weight_error_in_standard_errors"] == pytest.approx(0.3 / np.sqrt(0.16 / 1000))
    assert found["mmd2"] > 10 * abs(found["mmd2_true_vs_true"])


def test_defaults_per_data_set():
    assert default_num_samples("toy") == toy.NUM_CHAINS == 1280
    assert default_num_samples("digits") == 1000
    assert default_num_samples("cifar10") == 50_000  # the paper's FID protocol
    assert not uses_inception("toy") and not uses_inception("digits") and uses_inception("celeba")
