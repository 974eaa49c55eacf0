"""evaluation.loading: exports (through export_format) and workdirs into a Generator; one-line errors.

The exports are real ones: the exact-score toy mixture and the tiny digits network
(tests/export_fixtures.py), run in ONNX Runtime and in TensorFlow.
"""

import dataclasses
import json
import shutil
from pathlib import Path

import hostile_models as hm
import numpy as np
import onnx
import pytest

from ncsn_tf import checkpoints, configs, evaluate
from ncsn_tf.evaluation.draw import draw_samples, sampler_record, sampler_settings
from ncsn_tf.evaluation.generator import EvaluationError, generator_from_model
from ncsn_tf.evaluation.loading import export_generator, is_export, open_generator
from ncsn_tf.evaluation.objective import held_out_data, held_out_losses
from ncsn_tf.models import build_score_model
from ncsn_tf.models.analytic import paper_toy_mixture

RUNTIMES = ("onnxruntime", "tensorflow")


def _manifest_only(toy_export_dir, tmp_path, change):
    """A copy of the toy export's manifest (no model files) with `change(manifest)` applied."""
    manifest = json.loads((Path(toy_export_dir) / "manifest.json").read_text())
    change(manifest)
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_auto_runtime_follows_the_files_of_the_export(toy_export_dir, tmp_path):
    assert is_export(toy_export_dir) and is_export(Path(toy_export_dir) / "manifest.json")
    assert is_export(Path(toy_export_dir) / "onnx" / "sample.onnx") and not is_export(tmp_path)
    assert open_generator(toy_export_dir).source == "onnxruntime"  # default: auto, ONNX files present
    without_onnx = shutil.copytree(toy_export_dir, tmp_path / "no_onnx")
    shutil.rmtree(without_onnx / "onnx")  # as a bfloat16 export: a SavedModel only
    assert open_generator(without_onnx).source == "tensorflow"
    with pytest.raises(EvaluationError, match="has no ONNX files; open it with TensorFlow") as raised:
        open_generator(without_onnx, runtime="onnxruntime")  # asked for: never a silent switch
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("runtime", [*RUNTIMES, "onnx", "savedmodel"])  # the last two: the older names
def test_export_matches_the_in_memory_model(toy_export_dir, runtime):
    # The exact toy-mixture export: samples and held-out losses through ONNX Runtime / the
    # SavedModel equal those of the same score model in memory.
    exported = open_generator(toy_export_dir, runtime=runtime)
    assert exported.source in RUNTIMES and exported.dataset == "toy" and exported.is_export
    config = exported.config
    in_memory = generator_from_model(paper_toy_mixture(exported.sigmas), config, label="memory")
    exported_samples = draw_samples(exported, 16, batch_size=8, seed=3, steps_per_level=10, progress=False)
    memory_samples = draw_samples(in_memory, 16, batch_size=8, seed=3, steps_per_level=10, progress=False)
    np.testing.assert_allclose(exported_samples, memory_samples, rtol=1e-4, atol=1e-4)
    clean = held_out_data(config, 200)
    np.testing.assert_allclose(
        held_out_losses(exported, clean), held_out_losses(in_memory, clean), rtol=1e-5, atol=1e-5
    )


@pytest.mark.slow  # ~30-70 s a runtime on 2 shared cores (the digits metrics, the SavedModel's loop graph)
@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_tiny_digits_export_evaluates_in_both_runtimes(digits_export_dir, digits_workdir, runtime, tmp_path):
    """`python -m ncsn_tf.evaluate EXPORT --runtime R` on a real network export: the workdir's samples."""
    out = tmp_path / "out"
    code = evaluate.main([str(digits_export_dir), "--runtime", runtime, "--num-samples", "8", "--batch-size", "8",
                          "--held-out", "20", "--quiet", "--save-samples", "--out", str(out)])  # fmt: skip
    assert code == 0
    result = json.loads((out / "evaluation.json").read_text())
    manifest = json.loads((Path(digits_export_dir) / "manifest.json").read_text())
    defaults = manifest["sampler"]["settings"]["annealed_langevin"]
    assert result["source"] == runtime
    assert result["sampler"] == {
        **result["sampler"], "sampler": "annealed_langevin", "steps_per_level": defaults["steps_per_level"],
        "epsilon": defaults["epsilon"], "denoise": defaults["denoise"], "convention": manifest["sampler"]["convention"],
        "network_calls": len(manifest["sigmas"]) * defaults["steps_per_level"], "defaults_from": "manifest.json sampler",
    }  # fmt: skip
    with np.load(out / "samples.npz") as saved:
        samples = saved["samples"]  # [8, 8, 8, 1]
    workdir = open_generator(digits_workdir)
    np.testing.assert_allclose(samples, draw_samples(workdir, 8, progress=False), rtol=1e-3, atol=1e-3)


