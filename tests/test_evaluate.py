"""evaluate: seeded batched sampling, the held-out objective (closed form), metrics JSON, side by side."""

import json

import numpy as np
import pytest

from ncsn_tf import checkpoints, configs, evaluate
from ncsn_tf.models import build_score_model
from ncsn_tf.models.analytic import GaussianScore, paper_toy_mixture


def _toy_config(levels: int = 2, steps: int = 5) -> configs.Config:
    return configs.apply_overrides(
        configs.toy(), [f"noise.num_levels={levels}", f"sampling.steps_per_level={steps}", "model.mlp_hidden=16"]
    )


def _toy_workdir(path, seed: int) -> str:
    import keras

    config = _toy_config()
    keras.utils.set_random_seed(seed)
    model = build_score_model(config)
    checkpoints.write_workdir(path, config, model, step=10 + seed)
    return str(path)


def test_held_out_loss_matches_closed_form_for_gaussian_data():
    # Data N(0, s^2 I) in D dims with its exact perturbed score -x / (s^2 + sigma^2):
    # E 1/2 ||sigma s(x + sigma z) + z||^2 = D/2 * s^2 / (s^2 + sigma^2).
    std, dim, count = 0.5, 6, 4000
    sigmas = np.array([2.0, 0.5, 0.1], np.float32)
    config = configs.apply_overrides(configs.toy(), ["noise.num_levels=3"])
    generator = evaluate.generator_from_model(GaussianScore(std, sigmas), config, label="exact")
    generator.sigmas = sigmas
    clean = (np.random.default_rng(0).standard_normal((count, dim)) * std).astype(np.float32)
    per_level = evaluate.held_out_losses(generator, clean, batch_size=1000)
    assert per_level.shape == (3, count)
    expected = dim / 2 * std**2 / (std**2 + sigmas.astype(np.float64) ** 2)
    standard_errors = per_level.std(axis=1, ddof=1) / np.sqrt(count)
    np.testing.assert_array_less(np.abs(per_level.mean(axis=1) - expected), 4 * standard_errors)
    summary = evaluate.loss_summary(per_level, sigmas)
    assert summary["total"] == pytest.approx(per_level.mean())
    assert [row["sigma"] for row in summary["per_level"]] == pytest.approx(sigmas.tolist())
    # fixed seed: identical perturbations on a second call
    np.testing.assert_array_equal(evaluate.held_out_losses(generator, clean, batch_size=700), per_level)


def test_samples_depend_only_on_their_seed_not_the_batch():
    config = _toy_config(levels=3, steps=4)
    sigmas = config.noise.sigmas()
    generator = evaluate.generator_from_model(paper_toy_mixture(sigmas), config, label="exact")
    whole = evaluate.draw_samples(generator, 10, batch_size=10, seed=5, progress=False)
    batched = evaluate.draw_samples(generator, 10, batch_size=4, seed=5, progress=False)  # 4 + 4 + 2 (padded)
    np.testing.assert_allclose(batched, whole, rtol=1e-5, atol=1e-5)  # a few ulp: batch-size kernels
    shifted = evaluate.draw_samples(generator, 5, batch_size=5, seed=10, progress=False)
    np.testing.assert_allclose(shifted, whole[5:], rtol=1e-5, atol=1e-5)
    assert np.all(np.abs(whole) < 8 + 10 * config.noise.sigma_max)  # started on [-8, 8]^2, finite


def test_toy_metrics_of_true_samples():
    from ncsn_tf.data import sample_toy_mixture

    found = evaluate.toy_metrics(sample_toy_mixture(4000, seed=11))
    assert abs(found["mode_weights"][0] - 0.2) < 4 * np.sqrt(0.16 / 4000)
    assert found["within_mode_variance"] == pytest.approx(1.0, rel=0.1)  # unit-variance components
    assert abs(found["mmd2"]) < 0.01 and abs(found["mmd2_true_vs_true"]) < 0.01


