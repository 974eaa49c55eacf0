"""The one safety gate for untrusted model files (export_format.safety).

Hostile SavedModels (tests/hostile_models.py) of every family, also hidden in a while
body, a cond branch and a nested function, TF1 restore ops and hand-edited TF2 savers
are refused with a message naming the op, and a sentinel proves the check read and wrote
nothing; the reported bypasses of the old denylist really do harm when TensorFlow loads
them. Real exports of every kind pass, and the allowlists equal what they use.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import hostile_models as hm
import numpy as np
import pytest

from export_format import safety
from export_format.errors import ExportFormatError, UnsafeExportError
from export_format.safety import check_onnx_model, check_savedmodel, confined_path, load_onnx_checked

ROOT = Path(__file__).resolve().parents[1]
REVIEW = "review what it does, then add it to export_format/safety.py"


@pytest.fixture(scope="session")
def sentinel(tmp_path_factory):
    watched = hm.Sentinel(tmp_path_factory.mktemp("sentinel") / "watched")
    yield watched
    watched.close()


@pytest.fixture(scope="session")
def hostile(tmp_path_factory, sentinel):
    """build(kind, *args) -> export folder, each hostile model built once per session."""
    root = tmp_path_factory.mktemp("hostile")
    builders = {
        "case": lambda folder, family, placement: hm.savedmodel_case(folder, family, placement, sentinel),
        "tf1": lambda folder, restore, placement: hm.tf1_savedmodel(folder, restore, placement, sentinel.target),
        "crafted": lambda folder, case: hm.crafted_saver_savedmodel(folder, case, sentinel.target),
        "graph_constant": lambda folder: hm.serialized_graph_constant_savedmodel(folder, sentinel),
        "split_graph_constant": lambda folder: hm.serialized_graph_constant_savedmodel(folder, sentinel, split=True),
        "clean": hm.clean_savedmodel,
    }
    built: dict[tuple[str, ...], Path] = {}

    def build(kind: str, *args: str) -> Path:
        if (kind, *args) not in built:
            built[(kind, *args)] = builders[kind](root / "-".join((kind, *args)), *args)
            sentinel.arm()  # building may write (Dataset.save writes its spec while traced); checking may not
        return built[(kind, *args)]

    return build


def _refusal(path, sentinel) -> str:
    """The gate's one-line message for a SavedModel it must refuse, after checking the sentinel."""
    with pytest.raises(UnsafeExportError) as caught:
        check_savedmodel(path)
    sentinel.assert_untouched()
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "re-export" in message
    return message


def _entry(message: str, op: str) -> str:
    """The part of a refusal that names `op`: "Op (node 'n' in function 'f' (... of a ... in ...))"."""
    body = message.split(": it uses ops no ncsn-tf export uses there: ", 1)[-1]
    entries = [entry for entry in re.split(r", (?=[A-Za-z0-9_]+ \(node ')", body) if entry.startswith(f"{op} (node ")]
    assert entries, f"{op} is not named in: {message}"
    return entries[0]


# ----------------------------------------------------------------------------- the module itself


