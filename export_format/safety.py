"""The one safety gate for untrusted model files: allowlists, checked before anything loads them.

A model file is a program and people share them. An ncsn-tf export needs
arithmetic, control flow, its own weights and its manifest; it never needs
files, processes, Python, the network, custom operator libraries or data from
outside its folder. TensorFlow's loaders run code while they load (a TF1
SavedModel's restore op and init op; a TF2 one's resource-creation and
saveable-object functions), so this gate only parses protobufs and decides
before any loader sees the files. Every loader calls it: the desktop app, the
`ExportedSampler` runners, the exporter's verification and evaluation. It
judges the files as they are when it runs: a loader should not let anyone
else write the folder between the check and the load.

It is an allowlist: a denylist of "dangerous" ops was bypassed three ways (a
`Dataset.cache(path)` that wrote files, a `DatasetFromGraph` whose pipeline sat
in a string constant and read a system file, a TF1 `saver_def.restore_op_name`
naming a `Save` op that ran while the app opened the model). The allowlists
below are exactly the ops, object kinds and layouts that real exports use;
`tests/test_safety_gate.py` rebuilds real exports of every kind and fails when
they and the lists differ in either direction, so a new op the exporter starts
emitting is added here only after someone has reviewed it.

SavedModel rules (`check_savedmodel`):

- Files: `saved_model.pb` only (a `saved_model.pbtxt` or `.cpb` beside it is
  what some loaders read instead), regular files and folders only (a FIFO
  hangs a loader), no symlink that resolves outside the SavedModel folder
  (`variables/` or `assets/` pointing at other files), a size bound.
- Exactly one meta graph, tagged `serve`, with a TF2 object graph (a SavedModel
  without one, or with other tags, collections or meta graphs, is TF1-style:
  `tf.saved_model.load` runs its restore op and init op as it loads).
- Every op of the main graph and of EVERY function in the library (reachable
  or not: while/cond bodies, functions named in any attribute, including
  nested `func` attributes and lists) is in `SAVEDMODEL_OP_ALLOWLIST`. No
  function reference names anything but a library function (TensorFlow would
  instantiate a primitive op of that name), and no node calls a library
  function by using its name as the op (our graphs call through
  `PartitionedCall`).
- Checkpoint I/O (`RestoreV2`, `SaveV2`, `MergeV2Checkpoints` and the string
  ops that build their file names) is allowed ONLY where TF2's own saver puts
  it. `tf.saved_model.save` (TF 2.21, also under Keras 3.15's `ExportArchive`)
  writes a `saver_def` for TF1-compatible loaders: `filename_tensor_name` =
  `saver_filename:0` (a string `Placeholder` of the main graph),
  `save_tensor_name` and `restore_op_name` = two main-graph
  `StatefulPartitionedCall` nodes whose first input is that placeholder and
  whose `f` are `__inference__traced_save_N` and `__inference__traced_restore_N`.
  The restore function is `RestoreV2(file_prefix, Const names, Const slices)`
  -> `Identity` -> `AssignVariableOp`; the save function reads the variables and
  writes `SaveV2` to `ShardedFilename(StringJoin(file_prefix, Select(
  StaticRegexFullMatch(file_prefix, "^s3://.*"), ".part", "_temp/part")))`
  then `MergeV2Checkpoints` into `file_prefix`. TensorFlow's Python loader
  restores variables itself and never runs these; TF1-compatible and C++
  loaders run the restore node with `file_prefix` = `variables/variables` of
  the SavedModel. So the gate accepts a `saver_def` of exactly that shape (or
  none, and then no checkpoint op anywhere) and nothing else, gives those two
  functions `RESTORE_FUNCTION_OPS` / `SAVE_FUNCTION_OPS` (no other function
  may hold a checkpoint op), evaluates every path operand of their checkpoint
  ops symbolically (each must be `file_prefix` or TF's own shard names under
  it: no constant path, no `..`), and requires that nothing else can reach
  them: no node consumes the
  two saver nodes, no other node or function refers to the two functions, no
  signature, init op, collection, asset or object-graph function names them.
- String constants (`Const` values, tensors in any attribute, signature
  defaults) and string attributes that parse as a `GraphDef` or `FunctionDef`
  with well-formed nodes are refused: that is how a pipeline hides from an op
  scan (`DatasetFromGraph`). This is a second line: the first is that no
  allowed op interprets a string as a graph or a path. No allowed op joins
  bytes either, so a graph cannot be assembled from pieces, and only
  `SAVEDMODEL_STRING_OPS` (storage and pass-through) may handle strings at
  all, so an op allowed later for numbers cannot be turned on strings. String
  variables live in `variables/` and are not scanned; no allowed op could use
  them. Constants of dtype variant or resource (a serialized dataset, a
  handle) are refused.
- Devices are local (`/device:CPU:0`, `/job:localhost/...`), no `/job:worker`;
  a `config_proto` attribute may not describe a cluster.
- Object graph: object kinds, user-object types (TF revives them with
  registered Python code) and assets are allowlisted; no registered savers or
  saveable objects (their functions run while a TF2 model loads); every
  function it names is in the library. The only asset is `manifest.json`,
  inside `assets/`.
- Considered and harmless: `_input_shapes`/`_output_shapes` (shapes only),
  placeholders (signature inputs; `PlaceholderWithDefault` is not allowed),
  `ImmutableConst` memory-mapping (not allowed). Weights are read by TF's
  own restore from `variables/`, confined by the file rules.

ONNX rules (`check_onnx_model`): every node of the graph, of every subgraph
(`Loop` bodies, `If` branches) and of model-local functions is in
`ONNX_OP_ALLOWLIST` as (domain, op_type); opset imports of other domains
(custom operator libraries, which onnxruntime would need native code for) are
refused; every tensor stored as external data names a file inside the model's
folder (no absolute path, no `..`, no symlink out).

References:
    tensorflow/python/saved_model/{save.py, load.py, load_v1_in_v2.py},
    tensorflow/python/checkpoint/functional_saver.py (the saver functions);
    tensorflow/python/tools/saved_model_cli.py (`scan`, the denylist idea);
    ONNX IR spec, "External Tensor Data"; docs/export.md, "Safety gate".
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from export_format.errors import ExportFormatError, UnsafeExportError

if TYPE_CHECKING:
    import onnx

# ----------------------------------------------------------------------------- allowlists

# Every op an ncsn-tf SavedModel uses outside TF's saver functions: the main graph and every
# function of the library (samplers, Philox noise, the score networks, Keras' variables).
# Derived from real exports by tests/test_safety_gate.py; add an op only after reviewing it.
SAVEDMODEL_OP_ALLOWLIST: frozenset[str] = frozenset(
    {
        "AddV2",
        "AssignVariableOp",  # in-process variable state (the asset-path variable at init); no I/O
        "AvgPool",
        "BatchToSpaceND",
        "BiasAdd",
        "BitwiseAnd",
        "BitwiseXor",
        "Cast",
        "Const",  # string values are checked for serialized graphs
        "Conv2D",
        "Cos",
        "Einsum",
        "Elu",
        "Equal",
        "Exp",
        "Fill",
        "FloorDiv",
        "GatherV2",
        "GreaterEqual",
        "Identity",
        "IsFinite",
        "Less",
        "Log",
        "LogicalAnd",
        "MatMul",
        "Max",
        "Maximum",
        "Mean",
        "Minimum",
        "Mul",
        "NoOp",  # control grouping (the init op)
        "Pack",
        "Pad",
        "PartitionedCall",  # calls a library function (`f`), which is checked like every function
        "Placeholder",  # signature inputs and the saver's file name
        "Range",
        "ReadVariableOp",  # in-process variable state; no I/O
        "RealDiv",
        "Reshape",
        "RightShift",
        "Rsqrt",
        "SelectV2",
        "Shape",
        "Sin",
        "Softplus",
        "SpaceToBatchND",
        "Split",
        "Sqrt",
        "Square",
        "Squeeze",
        "StatefulPartitionedCall",  # calls a library function (`f`), checked like every function
        "StatelessWhile",  # the sampler loop; `cond`/`body` are library functions, checked
        "StopGradient",
        "StridedSlice",
        "Sub",
        "Sum",
        "VarHandleOp",  # creates an in-process variable handle (shared_name only within the process)
        "VarIsInitializedOp",  # in-process variable state; no I/O
        "While",  # the sampler loop with variable reads; `cond`/`body` are checked
        "ZerosLike",
    }
)

# The only ops that may carry strings (the manifest constant, the saver's file name, the asset path):
# they store or pass strings whole. Any other allowed op on strings (Pack, GatherV2, SelectV2, ...
# accept them) is refused: exports compute only on numbers.
SAVEDMODEL_STRING_OPS: frozenset[str] = frozenset(
    {
        "AssignVariableOp",
        "Const",
        "Identity",
        "PartitionedCall",
        "Placeholder",
        "ReadVariableOp",
        "StatefulPartitionedCall",
        "VarHandleOp",
    }
)

# TF2's restore function (`__inference__traced_restore_N`): RestoreV2 from its `file_prefix`.
RESTORE_FUNCTION_OPS: frozenset[str] = frozenset(
    {
        "AssignVariableOp",
        "Const",
        "Identity",
        "NoOp",
        "RestoreV2",  # reads the checkpoint at `file_prefix` (checked: the path is the argument, nothing else)
    }
)
# TF2's save function (`__inference__traced_save_N`): SaveV2 to TF's shard names, merged into `file_prefix`.
SAVE_FUNCTION_OPS: frozenset[str] = frozenset(
    {
        "Const",
        "DisableCopyOnRead",
        "Identity",
        "MergeV2Checkpoints",  # writes `file_prefix`, deletes the temporary shard folder (paths checked)
        "NoOp",
        "Pack",
        "ReadVariableOp",
        "SaveV2",  # writes a shard under `file_prefix` (path checked)
        "Select",
        "ShardedFilename",  # string op: builds the shard name
        "StaticRegexFullMatch",  # string op: the "^s3://.*" test for the shard suffix
        "StringJoin",  # string op: `file_prefix` + suffix
    }
)
SAVER_OP_ALLOWLIST: frozenset[str] = RESTORE_FUNCTION_OPS | SAVE_FUNCTION_OPS
# Ops that touch checkpoint files: refused anywhere but in the two saver functions.
CHECKPOINT_OPS: frozenset[str] = frozenset({"MergeV2Checkpoints", "RestoreV2", "SaveV2"})
# For messages only: TF1's checkpoint ops as well (none of them is allowed anywhere).
_CHECKPOINT_LIKE_OPS = CHECKPOINT_OPS | {"Restore", "RestoreSlice", "Save", "SaveSlices"}

# Every (domain, op_type) an ncsn-tf ONNX file uses ("" = the default ai.onnx domain).
# Derived from real exports by tests/test_safety_gate.py (toy mixture and toy MLP optimized, digits not;
# the optimized digits export, the CLI default, was checked by hand to use a subset: too slow for the suite).
ONNX_OP_ALLOWLIST: frozenset[tuple[str, str]] = frozenset(
    {
        ("", "Add"),
        ("", "And"),
        ("", "AveragePool"),
        ("", "BitShift"),
        ("", "BitwiseAnd"),
        ("", "BitwiseXor"),
        ("", "Cast"),
        ("", "Concat"),
        ("", "Constant"),
        ("", "ConstantOfShape"),
        ("", "Conv"),
        ("", "Cos"),
        ("", "Div"),
        ("", "Einsum"),
        ("", "Elu"),
        ("", "Equal"),
        ("", "Exp"),
        ("", "Expand"),
        ("", "Gather"),
        ("", "GreaterOrEqual"),
        ("", "Identity"),
        ("", "IsInf"),
        ("", "IsNaN"),
        ("", "Less"),
        ("", "Log"),
        ("", "Loop"),  # the sampler loop; its body graph is checked like the main graph
        ("", "MatMul"),
        ("", "Max"),
        ("", "Min"),
        ("", "Mul"),
        ("", "Not"),
        ("", "Or"),
        ("", "Pad"),
        ("", "Reciprocal"),
        ("", "ReduceMax"),
        ("", "ReduceMean"),
        ("", "ReduceSum"),
        ("", "Reshape"),
        ("", "Shape"),
        ("", "Sin"),
        ("", "Slice"),
        ("", "Softplus"),
        ("", "Split"),
        ("", "Sqrt"),
        ("", "Squeeze"),
        ("", "Sub"),
        ("", "Transpose"),
        ("", "Unsqueeze"),
    }
)
# Opset imports a file may declare: tf2onnx always declares ai.onnx.ml (no op of it is allowed).
ONNX_OPSET_DOMAINS: frozenset[str] = frozenset({"", "ai.onnx", "ai.onnx.ml"})

# What else a real export's SavedModel holds (derived from real exports as well).
SAVEDMODEL_TAGS = ("serve",)
SAVEDMODEL_COLLECTIONS: frozenset[str] = frozenset({"saved_model_main_op"})  # names the init op
SAVEDMODEL_OBJECT_KINDS: frozenset[str] = frozenset(
    {"asset", "bare_concrete_function", "function", "user_object", "variable"}
)
# User objects are revived by TensorFlow's registered Python types of these names.
SAVEDMODEL_USER_OBJECTS: frozenset[str] = frozenset({"_generic_user_object", "signature_map", "trackable_list_wrapper"})
SAVEDMODEL_ASSETS: frozenset[str] = frozenset({"manifest.json"})  # the manifest copy; the graph never reads it
MAX_SAVEDMODEL_BYTES = 1 << 30  # saved_model.pb; real exports' graphs are a few MB (weights live in variables/)

_ADVICE = "only open exports written by ncsn-tf's exporter (python -m export), or re-export the model yourself"
# Local devices only: "", "/device:CPU:0", "/device:GPU:*", "/job:localhost/replica:0/task:0/device:CPU:0", "/cpu:0".
_LOCAL_DEVICE = re.compile(r"(/job:localhost(/replica:0)?(/task:0)?)?(/(device:)?(CPU|GPU|cpu|gpu):(\d+|\*))?")
# What TensorFlow accepts as node names (strict), and as op or function names (no spaces or control
# characters: tf.function names hold "<lambda>" or "Dataset_snapshot()_reader_func"). A serialized
# graph has only such nodes.
_NODE_NAME = re.compile(r"[A-Za-z0-9.][A-Za-z0-9_.\-/>]*")
_OP_NAME = re.compile(r"[^\s\x00-\x1f\x7f]+")
# Symbolic values of the saver functions' path operands.
_PREFIX, _SHARD = "\0file_prefix\0", "\0shard\0"
_MAIN = ""  # the main graph, where function names are used to say where a node sits
_PLAIN_ATTRS = frozenset({None, "b", "f", "i", "placeholder", "shape", "type"})  # hold no function, tensor or string
_MAX_LISTED = 12  # refused ops named in one message
_MAX_CHAIN = 6  # calls shown when a message says where a function is called from
_STRING_TYPES = frozenset({7, 107})  # DT_STRING, DT_STRING_REF (types.proto)
_HANDLE_TYPES = frozenset({20, 21, 120, 121})  # DT_RESOURCE, DT_VARIANT and their _REF types
_SAVER_PATHS = frozenset({_PREFIX, _PREFIX + ".part" + _SHARD, _PREFIX + "_temp/part" + _SHARD})


def _refuse(path: str | os.PathLike[str], problem: str) -> UnsafeExportError:
    return UnsafeExportError(f"refusing {os.fspath(path)}: {problem}; {_ADVICE}")


# ----------------------------------------------------------------------------- paths


def _inside(real: str, real_root: str) -> bool:
    return real == real_root or real.startswith(real_root.rstrip(os.sep) + os.sep)


def _confine(root: Path, relative: object, what: str, outside: str) -> Path:
    """root/relative after refusing absolute paths, '..' and symlinks (at any component) that leave root."""
    if not isinstance(relative, str) or not relative.strip():
        raise ExportFormatError(f"{what} in {root} must be a non-empty relative path, got {relative!r}")
    if "\0" in relative:
        raise _refuse(root, f"{what} = {relative!r} contains a NUL byte")
    if relative.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", relative) or os.path.isabs(relative):
        raise _refuse(root, f"{what} = {relative!r} is an absolute path {outside}")
    if "\\" in relative:
        raise _refuse(root, f"{what} = {relative!r} uses backslashes; paths in an export use '/'")
    parts = [part for part in PurePosixPath(relative).parts if part != "."]
    if ".." in parts:
        raise _refuse(root, f"{what} = {relative!r} climbs out with '..' {outside}")
    if not parts:
        raise ExportFormatError(f"{what} in {root} must name a file or folder inside it, got {relative!r}")
    real_root = os.path.realpath(root)
    current = root
    for part in parts:  # every component: a symlinked folder leads out as surely as a symlinked file
        current = current / part
        real = os.path.realpath(current)
        if not _inside(real, real_root):
            raise _refuse(root, f"{what} = {relative!r} resolves through a symlink to {real}, {outside}")
    return root.joinpath(*parts)


def confined_path(export_dir: str | os.PathLike[str], relative: str, what: str) -> Path:
    """`export_dir/relative`, refusing any path that can leave the export folder.

    Args:
        export_dir: the export folder.
        relative: a path from the manifest, '/'-separated and relative to `export_dir`.
        what: the manifest key it came from (e.g. "files.onnx.sample"), named in errors.

    Returns:
        The path (not resolved; it need not exist).

    Raises:
        UnsafeExportError: `relative` is absolute, contains '..', a NUL byte or backslashes,
            or a component of it (file or folder) is a symlink that resolves outside `export_dir`.
        ExportFormatError: `relative` is not a non-empty string naming something inside.
    """
    return _confine(Path(export_dir), relative, what, "outside the export folder")


# ----------------------------------------------------------------------------- SavedModel


def _check_savedmodel_files(folder: Path) -> None:
    """Only regular files and folders, no symlink out, no second graph file that a loader might read."""
    for name in ("saved_model.pbtxt", "saved_model.cpb"):
        if os.path.lexists(folder / name):
            raise _refuse(folder, f"it holds {name} next to saved_model.pb (some loaders read that one instead)")
    real_root = os.path.realpath(folder)
    for current, folders, files in os.walk(folder):
        for name in (*folders, *files):
            path = os.path.join(current, name)
            real = os.path.realpath(path)
            if os.path.islink(path) and not _inside(real, real_root):
                raise _refuse(folder, f"{os.path.relpath(path, folder)} is a symlink to {real}, outside the SavedModel")
            try:
                mode = os.stat(path).st_mode
            except OSError:  # a dangling symlink inside the folder: nothing to read
                continue
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise _refuse(folder, f"{os.path.relpath(path, folder)} is not a regular file (a FIFO or device)")


def _read_savedmodel(folder: Path) -> Any:
    """The parsed `SavedModel` proto of `folder/saved_model.pb`."""
    path = folder / "saved_model.pb"
    if not folder.is_dir():
        raise ExportFormatError(f"{folder} is not a folder; choose the savedmodel/ folder of an export")
    if not path.is_file():
        raise ExportFormatError(f"{folder} holds no saved_model.pb; choose the savedmodel/ folder of an export")
    _check_savedmodel_files(folder)
    size = path.stat().st_size
    if size > MAX_SAVEDMODEL_BYTES:
        raise ExportFormatError(
            f"{path} is {size:,} bytes, more than the {MAX_SAVEDMODEL_BYTES:,} an export's graph can be"
        )
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    try:
        return saved_model_pb2.SavedModel.FromString(path.read_bytes())
    except (DecodeError, RuntimeError, OSError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ExportFormatError(f"cannot read {path} ({reason}); the SavedModel is corrupt, re-export it") from None


def _attr_items(value: Any) -> Iterator[tuple[str, Any]]:
    """("func", name), ("tensor", TensorProto) and ("string", bytes) items of an AttrValue, nested ones too."""
    kind = value.WhichOneof("value")
    if kind == "func":
        yield from _func_items(value.func)
    elif kind == "tensor":
        yield "tensor", value.tensor
    elif kind == "s":
        yield "string", value.s
    elif kind == "list":
        for func in value.list.func:
            yield from _func_items(func)
        for tensor in value.list.tensor:
            yield "tensor", tensor
        for text in value.list.s:
            yield "string", text


def _func_items(func: Any) -> Iterator[tuple[str, Any]]:
    yield "func", func.name
    for value in func.attr.values():  # a NameAttrList's own attributes can name functions too
        yield from _attr_items(value)


def _handles_strings(node: Any) -> bool:
    """Whether a NodeDef's type attributes (T, dtype, Tin, ...) include a string type."""
    for value in node.attr.values():
        kind = value.WhichOneof("value")
        if (kind == "type" and value.type in _STRING_TYPES) or (
            kind == "list" and _STRING_TYPES & set(value.list.type)
        ):
            return True
    return False


