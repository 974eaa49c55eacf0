"""Untrusted model files are refused before anything in them runs (one test per refusal)."""

from __future__ import annotations

import json
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from desktop.backend import ModelError, UnsafeModelError, locate_model, open_backend
from desktop.backend.safety import check_onnx_model, load_onnx_checked

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
            [helper.make_node("Identity", ["inner_w"], ["then_out"])],
            "then",
            [],
            [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, [4])],
            initializer=[inner],
        )
        else_graph = helper.make_graph(
            [helper.make_node("Identity", ["w"], ["else_out"])],
            "else",
            [],
            [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, [4])],
        )
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
    with pytest.raises(UnsafeModelError, match="outside the model's folder"):
        load_onnx_checked(folder / "m.onnx")


def test_external_data_through_a_symlink_out_of_the_folder_is_refused(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    os.symlink(tmp_path / "secret.bin", folder / "weights.bin")
    onnx.save(_add_model("weights.bin"), folder / "m.onnx")
    with pytest.raises(UnsafeModelError, match="outside"):
        load_onnx_checked(folder / "m.onnx")


def test_external_data_in_a_subgraph_is_checked_too(tmp_path):
    model = _add_model(subgraph_location="../../elsewhere.bin")
    with pytest.raises(UnsafeModelError, match="inner_w"):
        check_onnx_model(model, tmp_path / "m.onnx")


def test_custom_operator_domain_is_refused(tmp_path):
    onnx.save(_add_model(domain="com.example.custom"), tmp_path / "custom.onnx")
    with pytest.raises(UnsafeModelError, match="custom operators.*com.example.custom"):
        load_onnx_checked(tmp_path / "custom.onnx")


def test_corrupt_onnx_is_a_model_error_not_a_crash(tmp_path):
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(os.urandom(2048))
    with pytest.raises(ModelError) as caught:
        load_onnx_checked(path)
    assert not isinstance(caught.value, UnsafeModelError)


def test_open_backend_refuses_a_folder_with_one_bad_file(tmp_path):
    """Through the app's own entry point: the export folder is refused as a whole."""
    export = tmp_path / "export"
    (export / "onnx").mkdir(parents=True)
    manifest = {
        "format": "ncsn-tf-export",
        "format_version": 1,
        "name": "evil",
        "dataset": "digits",
        "image_shape": [2, 2, 1],
        "sigmas": [1.0],
        "sampler": {"steps_per_level": 1, "epsilon": 1e-5, "convention": "code", "denoise": False},
        "files": {"onnx": {"initial_images": "onnx/initial_images.onnx", "sample_levels": "onnx/sample_levels.onnx"}},
    }
    (export / "manifest.json").write_text(json.dumps(manifest))
    onnx.save(_add_model(), export / "onnx" / "initial_images.onnx")
    onnx.save(_add_model(domain="ai.evil"), export / "onnx" / "sample_levels.onnx")
    with pytest.raises(UnsafeModelError, match="ai.evil"):
        open_backend(export, "onnxruntime")


# ----------------------------------------------------------------------------- SavedModels made by hand


def _savedmodel(tmp_path, name, body):
    """A SavedModel whose one signature runs `body(x)`, written next to a manifest."""
    import tensorflow as tf

    module = tf.Module()
    module.weights = tf.Variable([1.0, 2.0])
    module.run = tf.function(lambda x: {"images": body(module, x)}, input_signature=[tf.TensorSpec([2], tf.float32)])
    folder = tmp_path / name
    tf.saved_model.save(module, str(folder / "savedmodel"), signatures={"sample_levels": module.run})
    manifest = {
        "format": "ncsn-tf-export",
        "format_version": 1,
        "name": name,
        "image_shape": [2, 2, 1],
        "sigmas": [1.0],
        "sampler": {"steps_per_level": 1, "epsilon": 1e-5, "convention": "code", "denoise": False},
        "files": {"savedmodel": "savedmodel"},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.fixture(scope="module")
def savedmodels(tmp_path_factory):
    import tensorflow as tf

    root = tmp_path_factory.mktemp("savedmodels")
    target = root / "written.txt"

    def read_file(module, x):
        contents = tf.io.read_file(str(root / "secret.txt"))
        return x + tf.cast(tf.strings.length(contents), tf.float32) * 0.0

    def write_file(module, x):
        with tf.control_dependencies([tf.io.write_file(str(target), "pwned")]):
            return tf.identity(x)

    def printing(module, x):
        with tf.control_dependencies([tf.print(x, output_stream=f"file://{root / 'log.txt'}")]):
            return tf.identity(x)

    def checkpoint_write(module, x):
        save = tf.raw_ops.SaveV2(
            prefix=str(root / "stolen"), tensor_names=["w"], shape_and_slices=[""], tensors=[module.weights]
        )
        with tf.control_dependencies([save]):
            return tf.identity(x)

    return {
        "clean": _savedmodel(root, "clean", lambda module, x: x * module.weights),
        "ReadFile": _savedmodel(root, "read", read_file),
        "WriteFile": _savedmodel(root, "write", write_file),
        "PrintV2": _savedmodel(root, "print", printing),
        "SaveV2": _savedmodel(root, "checkpoint", checkpoint_write),
        "target": target,
    }


def test_clean_savedmodel_with_variables_passes_the_scan(savedmodels):
    from desktop.backend.safety import check_savedmodel

    check_savedmodel(savedmodels["clean"] / "savedmodel")  # saver functions hold SaveV2/RestoreV2: allowed


@pytest.mark.parametrize("op", ["ReadFile", "WriteFile", "PrintV2"])
def test_savedmodel_with_file_ops_is_refused(savedmodels, op):
    from desktop.backend.tf_backend import SavedModelBackend

    with pytest.raises(UnsafeModelError, match=op):
        SavedModelBackend(locate_model(savedmodels[op]))
    assert not savedmodels["target"].exists()  # refused before anything ran


def test_savedmodel_signature_reaching_checkpoint_io_is_refused(savedmodels):
    with pytest.raises(UnsafeModelError, match="SaveV2"):
        open_backend(savedmodels["SaveV2"], "tensorflow")


def test_corrupt_savedmodel_is_a_model_error(tmp_path):
    from desktop.backend.safety import check_savedmodel

    (tmp_path / "saved_model.pb").write_bytes(b"\x08\x01garbage" * 50)
    with pytest.raises(ModelError, match="corrupt"):
        check_savedmodel(tmp_path)