def test_importing_the_gate_imports_no_tensorflow_onnx_or_onnxruntime():
    code = (
        "import sys, export_format.safety\n"
        "loaded = [m for m in ('tensorflow', 'keras', 'onnx', 'onnxruntime', 'ncsn_tf', 'PySide6') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert completed.returncode == 0, completed.stderr


def test_allowlists_are_sorted_literals_with_no_duplicates():
    source = (ROOT / "export_format" / "safety.py").read_text(encoding="utf-8")
    names = (
        "SAVEDMODEL_OP_ALLOWLIST",
        "SAVEDMODEL_STRING_OPS",
        "RESTORE_FUNCTION_OPS",
        "SAVE_FUNCTION_OPS",
        "ONNX_OP_ALLOWLIST",
    )
    for name in names:
        block = source.split(f"{name}: frozenset")[1].split("\n)\n")[0]
        entries = re.findall(r'^        (\("[^"]*", "[^"]*"\)|"[^"]*"),', block, flags=re.MULTILINE)
        assert entries and entries == sorted(entries) and len(set(entries)) == len(entries), name
        assert len(entries) == len(getattr(safety, name))
    assert safety.CHECKPOINT_OPS <= safety.SAVER_OP_ALLOWLIST
    assert not safety.CHECKPOINT_OPS & safety.SAVEDMODEL_OP_ALLOWLIST  # never outside the saver functions
    assert safety.SAVEDMODEL_STRING_OPS <= safety.SAVEDMODEL_OP_ALLOWLIST


def test_the_sentinel_notices_a_read_and_a_write(tmp_path):
    """The proof that checks touch nothing is only as good as the sentinel: it must see both."""
    watched = hm.Sentinel(tmp_path / "watched")
    try:
        assert watched.touched() == []
        with open(watched.secret, "rb") as fifo:  # what ReadFile on the secret would do
            assert fifo.read() == hm.SECRET_BYTES
        watched.target.write_bytes(b"x")
        events = watched.touched()
        assert "the secret FIFO was opened for reading" in events and "written appeared" in events, events
    finally:
        watched.close()


# ----------------------------------------------------------------------------- hostile SavedModels


def test_every_hostile_family_says_what_it_does():
    assert set(hm.FAMILY_KINDS) == set(hm.FAMILIES) and len(hm.FAMILIES) == len(set(hm.FAMILIES))


@pytest.mark.parametrize("placement", hm.PLACEMENTS)
@pytest.mark.parametrize("family", hm.FAMILIES)
def test_hostile_savedmodel_is_refused_naming_the_op_where_it_hides(hostile, sentinel, family, placement):
    folder = hostile("case", family, placement)
    message = _refusal(folder / "savedmodel", sentinel)
    # the op, the function it sits in, and the chain of calls that leads there from the hiding place
    assert re.search(rf"{hm.PLACEMENT_MARKERS[placement]}", _entry(message, family)), message


@pytest.mark.parametrize("placement", ["direct", "while_body", "nested_function"])
def test_the_hiding_places_alone_pass(hostile, placement):
    """The control: with a harmless body the same model passes, so the refusals above are the ops'."""
    check_savedmodel(hostile("case", "harmless", placement) / "savedmodel")


def test_a_cond_is_refused_itself(hostile, sentinel):
    # Our exports have no tf.cond, so its op is not allowed even with a harmless branch.
    assert re.search(
        r"\b(Stateless)?If \(node", _refusal(hostile("case", "harmless", "cond_branch") / "savedmodel", sentinel)
    )


def test_a_pipeline_serialized_into_a_string_constant_is_refused(hostile, sentinel):
    """Only allowed ops (Const, Identity): the graph in the string is what gives it away."""
    message = _refusal(hostile("graph_constant") / "savedmodel", sentinel)
    assert "string constant holding a serialized GraphDef" in message and "Const" in message


def test_allowed_ops_on_strings_are_refused(hostile, sentinel):
    """A graph cut in two string constants (neither half parses) stacked by Pack: allowed for numbers only."""
    message = _refusal(hostile("split_graph_constant") / "savedmodel", sentinel)
    assert "Pack (node 'pack' in function" in message and "on strings, which exports only pass on" in message
    assert "serialized" not in message


@pytest.mark.parametrize(
    "restore, placement",
    [("Save", "direct"), ("WriteFile", "direct"), ("WriteFile", "while_body"), ("WriteFile", "cond_branch"),
     ("WriteFile", "nested_function")],
)  # fmt: skip
def test_tf1_savedmodel_whose_restore_op_writes_a_file_is_refused(hostile, sentinel, restore, placement):
    message = _refusal(hostile("tf1", restore, placement) / "savedmodel", sentinel)
    if placement == "direct" and restore == "Save":
        assert "Save (node 'Save' in the main graph, the saver_def's restore op, which loaders run on load" in message
    else:
        marker = {"direct": r"\(f of a StatefulPartitionedCall in the main graph"}.get(
            placement, hm.PLACEMENT_MARKERS[placement]
        )
        assert re.search(marker, _entry(message, "WriteFile")), message
        assert "in the main graph, the saver_def's restore op, which loaders run on load" in _entry(
            message, "WriteFile"
        )


CRAFTED_MESSAGES = {
    "restore_reads_a_constant_path": "RestoreV2 'RestoreV2' in saver function '__inference__traced_restore_",
    "save_writes_outside": "touches '<file_prefix>.part/../../evil<shard>'",
    "init_op_runs_restore": "uses the saver's node '^StatefulPartitionedCall",
    "signature_returns_restore": "output 'images' of signature 'sample' names the saver's node",
    "function_calls_restore": "calls the saver function '__inference__traced_restore_",
    "restore_in_an_unused_function": "RestoreV2 (node 'RestoreV2' in function '__inference_helper_1'; checkpoint I/O outside",
    "restore_op_is_write_file": "WriteFile (node 'evil_write' in the main graph, the saver_def's restore op",
    "no_object_graph": "TF1-style SavedModel (no object graph)",
    "saveable_object": "has its own saver, which TensorFlow runs while loading",
}


@pytest.mark.parametrize("case", hm.CRAFTED_SAVERS)
def test_checkpoint_io_anywhere_but_tf2s_own_saver_is_refused(hostile, sentinel, case):
    assert CRAFTED_MESSAGES[case] in _refusal(hostile("crafted", case) / "savedmodel", sentinel)


def test_a_clean_tf2_savedmodel_with_variables_passes(hostile):
    check_savedmodel(hostile("clean") / "savedmodel")  # TF's saver functions hold SaveV2/RestoreV2: allowed there


def test_the_reported_bypasses_really_do_harm_when_tensorflow_loads_them(tmp_path):
    """What the gate stops: each of the three reported models, loaded and run by TensorFlow, touches files."""
    import tensorflow as tf

    secret = tmp_path / "passwd"
    secret.write_bytes(hm.SECRET_BYTES)
    models = {
        "cache": hm.dataset_cache_bypass(tmp_path / "cache", tmp_path / "cache-out" / "stolen"),
        "from_graph": hm.dataset_from_graph_bypass(tmp_path / "from_graph", secret),
        "tf1": hm.tf1_savedmodel(tmp_path / "tf1", "Save", "direct", tmp_path / "tf1-out"),
    }
    for folder in models.values():
        with pytest.raises(UnsafeExportError):
            check_savedmodel(folder / "savedmodel")
    (tmp_path / "cache-out").mkdir()
    tf.saved_model.load(str(models["cache"] / "savedmodel")).signatures["sample"](x=tf.ones([2]))
    assert any(name.startswith("stolen") for name in os.listdir(tmp_path / "cache-out"))  # a cache file was written
    pixels = tf.saved_model.load(str(models["from_graph"] / "savedmodel")).signatures["sample"](x=tf.ones([2]))[
        "images"
    ]
    assert bytes(np.asarray(pixels, np.uint8)) == hm.SECRET_BYTES  # the file's bytes came back as pixels
    assert not (tmp_path / "tf1-out").exists()
    tf.saved_model.load(str(models["tf1"] / "savedmodel"))  # only loading it
    assert (tmp_path / "tf1-out").exists()  # the restore op (a Save) wrote the attacker's file


# ----------------------------------------------------------------------------- SavedModel files and format


@pytest.fixture
def clean_copy(hostile, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(hostile("clean"), folder, symlinks=True)
    return folder / "savedmodel"


def test_a_symlink_out_of_the_savedmodel_is_refused(clean_copy, tmp_path):
    (tmp_path / "elsewhere.index").write_bytes(b"\0" * 8)
    index = clean_copy / "variables" / "variables.index"
    index.unlink()
    index.symlink_to(tmp_path / "elsewhere.index")
    with pytest.raises(UnsafeExportError, match=r"variables/variables.index is a symlink to .*outside the SavedModel"):
        check_savedmodel(clean_copy)


def test_a_symlinked_folder_out_of_the_savedmodel_is_refused(clean_copy, tmp_path):
    shutil.move(clean_copy / "variables", tmp_path / "variables")
    (clean_copy / "variables").symlink_to(tmp_path / "variables", target_is_directory=True)
    with pytest.raises(UnsafeExportError, match="variables is a symlink to"):
        check_savedmodel(clean_copy)


def test_a_fifo_or_a_second_graph_file_in_the_savedmodel_is_refused(clean_copy):
    os.mkfifo(clean_copy / "assets.fifo")
    with pytest.raises(UnsafeExportError, match="assets.fifo is not a regular file"):
        check_savedmodel(clean_copy)
    os.unlink(clean_copy / "assets.fifo")
    (clean_copy / "saved_model.pbtxt").write_text("meta_graphs {}")
    with pytest.raises(UnsafeExportError, match="saved_model.pbtxt next to saved_model.pb"):
        check_savedmodel(clean_copy)


def test_corrupt_or_missing_savedmodels_are_format_errors_not_refusals(tmp_path):
    with pytest.raises(ExportFormatError, match="holds no saved_model.pb") as caught:
        check_savedmodel(tmp_path)
    assert not isinstance(caught.value, UnsafeExportError)
    (tmp_path / "saved_model.pb").write_bytes(b"\x08\x01garbage" * 50)
    with pytest.raises(ExportFormatError, match="is corrupt") as caught:
        check_savedmodel(tmp_path)
    assert not isinstance(caught.value, UnsafeExportError)
    with pytest.raises(ExportFormatError, match="not a folder"):
        check_savedmodel(tmp_path / "saved_model.pb")


def test_a_second_meta_graph_or_other_tags_are_refused(clean_copy):
    from tensorflow.core.protobuf import saved_model_pb2

    path = clean_copy / "saved_model.pb"
    proto = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    proto.meta_graphs[0].meta_info_def.tags.append("train")
    path.write_bytes(proto.SerializeToString())
    with pytest.raises(UnsafeExportError, match=r"tagged \['serve', 'train'\]"):
        check_savedmodel(clean_copy)
    proto.meta_graphs.add().CopyFrom(proto.meta_graphs[0])
    path.write_bytes(proto.SerializeToString())
    with pytest.raises(UnsafeExportError, match="holds 2 meta graphs"):
        check_savedmodel(clean_copy)


def test_remote_devices_and_unknown_function_references_are_refused(clean_copy):
    from tensorflow.core.protobuf import saved_model_pb2

    path = clean_copy / "saved_model.pb"
    original = path.read_bytes()
    proto = saved_model_pb2.SavedModel.FromString(original)
    function = next(f for f in proto.meta_graphs[0].graph_def.library.function if "lambda" in f.signature.name)
    function.node_def[0].device = "/job:worker/replica:0/task:3/device:CPU:0"
    path.write_bytes(proto.SerializeToString())
    with pytest.raises(UnsafeExportError, match="is placed on '/job:worker/.*not a local device"):
        check_savedmodel(clean_copy)
    proto = saved_model_pb2.SavedModel.FromString(original)
    call = next(node for node in proto.meta_graphs[0].graph_def.node if node.op == "StatefulPartitionedCall")
    call.attr["f"].func.attr["inner"].func.name = "ReadFile"  # a primitive op, not a library function
    path.write_bytes(proto.SerializeToString())
    with pytest.raises(UnsafeExportError, match="names 'ReadFile', which is not a function of its library"):
        check_savedmodel(clean_copy)


def test_duplicate_or_nameless_functions_are_refused(clean_copy):
    """The gate looks functions up by name: a second definition under the same name must not hide."""
    from tensorflow.core.protobuf import saved_model_pb2

    path = clean_copy / "saved_model.pb"
    original = path.read_bytes()
    for name, expected in (("__inference_<lambda>", "more than once"), ("", "not a valid function name")):
        proto = saved_model_pb2.SavedModel.FromString(original)
        library = proto.meta_graphs[0].graph_def.library
        first = next(f for f in library.function if f.signature.name.startswith("__inference_<lambda>"))
        twin = library.function.add()
        twin.CopyFrom(first)
        twin.signature.name = first.signature.name if name else ""
        path.write_bytes(proto.SerializeToString())
        with pytest.raises(UnsafeExportError, match=expected):
            check_savedmodel(clean_copy)


def test_a_variant_constant_is_refused(clean_copy):
    from tensorflow.core.protobuf import saved_model_pb2

    path = clean_copy / "saved_model.pb"
    proto = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    function = next(f for f in proto.meta_graphs[0].graph_def.library.function if "lambda" in f.signature.name)
    node = function.node_def.add(name="evil", op="Const")
    node.attr["dtype"].type = 21  # DT_VARIANT
    node.attr["value"].tensor.dtype = 21
    path.write_bytes(proto.SerializeToString())
    with pytest.raises(UnsafeExportError, match="constant of dtype variant/resource"):
        check_savedmodel(clean_copy)


def test_serialized_graph_detection_has_no_false_alarm_on_ordinary_strings():
    from tensorflow.core.framework import graph_pb2

    graph = graph_pb2.GraphDef()
    graph.node.add(name="read", op="ReadFile")
    assert safety._serialized_graph(graph.SerializeToString()) == "GraphDef"
    for text in (b"", b"SAME", b"variables/0/.ATTRIBUTES/VARIABLE_VALUE", b'{"format": "ncsn-tf-export"}', b"^s3://.*"):
        assert safety._serialized_graph(text) is None


# ----------------------------------------------------------------------------- ONNX


def _save_onnx(model, folder: Path, name: str = "m.onnx") -> Path:
    import onnx

    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, folder / name)
    return folder / name


def test_onnx_external_data_inside_the_folder_is_accepted_and_runs(tmp_path):
    import onnxruntime

    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "w.bin").write_bytes(np.arange(4, dtype=np.float32).tobytes())
    path = _save_onnx(hm.onnx_add_model(external_location="weights/w.bin"), tmp_path)
    load_onnx_checked(path)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(None, {"x": np.ones(4, np.float32)})[0], [1, 2, 3, 4])