def _well_formed_nodes(nodes: Any) -> bool:
    return len(nodes) > 0 and all(_NODE_NAME.fullmatch(node.name) and _OP_NAME.fullmatch(node.op) for node in nodes)


def _serialized_graph(data: bytes) -> str | None:
    """'GraphDef' / 'FunctionDef' when `data` parses as one with well-formed nodes (what an op could run), else None."""
    if len(data) < 4 or b"\x12" not in data:  # a node's op (NodeDef field 2) is tagged 0x12: no op, no graph
        return None
    from google.protobuf.message import DecodeError
    from tensorflow.core.framework import function_pb2, graph_pb2

    try:
        graph = graph_pb2.GraphDef.FromString(data)
    except (DecodeError, RuntimeError):
        graph = None
    if graph is not None and (
        _well_formed_nodes(graph.node)
        or any(_OP_NAME.fullmatch(f.signature.name) and _well_formed_nodes(f.node_def) for f in graph.library.function)
    ):
        return "GraphDef"
    try:
        function = function_pb2.FunctionDef.FromString(data)
    except (DecodeError, RuntimeError):
        return None
    if _OP_NAME.fullmatch(function.signature.name) and _well_formed_nodes(function.node_def):
        return "FunctionDef"
    return None


def _tensor_problem(tensor: Any) -> str | None:
    """What is wrong with a TensorProto found in a graph (None when nothing is)."""
    if tensor.dtype in _HANDLE_TYPES or tensor.variant_val or tensor.resource_handle_val:
        return "is a constant of dtype variant/resource (it can carry a serialized dataset)"
    for value in tensor.string_val:
        kind = _serialized_graph(value)
        if kind:
            return f"is a string constant holding a serialized {kind} ({len(value):,} bytes)"
    return None


