"""The export contract without TensorFlow: import purity, the manifest reader's errors (each message),
versions, the sampler settings' one validation, the endpoint table and the locator."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from export_format import ExportFormatError, ManifestError, SamplerSettings, UnsafeExportError, layout, limits
from export_format import manifest as manifest_io
from export_format.endpoints import ENDPOINTS, OUTPUT_NAMES, endpoint_table, table_to_json
from export_format.errors import ExportInputError
from export_format.locate import locate
from export_format.settings import MAX_STEPS_PER_LEVEL, SAMPLERS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE = "exports/x/manifest.json"


def version2(**changes):
    """A complete version-2 manifest as the exporter writes it (8x8x1 images, 2 levels)."""
    data = {
        "format": "ncsn-tf-export", "format_version": 2, "name": "tiny", "dataset": "digits",
        "image_shape": [8, 8, 1], "channels": 1, "value_range": [0.0, 1.0], "num_levels": 2, "sigmas": [1.0, 0.01],
        "sampler": {"default": "annealed_langevin", "convention": "code",
                    "settings": {"annealed_langevin": {"steps_per_level": 7, "epsilon": 2e-5, "denoise": False}}},
        "endpoints": table_to_json(endpoint_table((8, 8, 1))),
        "files": {"savedmodel": "savedmodel", "onnx": {name: f"onnx/{name}.onnx" for name in ENDPOINTS}},
        "onnx_opset": 18, "score_model": "CondRefineNetDilated", "precision": "float32",
        "checkpoint": {"step": 6000, "ema": True}, "config": {"sampling": {"steps_per_level": 50}},
        "versions": {"ncsn_tf": "0.1.0"}, "verification": {"status": "passed", "tolerance": 1e-4},
    }  # fmt: skip
    data.update(changes)
    return data


def version1(**changes):
    """A version-1 manifest (before the sampler block named its samplers), as users have them."""
    data = version2(format_version=1, sampler={"steps_per_level": 7, "epsilon": 2e-5, "convention": "paper", "denoise": True})
    data.update(changes)
    return data


def with_sampler(**settings):
    data = version2()
    data["sampler"]["settings"]["annealed_langevin"].update(settings)
    return data


# ----------------------------------------------------------------------------- import purity


def test_importing_the_contract_imports_no_framework_in_a_fresh_process():
    script = (
        "import sys\n"
        "import export_format, export_format.sampler, export_format.runners, export_format.locate\n"
        "import export_format.manifest, export_format.safety, export_format.settings, export_format.endpoints\n"
        "import export, export.runtime\n"  # the light package and the compatibility alias
        "import desktop.backend, desktop.backend.runs, desktop.backend.tf_backend\n"
        "heavy = ('tensorflow', 'keras', 'ncsn_tf', 'PySide6', 'onnx', 'onnxruntime', 'tf2onnx')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    )
    env = {**os.environ, "PYTHONPATH": ROOT}
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- the manifest


def test_version_2_round_trips_through_write_and_read(tmp_path):
    manifest = manifest_io.parse(version2(), SOURCE)
    assert manifest.image_shape == (8, 8, 1) and manifest.channels == 1 and manifest.num_levels == 2
    assert manifest.sampler.default == "annealed_langevin" and manifest.sampler.convention == "code"
    assert manifest.sampler.defaults() == SamplerSettings(7, 2e-5, False)
    assert manifest.checkpoint_step == 6000 and manifest.checkpoint_ema and manifest.tolerance == 1e-4
    assert set(manifest.endpoints) == set(ENDPOINTS) and manifest.files.onnx["sample"] == "onnx/sample.onnx"
    path = manifest_io.write(manifest, tmp_path)
    again = manifest_io.read(tmp_path)
    assert again == manifest and json.loads(open(path).read()) == version2()


def test_version_1_exports_are_read_as_the_same_facts():
    old = manifest_io.parse(version1(), SOURCE)
    assert old.format_version == 1
    assert old.sampler.default == "annealed_langevin" and old.sampler.convention == "paper"
    assert old.sampler.defaults() == SamplerSettings(7, 2e-5, True)
    new = manifest_io.parse(manifest_io.parse(version1(), SOURCE).to_json(), SOURCE)  # written again: version 2
    assert new.format_version == 2 and new.sampler == old.sampler and new.image_shape == old.image_shape
    minimal = {  # what a hand-written version-1 manifest needs: the rest has defaults
        "format": "ncsn-tf-export", "format_version": 1, "image_shape": [2], "sigmas": [20.0, 1.0],
        "sampler": {"steps_per_level": 100, "epsilon": 0.1, "denoise": False}, "files": {"onnx": {}},
    }  # fmt: skip
    toy = manifest_io.parse(minimal, SOURCE)
    assert toy.image_shape == (2,) and toy.channels is None and toy.value_range == (0.0, 1.0) and toy.name == "model"
    assert toy.sampler.convention == "code" and toy.endpoints == endpoint_table((2,))


def _without(data, *path):
    data = copy.deepcopy(data)
    target = data
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return data


MANIFEST_ERRORS = [
    # missing keys
    (_without(version2(), "image_shape"), "image_shape is missing; re-export the model"),
    (_without(version2(), "sigmas"), "sigmas is missing"),
    (_without(version2(), "sampler"), "sampler is missing"),
    (_without(version2(), "files"), "files is missing"),
    (_without(version2(), "format_version"), "format_version is missing"),
    (_without(version2(), "sampler", "convention"), "sampler.convention is missing"),
    (_without(version1(), "sampler", "epsilon"), "sampler.epsilon is missing"),
    (_without(with_sampler(), "sampler", "settings", "annealed_langevin", "denoise"),
     "sampler.settings.annealed_langevin.denoise is missing"),
    # mistyped keys
    (version2(format_version="2"), "format_version must be an integer, got '2'"),
    (version2(image_shape="8x8"), "image_shape must be [H, W, C] (images) or [D] (points) of positive integers, got '8x8'"),
    (version2(sigmas=[1.0, "0.01"]), "sigmas must be a finite number, got '0.01'"),
    (version2(sampler=[7]), "sampler must be a JSON object, got list"),
    (version2(files={"onnx": {"sample": 5}}), "files.onnx.sample must be a path relative to the export folder, got 5"),
    (version2(checkpoint={"step": 1.5}), "checkpoint.step must be an integer, got 1.5"),
    (version2(name=7), "name must be a non-empty string"),
    (version2(precision="float16"), "precision must be one of float32, bfloat16, got 'float16'"),
    (with_sampler(steps_per_level=1.9), "sampler.settings.annealed_langevin.steps_per_level (steps per level) must be an integer in [1, 100000], got 1.9"),
    (with_sampler(steps_per_level=True), "steps_per_level (steps per level) must be an integer in [1, 100000], got True"),
    (with_sampler(denoise="no"), "denoise (final denoising step) must be true or false, got 'no'"),
    (with_sampler(epsilon=1e40), "epsilon (step size) must be a finite number in (0, 1], got 1e+40"),
    (with_sampler(snr=0.16), "sampler.settings.annealed_langevin has unknown setting(s) ['snr']; update ncsn-tf"),
    (version1(sampler={"steps_per_level": 0, "epsilon": 2e-5, "denoise": False}), "sampler.steps_per_level (steps per level) must be an integer in [1, 100000], got 0"),
    # formats and versions
    (version2(format="other"), "is not an ncsn-tf export (manifest format 'other', expected 'ncsn-tf-export')"),
    (version2(format_version=3), "uses export format version 3, newer than this ncsn-tf reads (2); update ncsn-tf"),
    (version2(format_version=0), "format_version is 0, not a version of this format"),
    (["a", "list"], "is not an ncsn-tf export manifest (not a JSON object)"),
    # absurd values
    (version2(image_shape=[1_000_000, 1_000_000, 1]), "image_shape [1000000, 1000000, 1] is beyond the bounds of an export (sides <= 4096, channels <= 4)"),
    (version2(image_shape=[1e6, 1e6, 1]), "image_shape must be [H, W, C] (images) or [D] (points) of positive integers, got [1000000.0"),
    (version2(image_shape=[4096, 4096, 3]), "has more than 16,777,216 values per example"),
    (version2(image_shape=[8, 0, 1]), "image_shape must be [H, W, C]"),
    (version2(image_shape=[8, 8]), "image_shape must be [H, W, C] (images) or [D] (points)"),
    (version2(sigmas=[]), "sigmas is empty"),
    (version2(sigmas=[0.01, 1.0], num_levels=2), "sigmas must be positive and strictly decreasing"),
    (version2(sigmas=[1.0, -1.0]), "sigmas must be positive and strictly decreasing"),
    (version2(sigmas=[1.0] * 10_001, num_levels=10_001), "sigmas has 10,001 levels, more than the 10,000"),
    (version2(num_levels=3), "num_levels is 3 but sigmas has 2 values"),
    (version2(value_range=[1.0, 0.0]), "value_range must have low < high"),
    (version2(value_range=[0.0, float("inf")]), "value_range must be a finite number, got inf"),
    (version2(sampler={"default": "heun", "convention": "code", "settings": {}}), "sampler.default names the sampler 'heun', unknown to this reader; update ncsn-tf"),
    (version2(sampler={"default": "annealed_langevin", "convention": "sideways", "settings": {}}), "sampler.convention must be one of code, paper, got 'sideways'"),
]  # fmt: skip


@pytest.mark.parametrize("data, message", MANIFEST_ERRORS)
def test_each_manifest_error_is_one_line_naming_the_file_the_key_and_what_to_do(data, message):
    with pytest.raises(ManifestError) as caught:
        manifest_io.parse(data, SOURCE)
    text = str(caught.value)
    assert message in text and text.startswith(SOURCE) and "\n" not in text, text
    assert any(todo in text for todo in ("re-export", "update ncsn-tf", "open a folder", "not a model the exporter wrote")), text


def test_samplers_a_reader_does_not_know_are_skipped_not_offered():
    data = version2()
    data["sampler"]["settings"]["predictor_corrector"] = {"corrector_steps": 1, "snr": 0.16}  # a newer exporter's
    data["endpoints"]["sample_pc"] = {"inputs": {}, "outputs": {}}
    data["files"]["onnx"]["sample_pc"] = "onnx/sample_pc.onnx"
    manifest = manifest_io.parse(data, SOURCE)
    assert list(manifest.sampler.settings) == ["annealed_langevin"] and "sample_pc" not in manifest.files.onnx


def test_an_endpoint_table_unlike_the_contract_is_refused():
    data = version2()
    data["endpoints"]["sample"]["inputs"]["seeds"]["dtype"] = "float32"
    with pytest.raises(ManifestError, match="endpoints.sample does not match the endpoint contract"):
        manifest_io.parse(data, SOURCE)


def test_manifest_files_too_large_too_deep_or_not_json_are_one_line_errors(tmp_path):
    (tmp_path / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ManifestError, match="nests 100000 levels deep"):
        manifest_io.read(tmp_path)
    (tmp_path / "manifest.json").write_bytes(b" " * (limits.MAX_MANIFEST_BYTES + 1))
    with pytest.raises(ManifestError, match="more than the 4,194,304 this file can be"):
        manifest_io.read(tmp_path)
    (tmp_path / "manifest.json").write_text("__import__('os').system('true')")
    with pytest.raises(ManifestError, match="not valid JSON"):
        manifest_io.read(tmp_path)
    with pytest.raises(ManifestError, match=r"no manifest.json in .*; pass an export folder"):
        manifest_io.read(tmp_path / "elsewhere")


def test_the_writer_refuses_to_write_what_the_reader_would_refuse(tmp_path):
    manifest = manifest_io.parse(version2(), SOURCE)
    broken = manifest.__class__(**{**manifest.__dict__, "sigmas": (0.01, 1.0)})
    with pytest.raises(ManifestError, match="strictly decreasing"):
        manifest_io.write(broken, tmp_path)
    assert not (tmp_path / "manifest.json").exists()


# ----------------------------------------------------------------------------- sampler settings


@pytest.mark.parametrize(
    "settings, message",
    [
        (SamplerSettings(0, 1e-5, False), "steps_per_level (steps per level) must be an integer in [1, 100000], got 0"),
        (SamplerSettings(1.9, 1e-5, False), "must be an integer in [1, 100000], got 1.9 (float)"),
        (SamplerSettings(7.0, 1e-5, False), "must be an integer in [1, 100000], got 7.0 (float)"),
        (SamplerSettings(True, 1e-5, False), "got True"),
        (SamplerSettings("7", 1e-5, False), "got '7'"),
        (SamplerSettings(110_000_000, 1e-5, False), "got 110000000"),
        (SamplerSettings(5, 1e40, False), "epsilon (step size) must be a finite number in (0, 1], got 1e+40"),
        (SamplerSettings(5, float("inf"), False), "got inf"),
        (SamplerSettings(5, -1e-5, False), "got -1e-05"),
        (SamplerSettings(5, 2e-5 + 0j, False), "got (2e-05+0j) (complex)"),
        (SamplerSettings(5, np.float64("nan"), False), "got nan"),
        (SamplerSettings(5, 1e-5, "no"), "denoise (final denoising step) must be true or false, got 'no'"),
        (SamplerSettings(5, 1e-5, 0), "must be true or false, got 0"),
        (SamplerSettings(5, 1e-5, None), "denoise (final denoising step) is missing"),
        (SamplerSettings(5, 1e-5, False, sampler="probability_flow"), "unknown sampler 'probability_flow'; known samplers: annealed_langevin"),
    ],
)  # fmt: skip
def test_settings_validation_is_strict_and_says_the_range(settings, message):
    with pytest.raises(ExportInputError) as caught:
        settings.validate()
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_settings_accept_numpy_scalars_and_return_plain_values():
    checked = SamplerSettings(np.int32(7), np.float32(0.5), np.bool_(True)).validate(num_levels=10)
    assert checked == SamplerSettings(7, 0.5, True)
    assert type(checked.steps_per_level) is int and type(checked.epsilon) is float and type(checked.denoise) is bool
    inputs = checked.inputs()
    assert list(inputs) == ["steps_per_level", "epsilon", "denoise"] == [s.name for s in SAMPLERS["annealed_langevin"].settings]
    assert inputs["steps_per_level"].dtype == np.int32 and inputs["epsilon"].dtype == np.float32 and inputs["denoise"].shape == ()


def test_levels_times_steps_must_fit_the_int32_loop_counters():
    """At the bound a run fits the graphs' int32 counters; one past it is an error, never unsampled noise."""
    levels = 21_475  # 21,475 x 100,000 > 2^31 - 1
    bound = limits.max_steps_per_level(levels)
    assert bound < MAX_STEPS_PER_LEVEL and levels * (bound + 1) < limits.MAX_LOOP_ITERATIONS
    SamplerSettings(bound, 1e-5, False).validate(num_levels=levels)  # at the bound: fine
    with pytest.raises(ExportInputError, match=rf"more loop iterations than the graphs' int32 counters hold .*use at most {bound:,}"):
        SamplerSettings(bound + 1, 1e-5, False).validate(num_levels=levels)
    assert limits.max_steps_per_level(20) * 20 < 2**31 - 1


