"""Exports of the tiny digits network and the exact-score toy mixture: layout, manifest, the safety
gate, seeds, chunks, inpainting and input errors, in onnxruntime and TensorFlow; leftovers of a
killed export; a fresh process that never imports ncsn_tf runs both exports."""

import json
import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from export_fixtures import gaussian_export_dir  # noqa: F401 (a session fixture used here only)

import export_format
from export import runtime
from export.builder import ENDPOINTS, OUTPUT_NAMES
from export.runtime import ExportInputError
from export_format import DivergedError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNTIMES = ("onnxruntime", "tensorflow")


@pytest.fixture(scope="module")
def digits_samplers(digits_export_dir):
    samplers = {name: runtime.load(digits_export_dir, name) for name in RUNTIMES}
    yield samplers
    for sampler in samplers.values():
        sampler.close()


# ---------------------------------------------------------------------------
# Layout, manifest, metadata, safety
# ---------------------------------------------------------------------------


def test_export_layout_manifest_and_embedded_copies(digits_export_dir):
    import onnx
    import onnxruntime

    manifest = runtime.read_manifest(digits_export_dir)
    assert manifest["format"] == "ncsn-tf-export" and manifest["format_version"] == 2
    assert manifest["name"] == "digits_tiny" and manifest["dataset"] == "digits"
    assert manifest["image_shape"] == [8, 8, 1] and manifest["channels"] == 1 and manifest["value_range"] == [0.0, 1.0]
    assert manifest["num_levels"] == 2 and len(manifest["sigmas"]) == 2 and manifest["sigmas"][0] > manifest["sigmas"][1]
    assert manifest["sampler"] == {
        "default": "annealed_langevin", "convention": "code",
        "settings": {"annealed_langevin": {"steps_per_level": 5, "epsilon": 2e-05, "denoise": False}},
    }  # fmt: skip
    typed = export_format.read_manifest(digits_export_dir)  # the one reader agrees with the JSON
    assert typed.sampler.defaults() == export_format.SamplerSettings(5, 2e-05, False)
    assert typed.image_shape == (8, 8, 1) and typed.sigmas == tuple(manifest["sigmas"]) and typed.checkpoint_step == 3
    assert manifest["checkpoint"] == {"step": 3, "ema": False} and manifest["onnx_opset"] == 18
    assert manifest["config"]["model"]["ngf"] == 4 and manifest["score_model"] == "CondRefineNetDilated"
    assert {"ncsn_tf", "tensorflow", "keras", "tf2onnx", "onnx"} <= set(manifest["versions"])
    verification = manifest["verification"]
    assert verification["status"] == "passed" and verification["tolerance"] == 1e-4
    assert verification["onnx_vs_savedmodel_max_abs_diff"] <= 1e-4 * 3.5
    # 8-bit quantised samples are identical across runtimes
    assert all(entry.get("uint8_pixels_different", 0) == 0 for entry in verification["endpoints"].values())
    assert set(manifest["endpoints"]) == set(ENDPOINTS)
    assert os.path.isfile(os.path.join(digits_export_dir, "savedmodel", "saved_model.pb"))
    text = open(os.path.join(digits_export_dir, "manifest.json"), encoding="utf-8").read()
    for endpoint in ENDPOINTS:
        path = os.path.join(digits_export_dir, manifest["files"]["onnx"][endpoint])
        model = onnx.load(path)
        assert {p.key: p.value for p in model.metadata_props}["ncsn_manifest"] == text
        assert model.opset_import[0].version == 18
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        contract = manifest["endpoints"][endpoint]
        assert [i.name for i in session.get_inputs()] == list(contract["inputs"])  # contract order
        assert [o.name for o in session.get_outputs()] == [OUTPUT_NAMES[endpoint]] == list(contract["outputs"])
        for value in session.get_inputs():
            assert len(value.shape) == len(contract["inputs"][value.name]["shape"])
            if contract["inputs"][value.name]["shape"][:1] == [-1]:
                assert not isinstance(value.shape[0], int)  # dynamic batch
    # the SavedModel's own copy (written before verification: same facts, tolerance only)
    asset = json.load(open(os.path.join(digits_export_dir, "savedmodel", "assets", "manifest.json"), encoding="utf-8"))
    assert {k: v for k, v in asset.items() if k not in ("verification", "files")} == {
        k: v for k, v in manifest.items() if k not in ("verification", "files")
    }
    assert asset["verification"] == {"status": "pending", "tolerance": 1e-4}


