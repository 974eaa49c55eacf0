"""The batch CLI: globs, one bad input reported and skipped, the others exported, exit code."""

import os
import subprocess
import sys

import pytest

import export_format
from export import cli, runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _toy_mlp_workdir(path, seed):
    import keras

    from ncsn_tf import configs
    from ncsn_tf.checkpoints import write_workdir
    from ncsn_tf.models import build_score_model

    keras.utils.set_random_seed(seed)
    config = configs.apply_overrides(configs.toy(), ["model.mlp_hidden=8", "model.mlp_layers=1", "noise.num_levels=3"])
    write_workdir(path, config, build_score_model(config), step=10 + seed)
    return path


def test_two_good_workdirs_and_a_corrupt_one(tmp_path, capsys):
    runs = tmp_path / "runs"
    _toy_mlp_workdir(runs / "toy_a", 1)
    _toy_mlp_workdir(runs / "toy_b", 2)
    corrupt = _toy_mlp_workdir(runs / "zz_corrupt", 3)
    index = next((corrupt / "checkpoints").glob("*.index"))
    index.write_bytes(b"not a checkpoint index" * 4)
    out = tmp_path / "exports"

    code = cli.main([str(runs / "toy_*"), str(corrupt), "--out", str(out), "--format", "both", "--steps-per-level", "7"])

    captured = capsys.readouterr()
    assert code == 1
    assert sorted(os.listdir(out)) == ["toy_a", "toy_b"]  # nothing of the corrupt one
    for name, step in (("toy_a", 11), ("toy_b", 12)):
        manifest = export_format.read_manifest(out / name)
        assert manifest.checkpoint_step == step and manifest.sampler.steps_per_level == 7
        assert manifest.verification["status"] == "passed"
        assert sorted(os.listdir(out / name / "onnx")) == sorted(f"{e}.onnx" for e in manifest.endpoints)
    assert f"{corrupt}: cannot load" in captured.err and "corrupt" in captured.err  # the reason, one line
    table = captured.out
    assert "model" in table and "verification" in table and "size" in table and "time" in table
    assert table.count("passed") == 2 and "FAILED" in table
    assert "2 exported" in table and "1 failed" in table


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main([])
    assert stopped.value.code == 2
    with pytest.raises(SystemExit) as stopped:
        cli.main(["somewhere", "--opset", "13"])
    assert stopped.value.code == 2 and "opset" in capsys.readouterr().err


def test_unmatched_glob_is_a_reported_failure(tmp_path, capsys):
    code = cli.main([str(tmp_path / "nothing-*"), "--out", str(tmp_path / "out"), "--format", "savedmodel"])
    assert code == 1 and "glob matched nothing" in capsys.readouterr().out


def test_python_dash_m_export_help():
    completed = subprocess.run(
        [sys.executable, "-m", "export", "--help"], capture_output=True, text=True, timeout=120, cwd=ROOT
    )
    assert completed.returncode == 0 and "--steps-per-level" in completed.stdout and "--format" in completed.stdout


def test_bfloat16_export_is_a_savedmodel_close_to_float32(digits_workdir, digits_export_dir, tmp_path, capsys):
    import numpy as np

    from export.exporter import BFLOAT16_SCORE_TOLERANCE, PRECISIONS

    assert cli.PRECISIONS == PRECISIONS
    out = tmp_path / "exports"
    code = cli.main([str(digits_workdir), "--precision", "bfloat16", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    (name,) = os.listdir(out)
    assert name == "digits_tiny-bf16"
    export_dir = out / name
    assert sorted(os.listdir(export_dir)) == ["manifest.json", "savedmodel"]  # no ONNX by default
    manifest = runtime.read_manifest(export_dir)  # the compatibility alias: the JSON, validated
    assert manifest["precision"] == "bfloat16" and manifest["files"]["onnx"] == {}
    record = manifest["verification"]["bfloat16_vs_float32"]
    assert 0.0 < record["max_relative_score_diff"] <= BFLOAT16_SCORE_TOLERANCE  # bf16 really computes in bf16
    assert len(record["per_level"]) == manifest["num_levels"]
    assert runtime.read_manifest(digits_export_dir)["precision"] == "float32"

    bf16 = runtime.load(export_dir, runtime="tensorflow")
    fp32 = runtime.load(digits_export_dir, runtime="tensorflow")
    seeds = np.arange(7, dtype=np.int32)
    images = bf16.sample(seeds)
    assert images.dtype == np.float32 and images.shape == (7, 8, 8, 1) and np.all(np.isfinite(images))
    np.testing.assert_array_equal(images, bf16.sample(seeds))  # still seeded
    difference = np.abs(images - fp32.sample(seeds))
    assert 0.0 < difference.max() < 0.25  # same seed: close to the float32 samples, not identical


def test_bfloat16_with_onnx_or_the_toy_mixture_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["somewhere", "--precision", "bfloat16", "--format", "both"])
    assert stopped.value.code == 2 and "SavedModel only" in capsys.readouterr().err
    code = cli.main(["--toy-mixture", "--precision", "bfloat16", "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert code == 1 and "float32 only" in captured.err
    assert not [entry for entry in os.listdir(tmp_path) if not entry.startswith(".")]


def test_steps_per_level_7_is_the_default_of_every_reader(digits_workdir, tmp_path, capsys):
    """`--steps-per-level 7` goes into manifest.sampler, which export_format and the app both sample with."""
    import numpy as np

    from desktop.backend import RuntimeMissingError, open_backend

    out = tmp_path / "exports"
    code = cli.main([str(digits_workdir), "--format", "savedmodel", "--steps-per-level", "7", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    export_dir = out / "digits_tiny"
    manifest = export_format.read_manifest(export_dir)
    assert manifest.config["sampling"]["steps_per_level"] == 5  # the training config: provenance only
    assert manifest.sampler.steps_per_level == 7 and manifest.sampler.defaults().steps_per_level == 7
    sampler = export_format.load(export_dir, "tensorflow")
    assert sampler.settings().steps_per_level == 7
    seeds = [0, 1]
    images = sampler.sample(seeds)
    np.testing.assert_array_equal(images, sampler.sample(seeds, steps_per_level=7))
    assert np.abs(images - sampler.sample(seeds, steps_per_level=5)).max() > 1e-4  # really 7, not the config's 5
    backend = open_backend(export_dir, "tensorflow")
    assert backend.files.manifest.sampler.steps_per_level == 7  # what the app starts from
    with pytest.raises(RuntimeMissingError, match="has no ONNX files; open it with TensorFlow or re-export with --format both") as caught:
        open_backend(export_dir, "onnxruntime")  # no silent switch to TensorFlow
    assert caught.value.wanted == "onnxruntime" and caught.value.available == ("tensorflow",)


@pytest.mark.parametrize("value, words", [("0", "must be an integer in [1, 100000], got 0"), ("1.9", "invalid int")])
def test_bad_steps_per_level_is_a_usage_error(value, words, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["somewhere", "--steps-per-level", value])
    assert stopped.value.code == 2 and words in capsys.readouterr().err