def test_manifest_settings_resolve_defaults_then_settings_then_overrides():
    manifest = manifest_io.parse(version2(), SOURCE)
    assert manifest.sampler_settings() == SamplerSettings(7, 2e-5, False)
    assert manifest.sampler_settings(SamplerSettings(epsilon=1e-5)) == SamplerSettings(7, 1e-5, False)
    assert manifest.sampler_settings(SamplerSettings(epsilon=1e-5), steps_per_level=3) == SamplerSettings(3, 1e-5, False)
    assert manifest.sampler_settings(denoise=None) == SamplerSettings(7, 2e-5, False)  # None = the default
    with pytest.raises(ExportInputError, match="unknown sampler setting"):
        manifest.sampler_settings(eps=1e-5)
    assert SamplerSettings(7, 2e-5, True).network_calls(num_levels=10) == 71


# ----------------------------------------------------------------------------- the endpoint table


def test_endpoint_table_names_order_and_shapes():
    table = endpoint_table((8, 8, 1))
    assert list(table) == list(ENDPOINTS)
    assert [t.name for t in table["inpaint_levels"].inputs] == [
        "images", "known_images", "masks", "seeds", "first_level", "last_level", "steps_per_level", "epsilon", "denoise",
    ]  # fmt: skip
    assert {name: endpoint.outputs[0].name for name, endpoint in table.items()} == OUTPUT_NAMES
    assert table["sample"].outputs[0].to_json() == {"shape": [-1, 8, 8, 1], "dtype": "float32"}
    assert endpoint_table((2,))["score"].inputs[0].shape == (None, 2)