def _string_problem(value: bytes) -> str | None:
    kind = _serialized_graph(value)
    return f"holds a serialized {kind} ({len(value):,} bytes)" if kind else None


class _SavedModelScan:
    """The checks of one parsed SavedModel; each raises UnsafeExportError on the first broken rule."""

    def __init__(self, saved_model: Any, folder: Path) -> None:
        self.folder = folder
        self.saved_model = saved_model
        self.meta_graph = saved_model.meta_graphs[0]
        self.graph = self.meta_graph.graph_def
        self.functions = {function.signature.name: function for function in self.graph.library.function}
        self.main_nodes = {node.name: node for node in self.graph.node}
        # One pass over every attribute of every node: (where, node, attribute key, kind, item).
        self.items: list[tuple[str, Any, str, str, Any]] = []
        for where, nodes in self._node_lists():
            for node in nodes:
                for key, value in node.attr.items():
                    if value.WhichOneof("value") in _PLAIN_ATTRS:
                        continue
                    for kind, item in _attr_items(value):
                        self.items.append((where, node, key, kind, item))
        # The first place each function is referred to from: (where, op, attribute key, node name).
        self.referrers: dict[str, tuple[str, str, str, str]] = {}
        for where, node, key, kind, item in self.items:
            if kind == "func":
                self.referrers.setdefault(item, (where, node.op, key, node.name))
        self.save_function, self.restore_function = self._saver_functions()
        saver = self.meta_graph.saver_def
        self.roles = {  # main-graph nodes that loaders run by name
            saver.restore_op_name.split(":")[0]: "the saver_def's restore op, which loaders run on load",
            saver.save_tensor_name.split(":")[0]: "the saver_def's save op",
        }
        self.roles.pop("", None)

    # -- locations

    def _node_lists(self) -> Iterator[tuple[str, Any]]:
        yield _MAIN, self.graph.node
        for function in self.graph.library.function:  # every definition, also a second one of a name
            yield function.signature.name, function.node_def

    def _where(self, where: str, seen: frozenset[str] = frozenset()) -> str:
        """Where a node sits, with the chain of calls to it: "function 'b' (body of a While in function 'a' (...))"."""
        if where == _MAIN:
            return "the main graph"
        text = f"function {where!r}"
        if where in self.referrers and where not in seen and len(seen) < _MAX_CHAIN:
            caller, op, key, node = self.referrers[where]
            role = f", {self.roles[node]}" if caller == _MAIN and node in self.roles else ""
            text += f" ({key} of a {op} in {self._where(caller, seen | {where})}{role})"
        return text

    def _function_attr_values(self) -> Iterator[tuple[str, Any]]:
        """(function name, AttrValue) of every function-level and argument attribute."""
        for name, function in self.functions.items():
            for value in function.attr.values():
                yield name, value
            for arg in function.arg_attr.values():
                for value in arg.attr.values():
                    yield name, value

    def _saver_functions(self) -> tuple[str | None, str | None]:
        """The functions the saver_def's save and restore nodes call (None when there is no such node)."""
        saver = self.meta_graph.saver_def

        def called(tensor_name: str) -> str | None:
            node = self.main_nodes.get(tensor_name.split(":")[0]) if tensor_name else None
            if node is None or "f" not in node.attr:
                return None
            name = node.attr["f"].func.name
            return name if name in self.functions else None

        return called(saver.save_tensor_name), called(saver.restore_op_name)

    # -- rules

    def check(self) -> None:
        self.check_meta_graph()
        self.check_ops()
        self.check_names()
        self.check_function_references()
        self.check_constants_and_devices()
        self.check_saver()
        self.check_object_graph()
        self.check_entry_points()

    def check_meta_graph(self) -> None:
        count = len(self.saved_model.meta_graphs)
        if count != 1:
            raise _refuse(self.folder, f"it holds {count} meta graphs (an ncsn-tf export has one, tagged 'serve')")
        tags = tuple(self.meta_graph.meta_info_def.tags)
        if tags != SAVEDMODEL_TAGS:
            raise _refuse(self.folder, f"its meta graph is tagged {list(tags)} (an ncsn-tf export's is ['serve'])")

    def check_names(self) -> None:
        """Unique, well-formed names: the later checks look nodes and functions up by name."""
        names = [function.signature.name for function in self.graph.library.function]
        for name in names:
            if not _OP_NAME.fullmatch(name):
                raise _refuse(self.folder, f"its library has a function named {name!r}, not a valid function name")
        if len(set(names)) != len(names):
            twice = sorted({name for name in names if names.count(name) > 1})
            raise _refuse(self.folder, f"its library defines function {twice[0]!r} more than once")
        if len(self.main_nodes) != len(self.graph.node):
            raise _refuse(self.folder, "its main graph has two nodes of the same name")

    def check_ops(self) -> None:
        """Every op of the main graph and of every function is allowed where it sits."""
        refused: dict[str, str] = {}  # op -> where its first refused node sits
        for where, nodes in self._node_lists():
            if where == self.restore_function:
                allowed = RESTORE_FUNCTION_OPS
            elif where == self.save_function:
                allowed = SAVE_FUNCTION_OPS
            else:
                allowed = SAVEDMODEL_OP_ALLOWLIST
            for node in nodes:
                if node.op in refused:
                    continue
                if node.op in allowed:
                    if (
                        allowed is SAVEDMODEL_OP_ALLOWLIST
                        and node.op not in SAVEDMODEL_STRING_OPS
                        and _handles_strings(node)
                    ):
                        refused[node.op] = (
                            f"node {node.name!r} in {self._where(where)}; on strings, which exports only pass on"
                        )
                    continue
                if node.op in _CHECKPOINT_LIKE_OPS:
                    reason = "; checkpoint I/O outside the saver functions TensorFlow writes"
                elif node.op in SAVER_OP_ALLOWLIST:
                    reason = "; allowed only in TensorFlow's saver functions"
                elif node.op in self.functions:
                    reason = "; a direct call of a library function"
                else:
                    reason = ""
                role = f", {self.roles[node.name]}" if where == _MAIN and node.name in self.roles else ""
                refused[node.op] = f"node {node.name!r} in {self._where(where)}{role}{reason}"
        if refused:
            shown = [f"{op} ({where})" for op, where in sorted(refused.items())[:_MAX_LISTED]]
            more = f" and {len(refused) - _MAX_LISTED} more" if len(refused) > _MAX_LISTED else ""
            raise _refuse(self.folder, f"it uses ops no ncsn-tf export uses there: {', '.join(shown)}{more}")

    def check_function_references(self) -> None:
        """Every function named anywhere is a library function (else TF would run a primitive op of that name)."""
        for where, node, key, kind, item in self.items:
            if kind == "func" and item not in self.functions:
                raise _refuse(
                    self.folder,
                    f"attribute {key!r} of {node.op} {node.name!r} in {self._where(where)} names {item!r}, "
                    "which is not a function of its library",
                )
        for name, value in self._function_attr_values():
            for kind, item in _attr_items(value):
                if kind == "func" and item not in self.functions:
                    raise _refuse(
                        self.folder, f"an attribute of function {name!r} names {item!r}, not a library function"
                    )

    def check_constants_and_devices(self) -> None:
        """No serialized graphs in strings, no variant/resource constants, no remote devices or clusters."""
        from google.protobuf.message import DecodeError
        from tensorflow.core.protobuf import config_pb2

        for where, nodes in self._node_lists():
            for node in nodes:
                if not _LOCAL_DEVICE.fullmatch(node.device):
                    raise _refuse(
                        self.folder,
                        f"{node.op} {node.name!r} in {self._where(where)} is placed on {node.device!r}, not a local device",
                    )
        configs: set[bytes] = set()  # config_proto values already checked (every call node has the same one)
        for where, node, key, kind, item in self.items:
            problem = _tensor_problem(item) if kind == "tensor" else _string_problem(item) if kind == "string" else None
            if kind == "string" and key == "config_proto" and item and item not in configs:
                try:
                    config = config_pb2.ConfigProto.FromString(item)
                except (DecodeError, RuntimeError):
                    problem = "is not a ConfigProto"
                else:
                    if config.cluster_def.job or config.experimental.collective_group_leader:
                        problem = "describes a cluster of other machines"
                configs.add(item)
            if problem:
                label = f"attribute {key!r} of {node.op} {node.name!r} in {self._where(where)}"
                raise _refuse(self.folder, f"{label} {problem}")
        for name, value in self._function_attr_values():
            for kind, item in _attr_items(value):
                problem = (
                    _tensor_problem(item) if kind == "tensor" else _string_problem(item) if kind == "string" else None
                )
                if problem:
                    raise _refuse(self.folder, f"an attribute of function {name!r} {problem}")
        for name, signature in self.meta_graph.signature_def.items():
            for key, tensor in signature.defaults.items():
                problem = _tensor_problem(tensor)
                if problem:
                    raise _refuse(self.folder, f"default {key!r} of signature {name!r} {problem}")

    def check_saver(self) -> None:
        """A saver_def, when present, is exactly TF2's, and nothing but a loader's restore can reach it."""
        saver = self.meta_graph.saver_def
        if not saver.ListFields():
            return
        from tensorflow.core.protobuf import saver_pb2

        def wrong(problem: str) -> UnsafeExportError:
            return _refuse(
                self.folder,
                f"its saver_def is not the one TensorFlow 2 writes ({problem}); a TF1-style restore op runs on load",
            )

        filename = saver.filename_tensor_name
        placeholder = self.main_nodes.get(filename[:-2]) if filename.endswith(":0") else None
        if saver.version != saver_pb2.SaverDef.V2 or placeholder is None or placeholder.op != "Placeholder":
            raise wrong(f"filename tensor {filename!r}, version {saver.version}")
        if not saver.save_tensor_name.endswith(":0") or ":" in saver.restore_op_name:
            raise wrong(f"save tensor {saver.save_tensor_name!r}, restore op {saver.restore_op_name!r}")
        saver_nodes = {saver.save_tensor_name[:-2]: self.save_function, saver.restore_op_name: self.restore_function}
        for node_name, function in saver_nodes.items():
            node = self.main_nodes.get(node_name)
            if node is None or node.op != "StatefulPartitionedCall" or function is None:
                raise wrong(f"{node_name!r} is {node.op if node else 'missing'}, not a call of a saver function")
            if not node.input or node.input[0] not in (placeholder.name, f"{placeholder.name}:0"):
                raise wrong(f"{node_name!r} does not take the file name {filename!r} first")
        if self.save_function == self.restore_function:
            raise wrong("save and restore call the same function")
        saver_functions = {self.save_function, self.restore_function}
        # Nothing may reach the saver: no consumers of its nodes, no other reference to its functions.
        for node in self.graph.node:
            for source in node.input:
                if source.lstrip("^").split(":")[0] in saver_nodes:
                    raise _refuse(
                        self.folder,
                        f"node {node.name!r} of the main graph uses the saver's node {source!r}; only a loader may run it",
                    )
        for where, node, _, kind, item in self.items:
            if kind == "func" and item in saver_functions and not (where == _MAIN and node.name in saver_nodes):
                raise _refuse(
                    self.folder,
                    f"{node.op} {node.name!r} in {self._where(where)} calls the saver function {item!r}; "
                    "checkpoint I/O must be reachable only from the saver",
                )
        for name, value in self._function_attr_values():
            if any(kind == "func" and item in saver_functions for kind, item in _attr_items(value)):
                raise _refuse(self.folder, f"an attribute of function {name!r} names a saver function")
        objects = self.meta_graph.object_graph_def
        exposed = set(objects.concrete_functions)
        for node in objects.nodes:
            if node.WhichOneof("kind") == "function":
                exposed |= set(node.function.concrete_functions)
            elif node.WhichOneof("kind") == "bare_concrete_function":
                exposed.add(node.bare_concrete_function.concrete_function_name)
        for name in sorted(saver_functions & exposed):
            raise _refuse(self.folder, f"its object graph exposes the saver function {name!r} as a callable function")
        self._check_saver_paths(self.restore_function, {"RestoreV2": (0,)})
        self._check_saver_paths(self.save_function, {"SaveV2": (0,), "MergeV2Checkpoints": (0, 1)})

    def _check_saver_paths(self, name: str | None, operands: dict[str, tuple[int, ...]]) -> None:
        """Every path operand of the checkpoint ops in a saver function is `file_prefix` or TF's shard names under it."""
        function = self.functions[name]
        if not function.signature.input_arg or function.signature.input_arg[0].name != "file_prefix":
            raise _refuse(self.folder, f"the saver function {name!r} does not take file_prefix first")
        nodes = {node.name: node for node in function.node_def}
        memo: dict[str, frozenset[str]] = {}

        def values(source: str, depth: int = 0) -> frozenset[str]:
            """The file names a string operand can hold, with `_PREFIX` for the argument and `_SHARD` for shard numbers."""
            if source in memo:
                return memo[source]
            if depth > 32:
                raise ValueError("it is built too deep")
            if source == "file_prefix":
                return frozenset({_PREFIX})
            node = nodes.get(source.split(":")[0])
            if node is None:
                raise ValueError(f"{source!r} is not a file name TensorFlow builds")
            inputs = [value for value in node.input if not value.startswith("^")]
            if node.op == "Identity":
                result = values(inputs[0], depth + 1)
            elif node.op == "Const":
                tensor = node.attr["value"].tensor
                if len(tensor.string_val) != 1 or tensor.tensor_shape.dim:
                    raise ValueError(f"constant {node.name!r} is not one string")
                result = frozenset({tensor.string_val[0].decode("utf-8", "replace")})
            elif node.op == "StringJoin":
                if node.attr["separator"].s:
                    raise ValueError(f"{node.name!r} joins with a separator")
                result = frozenset({""})
                for value in inputs:
                    result = frozenset(a + b for a in result for b in values(value, depth + 1))
            elif node.op in ("Select", "SelectV2"):
                result = values(inputs[1], depth + 1) | values(inputs[2], depth + 1)
            elif node.op == "ShardedFilename":
                result = frozenset(value + _SHARD for value in values(inputs[0], depth + 1))
            elif node.op == "Pack":
                result = frozenset().union(*(values(value, depth + 1) for value in inputs))
            else:
                raise ValueError(f"{node.op} {node.name!r} is not how TensorFlow builds a checkpoint file name")
            memo[source] = result
            return result

        for node in function.node_def:
            for index in operands.get(node.op, ()):
                try:
                    paths = values(node.input[index])
                except (ValueError, IndexError) as error:
                    raise _refuse(
                        self.folder, f"the path of {node.op} {node.name!r} in saver function {name!r}: {error}"
                    ) from None
                if not paths <= _SAVER_PATHS:
                    shown = sorted(
                        p.replace(_PREFIX, "<file_prefix>").replace(_SHARD, "<shard>") for p in paths - _SAVER_PATHS
                    )
                    raise _refuse(
                        self.folder,
                        f"{node.op} {node.name!r} in saver function {name!r} touches {shown[0]!r}, not the loader's checkpoint",
                    )

    def check_object_graph(self) -> None:
        """A TF2 object graph of allowed kinds and types, with no savers of its own."""
        objects = self.meta_graph.object_graph_def
        if not objects.nodes:
            raise _refuse(
                self.folder, "it is a TF1-style SavedModel (no object graph); its restore and init ops run on load"
            )
        names: set[str] = set(objects.concrete_functions)
        for index, node in enumerate(objects.nodes):
            kind = node.WhichOneof("kind")
            label = f"object {index} of its object graph"
            if kind not in SAVEDMODEL_OBJECT_KINDS:
                raise _refuse(self.folder, f"{label} is a {kind!r} (an ncsn-tf export holds none)")
            if kind == "user_object" and node.user_object.identifier not in SAVEDMODEL_USER_OBJECTS:
                raise _refuse(
                    self.folder, f"{label} is a {node.user_object.identifier!r}, a type ncsn-tf exports never hold"
                )
            if node.registered_saver or node.saveable_objects:
                raise _refuse(self.folder, f"{label} has its own saver, which TensorFlow runs while loading")
            if kind == "function":
                names |= set(node.function.concrete_functions)
            elif kind == "bare_concrete_function":
                names.add(node.bare_concrete_function.concrete_function_name)
            elif kind == "asset" and not 0 <= node.asset.asset_file_def_index < len(self.meta_graph.asset_file_def):
                raise _refuse(self.folder, f"{label} is an asset without an entry in asset_file_def")
        for name in sorted(names - set(self.functions)):
            raise _refuse(self.folder, f"its object graph names function {name!r}, which is not in its library")

    def _tensor_names(self, info: Any) -> Iterator[str]:
        encoding = info.WhichOneof("encoding")
        if encoding == "name":
            yield info.name
        elif encoding == "coo_sparse":
            sparse = info.coo_sparse
            yield from (sparse.values_tensor_name, sparse.indices_tensor_name, sparse.dense_shape_tensor_name)
        elif encoding == "composite_tensor":
            for component in info.composite_tensor.components:
                yield from self._tensor_names(component)

    def check_entry_points(self) -> None:
        """Signatures, the init op's collection and assets name main-graph nodes other than the saver's."""
        saver = self.meta_graph.saver_def
        saver_nodes = {saver.save_tensor_name.split(":")[0], saver.restore_op_name.split(":")[0]} - {""}

        def check_name(tensor_name: str, what: str) -> None:
            node = tensor_name.lstrip("^").split(":")[0]
            if node not in self.main_nodes:
                raise _refuse(self.folder, f"{what} names {tensor_name!r}, which is not a node of its main graph")
            if node in saver_nodes:
                raise _refuse(
                    self.folder, f"{what} names the saver's node {node!r}; checkpoint I/O must not be an entry point"
                )

        for name, signature in self.meta_graph.signature_def.items():
            for role, infos in (("input", signature.inputs), ("output", signature.outputs)):
                for key, info in infos.items():
                    for tensor_name in self._tensor_names(info):
                        check_name(tensor_name, f"{role} {key!r} of signature {name!r}")
        for key, collection in self.meta_graph.collection_def.items():
            if key not in SAVEDMODEL_COLLECTIONS:
                raise _refuse(
                    self.folder, f"it has the TF1 collection {key!r} (an ncsn-tf export has only saved_model_main_op)"
                )
            if collection.WhichOneof("kind") not in (None, "node_list"):
                raise _refuse(self.folder, f"collection {key!r} is not a list of nodes")
            for value in collection.node_list.value:
                check_name(value, f"collection {key!r}")
        for asset in self.meta_graph.asset_file_def:
            check_name(asset.tensor_info.name, f"asset {asset.filename!r}")
            if asset.filename not in SAVEDMODEL_ASSETS:
                raise _refuse(
                    self.folder,
                    f"it has the asset {asset.filename!r} (an ncsn-tf export's only asset is manifest.json)",
                )
            _confine(
                self.folder / "assets", asset.filename, f"asset {asset.filename!r}", "outside the SavedModel's assets/"
            )