@pytest.mark.parametrize(
    "location, expected",
    [("/etc/passwd", "is an absolute path"), ("../secret.bin", "climbs out with '..'"),
     ("sub/../../secret.bin", "climbs out with '..'"), ("C:/Windows/x.bin", "is an absolute path"),
     ("sub\\..\\x.bin", "uses backslashes")],
)  # fmt: skip
def test_onnx_external_data_outside_the_folder_is_refused(tmp_path, location, expected):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    for in_loop in (False, True):
        path = _save_onnx(hm.onnx_add_model(external_location=location, in_loop=in_loop), tmp_path / f"model{in_loop}")
        with pytest.raises(UnsafeExportError, match=rf"external data of tensor 'w' = .*{re.escape(expected)}"):
            load_onnx_checked(path)


def test_onnx_external_data_through_a_symlink_out_is_refused(tmp_path):
    (tmp_path / "secret.bin").write_bytes(b"\0" * 16)
    (tmp_path / "outside").mkdir()
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "w.bin").symlink_to(tmp_path / "secret.bin")
    (folder / "data").symlink_to(tmp_path / "outside", target_is_directory=True)
    (tmp_path / "outside" / "w.bin").write_bytes(b"\0" * 16)
    for location in ("w.bin", "data/w.bin"):
        path = _save_onnx(hm.onnx_add_model(external_location=location), folder)
        with pytest.raises(UnsafeExportError, match="resolves through a symlink to .*outside the model's folder"):
            load_onnx_checked(path)


