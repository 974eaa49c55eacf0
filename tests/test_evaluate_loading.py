"""evaluation.loading: exports and workdirs into a Generator; the manifest's sampler block; one-line errors."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from ncsn_tf import checkpoints, configs
from ncsn_tf.evaluation.draw import draw_samples
from ncsn_tf.evaluation.generator import EvaluationError, generator_from_model
from ncsn_tf.evaluation.loading import export_generator, is_export, open_generator
from ncsn_tf.evaluation.objective import held_out_data, held_out_losses
from ncsn_tf.models import build_score_model
from ncsn_tf.models.analytic import paper_toy_mixture


def _manifest_only(toy_export_dir, tmp_path, change):
    """A copy of the toy export's manifest (no model files) with `change(manifest)` applied."""
    manifest = json.loads((Path(toy_export_dir) / "manifest.json").read_text())
    change(manifest)
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_auto_runtime_follows_the_files_of_the_export(toy_export_dir):
    assert is_export(toy_export_dir)
    assert open_generator(toy_export_dir).source == "onnx"  # default: auto, ONNX files present


@pytest.mark.parametrize("runtime", ["onnx", "savedmodel"])
def test_export_matches_the_in_memory_model(toy_export_dir, runtime):
    # The exact toy-mixture export (shared session fixture): samples and held-out losses
    # through ONNX Runtime / the SavedModel equal those of the same score model in memory.
    exported = open_generator(toy_export_dir, runtime=runtime)
    assert exported.source == runtime and exported.dataset == "toy"
    config = exported.config
    in_memory = generator_from_model(paper_toy_mixture(exported.sigmas), config, label="memory")
    exported_samples = draw_samples(exported, 16, batch_size=8, seed=3, steps_per_level=10, progress=False)
    memory_samples = draw_samples(in_memory, 16, batch_size=8, seed=3, steps_per_level=10, progress=False)
    np.testing.assert_allclose(exported_samples, memory_samples, rtol=1e-4, atol=1e-4)
    clean = held_out_data(config, 200)
    np.testing.assert_allclose(
        held_out_losses(exported, clean), held_out_losses(in_memory, clean), rtol=1e-5, atol=1e-5
    )


def test_a_workdir_uses_its_config_for_the_sampler_defaults(tmp_path):
    config = configs.apply_overrides(configs.toy(), ["noise.num_levels=2", "sampling.steps_per_level=3"])
    checkpoints.write_workdir(tmp_path / "run", config, build_score_model(config), step=4)
    generator = open_generator(tmp_path / "run")
    assert (generator.source, generator.step, generator.defaults_from) == ("checkpoint", 4, "config.sampling")
    assert generator.sampler_defaults == config.sampling
    np.testing.assert_array_equal(generator.sigmas, config.noise.sigmas())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.pop("sampler"), "no 'sampler' block"),
        (lambda m: m["sampler"].update(steps_per_level="7"), "sampler.steps_per_level should be int"),
        (lambda m: m["sampler"].update(steps_per_level=True), "sampler.steps_per_level should be int"),
        (lambda m: m["sampler"].update(denoise=1), "sampler.denoise should be bool"),
        (lambda m: m["sampler"].update(steps_per_level=0), "sampling.steps_per_level must be an integer >= 1"),
        (lambda m: m["sampler"].update(convention="other"), "unknown Langevin convention 'other'"),
        (lambda m: m.pop("sigmas"), "bad config or sigmas"),
        (lambda m: m["files"]["onnx"].update(sample="../../elsewhere.onnx"), "points outside the export folder"),
        (lambda m: m["files"]["onnx"].update(sample="/etc/passwd"), "files entry for ONNX 'sample'"),
        (lambda m: m["files"]["onnx"].pop("score"), "no ONNX 'score' endpoint"),
        (lambda m: None, "ONNX 'sample' (onnx/sample.onnx) is missing"),  # the copy has no model files
    ],
)
def test_bad_manifests_are_one_line_errors_that_name_the_problem(toy_export_dir, tmp_path, change, message):
    folder = _manifest_only(toy_export_dir, tmp_path, change)
    with pytest.raises(EvaluationError, match="re-export|--runtime") as raised:
        export_generator(folder, runtime="onnx")
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_an_unreadable_manifest_or_runtime_is_a_one_line_error(toy_export_dir, tmp_path):
    (tmp_path / "manifest.json").write_text("{" * 100 + "}" * 100)  # nested far deeper than any manifest
    with pytest.raises(EvaluationError, match="nests 100 levels deep"):
        export_generator(tmp_path)
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(EvaluationError, match="not an ncsn-tf export manifest"):
        export_generator(tmp_path)
    with pytest.raises(EvaluationError, match="unknown runtime 'tflite'"):
        export_generator(_manifest_only(toy_export_dir, tmp_path, lambda m: None), runtime="tflite")


def test_an_export_moved_elsewhere_still_loads(toy_export_dir, tmp_path):
    moved = shutil.copytree(toy_export_dir, tmp_path / "moved")
    generator = open_generator(moved, runtime="onnx")
    assert generator.label == str(moved) and generator.defaults_from == "manifest.json sampler"
