"""Hostile SavedModels and ONNX files: real models that do what an ncsn-tf export never does.

One builder module for every test of the safety gate: `tests/test_safety_gate.py` checks
`export_format.safety` with them, and the loaders' tests (the app's backend,
`ExportedSampler`, the exporter's verification) reuse them to assert that each loader
refuses each one identically. Each hostile model aims its reads at `Sentinel.secret`
(a FIFO: opening it for reading is recorded) and its writes into `Sentinel.folder`
(any new or changed file is recorded), so `Sentinel.assert_untouched()` proves a
check read and wrote nothing.

    sentinel = Sentinel(tmp_path / "sentinel")
    folder = savedmodel_case(tmp_path / "m", "WriteFile", "while_body", sentinel)  # an export folder
    with pytest.raises(UnsafeExportError, match="WriteFile"):
        check_savedmodel(folder / "savedmodel")
    sentinel.assert_untouched()

Every SavedModel is written inside an export-like folder (`manifest.json` +
`savedmodel/`), so a loader can be pointed at the folder as at a real export.

The families (`FAMILIES`, each named by the op the gate must name; `FAMILY_KINDS` says
what it does) cover file reads, writes and memory-mapping (also `tf.print` to a file,
`Dataset.cache(path)`, `Dataset.save`, `Dataset.snapshot`), Python callbacks, the
network (a collective op, the tf.data service), a pipeline serialized into a string
constant (`DatasetFromGraph`), and checkpoint ops outside TF's saver;
each can be placed directly in a signature's function or hidden in a `tf.while_loop`
body, a `tf.cond` branch or a nested `tf.function` (`PLACEMENTS`). TF1 SavedModels whose
`saver_def.restore_op_name` names a `Save` or `WriteFile` op are `tf1_savedmodel`; TF2
SavedModels whose saver was edited by hand are `crafted_saver_savedmodel`.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

SECRET_BYTES = b"root:x:0:0:the sentinel secret\n"  # what the FIFO would hand a reader

PLACEMENTS = ("direct", "while_body", "cond_branch", "nested_function")
# How the gate's message says where the op sits (regexes: the attribute and op that call its function).
PLACEMENT_MARKERS = {
    "direct": r"\(f of a StatefulPartitionedCall in function '__inference_signature_wrapper",
    "while_body": r"\(body of a (Stateless)?While in function",
    "cond_branch": r"\(then_branch of a (Stateless)?If in function",
    "nested_function": r"\(f of a (Stateful)?PartitionedCall in function '__inference_(?!signature_wrapper)",
}


class Sentinel:
    """A folder hostile models read from and write to, watched for any access.

    Attributes:
        folder: the watched folder.
        secret: a FIFO in it; a writer thread waits for any reader to open it.
        target: a file path the writing models aim at (it must never appear).
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.secret = self.folder / "secret.fifo"
        os.mkfifo(self.secret)
        self.target = self.folder / "written"
        self._read = threading.Event()
        self._closing = False
        self._listing = self._snapshot()
        self._thread = threading.Thread(target=self._serve, name="sentinel-fifo", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with open(self.secret, "wb") as fifo:  # blocks until something opens the FIFO for reading
            if not self._closing:
                self._read.set()
            try:
                fifo.write(SECRET_BYTES)
            except BrokenPipeError:
                pass

    def _snapshot(self) -> dict[str, tuple[int, int]]:
        return {
            os.path.relpath(os.path.join(root, name), self.folder): (os.lstat(os.path.join(root, name)).st_size,
                                                                     os.lstat(os.path.join(root, name)).st_mtime_ns)
            for root, folders, files in os.walk(self.folder) for name in (*folders, *files)
        }  # fmt: skip

    def arm(self) -> None:
        """Take the folder's listing as the reference (after building: `Dataset.save` writes when traced)."""
        self._listing = self._snapshot()

    def touched(self) -> list[str]:
        """What happened to the folder since it was made or armed (empty when untouched)."""
        events = ["the secret FIFO was opened for reading"] if self._read.is_set() else []
        now = self._snapshot()
        events += [f"{name} appeared" for name in sorted(set(now) - set(self._listing))]
        events += [
            f"{name} changed" for name in sorted(set(now) & set(self._listing)) if now[name] != self._listing[name]
        ]
        return events

    def assert_untouched(self) -> None:
        events = self.touched()
        assert not events, f"the sentinel in {self.folder} was touched: {events}"

    def close(self) -> None:
        """Release the FIFO's writer thread (opening the FIFO ourselves, which is not recorded)."""
        self._closing = True
        if self._thread.is_alive():
            fd = os.open(self.secret, os.O_RDONLY | os.O_NONBLOCK)
            self._thread.join(timeout=5)
            os.close(fd)


# ----------------------------------------------------------------------------- SavedModels (TF2)


def _effects(sentinel: Sentinel) -> dict[str, Callable[[], Any]]:
    """family -> a function returning a float32 scalar whose computation uses the family's op."""
    import tensorflow as tf

    secret, target = str(sentinel.secret), str(sentinel.target)

    def after(op: Any) -> Any:
        with tf.control_dependencies([op] if op is not None else []):  # Dataset.save returns no op in a graph
            return tf.constant(0.0)

    def length(text: Any) -> Any:
        return tf.cast(tf.strings.length(text), tf.float32)

    def summed(dataset: Any) -> Any:
        return dataset.reduce(tf.constant(0.0), lambda total, value: total + tf.reduce_sum(tf.cast(value, tf.float32)))

    def serialized_pipeline() -> bytes:
        """The graph of a tf.data pipeline that reads the secret, as bytes (never run here)."""
        with tf.init_scope():  # eager, also while a tf.function is being traced
            pipeline = tf.data.Dataset.from_tensors(tf.constant(secret)).map(tf.io.read_file)
            return tf.raw_ops.DatasetToGraphV2(input_dataset=tf.data.experimental.to_variant(pipeline)).numpy()

    def from_graph() -> Any:
        variant = tf.raw_ops.DatasetFromGraph(graph_def=tf.constant(serialized_pipeline()))
        dataset = tf.data.experimental.from_variant(variant, tf.TensorSpec([], tf.string))
        return length(dataset.get_single_element())

    def collective() -> Any:
        return tf.reduce_sum(tf.raw_ops.CollectiveReduceV2(
            input=tf.ones([2]), group_size=2, group_key=1, instance_key=1, ordering_token=[], merge_op="Add", final_op="Id",
        ))  # fmt: skip

    def data_service() -> Any:
        distribute = tf.data.experimental.service.distribute("parallel_epochs", "grpc://localhost:1")
        return summed(tf.data.Dataset.from_tensors(1.0).apply(distribute))

    return {
        "ReadFile": lambda: length(tf.io.read_file(secret)),
        "WriteFile": lambda: after(tf.io.write_file(target, "pwned")),
        "MatchingFiles": lambda: tf.cast(tf.size(tf.io.matching_files(str(sentinel.folder / "*"))), tf.float32),
        "TFRecordDataset": lambda: summed(tf.data.TFRecordDataset(secret).map(tf.strings.length)),
        "PrintV2": lambda: after(tf.print("stolen", output_stream=f"file://{target}")),
        "ImmutableConst": lambda: tf.reduce_sum(
            tf.raw_ops.ImmutableConst(dtype=tf.float32, shape=[2], memory_region_name=secret)
        ),
        "CacheDatasetV2": lambda: summed(tf.data.Dataset.from_tensors(1.0).cache(target)),
        # Dataset.save writes its element spec into the folder while being traced (the builder's doing).
        "SaveDataset": lambda: after(tf.data.Dataset.from_tensors(1.0).save(str(sentinel.folder / "saved_dataset"))),
        "SnapshotDatasetV2": lambda: summed(tf.data.Dataset.from_tensors(1.0).snapshot(target)),
        "EagerPyFunc": lambda: tf.reshape(tf.py_function(lambda: 0.0, [], tf.float32), []),
        "PyFunc": lambda: tf.reshape(tf.numpy_function(lambda: __import__("numpy").float32(0.0), [], tf.float32), []),
        "CollectiveReduceV2": collective,
        "DataServiceDatasetV4": data_service,
        "DatasetFromGraph": from_graph,
        "SaveV2": lambda: after(
            tf.raw_ops.SaveV2(prefix=target, tensor_names=["w"], shape_and_slices=[""], tensors=[tf.constant([1.0])])
        ),  # fmt: skip
        "RestoreV2": lambda: tf.reduce_sum(
            tf.raw_ops.RestoreV2(prefix=secret, tensor_names=["w"], shape_and_slices=[""], dtypes=[tf.float32])[0]
        ),  # fmt: skip
        "harmless": lambda: tf.constant(0.0),  # the control: the hiding place alone
    }


# family -> the op the gate must name (the family's key is that op).
FAMILIES = (
    "ReadFile", "WriteFile", "MatchingFiles", "TFRecordDataset", "PrintV2", "ImmutableConst", "CacheDatasetV2",
    "SaveDataset", "SnapshotDatasetV2", "EagerPyFunc", "PyFunc", "CollectiveReduceV2", "DataServiceDatasetV4", "DatasetFromGraph", "SaveV2", "RestoreV2",
)  # fmt: skip
FAMILY_KINDS = {
    "ReadFile": "file read", "WriteFile": "file write", "MatchingFiles": "file listing",
    "TFRecordDataset": "file read (tf.data)", "PrintV2": "file write (tf.print to a file)",
    "ImmutableConst": "file memory-mapping", "CacheDatasetV2": "file write (Dataset.cache)",
    "SaveDataset": "file write (Dataset.save)", "SnapshotDatasetV2": "file write (Dataset.snapshot)",
    "EagerPyFunc": "Python callback (tf.py_function)", "PyFunc": "Python callback (tf.numpy_function)",
    "CollectiveReduceV2": "network (collective op)", "DataServiceDatasetV4": "network (tf.data service)",
    "DatasetFromGraph": "graph serialized in a constant", "SaveV2": "checkpoint write outside the saver",
    "RestoreV2": "checkpoint read outside the saver",
}  # fmt: skip


def _placed(effect: Callable[[], Any], placement: str) -> Callable[[Any], Any]:
    """A signature body `x -> {"images": x + 0 * effect()}` with the effect at `placement`."""
    import tensorflow as tf

    def run(x: Any) -> dict[str, Any]:
        if placement == "direct":
            value = effect()
        elif placement == "while_body":
            _, value = tf.while_loop(lambda i, total: i < 1, lambda i, total: (i + 1, total + effect()), [0, 0.0])
        elif placement == "cond_branch":
            value = tf.cond(x[0] < -1e30, effect, lambda: tf.constant(0.0))
        elif placement == "nested_function":
            value = tf.function(effect, autograph=False)()
        else:
            raise ValueError(f"unknown placement {placement!r}; use one of {PLACEMENTS}")
        return {"images": x + 0.0 * value}

    return run


def write_export_folder(folder: Path, name: str) -> Path:
    """manifest.json beside `folder/savedmodel` (a small but well-formed ncsn-tf manifest)."""
    manifest = {
        "format": "ncsn-tf-export", "format_version": 1, "name": name, "dataset": "toy", "image_shape": [2],
        "channels": 0, "value_range": [-8.0, 8.0], "num_levels": 1, "sigmas": [1.0],
        "sampler": {"steps_per_level": 1, "epsilon": 1e-5, "convention": "code", "denoise": False},
        "endpoints": {}, "files": {"savedmodel": "savedmodel", "onnx": {}},
    }  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder


def _save_module(folder: Path, run: Callable[[Any], Any], name: str) -> Path:
    import tensorflow as tf

    module = tf.Module()
    module.weights = tf.Variable([1.0, 2.0], name="weights")
    module.run = tf.function(lambda x: run(x * module.weights), input_signature=[tf.TensorSpec([2], tf.float32)],
                             autograph=False)  # fmt: skip
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    tf.saved_model.save(module, str(folder / "savedmodel"), signatures={"sample": module.run})
    return write_export_folder(folder, name)


def clean_savedmodel(folder: str | os.PathLike[str]) -> Path:
    """An export folder whose SavedModel does only allowed things (a variable and arithmetic)."""
    return _save_module(Path(folder), lambda x: {"images": x + 1.0}, "clean")


def savedmodel_case(folder: str | os.PathLike[str], family: str, placement: str, sentinel: Sentinel) -> Path:
    """An export folder whose SavedModel uses `family`'s op at `placement` (see FAMILIES, PLACEMENTS)."""
    effects = _effects(sentinel)
    if family not in effects:
        raise ValueError(f"unknown family {family!r}; use one of {FAMILIES}")
    return _save_module(Path(folder), _placed(effects[family], placement), f"{family}-{placement}")


def serialized_graph_constant_savedmodel(
    folder: str | os.PathLike[str], sentinel: Sentinel, split: bool = False
) -> Path:
    """Only allowed ops, but a signature returns a string constant holding a serialized pipeline graph.

    With `split`, the graph is cut in two constants that `Pack` stacks (neither half parses; Pack is
    an allowed op, but not on strings).
    """
    import tensorflow as tf

    pipeline = tf.data.Dataset.from_tensors(tf.constant(str(sentinel.secret))).map(tf.io.read_file)
    data = tf.raw_ops.DatasetToGraphV2(input_dataset=tf.data.experimental.to_variant(pipeline)).numpy()
    half = len(data) // 2

    def run() -> dict[str, Any]:
        if split:
            return {
                "manifest": tf.raw_ops.Pack(values=[tf.constant(data[:half]), tf.constant(data[half:])], name="pack")
            }
        return {"manifest": tf.constant(data)}

    module = tf.Module()
    module.run = tf.function(run, input_signature=[], autograph=False)
    folder = Path(folder)
    tf.saved_model.save(module, str(folder / "savedmodel"), signatures={"manifest": module.run})
    return write_export_folder(folder, "split-graph-constant" if split else "graph-constant")


def dataset_from_graph_bypass(folder: str | os.PathLike[str], secret_path: str | os.PathLike[str]) -> Path:
    """The reported bypass: a SavedModel whose `sample` returns the bytes of `secret_path` as pixels.

    The pipeline (`from_tensors(path).map(read_file)`) is serialized into a string
    constant and revived by `DatasetFromGraph`, so an op scan of the model's own
    graph sees no file op. `sample(x [2])` returns `{"images": uint8 bytes as float32 [N]}`.
    """
    import tensorflow as tf

    pipeline = tf.data.Dataset.from_tensors(tf.constant(os.fspath(secret_path))).map(tf.io.read_file)
    data = tf.raw_ops.DatasetToGraphV2(input_dataset=tf.data.experimental.to_variant(pipeline)).numpy()

    def run(x: Any) -> dict[str, Any]:
        # Chosen by the input, so grappler does not constant-fold DatasetFromGraph (that fold fails).
        graph_def = tf.where(tf.math.is_finite(x[0]), tf.constant(data), tf.constant(b""))
        variant = tf.raw_ops.DatasetFromGraph(graph_def=graph_def)
        contents = tf.data.experimental.from_variant(variant, tf.TensorSpec([], tf.string)).get_single_element()
        return {"images": tf.cast(tf.io.decode_raw(contents, tf.uint8), tf.float32) + 0.0 * tf.reduce_sum(x)}

    module = tf.Module()
    module.run = tf.function(run, input_signature=[tf.TensorSpec([2], tf.float32)], autograph=False)
    folder = Path(folder)
    tf.saved_model.save(module, str(folder / "savedmodel"), signatures={"sample": module.run})
    return write_export_folder(folder, "dataset-from-graph")


def dataset_cache_bypass(folder: str | os.PathLike[str], cache_path: str | os.PathLike[str]) -> Path:
    """The reported bypass: `sample` writes a tf.data cache at `cache_path` (files `cache_path.index`, ...)."""
    import tensorflow as tf

    def run(x: Any) -> dict[str, Any]:
        dataset = tf.data.Dataset.from_tensors(x).cache(os.fspath(cache_path))
        return {"images": dataset.reduce(tf.zeros([2]), lambda total, value: total + value)}

    module = tf.Module()
    module.run = tf.function(run, input_signature=[tf.TensorSpec([2], tf.float32)], autograph=False)
    folder = Path(folder)
    tf.saved_model.save(module, str(folder / "savedmodel"), signatures={"sample": module.run})
    return write_export_folder(folder, "dataset-cache")


# ----------------------------------------------------------------------------- SavedModels (TF1)


def tf1_savedmodel(
    folder: str | os.PathLike[str], restore: str, placement: str, target: str | os.PathLike[str]
) -> Path:
    """A TF1 SavedModel (tf.compat.v1 builder) whose saver_def.restore_op_name names a hostile op.

    TensorFlow's loaders run the restore op while they load (tf.saved_model.load through
    load_v1_in_v2, TF Serving), so opening the model does what the op does.

    Args:
        folder: the export folder to write (manifest.json + savedmodel/).
        restore: "Save" (a TF1 checkpoint `Save` op writing `target`) or "WriteFile"
            (writes "pwned" into `target`).
        placement: where the op sits: "direct" (the restore op itself) or, for WriteFile,
            hidden in a function the restore op calls ("while_body", "cond_branch", "nested_function").
        target: the file the op writes.
    """
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    if (
        restore not in ("Save", "WriteFile")
        or placement not in PLACEMENTS
        or (restore == "Save" and placement != "direct")
    ):
        raise ValueError(f"unsupported TF1 case {restore!r} at {placement!r}")
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    savedmodel = folder / "savedmodel"
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [2], name="x")
        images = tf.identity(x * 2.0, name="images")
        filename = tf.compat.v1.placeholder(tf.string, [], name="saver_filename")
        if restore == "Save":
            hostile = tf.raw_ops.Save(filename=str(target), tensor_names=["stolen"], data=[tf.constant(SECRET_BYTES)])
        else:
            effect = lambda: _after_write(str(target))  # noqa: E731
            hostile = tf.function(_placed(effect, placement), autograph=False)(tf.zeros([2]))["images"].op
        with tf.compat.v1.Session(graph=graph) as session:
            builder = tf.compat.v1.saved_model.Builder(str(savedmodel))
            signature = tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"images": images})
            builder.add_meta_graph_and_variables(session, ["serve"], signature_def_map={"sample": signature})
            builder.save()
    proto = saved_model_pb2.SavedModel.FromString((savedmodel / "saved_model.pb").read_bytes())
    saver = proto.meta_graphs[0].saver_def
    saver.filename_tensor_name = filename.name
    saver.restore_op_name = hostile.name
    saver.save_tensor_name = filename.name
    (savedmodel / "saved_model.pb").write_bytes(proto.SerializeToString())
    return write_export_folder(folder, f"tf1-{restore}-{placement}")


