"""The paper's experiments: Figure 3 with exact scores, inpainting figure, final-denoising ablation."""

import json

import numpy as np
import pytest

from ncsn_tf import checkpoints, configs, experiments
from ncsn_tf.evaluation.generator import generator_from_model
from ncsn_tf.models import build_score_model
from ncsn_tf.models.analytic import paper_toy_mixture


def test_toy_figure3_exact_scores(tmp_path):
    report = experiments.run_toy(tmp_path, learned_steps=None, mixing_check=False)
    methods = report["methods"]
    standard_error = np.sqrt(0.2 * 0.8 / experiments.TOY_CHAINS)  # 0.0112 at 1280 chains
    print({name: found["mode_weights"][0] for name, found in methods.items()})
    # i.i.d. draws: the data module's sampler, binomial noise only
    assert abs(methods["iid"]["mode_weights"][0] - 0.2) < 4 * standard_error
    # Annealed Langevin recovers 1 : 4. The paper's schedule (100 steps per level) leaves
    # a small bias (~+0.017, 1.5 SE at 1280 chains; an independent NumPy sampler agrees),
    # so allow 4 SE here; a sampler without annealing lands near 0.5.
    assert abs(methods["annealed"]["mode_weights"][0] - 0.2) < 4 * standard_error
    # Plain Langevin keeps the initial split of the [-8, 8]^2 square: clearly off 0.2.
    assert methods["langevin"]["mode_weights"][0] > 0.35
    assert methods["langevin"]["weight_error_in_standard_errors"] > 10
    # annealed Langevin ends on the data perturbed by sigma_L = 1: variance 1 + 1 around each mode
    assert methods["annealed"]["within_mode_variance"] == pytest.approx(2.0, rel=0.1)
    assert methods["annealed"]["mmd2"] < methods["langevin"]["mmd2"]
    written = json.loads((tmp_path / "toy.json").read_text())
    assert written["methods"]["annealed"]["mode_weights"] == methods["annealed"]["mode_weights"]
    assert (tmp_path / "toy.png").stat().st_size > 10_000


@pytest.mark.slow
def test_toy_learned_score_runs_the_trainer(tmp_path):
    report = experiments.run_toy(
        tmp_path, learned_steps=20, num_chains=64, mixing_check=False, learned_workdir=tmp_path / "wd", progress=False
    )
    assert report["learned"]["steps"] == 20
    assert sum(report["methods"]["learned"]["mode_weights"]) == pytest.approx(1.0)
    assert (tmp_path / "wd" / "config.json").exists()


def test_denoising_ablation_matches_tweedie_closed_form(tmp_path):
    # Exact scores: annealed Langevin ends near N(mu_k, (1 + sigma_L^2) I) = variance 2 per
    # coordinate around each mode; the denoising step x + sigma_L^2 s(x) = E[x0 | x] maps
    # mu + e to mu + e / 2, variance 2 / 4 = 0.5.
    config = configs.toy()
    sigmas = config.noise.sigmas()
    generator = generator_from_model(paper_toy_mixture(sigmas), config, label="exact toy")
    report = experiments.run_denoising_ablation(generator, tmp_path, num_samples=1280, progress=False)
    assert report["plain"]["within_mode_variance"] == pytest.approx(2.0, rel=0.1)
    assert report["denoised"]["within_mode_variance"] == pytest.approx(0.5, rel=0.1)
    # the same seeds: the denoising step does not move points between modes
    assert report["denoised"]["mode_weights"] == pytest.approx(report["plain"]["mode_weights"], abs=2 / 1280)
    assert (tmp_path / "samples_plain.png").exists() and (tmp_path / "samples_denoised.png").exists()
    assert json.loads((tmp_path / "denoising.json").read_text())["num_samples"] == 1280


def test_inpainting_masks_shapes():
    masks = experiments.inpainting_masks(8, 8, 1)
    assert set(masks) == {"right half missing", "bottom half missing", "centre missing", "random 60% missing"}
    for mask in masks.values():
        assert mask.shape == (8, 8, 1) and set(np.unique(mask)) <= {0.0, 1.0}
    assert masks["right half missing"][:, :4].all() and not masks["right half missing"][:, 4:].any()
    assert masks["centre missing"].sum() == 64 - 16
    assert 0.25 < masks["random 60% missing"].mean() < 0.55


def test_inpainting_figure_with_a_tiny_digits_model(tmp_path):
    config = configs.apply_overrides(
        configs.digits(), ["model.ngf=4", "noise.num_levels=2", "sampling.steps_per_level=2"]
    )
    checkpoints.write_workdir(tmp_path / "run", config, build_score_model(config), step=1)
    report = experiments.run_inpainting(tmp_path / "run", tmp_path / "out", count=10, cache_dir=str(tmp_path / "cache"))
    assert len(report["masks"]) == 4
    for name, found in report["masks"].items():
        assert 0.0 <= found["accuracy_inpainted"] <= 1.0
        assert found["known_pixels"] == int(experiments.inpainting_masks(8, 8, 1)[name].sum())
    assert (tmp_path / "out" / "inpainting.png").stat().st_size > 1000
    assert json.loads((tmp_path / "out" / "inpainting.json").read_text())["count"] == 10