def test_every_real_export_passes_the_safety_gate(digits_export_dir, toy_export_dir):
    """The gate every reader calls accepts what the exporter writes (the exporter checked it too)."""
    from export_format.safety import check_savedmodel, load_onnx_checked

    for folder in (digits_export_dir, toy_export_dir):
        files = export_format.locate(folder)
        check_savedmodel(files.savedmodel)
        for path in files.onnx.values():
            load_onnx_checked(path)
        assert export_format.read_manifest(folder).verification["savedmodel_ops_checked"] is True


# ---------------------------------------------------------------------------
# Seeds, batches, chunks, runtimes (the tiny digits network)
# ---------------------------------------------------------------------------


def test_same_seed_same_images_in_each_runtime_and_across(digits_samplers):
    outputs = {}
    for name, sampler in digits_samplers.items():
        batch7 = sampler.sample(np.arange(7), steps_per_level=3)  # [7, 8, 8, 1]
        again = sampler.sample(np.arange(7), steps_per_level=3)
        single = sampler.sample([4], steps_per_level=3)  # batch 1
        other = sampler.sample(np.arange(100, 107), steps_per_level=3)
        assert batch7.shape == (7, 8, 8, 1) and single.shape == (1, 8, 8, 1)
        np.testing.assert_array_equal(batch7, again)
        np.testing.assert_allclose(single[0], batch7[4], rtol=0, atol=1e-5)  # batch composition does not matter
        assert np.all(np.abs(other - batch7).reshape(7, -1).max(axis=1) > 1e-2)
        outputs[name] = batch7
    np.testing.assert_allclose(outputs["onnxruntime"], outputs["tensorflow"], rtol=0, atol=1e-4 * 3.5)
    to_uint8 = lambda images: np.round(np.clip(images, 0, 1) * 255).astype(np.uint8)  # noqa: E731
    np.testing.assert_array_equal(to_uint8(outputs["onnxruntime"]), to_uint8(outputs["tensorflow"]))


@pytest.mark.parametrize("name", RUNTIMES)
def test_level_chunks_chain_to_the_full_sample(digits_samplers, name):
    sampler = digits_samplers[name]
    seeds = np.array([3, 1, 4])
    for denoise in (False, True):
        full = sampler.sample(seeds, steps_per_level=4, denoise=denoise)
        images = sampler.initial_images(seeds)
        images = sampler.sample_levels(images, seeds, 0, 1, steps_per_level=4, denoise=denoise)
        images = sampler.sample_levels(images, seeds, 1, 2, steps_per_level=4, denoise=denoise)
        np.testing.assert_array_equal(images, full)


@pytest.mark.parametrize("name", RUNTIMES)
def test_inpainting_keeps_the_known_pixels(digits_samplers, name):
    sampler = digits_samplers[name]
    sigma_last = sampler.manifest.sigmas[-1]
    seeds = np.arange(4)
    known = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype(np.float32)
    masks = np.zeros_like(known)
    masks[:, :, :4] = 1.0  # left half known
    masks[2] = (np.random.default_rng(1).uniform(size=(8, 8, 1)) > 0.5).astype(np.float32)  # any mask
    is_known = masks.astype(bool)
    noisy = sampler.inpaint(known, masks, seeds, steps_per_level=3)
    assert np.abs(noisy - known)[is_known].max() <= 5.8 * sigma_last  # y + sigma_L z, |z| <= 5.77
    assert np.abs(noisy - known)[~is_known].max() > 5.8 * sigma_last  # the rest was sampled
    denoised = sampler.inpaint(known, masks, seeds, steps_per_level=3, denoise=True)
    np.testing.assert_array_equal(denoised[is_known], known[is_known])  # exact after the denoising step
    chained = sampler.inpaint_levels(sampler.initial_images(seeds), known, masks, seeds, 0, 1, steps_per_level=3)
    chained = sampler.inpaint_levels(chained, known, masks, seeds, 1, 2, steps_per_level=3)
    np.testing.assert_array_equal(chained, noisy)


