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


def _tiny_digits_workdir(path) -> str:
    config = configs.apply_overrides(configs.digits(), ["model.ngf=4", "noise.num_levels=2", "sampling.steps_per_level=2"])
    checkpoints.write_workdir(path, config, build_score_model(config), step=1)
    return str(path)


@pytest.mark.slow  # ~30 s of CPU (the digits classifier, three samplers traced)
def test_inpainting_with_predictor_corrector_and_repaint_resampling(tmp_path, capsys):
    run = _tiny_digits_workdir(tmp_path / "run")
    out = tmp_path / "out"
    code = experiments.main(["inpaint", run, "--out", str(out), "--count", "10", "--cache-dir", str(tmp_path / "cache"),
                             "--sampler", "predictor_corrector", "--corrector-steps", "1", "--snr", "0.3",
                             "--resample-steps", "1"])  # fmt: skip
    assert code == 0
    report = json.loads((out / "inpainting.json").read_text())
    # L (C + 1) + (L - 1) u (C + 1) with L = 2, C = 1, u = 1 (RePaint: one extra pass of the first level)
    assert report["sampler"] == {"sampler": "predictor_corrector", "corrector_steps": 1, "snr": 0.3,
                                 "resample_steps": 1, "network_calls": 2 * 2 + 1 * 1 * 2}  # fmt: skip
    assert len(report["masks"]) == 4 and all(0 <= m["accuracy_inpainted"] <= 1 for m in report["masks"].values())
    assert "predictor_corrector: 6 network calls per image" in capsys.readouterr().out
    # The inpainted digits keep every known pixel exactly (masks: 1 = known).
    from ncsn_tf.checkpoints import load_for_inference
    from ncsn_tf.data import digits_arrays
    from ncsn_tf.sampling import run_sampler, start_images

    config, model, _ = load_for_inference(run)
    known, _ = digits_arrays("test")
    mask = np.broadcast_to(experiments.inpainting_masks(8, 8, 1)["right half missing"], known[:4].shape)
    seeds = np.arange(4, dtype=np.int32)
    start = start_images("predictor_corrector", seeds, config.data.shape, config.noise.sigmas(), value_range=(0.0, 1.0))
    completed = run_sampler(model, start, seeds, config.noise.sigmas(), known_images=known[:4], masks=mask,
                            sampler="predictor_corrector", corrector_steps=1, snr=0.3, resample_steps=1).numpy()  # fmt: skip
    np.testing.assert_array_equal(completed[mask == 1], known[:4][mask == 1])


def test_inpainting_refuses_resampling_for_annealed_langevin_in_one_line(tmp_path, capsys):
    run = _tiny_digits_workdir(tmp_path / "run")
    assert experiments.main(["inpaint", run, "--out", str(tmp_path / "out"), "--resample-steps", "1"]) == 2
    error = capsys.readouterr().err.strip()
    assert "resample_steps is a setting of predictor_corrector, not of annealed_langevin" in error and "\n" not in error


@pytest.mark.parametrize("count", ["0", "361"])
def test_inpainting_count_beyond_the_held_out_digits_is_one_line(tmp_path, capsys, count):
    run = _tiny_digits_workdir(tmp_path / "run")
    assert experiments.main(["inpaint", run, "--out", str(tmp_path / "out"), "--count", count]) == 2
    error = capsys.readouterr().err.strip()
    assert f"--count must be in [1, 360] (the held-out digits), got {count}" in error and "\n" not in error


@pytest.mark.slow  # ~40 s of CPU: five samplers traced, the digits classifier, two figures
def test_sampler_comparison_on_a_tiny_model_writes_table_plot_samples_and_json(tmp_path, capsys, monkeypatch):
    from ncsn_tf import sampler_comparison

    run = _tiny_digits_workdir(tmp_path / "run")
    rows = (
        {"sampler": "annealed_langevin", "steps_per_level": 2},
        {"sampler": "predictor_corrector", "corrector_steps": 1, "snr": 0.16},
        {"sampler": "probability_flow", "order": 2},
    )
    toy_rows = ({"sampler": "annealed_langevin", "steps_per_level": 10}, {"sampler": "probability_flow", "order": 1})
    monkeypatch.setattr(sampler_comparison, "DIGITS_ROWS", rows)  # the CLI runs the module's rows
    monkeypatch.setattr(sampler_comparison, "TOY_ROWS", toy_rows)
    out = tmp_path / "out"
    code = experiments.main(["samplers", run, "--out", str(out), "--num-samples", "20", "--batch-size", "10",
                             "--toy-chains", "400", "--cache-dir", str(tmp_path / "cache")])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    table = [line for line in printed.splitlines() if line.startswith("| ")]
    header = "| sampler | network calls | Fréchet distance | confident (> 0.9) | class shares (min–max) | s / 1,000 samples |"
    assert table[0] == header
    digits_lines = table[1:4]
    assert [line.split(" | ")[1] for line in digits_lines] == ["4", "4", "3"]  # L T, L (C + 1), 2L - 1 with L = 2
    assert digits_lines[0].startswith("| annealed Langevin, T = 2 |")
    assert digits_lines[1].startswith("| predictor-corrector, C = 1, snr 0.16 |")
    assert digits_lines[2].startswith("| probability flow, Heun |")
    report = json.loads((out / "samplers.json").read_text())
    digits_rows = report["digits"]["rows"]
    assert [row["network_calls"] for row in digits_rows] == [4, 4, 3]
    assert digits_rows[1]["sampler"] == {"sampler": "predictor_corrector", "corrector_steps": 1, "snr": 0.16,
                                         "network_calls": 4}  # fmt: skip
    for row in digits_rows:  # an untrained network: no goal met, metrics in range
        assert row["meets_goal"] is False and 0 <= row["confident_share"] <= 1 and row["frechet_distance"] > 0
        assert row["seconds_per_1000"] > 0 and "preview" not in row  # 2 batches: the second is timed
    toy = report["toy"]["rows"]
    assert [row["network_calls"] for row in toy] == [100, 10]  # 10 levels: L T, L
    assert all(abs(sum(row["mode_weights"]) - 1) < 1e-9 for row in toy)
    assert (out / "samplers.md").read_text().count("\n| ") == 2 + 3 + 2  # two headers, 5 rows (rules start "|---")
    assert (out / "samplers.md").read_text().count("\n|---") == 2
    for name in ("samplers.png", "samplers_samples.png"):
        assert (out / name).stat().st_size > 5000, name


def test_the_sampler_goal_is_checked_on_every_criterion():
    from ncsn_tf.sampler_comparison import digits_meets_goal

    good = {"frechet_distance": 1.9, "confident_share": 0.81, "min_class_share": 0.06, "max_class_share": 0.14}
    assert digits_meets_goal(good, 50)
    assert not digits_meets_goal(good, 51)
    for key, bad in (("frechet_distance", 2.01), ("confident_share", 0.79), ("min_class_share", 0.04),
                     ("max_class_share", 0.16)):  # fmt: skip
        assert not digits_meets_goal({**good, key: bad}, 40), key
