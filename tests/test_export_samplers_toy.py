"""The fast samplers recover the toy mixture's mode weights when exported, in both runtimes.

The paper's toy (Section 3.2): 0.2 N((-5,-5), I) + 0.8 N((5,5), I) with its exact score.
Chains start from p_sigma_1 itself (data + sigma_1 z, fed through the `*_sample_levels`
endpoints), so the sampler is measured, not the Gaussian prior's mismatch with p_sigma_1
(docs/samplers.md: a deterministic sampler keeps that mismatch; tests/test_samplers.py
measures it). Binomial standard error of the small mode's share with N = 4000 chains:
sqrt(0.2 * 0.8 / 4000) = 0.0063; the tolerance is 4 standard errors, 0.025.
Heun runs on the paper's 10-level ladder (19 network calls; the library gives 0.2000 with
20,000 chains); the predictor-corrector's reverse-diffusion predictor needs a fine ladder
here (100 levels 20 -> 1: 0.204 in the library; the paper's 10 levels give 0.252).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import export_format
from ncsn_tf import configs, toy

CHAINS = 4000
TOLERANCE = 4 * math.sqrt(0.2 * 0.8 / CHAINS)
RUNTIMES = ("onnxruntime", "tensorflow")


def _exact_start(sigma: float, seed: int) -> np.ndarray:
    """[N, 2] float32 points from p_sigma: a mode drawn by weight, then N(mean, (std^2 + sigma^2) I)."""
    rng = np.random.default_rng(seed)
    component = (rng.uniform(size=CHAINS) < toy.WEIGHTS[1]).astype(int)
    return (toy.MEANS[component] + math.sqrt(toy.STD**2 + sigma**2) * rng.normal(size=(CHAINS, 2))).astype(np.float32)


def _small_mode_share(points: np.ndarray) -> float:
    return float(np.mean(points.sum(axis=1) < 0))  # the modes are split by x + y = 0


def _at_the_modes(points: np.ndarray) -> float:
    return float(np.mean(np.linalg.norm(np.abs(points) - 5.0, axis=1) < 3.0))


def test_exported_heun_recovers_the_mode_weights_in_both_runtimes(toy_export_dir):
    seeds = np.arange(CHAINS, dtype=np.int32)  # [N]
    for runtime in RUNTIMES:
        runner = export_format.load(toy_export_dir, runtime)
        start = _exact_start(float(runner.manifest.sigmas[0]), seed=0)  # [N, 2]
        points = runner.sample_levels(start, seeds, 0, runner.num_levels, sampler="probability_flow", order=2)
        share = _small_mode_share(points)
        assert abs(share - 0.2) < TOLERANCE, (runtime, share)
        assert _at_the_modes(points) > 0.95, runtime
        runner.close()


@pytest.mark.slow  # exports a 100-level toy (about a minute on 2 cores)
@pytest.mark.xfail(
    strict=True,
    raises=Exception,
    reason="known: the exporter's verification refuses this export (predictor_corrector_sample.onnx differs from "
    "the SavedModel by 0.0187, tolerance 1.4e-3): over 100 stochastic levels the exact mixture score, whose mode "
    "responsibilities switch sharply between the modes, amplifies float32 rounding differences; the verifier's "
    "fixed tolerance needs to account for that (open)",
)
def test_exported_predictor_corrector_recovers_the_mode_weights_on_a_fine_ladder(tmp_path):
    from export.exporter import export_model
    from ncsn_tf.models.analytic import paper_toy_mixture

    config = configs.apply_overrides(configs.toy(), ["noise.num_levels=100"])
    model = paper_toy_mixture(tuple(float(sigma) for sigma in config.noise.sigmas()))
    result = export_model(config, model, 0, tmp_path, name="toy_fine", samplers=("predictor_corrector",),
                          sampler_defaults={"corrector_steps": 0}, optimize_onnx=False)  # fmt: skip
    seeds = np.arange(CHAINS, dtype=np.int32)  # [N]
    shares = {}
    for runtime in RUNTIMES:
        runner = export_format.load(result.path, runtime)
        start = _exact_start(float(runner.manifest.sigmas[0]), seed=1)  # [N, 2]
        points = runner.sample_levels(start, seeds, 0, runner.num_levels, sampler="predictor_corrector", corrector_steps=0)
        shares[runtime] = _small_mode_share(points)
        assert abs(shares[runtime] - 0.2) < TOLERANCE, (runtime, shares)
        assert _at_the_modes(points) > 0.95, runtime
        runner.close()