def test_score_endpoint_matches_the_network(digits_workdir, digits_samplers):
    from ncsn_tf.checkpoints import load_for_inference

    _, model, _ = load_for_inference(digits_workdir)
    images = np.random.default_rng(2).uniform(size=(3, 8, 8, 1)).astype(np.float32)
    indices = np.array([0, 1, 1])
    expected = model(images, indices.astype(np.int32)).numpy()
    for sampler in digits_samplers.values():
        np.testing.assert_allclose(sampler.score(images, indices), expected, rtol=1e-4, atol=1e-5)


def test_python_api_rejects_bad_inputs_with_clear_errors(digits_samplers):
    sampler = digits_samplers["onnxruntime"]
    good = np.zeros((2, 8, 8, 1), np.float32)
    masks = np.ones_like(good)
    with pytest.raises(ExportInputError, match=r"images must have shape \[2, 8, 8, 1\]"):
        sampler.sample_levels(np.zeros((2, 8, 8, 3), np.float32), [0, 1])
    with pytest.raises(ExportInputError, match=r"known_images must have shape \[2, 8, 8, 1\]"):
        sampler.inpaint(np.zeros((2, 7, 7, 1), np.float32), masks, [0, 1])
    with pytest.raises(ExportInputError, match=r"masks must have shape \[2, 8, 8, 1\]"):
        sampler.inpaint(good, np.ones((2, 8, 8), np.float32), [0, 1])
    with pytest.raises(ExportInputError, match="only 0 .unknown. and 1 .known."):
        sampler.inpaint(good, masks * 0.5, [0, 1])
    with pytest.raises(ExportInputError, match=r"B = 3 seeds"):  # batch mismatch
        sampler.inpaint(good, masks, [0, 1, 2])
    with pytest.raises(ExportInputError, match="level range"):
        sampler.sample_levels(good, [0, 1], 1, 3)
    with pytest.raises(ExportInputError, match="first_level must be an integer, got 0.5"):
        sampler.sample_levels(good, [0, 1], 0.5, 2)
    with pytest.raises(ExportInputError, match="integers"):
        sampler.sample([0.5, 1.5])
    with pytest.raises(ExportInputError, match="int32"):
        sampler.sample([2**31])
    with pytest.raises(ExportInputError, match="sigma_indices"):
        sampler.score(good, [0, 2])
    with pytest.raises(ExportInputError, match="images must be real numbers, got dtype complex"):
        sampler.sample_levels(good + 1j, [0, 1])  # the imaginary part is never dropped silently
    with pytest.raises(ExportInputError, match="unknown sampler setting"):
        sampler.sample([0], step_per_level=3)
    with pytest.raises(ExportInputError, match="unknown sampler 'heun'"):
        sampler.sample([0], sampler="heun")


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"steps_per_level": 0}, r"steps_per_level \(steps per level\) must be an integer in \[1, 100000\], got 0"),
        ({"steps_per_level": 1.9}, r"must be an integer in \[1, 100000\], got 1.9 \(float\)"),  # not silently 1
        ({"steps_per_level": True}, r"must be an integer .*, got True"),
        ({"steps_per_level": 110_000_000}, r"must be an integer in \[1, 100000\], got 110000000"),  # never unsampled noise
        ({"epsilon": 1e40}, r"epsilon \(step size\) must be a finite number in \(0, 1\], got 1e\+40"),
        ({"epsilon": float("nan")}, r"epsilon .* got nan"),
        ({"epsilon": 0.0}, r"epsilon .* got 0.0"),
        ({"epsilon": 1e-5 + 1j}, r"epsilon .* got \(1e-05\+1j\) \(complex\)"),
        ({"denoise": "no"}, r"denoise \(final denoising step\) must be true or false, got 'no'"),
        ({"denoise": 1}, r"denoise .* must be true or false, got 1"),
    ],
)
def test_sampler_settings_are_strict_in_every_runtime(digits_samplers, settings, message):
    for sampler in digits_samplers.values():
        with pytest.raises(ExportInputError, match=message) as caught:
            sampler.sample([0, 1], **settings)
        assert "\n" not in str(caught.value)  # one line


def test_numpy_scalars_are_accepted_as_settings(digits_samplers):
    sampler = digits_samplers["onnxruntime"]
    plain = sampler.sample([3], steps_per_level=2, epsilon=2e-5, denoise=True)
    numpy = sampler.sample([3], steps_per_level=np.int64(2), epsilon=np.float32(2e-5), denoise=np.bool_(True))
    np.testing.assert_array_equal(plain, numpy)


