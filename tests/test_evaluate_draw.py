"""evaluation.draw: seeded batched sampling, and the settings a run samples with."""

import dataclasses
import re

import numpy as np
import pytest

from ncsn_tf import configs
from ncsn_tf.evaluation.draw import draw_samples, sampler_record, sampler_settings
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
    assert sampler_settings(generator) == config.sampling
    assert sampler_record(generator, sampler_settings(generator)) == {
        "sampler": "annealed_langevin",
        "steps_per_level": 4,
        "epsilon": config.sampling.epsilon,
        "denoise": config.sampling.final_denoise,
        "convention": config.sampling.convention,
        "network_calls": 3 * 4,
        "defaults_from": "config.sampling",
    }
    given = sampler_settings(generator, steps_per_level=9, epsilon=0.5, final_denoise=True)
    assert (given.steps_per_level, given.epsilon, given.final_denoise) == (9, 0.5, True)
    # draw_samples resolves them the same way: defaults changed on the generator change the samples
    generator.sampler_defaults = dataclasses.replace(generator.sampler_defaults, steps_per_level=9)
    np.testing.assert_allclose(
        draw_samples(generator, 4, seed=1, progress=False),
        draw_samples(generator, 4, seed=1, steps_per_level=9, progress=False),
        rtol=1e-6,
        atol=1e-6,
    )


@pytest.mark.parametrize(
    ("overrides", "record"),
    [
        ({"sampler": "predictor_corrector"}, {"corrector_steps": 2, "snr": 0.6, "network_calls": 3 * 3}),
        ({"sampler": "predictor_corrector", "corrector_steps": 0, "snr": 0.2}, {"corrector_steps": 0, "snr": 0.2,
                                                                                "network_calls": 3}),  # fmt: skip
        ({"sampler": "probability_flow"}, {"order": 2, "network_calls": 2 * 3 - 1}),
        ({"sampler": "probability_flow", "order": 1}, {"order": 1, "network_calls": 3}),
    ],
)
def test_the_record_holds_the_samplers_own_settings_and_its_calls(overrides, record):
    generator, _ = _exact_toy(levels=3)
    assert sampler_record(generator, sampler_settings(generator, **overrides)) == {
        "sampler": overrides["sampler"], **record, "defaults_from": "config.sampling"
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"sampler": "heun"}, "sampling.sampler: unknown sampler 'heun'"),
        ({"sampler": "predictor_corrector", "snr": 0.0}, "sampling.snr"),
        ({"sampler": "predictor_corrector", "corrector_steps": -1}, "sampling.corrector_steps"),
        ({"sampler": "probability_flow", "order": 3}, "sampling.order"),
        ({"snr": 0.3}, "snr is a setting of predictor_corrector, not of annealed_langevin"),
        ({"sampler": "probability_flow", "steps_per_level": 3}, "steps_per_level is a setting of annealed_langevin"),
    ],
)
def test_bad_or_misplaced_settings_are_one_line_errors(overrides, message):
    generator, _ = _exact_toy()
    with pytest.raises(configs.ConfigError, match=re.escape(message)) as error:
        sampler_settings(generator, **overrides)
    assert "\n" not in str(error.value)


def test_a_generator_without_the_sampler_says_what_it_has():
    generator, _ = _exact_toy()
    generator = dataclasses.replace(generator, samplers=("annealed_langevin",))
    with pytest.raises(EvaluationError, match="exact has no probability_flow sampler; it has annealed_langevin: choose one of those"):
        sampler_settings(generator, sampler="probability_flow")
    with pytest.raises(EvaluationError, match="unknown sampler setting 'steps'"):
        sampler_settings(generator, steps=3)


def test_every_sampler_draws_seeded_samples_near_the_modes():
    """Each sampler on the exact toy scores lands its samples near the two modes (+-5, +-5)."""
    generator, _ = _exact_toy(levels=10, steps=20)
    for overrides in ({"sampler": "predictor_corrector", "corrector_steps": 1, "snr": 0.16},
                      {"sampler": "probability_flow", "order": 2}):  # fmt: skip
        samples = draw_samples(generator, 200, batch_size=100, seed=3, progress=False, **overrides)  # [200, 2]
        again = draw_samples(generator, 200, batch_size=200, seed=3, progress=False, **overrides)
        np.testing.assert_allclose(samples, again, rtol=1e-5, atol=1e-5)
        to_mode = np.minimum(np.linalg.norm(samples - 5.0, axis=1), np.linalg.norm(samples + 5.0, axis=1))  # [200]
        assert np.median(to_mode) < 2.0, overrides  # unit-variance modes: the median is ~1.2
    with pytest.raises(EvaluationError, match="either settings or single sampler overrides"):
        draw_samples(generator, 2, settings=generator.sampler_defaults, order=1, progress=False)


@pytest.mark.parametrize(("count", "batch", "seed"), [(0, 4, 0), (4, 0, 0), (4, 4, -1), (4, 4, 2**31 - 5)])
def test_bad_counts_and_seeds_are_errors(count, batch, seed):
    generator, _ = _exact_toy(levels=1, steps=1)
    with pytest.raises(EvaluationError, match="positive|int32"):
        draw_samples(generator, count, batch_size=batch, seed=seed, progress=False)