def test_onnx_custom_domains_are_refused_also_inside_a_loop_body_and_a_local_function(tmp_path):
    for in_loop in (False, True):
        model = hm.onnx_add_model(domain="com.example.evil", in_loop=in_loop)
        with pytest.raises(UnsafeExportError, match="custom operator domain.*'com.example.evil'"):
            check_onnx_model(model, tmp_path / "m.onnx")
        del model.opset_import[1]  # undeclared: the node's own domain still gives it away
        where = "subgraph 'body'" if in_loop else "the main graph"
        with pytest.raises(
            UnsafeExportError, match=rf"'com.example.evil:Add' \(node '' in .*{where}.*custom operator domain"
        ):
            check_onnx_model(model, tmp_path / "m.onnx")
    with pytest.raises(UnsafeExportError, match="custom operator domain"):
        check_onnx_model(hm.onnx_local_function_model(), tmp_path / "m.onnx")


def test_onnx_standard_operators_we_never_export_are_refused(tmp_path):
    model = hm.onnx_add_model(op_type="Sum", in_loop=True)
    with pytest.raises(UnsafeExportError, match="operator 'Sum' .*not an operator ncsn-tf exports use"):
        check_onnx_model(model, tmp_path / "m.onnx")
    check_onnx_model(hm.onnx_add_model(in_loop=True), tmp_path / "m.onnx")  # the same model with Add passes