def _after_write(target: str) -> Any:
    import tensorflow as tf

    with tf.control_dependencies([tf.io.write_file(target, "pwned")]):
        return tf.constant(0.0)


# ----------------------------------------------------------------------------- TF2 SavedModels edited by hand

CRAFTED_SAVERS = (
    "restore_reads_a_constant_path",  # RestoreV2 in TF's restore function reads a fixed file
    "save_writes_outside",  # SaveV2 in TF's save function writes to file_prefix + "/../../evil"
    "init_op_runs_restore",  # the init op depends on the saver's restore node
    "signature_returns_restore",  # a signature output is the saver's restore node
    "function_calls_restore",  # a signature's function calls TF's restore function
    "restore_in_an_unused_function",  # a copy of the restore function under another name
    "restore_op_is_write_file",  # saver_def.restore_op_name names a WriteFile node of the main graph
    "no_object_graph",  # the object graph removed: a TF1-style model that load_v1_in_v2 runs
    "saveable_object",  # an object with its own save/restore functions (run while loading)
)


def crafted_saver_savedmodel(folder: str | os.PathLike[str], case: str, target: str | os.PathLike[str]) -> Path:
    """A clean TF2 SavedModel whose saver (or object graph) was then edited by hand, per `CRAFTED_SAVERS`.

    Returns:
        The export folder.
    """
    from tensorflow.core.framework import node_def_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    if case not in CRAFTED_SAVERS:
        raise ValueError(f"unknown case {case!r}; use one of {CRAFTED_SAVERS}")
    folder = clean_savedmodel(folder)
    path = folder / "savedmodel" / "saved_model.pb"
    proto = saved_model_pb2.SavedModel.FromString(path.read_bytes())
    meta = proto.meta_graphs[0]
    graph = meta.graph_def
    functions = {function.signature.name: function for function in graph.library.function}
    main = {node.name: node for node in graph.node}
    restore_node = main[meta.saver_def.restore_op_name]
    restore = functions[restore_node.attr["f"].func.name]
    save = functions[main[meta.saver_def.save_tensor_name.split(":")[0]].attr["f"].func.name]

    def string_const(name: str, value: bytes) -> Any:
        node = node_def_pb2.NodeDef(name=name, op="Const")
        node.attr["dtype"].type = 7  # DT_STRING
        tensor = node.attr["value"].tensor
        tensor.dtype = 7
        tensor.string_val.append(value)
        return node

    if case == "restore_reads_a_constant_path":
        restore.node_def.append(string_const("evil_path", os.fsencode(target)))
        next(node for node in restore.node_def if node.op == "RestoreV2").input[0] = "evil_path:output:0"
    elif case == "save_writes_outside":
        save.node_def.append(string_const("evil_suffix", b"/../../evil"))
        join = next(node for node in save.node_def if node.op == "StringJoin")
        join.input.append("evil_suffix:output:0")
        join.attr["N"].i = len([name for name in join.input if not name.startswith("^")])
    elif case == "init_op_runs_restore":
        init = meta.signature_def["__saved_model_init_op"].outputs["__saved_model_init_op"].name.split(":")[0]
        main[init].input.append(f"^{restore_node.name}")
    elif case == "signature_returns_restore":
        meta.signature_def["sample"].outputs["images"].name = f"{restore_node.name}:0"
    elif case == "function_calls_restore":
        body = next(f for name, f in functions.items() if name.startswith("__inference_<lambda>"))
        call = body.node_def.add(name="evil_restore", op="StatefulPartitionedCall")
        call.input.append(body.signature.input_arg[0].name)
        call.attr["f"].func.name = restore.signature.name
        call.attr["Tin"].list.type.append(7)
        call.attr["Tout"].list.type.append(7)
    elif case == "restore_in_an_unused_function":
        copy = graph.library.function.add()
        copy.CopyFrom(restore)
        copy.signature.name = "__inference_helper_1"
    elif case == "restore_op_is_write_file":
        graph.node.append(string_const("evil_target", os.fsencode(target)))
        graph.node.add(name="evil_write", op="WriteFile").input.extend(["evil_target", "saver_filename"])
        meta.saver_def.restore_op_name = "evil_write"
    elif case == "no_object_graph":
        meta.ClearField("object_graph_def")
    elif case == "saveable_object":
        root = meta.object_graph_def.nodes[0]
        saveable = root.saveable_objects["evil"]
        saveable.save_function = 1
        saveable.restore_function = 1
    path.write_bytes(proto.SerializeToString())
    return folder