def test_a_workdir_uses_its_config_for_the_sampler_defaults(tmp_path):
    config = configs.apply_overrides(configs.toy(), ["noise.num_levels=2", "sampling.steps_per_level=3"])
    checkpoints.write_workdir(tmp_path / "run", config, build_score_model(config), step=4)
    generator = open_generator(tmp_path / "run")
    assert (generator.source, generator.step, generator.defaults_from) == ("checkpoint", 4, "config.sampling")
    assert generator.sampler_defaults == config.sampling and not generator.is_export
    assert generator.samplers == configs.SAMPLERS
    np.testing.assert_array_equal(generator.sigmas, config.noise.sigmas())


def test_the_samplers_and_defaults_come_from_the_manifests_sampler_block_not_its_config(toy_export_dir, tmp_path):
    def change(manifest):
        manifest["sampler"]["settings"]["annealed_langevin"].update(steps_per_level=9, epsilon=0.25, denoise=True)
        manifest["config"]["sampling"].update(steps_per_level=3, epsilon=0.5, sampler="probability_flow")

    folder = shutil.copytree(toy_export_dir, tmp_path / "toy")
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    generator = open_generator(folder)
    assert generator.samplers == tuple(manifest["sampler"]["settings"])
    defaults = generator.sampler_defaults
    assert (defaults.sampler, defaults.steps_per_level, defaults.epsilon, defaults.final_denoise) == (
        "annealed_langevin", 9, 0.25, True)  # fmt: skip
    assert defaults.convention == manifest["sampler"]["convention"] == "paper"
    # Nothing can read the provenance copy's sampler by mistake (its grid size stays).
    assert generator.config.sampling == dataclasses.replace(defaults, num_samples=manifest["config"]["sampling"]["num_samples"])
    assert sampler_record(generator, sampler_settings(generator))["network_calls"] == 10 * 9 + 1  # + the denoising step


