"""evaluation.draw: seeded batched sampling, and the settings a run samples with."""

import dataclasses

import numpy as np
import pytest

from ncsn_tf import configs
from ncsn_tf.evaluation.draw import draw_samples, sampler_settings
from ncsn_tf.evaluation.generator import EvaluationError, generator_from_model
from ncsn_tf.models.analytic import paper_toy_mixture


def _exact_toy(levels: int = 3, steps: int = 4):
    config = configs.apply_overrides(configs.toy(), [f"noise.num_levels={levels}", f"sampling.steps_per_level={steps}"])
    return generator_from_model(paper_toy_mixture(config.noise.sigmas()), config, label="exact"), config


def test_samples_depend_only_on_their_seed_not_the_batch():
    generator, config = _exact_toy()
    whole = draw_samples(generator, 10, batch_size=10, seed=5, progress=False)
    batched = draw_samples(generator, 10, batch_size=4, seed=5, progress=False)  # 4 + 4 + 2 (padded)
    np.testing.assert_allclose(batched, whole, rtol=1e-5, atol=1e-5)  # a few ulp: batch-size kernels
    shifted = draw_samples(generator, 5, batch_size=5, seed=10, progress=False)
    np.testing.assert_allclose(shifted, whole[5:], rtol=1e-5, atol=1e-5)
    assert np.all(np.abs(whole) < 8 + 10 * config.noise.sigma_max)  # started on [-8, 8]^2, finite


def test_settings_are_the_defaults_unless_given():
    generator, config = _exact_toy(steps=4)
    assert sampler_settings(generator) == {
        "steps_per_level": 4,
        "epsilon": config.sampling.epsilon,
        "denoise": config.sampling.final_denoise,
        "convention": config.sampling.convention,
        "defaults_from": "config.sampling",
    }
    given = sampler_settings(generator, steps_per_level=9, epsilon=0.5, denoise=True)
    assert (given["steps_per_level"], given["epsilon"], given["denoise"]) == (9, 0.5, True)
    # draw_samples resolves them the same way: defaults changed on the generator change the samples
    generator.sampler_defaults = dataclasses.replace(generator.sampler_defaults, steps_per_level=9)
    np.testing.assert_allclose(
        draw_samples(generator, 4, seed=1, progress=False),
        draw_samples(generator, 4, seed=1, steps_per_level=9, progress=False),
        rtol=1e-6,
        atol=1e-6,
    )


@pytest.mark.parametrize(("count", "batch", "seed"), [(0, 4, 0), (4, 0, 0), (4, 4, -1), (4, 4, 2**31 - 5)])
def test_bad_counts_and_seeds_are_errors(count, batch, seed):
    generator, _ = _exact_toy(levels=1, steps=1)
    with pytest.raises(EvaluationError, match="positive|int32"):
        draw_samples(generator, count, batch_size=batch, seed=seed, progress=False)
