"""Every loader passes every file through the one safety gate before anything loads or runs it.

The loaders: the app (`desktop.backend.open_backend`), `export_format.load` /
`ExportedSampler`, the compatibility alias `export.runtime.load`, and the exporter's
verification (`export.verify.verify_export`). Each refuses the same unsafe export with
the same reason, and nothing the model asks for happens (a sentinel file stays absent).
Manifest paths and folders that are symlinks out of the export are refused by all of
them. (The gate's own families of attacks are tested with the gate.)
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import onnx
import pytest
from export_fixtures import gaussian_export_dir  # noqa: F401 (a session fixture)
from onnx import TensorProto, helper, numpy_helper

import export_format
from export_format import ExportFormatError, UnsafeExportError
from export_format.safety import check_onnx_model, check_savedmodel, load_onnx_checked


def _app(folder, runtime):
    from desktop.backend import open_backend

    return open_backend(folder, runtime)


def _export_runtime(folder, runtime):
    from export import runtime as compat

    return compat.load(folder, runtime)


def _verification(folder, runtime):
    from export.verify import verify_export

    return verify_export(folder, with_onnx=runtime == "onnxruntime")


LOADERS = {"app": _app, "export_format.load": export_format.load, "export.runtime.load": _export_runtime,
           "exporter verification": _verification}  # fmt: skip


def refused_by_every_loader(folder, runtime: str, words: str) -> None:
    """Every loader raises, with `words` in its one-line message."""
    from export.verify import VerificationError

    for name, loader in LOADERS.items():
        with pytest.raises((ExportFormatError, VerificationError)) as caught:
            loader(folder, runtime)
        message = str(caught.value)
        assert words in message and "\n" not in message, (name, message)
        if name != "exporter verification":
            assert isinstance(caught.value, UnsafeExportError), (name, type(caught.value))


# ----------------------------------------------------------------------------- ONNX files made by hand


def _add_model(weights_location: str | None = None, domain: str = "", subgraph_location: str | None = None):
    """y = x + w (w an initializer, optionally stored as external data at `weights_location`)."""
    weights = numpy_helper.from_array(np.arange(4, dtype=np.float32), name="w")
    if weights_location is not None:
        weights.ClearField("raw_data")
        weights.data_location = TensorProto.EXTERNAL
        for key, value in (("location", weights_location), ("offset", "0"), ("length", "16")):
            entry = weights.external_data.add()
            entry.key, entry.value = key, value
    nodes = [helper.make_node("Add", ["x", "w"], ["y"], domain=domain)]
    if subgraph_location is not None:
        inner = numpy_helper.from_array(np.zeros(4, np.float32), name="inner_w")
        inner.ClearField("raw_data")
        inner.data_location = TensorProto.EXTERNAL
        entry = inner.external_data.add()
        entry.key, entry.value = "location", subgraph_location
        then_graph = helper.make_graph(
            [helper.make_node("Identity", ["inner_w"], ["then_out"])], "then", [],
            [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, [4])], initializer=[inner],
        )  # fmt: skip
        else_graph = helper.make_graph(
            [helper.make_node("Identity", ["w"], ["else_out"])], "else", [],
            [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [4])],
        )  # fmt: skip
        nodes.append(helper.make_node("If", ["flag"], ["z"], then_branch=then_graph, else_branch=else_graph))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])]
    if subgraph_location is not None:
        inputs.append(helper.make_tensor_value_info("flag", TensorProto.BOOL, []))
        outputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT, [4]))
    graph = helper.make_graph(nodes, "add", inputs, outputs, initializer=[weights])
    opsets = [helper.make_opsetid("", 18)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets, ir_version=9)


def test_external_data_inside_the_folder_is_accepted_and_runs(tmp_path):
    import onnxruntime

    (tmp_path / "weights.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    path = tmp_path / "ok.onnx"
    onnx.save(_add_model("weights.bin"), path)
    load_onnx_checked(path)  # no refusal
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"x": np.ones(4, np.float32)})[0], [1, 2, 3, 4])


@pytest.mark.parametrize("location", ["../secret.bin", "sub/../../secret.bin", "/etc/passwd"])
def test_external_data_outside_the_folder_is_refused(tmp_path, location):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    onnx.save(_add_model(location), folder / "m.onnx")
    with pytest.raises(UnsafeExportError, match="outside the model's folder"):
        load_onnx_checked(folder / "m.onnx")


def test_external_data_through_a_symlink_out_of_the_folder_is_refused(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    os.symlink(tmp_path / "secret.bin", folder / "weights.bin")
    onnx.save(_add_model("weights.bin"), folder / "m.onnx")
    with pytest.raises(UnsafeExportError, match="outside"):
        load_onnx_checked(folder / "m.onnx")


def test_external_data_in_a_subgraph_is_checked_too(tmp_path):
    model = _add_model(subgraph_location="../../elsewhere.bin")
    with pytest.raises(UnsafeExportError, match="inner_w"):
        check_onnx_model(model, tmp_path / "m.onnx")


def test_corrupt_onnx_is_an_export_error_not_a_crash(tmp_path):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(os.urandom(2048))
    with pytest.raises(ExportFormatError) as caught:
        load_onnx_checked(path)
    assert not isinstance(caught.value, UnsafeExportError)


# ----------------------------------------------------------------------------- real exports, tampered


@pytest.fixture
def export_copy(gaussian_export_dir, tmp_path):  # noqa: F811
    """A writable copy of a real image export (exact Gaussian score, both formats)."""
    return shutil.copytree(gaussian_export_dir, tmp_path / "gaussian")


def test_a_custom_operator_in_one_onnx_file_is_refused_by_every_loader(export_copy):
    onnx.save(_add_model(domain="ai.evil"), export_copy / "onnx" / "initial_images.onnx")
    refused_by_every_loader(export_copy, "onnxruntime", "ai.evil")


def test_an_onnx_file_symlinked_out_of_the_export_is_refused_by_every_loader(export_copy, tmp_path):
    outside = tmp_path / "elsewhere.onnx"
    shutil.move(export_copy / "onnx" / "sample_levels.onnx", outside)  # a working file, outside the folder
    os.symlink(outside, export_copy / "onnx" / "sample_levels.onnx")
    refused_by_every_loader(export_copy, "onnxruntime", "files.onnx.sample_levels = 'onnx/sample_levels.onnx' resolves through a symlink")


def test_a_savedmodel_folder_symlinked_out_of_the_export_is_refused_by_every_loader(export_copy, tmp_path):
    outside = tmp_path / "elsewhere_savedmodel"
    shutil.move(export_copy / "savedmodel", outside)
    os.symlink(outside, export_copy / "savedmodel", target_is_directory=True)
    refused_by_every_loader(export_copy, "tensorflow", "files.savedmodel = 'savedmodel' resolves through a symlink")


def test_manifest_paths_that_leave_the_folder_are_refused_by_every_loader(export_copy):
    manifest = json.loads((export_copy / "manifest.json").read_text())
    for path in ("/etc/passwd", "../gaussian/onnx/sample.onnx", "onnx/../../x.onnx"):
        manifest["files"]["onnx"]["sample"] = path
        (export_copy / "manifest.json").write_text(json.dumps(manifest))
        refused_by_every_loader(export_copy, "onnxruntime", "outside the export folder")


# ----------------------------------------------------------------------------- SavedModels made by hand


def _savedmodel(root, name, body):
    """A SavedModel whose endpoints run `body(x)`, in an export folder with a version-1 manifest."""
    import tensorflow as tf

    module = tf.Module()
    module.weights = tf.Variable([1.0, 2.0])
    run = tf.function(lambda x: {"images": body(module, x)}, input_signature=[tf.TensorSpec([2], tf.float32)])
    folder = root / name
    signatures = {"initial_images": run, "sample_levels": run}
    tf.saved_model.save(module, str(folder / "savedmodel"), signatures=signatures)
    manifest = {
        "format": "ncsn-tf-export", "format_version": 1, "name": name, "image_shape": [2, 2, 1], "sigmas": [1.0],
        "sampler": {"steps_per_level": 1, "epsilon": 1e-5, "convention": "code", "denoise": False},
        "files": {"savedmodel": "savedmodel"},
    }  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="module")
def savedmodels(tmp_path_factory):
    import tensorflow as tf

    root = tmp_path_factory.mktemp("savedmodels")
    target = root / "written.txt"

    def write_file(module, x):
        with tf.control_dependencies([tf.io.write_file(str(target), "pwned")]):
            return tf.identity(x)

    def checkpoint_write(module, x):
        save = tf.raw_ops.SaveV2(
            prefix=str(root / "stolen"), tensor_names=["w"], shape_and_slices=[""], tensors=[module.weights]
        )
        with tf.control_dependencies([save]):
            return tf.identity(x)

    return {
        "clean": _savedmodel(root, "clean", lambda module, x: x * module.weights),
        "WriteFile": _savedmodel(root, "write", write_file),
        "SaveV2": _savedmodel(root, "checkpoint", checkpoint_write),
        "target": target,
        "root": root,
    }


def test_clean_savedmodel_with_variables_passes_the_gate(savedmodels):
    check_savedmodel(savedmodels["clean"] / "savedmodel")  # saver functions hold SaveV2/RestoreV2: allowed


@pytest.mark.parametrize("op", ["WriteFile", "SaveV2"])
def test_a_savedmodel_writing_files_is_refused_by_every_loader_before_it_runs(savedmodels, op):
    refused_by_every_loader(savedmodels[op], "tensorflow", op)
    assert not savedmodels["target"].exists()  # refused before anything ran
    assert not list(savedmodels["root"].glob("stolen*"))


def test_corrupt_savedmodel_is_an_export_error(tmp_path):
    (tmp_path / "saved_model.pb").write_bytes(b"\x08\x01garbage" * 50)
    with pytest.raises(ExportFormatError, match="corrupt"):
        check_savedmodel(tmp_path)