def test_corrupt_missing_or_special_onnx_files_are_format_errors(tmp_path):
    for make, expected in (
        (lambda p: p.write_bytes(os.urandom(4096)), "corrupt or not ONNX"),
        (lambda p: None, "model file not found"),
        (lambda p: os.mkfifo(p), "not a regular file"),
    ):
        path = tmp_path / f"case{len(os.listdir(tmp_path))}.onnx"
        make(path)
        with pytest.raises(ExportFormatError, match=expected) as caught:
            load_onnx_checked(path)
        assert not isinstance(caught.value, UnsafeExportError)


# ----------------------------------------------------------------------------- confined_path


def test_confined_path_accepts_nested_paths_and_symlinks_that_stay_inside(tmp_path):
    export = tmp_path / "export"
    (export / "onnx" / "deep").mkdir(parents=True)
    (export / "onnx" / "deep" / "sample.onnx").write_bytes(b"x")
    (export / "alias").symlink_to(export / "onnx", target_is_directory=True)
    assert (
        confined_path(export, "onnx/deep/sample.onnx", "files.onnx.sample") == export / "onnx" / "deep" / "sample.onnx"
    )
    assert (
        confined_path(export, "./alias/deep/sample.onnx", "files.onnx.sample")
        == export / "alias" / "deep" / "sample.onnx"
    )
    assert confined_path(export, "savedmodel", "files.savedmodel") == export / "savedmodel"  # need not exist
    linked = tmp_path / "linked-export"
    linked.symlink_to(export, target_is_directory=True)  # the export folder itself may be reached through a link
    assert confined_path(linked, "onnx/deep/sample.onnx", "files.onnx.sample").is_file()