def _only_annealed_langevin(toy_export_dir, tmp_path):
    """A copy of the toy export whose manifest's sampler block lists annealed Langevin only."""
    folder = shutil.copytree(toy_export_dir, tmp_path / "toy_al")
    manifest = json.loads((folder / "manifest.json").read_text())
    block = manifest["sampler"]
    block.update(default="annealed_langevin", settings={"annealed_langevin": block["settings"]["annealed_langevin"]})
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_a_sampler_the_export_lacks_is_a_one_line_error_naming_what_it_has(toy_export_dir, tmp_path, capsys):
    folder = _only_annealed_langevin(toy_export_dir, tmp_path)
    generator = open_generator(folder)
    with pytest.raises(EvaluationError) as raised:
        sampler_settings(generator, sampler="probability_flow")
    assert f"{folder} has no probability_flow sampler; it has annealed_langevin" in str(raised.value)
    assert "\n" not in str(raised.value)
    # The CLI: exit 2, that line, nothing written.
    out = tmp_path / "out"
    assert evaluate.main([str(folder), "--sampler", "probability_flow", "--quiet", "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert "has no probability_flow sampler; it has annealed_langevin" in error and "\n" not in error
    assert not (out / "evaluation.json").exists()


def test_settings_the_export_refuses_are_one_line_errors_before_sampling(toy_export_dir):
    generator = open_generator(toy_export_dir)
    # export_format's own range (epsilon <= 1), which a workdir would run
    with pytest.raises(EvaluationError, match=r"epsilon \(step size\) must be a finite number in \(0, 1\]") as raised:
        sampler_settings(generator, epsilon=2.0)
    assert "\n" not in str(raised.value)
    with pytest.raises(configs.ConfigError, match="sampling.steps_per_level must be an integer >= 1"):
        sampler_settings(generator, steps_per_level=0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("sampler"), "manifest.json: sampler is missing"),
        (lambda m: m.update(format_version=99), "update ncsn-tf"),
        (lambda m: m["sampler"]["settings"]["annealed_langevin"].update(steps_per_level="7"), "steps_per_level"),
        (lambda m: m["sampler"]["settings"]["annealed_langevin"].update(steps_per_level=0), "steps_per_level"),
        (lambda m: m["sampler"]["settings"]["annealed_langevin"].update(denoise=1), "denoise"),
        (lambda m: m["sampler"].update(convention="other"), "convention"),
        (lambda m: m.pop("sigmas"), "sigmas is missing"),
        (lambda m: m["files"]["onnx"].update(sample="../../elsewhere.onnx"), "outside the export folder"),
        (lambda m: m["files"]["onnx"].update(sample="/etc/passwd"), "files.onnx.sample"),
        (lambda m: m.update(config={"data": {"dataset": 3}}), "manifest config block: data.dataset"),
    ],
)
def test_bad_manifests_are_one_line_errors_that_name_the_problem(toy_export_dir, tmp_path, change, message):
    folder = shutil.copytree(toy_export_dir, tmp_path / "export")
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EvaluationError) as raised:
        export_generator(folder, runtime="onnxruntime")
    assert message in str(raised.value) and "\n" not in str(raised.value), str(raised.value)


def test_an_unreadable_manifest_or_runtime_is_a_one_line_error(toy_export_dir, tmp_path):
    (tmp_path / "manifest.json").write_text("{" * 100 + "}" * 100)  # nested far deeper than any manifest
    with pytest.raises(EvaluationError, match="nests 100 levels deep"):
        export_generator(tmp_path)
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(EvaluationError, match="manifest.json"):
        export_generator(tmp_path)
    with pytest.raises(EvaluationError, match="unknown runtime 'tflite'; use one of auto, onnxruntime, tensorflow"):
        export_generator(_manifest_only(toy_export_dir, tmp_path, lambda m: None), runtime="tflite")


def test_an_export_moved_elsewhere_still_loads(toy_export_dir, tmp_path):
    moved = shutil.copytree(toy_export_dir, tmp_path / "moved")
    generator = open_generator(moved, runtime="onnxruntime")
    assert generator.label == str(moved) and generator.defaults_from == "manifest.json sampler"


# ----------------------------------------------------------------------------- the safety gate


def test_an_onnx_file_with_a_custom_operator_is_refused_by_the_gate(toy_export_dir, tmp_path, capsys):
    folder = shutil.copytree(toy_export_dir, tmp_path / "hostile")
    onnx.save(hm.onnx_add_model(domain="ai.evil"), folder / "onnx" / "sample.onnx")
    with pytest.raises(EvaluationError, match="ai.evil") as raised:
        open_generator(folder, runtime="onnxruntime")
    assert "\n" not in str(raised.value)
    assert evaluate.main([str(folder), "--quiet", "--out", str(tmp_path / "out")]) == 2
    assert "ai.evil" in capsys.readouterr().err


def test_a_savedmodel_that_writes_files_is_refused_and_writes_nothing(tmp_path):
    from export_format.safety import check_savedmodel

    cache = tmp_path / "written_by_the_model"
    folder = hm.dataset_cache_bypass(tmp_path / "hostile", cache)  # `sample` writes a tf.data cache there
    with pytest.raises(Exception) as gate:  # the gate's own words, which name the op
        check_savedmodel(folder / "savedmodel")
    with pytest.raises(EvaluationError) as raised:
        open_generator(folder, runtime="tensorflow")
    assert str(gate.value) in str(raised.value) and "\n" not in str(raised.value)
    assert not list(tmp_path.glob("written_by_the_model*"))