def test_an_empty_batch_is_the_same_empty_answer_in_both_runtimes(digits_samplers):
    for sampler in digits_samplers.values():
        empty = np.zeros((0, 8, 8, 1), np.float32)
        for images in (
            sampler.initial_images([]),
            sampler.sample([]),
            sampler.sample_levels(empty, [], 0, 1),
            sampler.inpaint(empty, empty, []),
            sampler.inpaint_levels(empty, empty, empty, []),
            sampler.score(empty, []),
        ):
            assert images.shape == (0, 8, 8, 1) and images.dtype == np.float32
        with pytest.raises(ExportInputError, match="steps_per_level"):  # settings are still checked
            sampler.sample([], steps_per_level=0)


@pytest.mark.parametrize("name", RUNTIMES)
def test_a_diverging_chain_is_a_one_line_error_not_silent_nan(gaussian_export_dir, name):  # noqa: F811
    sampler = export_format.load(gaussian_export_dir, name)
    finite = sampler.sample([0, 1], steps_per_level=3)  # the export's epsilon (2e-5): fine
    assert np.isfinite(finite).all()
    with pytest.raises(DivergedError, match=r"sampling diverged: 2 of 2 images became non-finite with epsilon 1; reduce epsilon"):
        sampler.sample([0, 1], steps_per_level=100, epsilon=1.0)
    chunks = sampler.iter_sample([0], levels_per_chunk=1, epsilon=1.0, steps_per_level=100)
    with pytest.raises(DivergedError):  # a chunked run stops at the first chunk that diverged
        list(chunks)
    sampler.close()


# ---------------------------------------------------------------------------
# Failures leave nothing behind
# ---------------------------------------------------------------------------


def test_a_failed_export_removes_its_files_and_keeps_the_previous_export(tmp_path):
    from export_fixtures import gaussian_image_model, tiny_digits_config

    from export.exporter import ExportError, export_model

    config = tiny_digits_config()
    good = gaussian_image_model([1.0, 0.01])
    first = export_model(config, good, 0, tmp_path, name="model", formats="savedmodel")
    broken = gaussian_image_model([1.0, 0.01], broken=True)
    with pytest.raises(ExportError, match="non-finite"):
        export_model(config, broken, 1, tmp_path, name="model", formats="savedmodel")
    assert sorted(os.listdir(tmp_path)) == ["model"]  # no staging folder left
    assert runtime.read_manifest(first.path)["checkpoint"]["step"] == 0  # the good export is untouched
    with pytest.raises(ValueError, match="opset"):
        export_model(config, good, 0, tmp_path, opset=17)
    with pytest.raises(ValueError, match="format"):
        export_model(config, good, 0, tmp_path, formats="tflite")


def test_leftovers_of_a_killed_export_are_removed_by_the_next(tmp_path):
    from export_fixtures import gaussian_image_model, tiny_digits_config

    from export.exporter import export_model

    killed = tmp_path / ".model.partial-abc123"  # an older exporter's staging folder (no PID)
    (killed / "savedmodel").mkdir(parents=True)
    (killed / "savedmodel" / "saved_model.pb").write_bytes(b"\0" * 1000)
    dead = tmp_path / ".other.partial-999999999-x1"  # a PID that is no running process
    dead.mkdir()
    replacing = tmp_path / ".model.old-999999999-y2"  # killed while replacing an old export
    replacing.mkdir()
    running = tmp_path / f".busy.partial-{os.getpid()}-z3"  # an export in progress (this process)
    running.mkdir()
    model = gaussian_image_model([1.0, 0.01])
    result = export_model(tiny_digits_config(), model, 0, tmp_path, name="model", formats="savedmodel")
    assert sorted(os.listdir(tmp_path)) == [running.name, "model"]
    assert len(result.notes) == 3 and all("\n" not in note for note in result.notes)
    assert any(".model.partial-abc123" in note and "killed" in note for note in result.notes)


# ---------------------------------------------------------------------------
# A fresh process that never imports ncsn_tf
# ---------------------------------------------------------------------------