def check_savedmodel(savedmodel_dir: str | os.PathLike[str]) -> None:
    """Refuse a SavedModel that does anything an ncsn-tf export does not (the rules: this module's docstring).

    Parses `saved_model.pb` as a protobuf (TensorFlow's proto modules are imported
    here, lazily); nothing is loaded or executed, no file but the SavedModel's own
    is opened.

    Args:
        savedmodel_dir: the SavedModel folder (an export's `savedmodel/`).

    Raises:
        ExportFormatError: the folder holds no readable saved_model.pb (missing, corrupt, too large).
        UnsafeExportError: a rule is broken; the message names the file, the op or
            object and where it sits (the function and what calls it), and what to do.
    """
    folder = Path(savedmodel_dir)
    saved_model = _read_savedmodel(folder)
    if not saved_model.meta_graphs:
        raise ExportFormatError(f"{folder / 'saved_model.pb'} holds no graph; the SavedModel is corrupt, re-export it")
    _SavedModelScan(saved_model, folder).check()


# ----------------------------------------------------------------------------- ONNX


def _graph_items(graph: Any, where: str) -> Iterator[tuple[str, Any, str]]:
    """("node", NodeProto, where) and ("tensor", TensorProto, where) of a graph and all its subgraphs."""
    for tensor in graph.initializer:
        yield "tensor", tensor, where
    for sparse in graph.sparse_initializer:
        yield "tensor", sparse.values, where
        yield "tensor", sparse.indices, where
    for node in graph.node:
        yield from _onnx_node_items(node, where)