def test_confined_path_refuses_symlinked_files_and_folders_out_of_the_export(tmp_path):
    export = tmp_path / "export"
    (export / "onnx").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "sample.onnx").write_bytes(b"x")
    (export / "onnx" / "file.onnx").symlink_to(tmp_path / "outside" / "sample.onnx")
    (export / "folder").symlink_to(tmp_path / "outside", target_is_directory=True)
    (export / "onnx" / "deeper").symlink_to(tmp_path / "outside", target_is_directory=True)
    for relative in (
        "onnx/file.onnx",
        "folder/sample.onnx",
        "folder",
        "onnx/deeper/sample.onnx",
        "onnx/deeper/missing",
    ):
        with pytest.raises(
            UnsafeExportError, match=rf"files.onnx.sample = '{re.escape(relative)}' resolves through a symlink"
        ):
            confined_path(export, relative, "files.onnx.sample")


@pytest.mark.parametrize(
    "relative, expected",
    [("/etc/passwd", "absolute path"), ("../x", "'..'"), ("onnx/../../x", "'..'"), ("onnx\\x", "backslashes"),
     ("a\0b", "NUL byte"), ("C:/x", "absolute path")],
)  # fmt: skip
def test_confined_path_refuses_paths_that_leave_by_name(tmp_path, relative, expected):
    with pytest.raises(
        UnsafeExportError, match=rf"manifest key files.savedmodel.*{re.escape(expected)}|{re.escape(expected)}"
    ):
        confined_path(tmp_path, relative, "files.savedmodel")