def test_compare_two_toy_models_side_by_side(tmp_path, capsys):
    first = _toy_workdir(tmp_path / "a", seed=1)
    second = _toy_workdir(tmp_path / "b", seed=2)
    code = evaluate.main([first, second, "--num-samples", "64", "--quiet", "--out", str(tmp_path / "out")])
    assert code == 0
    table = capsys.readouterr().out
    assert f"[1] {first}" in table and f"[2] {second}" in table  # the legend
    assert "loss @ sigma=20" in table and "loss @ sigma=1 " in table
    assert "loss diff [2] - [1]" in table
    results = [json.loads((tmp_path / "out" / f"model_{i}" / "evaluation.json").read_text()) for i in (0, 1)]
    for result in results:
        assert result["dataset"] == "toy"
        assert result["sampler"]["num_samples"] == 64
        assert len(result["held_out_loss"]["per_level"]) == 2
        assert sum(result["metrics"]["mode_weights"]) == pytest.approx(1.0)
        assert (tmp_path / "out" / "model_0" / "samples.png").stat().st_size > 0
    assert results[0]["held_out_loss"]["total"] != results[1]["held_out_loss"]["total"]  # different weights
    # The same model through two paths sees identical perturbations: exactly equal losses.
    again, _ = evaluate.evaluate_paths(
        [first + "/checkpoints/ckpt-11"], evaluate.EvaluationOptions(samples=False, progress=False), str(tmp_path / "c")
    )
    assert again[0]["held_out_loss"] == results[0]["held_out_loss"]


def test_digits_workdir_end_to_end(tmp_path, capsys):
    config = configs.apply_overrides(
        configs.digits(), ["model.ngf=4", "noise.num_levels=2", "sampling.steps_per_level=2"]
    )
    checkpoints.write_workdir(tmp_path / "run", config, build_score_model(config), step=3)
    cache = tmp_path / "cache"
    code = evaluate.main(
        [
            str(tmp_path / "run"), "--num-samples", "24", "--batch-size", "12", "--quiet", "--cache-dir", str(cache),
            "--save-samples", "--seed", "5",
        ]
    )  # fmt: skip
    assert code == 0
    out_dir = tmp_path / "run" / "evaluation" / "step_3"
    result = json.loads((out_dir / "evaluation.json").read_text())
    with np.load(out_dir / "samples.npz") as saved:  # the raw samples the metrics were computed on
        assert saved["samples"].shape == (24, 8, 8, 1) and int(saved["first_seed"]) == 5
        generator = evaluate.open_generator(tmp_path / "run")
        again = evaluate.draw_samples(generator, 2, batch_size=2, seed=5, progress=False)
        np.testing.assert_allclose(saved["samples"][:2], again, rtol=1e-5, atol=1e-5)
    quality = result["metrics"]["samples"]
    assert quality["count"] == 24 and len(quality["class_shares"]) == 10
    rows = result["metrics"]["reference_rows"]
    assert set(rows) == {"held_out_real", "gaussian_fit"}
    # an untrained network's samples are far from digits: worse than the held-out floor
    assert quality["frechet_distance"] > rows["held_out_real"]["frechet_distance"]
    assert result["metrics"]["classifier"]["test_accuracy"] >= 0.95
    assert result["held_out_loss"]["count"] == 360  # the whole digits test split
    assert (out_dir / "samples.png").exists()
    assert "classifier FD" in capsys.readouterr().out


def test_bad_paths_give_one_line_errors(tmp_path, capsys):
    assert evaluate.main([str(tmp_path / "nothing_here"), "--quiet"]) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("error:") and "\n" not in message
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "manifest.json").write_text('{"format": "something-else"}')
    assert evaluate.main([str(tmp_path / "export"), "--quiet"]) == 2
    assert "not an ncsn-tf export manifest" in capsys.readouterr().err


def test_auto_runtime_follows_the_files_of_the_export(toy_export_dir):
    assert evaluate.open_generator(toy_export_dir).source == "onnx"  # default: auto, ONNX files present


@pytest.mark.parametrize("runtime", ["onnx", "savedmodel"])
def test_export_matches_the_in_memory_model(toy_export_dir, runtime):
    # The exact toy-mixture export (shared session fixture): samples and held-out losses
    # through ONNX Runtime / the SavedModel equal those of the same score model in memory.
    exported = evaluate.open_generator(toy_export_dir, runtime=runtime)
    assert exported.source == runtime and exported.dataset == "toy"
    config = exported.config
    in_memory = evaluate.generator_from_model(paper_toy_mixture(exported.sigmas), config, label="memory")
    exported_samples = evaluate.draw_samples(exported, 16, batch_size=8, seed=3, steps_per_level=10, progress=False)
    memory_samples = evaluate.draw_samples(in_memory, 16, batch_size=8, seed=3, steps_per_level=10, progress=False)
    np.testing.assert_allclose(exported_samples, memory_samples, rtol=1e-4, atol=1e-4)
    clean = evaluate.held_out_data(config, 200)
    np.testing.assert_allclose(
        evaluate.held_out_losses(exported, clean), evaluate.held_out_losses(in_memory, clean), rtol=1e-5, atol=1e-5
    )