def _attribute_items(attribute: Any, where: str) -> Iterator[tuple[str, Any, str]]:
    if attribute.HasField("t"):
        yield "tensor", attribute.t, where
    for tensor in attribute.tensors:
        yield "tensor", tensor, where
    sparse_tensors = [attribute.sparse_tensor] if attribute.HasField("sparse_tensor") else []
    for sparse in (*sparse_tensors, *attribute.sparse_tensors):
        yield "tensor", sparse.values, where
        yield "tensor", sparse.indices, where
    subgraphs = [attribute.g] if attribute.HasField("g") else []
    for subgraph in (*subgraphs, *attribute.graphs):
        yield from _graph_items(subgraph, f"{where} > subgraph {subgraph.name!r}")


def _onnx_node_items(node: Any, where: str) -> Iterator[tuple[str, Any, str]]:
    yield "node", node, where
    for attribute in node.attribute:
        yield from _attribute_items(attribute, f"{where} > {node.op_type} {node.name!r} {attribute.name}")


def _onnx_items(model: Any) -> Iterator[tuple[str, Any, str]]:
    yield from _graph_items(model.graph, "the main graph")
    for function in model.functions:
        where = f"model-local function {function.domain}:{function.name}"
        for node in function.node:
            yield from _onnx_node_items(node, where)
        for attribute in function.attribute_proto:
            yield from _attribute_items(attribute, where)
    for index, info in enumerate(model.training_info):
        yield from _graph_items(info.initialization, f"training_info[{index}] initialization")
        yield from _graph_items(info.algorithm, f"training_info[{index}] algorithm")