@pytest.mark.parametrize("relative", ["", "  ", ".", None, 3])
def test_confined_path_refuses_non_paths_as_format_errors(tmp_path, relative):
    with pytest.raises(ExportFormatError, match="files.savedmodel") as caught:
        confined_path(tmp_path, relative, "files.savedmodel")
    assert not isinstance(caught.value, UnsafeExportError)


# ----------------------------------------------------------------------------- real exports


@pytest.fixture(scope="session")
def toy_mlp_export_dir(exports_root):
    """A (freshly initialised) toy MLP export: the learned-score 2-D model, SavedModel + ONNX."""
    import keras

    from export.exporter import export_model
    from ncsn_tf import configs
    from ncsn_tf.models import build_score_model

    keras.utils.set_random_seed(0)
    config = configs.apply_overrides(configs.toy(), ["model.mlp_hidden=8", "model.mlp_layers=1", "noise.num_levels=3"])
    return export_model(config, build_score_model(config), 1, exports_root, name="toy_mlp").path


@pytest.fixture(scope="session")
def bfloat16_export_dir(digits_workdir, exports_root):
    """The tiny digits network exported in bfloat16 (SavedModel only)."""
    from export.exporter import export_checkpoint

    return export_checkpoint(
        digits_workdir, exports_root, name="digits_tiny-bf16", precision="bfloat16", formats="savedmodel"
    ).path


@pytest.fixture(scope="session")
def real_exports(toy_export_dir, digits_export_dir, toy_mlp_export_dir, bfloat16_export_dir):
    """Every kind of export we write: exact toy mixture (ONNX optimized), tiny digits (not optimized),
    toy MLP (optimized), bfloat16 digits (SavedModel only)."""
    return {"toy mixture": toy_export_dir, "digits": digits_export_dir, "toy MLP": toy_mlp_export_dir,
            "bfloat16 digits": bfloat16_export_dir}  # fmt: skip


def _onnx_files(export_dir) -> list[Path]:
    return sorted(Path(export_dir, "onnx").glob("*.onnx"))


def test_the_toy_export_passes_the_gate(toy_export_dir):
    check_savedmodel(Path(toy_export_dir) / "savedmodel")
    for path in _onnx_files(toy_export_dir):
        load_onnx_checked(path)


@pytest.mark.slow
def test_every_real_export_passes_the_gate(real_exports):
    for name, export_dir in real_exports.items():
        check_savedmodel(Path(export_dir) / "savedmodel")
        for path in _onnx_files(export_dir):
            load_onnx_checked(path)
        assert _onnx_files(export_dir) or name == "bfloat16 digits"