# ----------------------------------------------------------------------------- the locator


def _export_folder(tmp_path, **changes):
    folder = tmp_path / "export"
    (folder / "onnx").mkdir(parents=True)
    (folder / "manifest.json").write_text(json.dumps(version2(**changes)))
    return folder


def test_locate_lists_only_present_files_and_names_missing_runtimes(tmp_path):
    from export_format import RuntimeMissingError

    folder = _export_folder(tmp_path)
    for name in ("initial_images", "sample_levels"):
        (folder / "onnx" / f"{name}.onnx").write_bytes(b"")
    files = locate(folder)
    assert files.runtimes() == ["onnxruntime"] and not files.can_inpaint("onnxruntime")
    assert locate(folder / "manifest.json").manifest == files.manifest
    with pytest.raises(RuntimeMissingError, match="has no SavedModel; open it with ONNX Runtime or re-export with --format both") as caught:
        files.require("tensorflow")
    assert caught.value.wanted == "tensorflow" and caught.value.available == ("onnxruntime",)
    with pytest.raises(ValueError, match="unknown runtime"):
        files.require("tflite")


@pytest.mark.parametrize("path", ["/etc/passwd", "../outside.onnx", "onnx/../../outside.onnx", "C:\\\\x.onnx"])
def test_locate_refuses_manifest_paths_that_leave_the_folder(tmp_path, path):
    folder = _export_folder(tmp_path, files={"onnx": {"sample": path}})
    with pytest.raises(UnsafeExportError, match=r"files.onnx.sample = .* outside the export folder"):
        locate(folder)