def check_onnx_model(model: onnx.ModelProto, model_path: str | os.PathLike[str]) -> None:
    """Refuse an ONNX model with an operator we never export or external data outside its folder.

    Args:
        model: the `onnx.ModelProto`, loaded with `load_external_data=False`.
        model_path: the .onnx file it came from (external data resolves beside it).

    Raises:
        UnsafeExportError: a node (in any graph, subgraph or model-local function) is not in
            `ONNX_OP_ALLOWLIST`, an opset import names a custom domain, or an external-data
            location is absolute, climbs out with '..' or leads out through a symlink.
    """
    folder = Path(model_path).parent
    imports = [*model.opset_import, *(opset for function in model.functions for opset in function.opset_import)]
    custom = sorted({opset.domain for opset in imports if opset.domain not in ONNX_OPSET_DOMAINS})
    if custom:
        raise _refuse(
            model_path,
            f"it imports custom operator domain(s) {', '.join(map(repr, custom))}, which onnxruntime runs as native code",
        )
    for kind, item, where in _onnx_items(model):
        if kind == "node":
            domain = "" if item.domain == "ai.onnx" else item.domain
            if (domain, item.op_type) not in ONNX_OP_ALLOWLIST:
                shown = f"{domain}:{item.op_type}" if domain else item.op_type
                reason = (
                    "custom operator domain"
                    if domain not in ONNX_OPSET_DOMAINS
                    else "not an operator ncsn-tf exports use"
                )
                raise _refuse(model_path, f"operator {shown!r} (node {item.name!r} in {where}) is refused ({reason})")
            continue
        from onnx import TensorProto

        if item.data_location != TensorProto.EXTERNAL:
            continue
        locations = [entry.value for entry in item.external_data if entry.key == "location"]
        _confine(
            folder,
            locations[0] if locations else "",
            f"the external data of tensor {item.name!r}",
            "outside the model's folder",
        )