def _savedmodel_usage(savedmodel_dir) -> dict[str, set]:
    """What one SavedModel holds, collected independently of the gate (plain proto reading)."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel.FromString(Path(savedmodel_dir, "saved_model.pb").read_bytes())
    (meta,) = proto.meta_graphs
    graph = meta.graph_def
    main = {node.name: node for node in graph.node}
    saver = {
        "save": main[meta.saver_def.save_tensor_name.split(":")[0]].attr["f"].func.name,
        "restore": main[meta.saver_def.restore_op_name].attr["f"].func.name,
    }
    usage: dict[str, set] = {"ops": set(), "save": set(), "restore": set(), "string ops": set()}
    lists = [("ops", graph.node)] + [
        (next((key for key, name in saver.items() if name == function.signature.name), "ops"), function.node_def)
        for function in graph.library.function
    ]
    for role, nodes in lists:
        usage[role] |= {node.op for node in nodes}
        if role == "ops":  # ops whose type attributes (T, dtype, Tin, ...) include DT_STRING
            usage["string ops"] |= {
                node.op for node in nodes for value in node.attr.values()
                if value.type == 7 or 7 in value.list.type
            }  # fmt: skip
    objects = meta.object_graph_def.nodes
    usage["object kinds"] = {node.WhichOneof("kind") for node in objects}
    usage["user objects"] = {
        node.user_object.identifier for node in objects if node.WhichOneof("kind") == "user_object"
    }
    usage["collections"] = set(meta.collection_def)
    usage["assets"] = {asset.filename for asset in meta.asset_file_def}
    usage["tags"] = {tuple(meta.meta_info_def.tags)}
    return usage


def _onnx_usage(path) -> dict[str, set]:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    ops: set[tuple[str, str]] = set()
    pending = [model.graph]
    while pending:
        graph = pending.pop()
        for node in graph.node:
            ops.add((node.domain, node.op_type))
            pending.extend(attribute.g for attribute in node.attribute if attribute.HasField("g"))
            pending.extend(g for attribute in node.attribute for g in attribute.graphs)
    return {"onnx ops": ops, "onnx domains": {opset.domain for opset in model.opset_import}}


def _compare(used: set, allowed: frozenset, what: str) -> list[str]:
    problems = []
    if used - allowed:
        problems.append(f"real exports now use {what} {sorted(used - allowed)}: {REVIEW}")
    if allowed - used:
        problems.append(f"no real export uses {what} {sorted(allowed - used)} any more: remove them from the allowlist")
    return problems


@pytest.mark.slow
def test_the_allowlists_are_exactly_what_real_exports_use(real_exports):
    """Every allowed entry is used by some real export and every used one is allowed (both directions fail)."""
    usage: dict[str, set] = {}
    for export_dir in real_exports.values():
        for key, values in _savedmodel_usage(Path(export_dir) / "savedmodel").items():
            usage.setdefault(key, set()).update(values)
        for path in _onnx_files(export_dir):
            for key, values in _onnx_usage(path).items():
                usage.setdefault(key, set()).update(values)
    problems = [
        *_compare(usage["ops"], safety.SAVEDMODEL_OP_ALLOWLIST, "SavedModel ops"),
        *_compare(usage["string ops"], safety.SAVEDMODEL_STRING_OPS, "SavedModel ops on strings"),
        *_compare(usage["restore"], safety.RESTORE_FUNCTION_OPS, "ops in TF's restore function"),
        *_compare(usage["save"], safety.SAVE_FUNCTION_OPS, "ops in TF's save function"),
        *_compare(usage["onnx ops"], safety.ONNX_OP_ALLOWLIST, "ONNX operators"),
        *_compare(usage["object kinds"], safety.SAVEDMODEL_OBJECT_KINDS, "SavedModel object kinds"),
        *_compare(usage["user objects"], safety.SAVEDMODEL_USER_OBJECTS, "SavedModel user-object types"),
        *_compare(usage["collections"], safety.SAVEDMODEL_COLLECTIONS, "SavedModel collections"),
        *_compare(usage["assets"], safety.SAVEDMODEL_ASSETS, "SavedModel assets"),
        *_compare(usage["tags"], frozenset({safety.SAVEDMODEL_TAGS}), "meta graph tags"),
    ]
    # tf2onnx declares ai.onnx.ml without using it; no custom domain may appear.
    problems += [
        f"real exports import the opset domain {d!r}: {REVIEW}"
        for d in usage["onnx domains"] - safety.ONNX_OPSET_DOMAINS
    ]
    assert not problems, "\n".join(problems)
