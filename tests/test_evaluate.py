"""`python -m ncsn_tf.evaluate`: models side by side, digits end to end, exports' own sampler defaults, errors."""

import json
from pathlib import Path

import numpy as np
import pytest

from ncsn_tf import checkpoints, configs, evaluate
from ncsn_tf.evaluation.draw import draw_samples
from ncsn_tf.evaluation.generator import generator_from_model
from ncsn_tf.evaluation.loading import open_generator
from ncsn_tf.evaluation.pipeline import EvaluationOptions, evaluate_paths
from ncsn_tf.models import build_score_model
from ncsn_tf.models.analytic import paper_toy_mixture

EXPORT_STEPS_PER_LEVEL = 7  # `python -m export RUN --steps-per-level 7`; the toy config says 100


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


@pytest.fixture(scope="module")
def seven_step_export(tmp_path_factory):
    """The exact toy mixture exported with a default T of 7 (not the config's 100)."""
    from export.exporter import export_toy_mixture

    folder = tmp_path_factory.mktemp("seven_steps")
    result = export_toy_mixture(folder, name="toy_t7", steps_per_level=EXPORT_STEPS_PER_LEVEL, optimize_onnx=False)
    return Path(result.path)


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
        assert result["sampler"]["steps_per_level"] == 5  # the workdir's config
        assert result["sampler"]["defaults_from"] == "config.sampling"
        assert len(result["held_out_loss"]["per_level"]) == 2
        assert sum(result["metrics"]["mode_weights"]) == pytest.approx(1.0)
        assert (tmp_path / "out" / "model_0" / "samples.png").stat().st_size > 0
    assert results[0]["held_out_loss"]["total"] != results[1]["held_out_loss"]["total"]  # different weights
    # The same model through two paths sees identical perturbations: exactly equal losses.
    again, _ = evaluate_paths(
        [first + "/checkpoints/ckpt-11"], EvaluationOptions(samples=False, progress=False), str(tmp_path / "c")
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
        generator = open_generator(tmp_path / "run")
        again = draw_samples(generator, 2, batch_size=2, seed=5, progress=False)
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


@pytest.mark.parametrize("runtime", ["onnxruntime", "tensorflow"])
def test_an_export_samples_with_its_manifest_sampler_not_the_config(seven_step_export, runtime):
    manifest = json.loads((seven_step_export / "manifest.json").read_text())
    block = manifest["sampler"]
    assert block["settings"]["annealed_langevin"]["steps_per_level"] == EXPORT_STEPS_PER_LEVEL
    assert manifest["config"]["sampling"]["steps_per_level"] == 100  # provenance: the training config's
    generator = open_generator(seven_step_export, runtime=runtime)
    assert generator.sampler_defaults.steps_per_level == EXPORT_STEPS_PER_LEVEL
    assert generator.sampler_defaults.epsilon == block["settings"]["annealed_langevin"]["epsilon"]
    assert generator.sampler_defaults.final_denoise == block["settings"]["annealed_langevin"]["denoise"]
    assert generator.sampler_defaults.convention == block["convention"]


@pytest.mark.parametrize("runtime", ["onnxruntime", "tensorflow"])
def test_evaluate_on_an_export_uses_and_records_its_steps_per_level(seven_step_export, tmp_path, runtime):
    out = tmp_path / "out"
    code = evaluate.main(
        [
            str(seven_step_export),
            "--runtime",
            runtime,
            "--num-samples",
            "32",
            "--held-out",
            "50",
            "--quiet",
            "--save-samples",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads((out / "evaluation.json").read_text())
    sampler = result["sampler"]
    assert result["source"] == runtime
    assert (sampler["sampler"], sampler["steps_per_level"]) == ("annealed_langevin", EXPORT_STEPS_PER_LEVEL)
    assert sampler["network_calls"] == 10 * EXPORT_STEPS_PER_LEVEL  # L = 10 levels, no denoising step
    assert sampler["defaults_from"] == "manifest.json sampler"
    # The samples are those of T = 7, not of the config's T = 100.
    exported = open_generator(seven_step_export)
    in_memory = generator_from_model(paper_toy_mixture(exported.sigmas), exported.config, label="memory")
    with np.load(out / "samples.npz") as saved:
        samples = saved["samples"]  # [32, 2]
    seven = draw_samples(in_memory, 32, seed=0, steps_per_level=EXPORT_STEPS_PER_LEVEL, progress=False)
    np.testing.assert_allclose(samples, seven, rtol=1e-4, atol=1e-4)
    hundred = draw_samples(in_memory, 32, seed=0, steps_per_level=100, progress=False)  # the config's T
    assert np.max(np.abs(samples - hundred)) > 0.1


def test_bad_paths_give_one_line_errors(tmp_path, capsys):
    assert evaluate.main([str(tmp_path / "nothing_here"), "--quiet"]) == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("error:") and "\n" not in message
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "manifest.json").write_text('{"format": "something-else"}')
    assert evaluate.main([str(tmp_path / "export"), "--quiet"]) == 2
    message = capsys.readouterr().err.strip()
    assert "manifest.json" in message and "ncsn-tf-export" in message and "\n" not in message


@pytest.mark.parametrize(
    ("flags", "record", "calls"),
    [
        (["--sampler", "predictor_corrector", "--corrector-steps", "1", "--snr", "0.3"],
         {"sampler": "predictor_corrector", "corrector_steps": 1, "snr": 0.3}, 2 * (1 + 1)),  # L (C + 1)
        (["--sampler", "probability_flow", "--order", "1"], {"sampler": "probability_flow", "order": 1}, 2),  # L
        (["--sampler", "probability_flow"], {"sampler": "probability_flow", "order": 2}, 2 * 2 - 1),  # Heun: 2L - 1
    ],
)  # fmt: skip
def test_evaluate_runs_the_sampler_asked_for_and_records_it(tmp_path, flags, record, calls):
    workdir = _toy_workdir(tmp_path / "run", seed=1)
    out = tmp_path / "out"
    argv = [workdir, *flags, "--num-samples", "16", "--held-out", "20", "--quiet", "--save-samples", "--out", str(out)]
    assert evaluate.main(argv) == 0
    sampler = json.loads((out / "evaluation.json").read_text())["sampler"]
    assert sampler == {**record, "network_calls": calls, "defaults_from": "config.sampling", "num_samples": 16,
                       "seed": 0, "seconds": sampler["seconds"]}  # fmt: skip  # only that sampler's settings
    overrides = {key: value for key, value in record.items()}
    with np.load(out / "samples.npz") as saved:
        expected = draw_samples(open_generator(workdir), 16, seed=0, progress=False, **overrides)  # [16, 2]
        np.testing.assert_allclose(saved["samples"], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (["--sampler", "heun"], "sampling.sampler: unknown sampler 'heun'"),
        (["--sampler", "probability_flow", "--order", "3"], "sampling.order must be 1 (Euler) or 2 (Heun), got 3"),
        (["--sampler", "predictor_corrector", "--snr", "0"], "sampling.snr must be a finite number > 0"),
        (["--sampler", "predictor_corrector", "--corrector-steps", "-1"], "sampling.corrector_steps must be an integer >= 0"),
        (["--snr", "0.3"], "snr is a setting of predictor_corrector, not of annealed_langevin"),
        (["--sampler", "probability_flow", "--steps-per-level", "3"], "steps_per_level is a setting of annealed_langevin"),
    ],
)  # fmt: skip
def test_bad_sampler_flags_are_one_line_errors(tmp_path, capsys, flags, words):
    workdir = _toy_workdir(tmp_path / "run", seed=1)
    assert evaluate.main([workdir, *flags, "--quiet", "--out", str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err.strip()
    assert words in error and "\n" not in error
    assert not (tmp_path / "out" / "evaluation.json").exists()