def load_onnx_checked(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Parse an .onnx file without its external data and run `check_onnx_model`.

    Returns:
        The `onnx.ModelProto` (external tensors not loaded; onnxruntime loads them from the checked paths).

    Raises:
        ExportFormatError: the file is missing, not a regular file, or not a readable ONNX model.
        UnsafeExportError: see `check_onnx_model`.
    """
    import onnx
    from google.protobuf.message import DecodeError

    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ExportFormatError(
            f"model file not found: {os.fspath(path)}; re-export or pick the export folder"
        ) from None
    except OSError as error:
        raise ExportFormatError(f"cannot read {os.fspath(path)} ({error.strerror or error})") from None
    if not stat.S_ISREG(mode):
        raise ExportFormatError(f"{os.fspath(path)} is not a regular file; an export's ONNX files are plain files")
    try:
        model = onnx.load(os.fspath(path), load_external_data=False)
    except (DecodeError, OSError, ValueError, RuntimeError) as error:
        raise ExportFormatError(
            f"cannot read {os.fspath(path)} as ONNX ({type(error).__name__}); the file is corrupt or not ONNX, re-export it"
        ) from None
    if not model.graph.node and not model.graph.output:
        raise ExportFormatError(f"{os.fspath(path)} holds no ONNX graph; the file is corrupt or not ONNX, re-export it")
    check_onnx_model(model, path)
    return model