FRESH_PROCESS_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import onnxruntime
    import tensorflow as tf

    toy_dir, digits_dir = sys.argv[1:3]
    results = {}

    sessions, loaded = {}, {}

    def onnx_run(folder, endpoint, feeds):
        path = os.path.join(folder, "onnx", endpoint + ".onnx")
        if path not in sessions:
            sessions[path] = onnxruntime.InferenceSession(path)
        return sessions[path].run(None, feeds)[0]

    def tf_run(folder, endpoint, feeds):
        if folder not in loaded:
            loaded[folder] = tf.saved_model.load(os.path.join(folder, "savedmodel"))
        output = loaded[folder].signatures[endpoint](**{k: tf.constant(v) for k, v in feeds.items()})
        return next(iter(output.values())).numpy()

    def settings(steps, epsilon, denoise=False):
        return {"steps_per_level": np.array(steps, np.int32), "epsilon": np.array(epsilon, np.float32),
                "denoise": np.array(denoise)}

    # Toy mixture: the paper's 1280 chains with the exported defaults (T = 100, eps = 0.1, "paper").
    toy = json.load(open(os.path.join(toy_dir, "manifest.json")))
    epsilon = toy["sampler"]["settings"][toy["sampler"]["default"]]["epsilon"]  # format version 2
    feeds = {"seeds": np.arange(1280, dtype=np.int32), **settings(100, epsilon)}
    points = {"onnxruntime": onnx_run(toy_dir, "sample", feeds), "tensorflow": tf_run(toy_dir, "sample", feeds)}
    results["toy_small_mode_share"] = {k: float(np.mean(v.sum(axis=1) < 0)) for k, v in points.items()}
    results["toy_max_diff"] = float(np.abs(points["onnxruntime"] - points["tensorflow"]).max())

    # Tiny digits: batch 1 and 7, both runtimes.
    for batch in (1, 7):
        feeds = {"seeds": np.arange(batch, dtype=np.int32), **settings(2, 2e-5, True)}
        a, b = onnx_run(digits_dir, "sample", feeds), tf_run(digits_dir, "sample", feeds)
        results[f"digits_batch{batch}"] = {"shapes": [list(a.shape), list(b.shape)], "max_diff": float(np.abs(a - b).max())}
    results["signatures"] = sorted(loaded[digits_dir].signatures)
    manifest_text = tf_run(digits_dir, "manifest", {})
    results["manifest_name"] = json.loads(manifest_text.decode())["name"]
    results["ncsn_tf_imported"] = any(name.split(".")[0] in ("ncsn_tf", "export") for name in sys.modules)
    print("RESULTS " + json.dumps(results))
    """
)


def test_fresh_process_without_ncsn_tf_runs_both_exports(toy_export_dir, digits_export_dir, tmp_path):
    script = tmp_path / "run_exports.py"
    script.write_text(FRESH_PROCESS_SCRIPT)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ""}
    completed = subprocess.run(
        [sys.executable, str(script), toy_export_dir, digits_export_dir],
        capture_output=True, text=True, timeout=300, env=env, cwd=str(tmp_path),
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    line = next(line for line in completed.stdout.splitlines() if line.startswith("RESULTS "))
    results = json.loads(line[len("RESULTS ") :])
    assert results["ncsn_tf_imported"] is False
    # the mode weights: 0.2 within 4 binomial standard errors for 1280 chains (see test_sampling.py)
    tolerance = 4 * math.sqrt(0.2 * 0.8 / 1280)
    for share in results["toy_small_mode_share"].values():
        assert abs(share - 0.2) < tolerance
    assert results["toy_max_diff"] < 1e-4 * 30  # points up to ~10: relative 1e-4 of max(1, |x|)
    for batch in (1, 7):
        entry = results[f"digits_batch{batch}"]
        assert entry["shapes"] == [[batch, 8, 8, 1]] * 2 and entry["max_diff"] < 1e-4 * 3.5
    assert {"sample", "sample_levels", "inpaint", "inpaint_levels", "initial_images", "score", "manifest"} <= set(
        results["signatures"]
    )
    assert results["manifest_name"] == "digits_tiny"


@pytest.mark.slow
def test_saved_model_cli_lists_the_signatures(digits_export_dir):
    completed = subprocess.run(
        ["saved_model_cli", "show", "--dir", os.path.join(digits_export_dir, "savedmodel"), "--tag_set", "serve"],
        capture_output=True, text=True, timeout=180, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    if completed.returncode != 0 and "No module named" in completed.stderr:
        pytest.skip("saved_model_cli is not usable here")
    assert completed.returncode == 0, completed.stderr[-2000:]
    for endpoint in ENDPOINTS:
        assert f'"{endpoint}"' in completed.stdout