def test_locate_refuses_symlinks_out_of_the_folder(tmp_path):
    folder = _export_folder(tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "sample.onnx").write_bytes(b"")
    os.symlink(outside, folder / "onnx" / "link", target_is_directory=True)
    (folder / "manifest.json").write_text(json.dumps(version2(files={"onnx": {"sample": "onnx/link/sample.onnx"}})))
    with pytest.raises(UnsafeExportError, match=r"files.onnx.sample = 'onnx/link/sample.onnx' resolves through a symlink to .*, outside the export folder"):
        locate(folder)
    inside = folder / "real.onnx"
    inside.write_bytes(b"")
    os.symlink(inside, folder / "onnx" / "sample.onnx")  # a link that stays inside is fine
    (folder / "manifest.json").write_text(json.dumps(version2(files={"onnx": {"sample": "onnx/sample.onnx"}})))
    assert locate(folder).onnx["sample"] == folder / "onnx" / "sample.onnx"


def test_locate_errors_name_the_problem(tmp_path):
    with pytest.raises(ExportFormatError, match="model not found"):
        locate(tmp_path / "missing")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ExportFormatError, match="notes.txt is not a model"):
        locate(tmp_path / "notes.txt")
    with pytest.raises(ExportFormatError, match="neither an export folder"):
        locate(tmp_path)
    (tmp_path / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ManifestError, match="has no manifest"):
        locate(tmp_path)
    assert layout.MANIFEST_FILE == "manifest.json"