# ----------------------------------------------------------------------------- ONNX files


def onnx_add_model(
    *, external_location: str | None = None, domain: str = "", in_loop: bool = False, op_type: str = "Add"
) -> Any:
    """`y = x + w` (w [4] float32 an initializer), optionally with a hostile twist.

    Args:
        external_location: store `w` as external data at this location (not written here).
        domain: the domain of the Add node (a custom domain is what the gate refuses).
        in_loop: put the node (and `w`) inside a one-iteration Loop body instead of the main graph.
        op_type: the node's operator ("Add"; e.g. "Einsum"-like ops ncsn-tf never exports).
    """
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.arange(4, dtype=np.float32), name="w")
    if external_location is not None:
        weights.ClearField("raw_data")
        weights.data_location = TensorProto.EXTERNAL
        for key, value in (("location", external_location), ("offset", "0"), ("length", "16")):
            entry = weights.external_data.add()
            entry.key, entry.value = key, value
    node = helper.make_node(op_type, ["x", "w"], ["y"], domain=domain)
    opsets = [helper.make_opsetid("", 18)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    vector = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [4]) for name in ("x", "y")]
    if not in_loop:
        graph = helper.make_graph([node], "add", vector[:1], vector[1:], initializer=[weights])
        return helper.make_model(graph, opset_imports=opsets, ir_version=9)
    body = helper.make_graph(
        [node, helper.make_node("Identity", ["keep"], ["keep_out"])],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("keep", TensorProto.BOOL, []),
        ],
        [helper.make_tensor_value_info("keep_out", TensorProto.BOOL, []), vector[1]],
        initializer=[weights],
    )
    loop = helper.make_node("Loop", ["trips", "go"], ["ys"], body=body)
    constants = [
        numpy_helper.from_array(np.array(1, np.int64), name="trips"),
        numpy_helper.from_array(np.array(True), name="go"),
    ]
    graph = helper.make_graph(
        [loop],
        "loop",
        vector[:1],
        [helper.make_tensor_value_info("ys", TensorProto.FLOAT, [1, 4])],
        initializer=constants,
    )
    return helper.make_model(graph, opset_imports=opsets, ir_version=9)


def onnx_local_function_model() -> Any:
    """A model that calls a model-local function whose body uses a custom-domain operator."""
    from onnx import TensorProto, helper

    inner = helper.make_node("Evil", ["a"], ["b"], domain="com.example.evil")
    function = helper.make_function(
        "com.example.local", "Wrapped", ["a"], ["b"], [inner],
        [helper.make_opsetid("", 18), helper.make_opsetid("com.example.evil", 1)],
    )  # fmt: skip
    call = helper.make_node("Wrapped", ["x"], ["y"], domain="com.example.local")
    graph = helper.make_graph(
        [call], "calls", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
    )  # fmt: skip
    return helper.make_model(
        graph, functions=[function], ir_version=9,
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.example.local", 1)],
    )  # fmt: skip
