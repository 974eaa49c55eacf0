"""The safety gate: checks that refuse untrusted model files before anything in them runs.

TEMPORARY: today's desktop denylist scanner, moved here behind the gate's API
(`check_savedmodel`, `check_onnx_model`, `load_onnx_checked`, `confined_path`) so
that every loader already calls the gate through this one module; the allowlist
gate replaces this file.

A model file is a program, and people share them. An image model needs
arithmetic, control flow and its own weights; it never needs files, processes,
the network, custom operator libraries or data outside its own folder. So:

- SavedModel: the graph and every function in its library are scanned for
  operations that touch files, processes or the network (the denylist idea of
  `saved_model_cli scan`, extended). Checkpoint save/restore ops are tolerated
  only in the saver functions TensorFlow itself writes into every SavedModel,
  never in a function a signature (or the load-time init op) can reach.
- ONNX: every tensor stored as external data must live inside the model's
  folder (no absolute paths, no `..`, no symlinks out), and every operator must
  come from a domain onnxruntime implements itself (no custom operators).

Both checks only parse protobufs; nothing is executed.

References:
    tensorflow/python/tools/saved_model_cli.py (`scan`, `_OP_DENYLIST`).
    ONNX IR spec, "External Tensor Data"; onnxruntime custom operators.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from export_format.errors import ExportFormatError, UnsafeExportError

# Ops that read/write files, run Python, print to files, talk to other processes or
# hosts, or map files into memory. saved_model_cli's default list is the first three.
SAVEDMODEL_OP_DENYLIST = frozenset(
    {
        # files
        "ReadFile", "WriteFile", "MatchingFiles", "ImmutableConst", "FileSystemSetConfiguration",
        "InitializeTableFromTextFile", "InitializeTableFromTextFileV2", "LoadAndRemapMatrix",
        "WholeFileReader", "WholeFileReaderV2", "TextLineReader", "TextLineReaderV2",
        "FixedLengthRecordReader", "FixedLengthRecordReaderV2", "TFRecordReader", "TFRecordReaderV2",
        "LMDBReader", "IdentityReader", "IdentityReaderV2", "ReaderReadV2", "ReaderRead",
        "TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset", "FixedLengthRecordDataset",
        "FixedLengthRecordDatasetV2", "ExperimentalCSVDataset", "CSVDatasetV2", "CSVDataset",
        "ExperimentalLMDBDataset", "LMDBDataset", "ExperimentalSqlDataset", "SqlDataset",
        "SaveDataset", "SaveDatasetV2", "LoadDataset", "ExperimentalDatasetToTFRecord", "DatasetToTFRecord",
        "SnapshotDataset", "SnapshotDatasetV2", "SnapshotDatasetReader", "DecodeWav", "WriteAudioSummary",
        # printing / logging to files, summaries, debugger
        "Print", "PrintV2", "CreateSummaryFileWriter", "CreateSummaryDbWriter", "SummaryWriter",
        "WriteSummary", "WriteRawProtoSummary", "WriteScalarSummary", "WriteImageSummary",
        "WriteHistogramSummary", "WriteGraphSummary", "FlushSummaryWriter", "ImportEvent",
        "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3", "DebugNanCount", "DebugNumericSummary",
        "DebugNumericSummaryV2",
        # Python and processes
        "PyFunc", "PyFuncStateless", "EagerPyFunc",
        # network / other processes
        "RpcClient", "RpcCall", "RpcServer", "RpcServerStart", "RpcServerRegister", "RpcCheckStatus",
        "RpcGetValue", "DeleteRpcFutureResource", "Rpc", "TryRpc", "RemoteCall", "_Send", "_Recv",
        "_HostSend", "_HostRecv", "Send", "Recv", "CollectiveReduce", "CollectiveReduceV2",
        "CollectiveReduceV3", "CollectiveGather", "CollectiveGatherV2", "CollectiveBcastSend",
        "CollectiveBcastRecv", "CollectiveBcastSendV2", "CollectiveBcastRecvV2", "CollectiveAllToAllV2",
        "CollectiveAllToAllV3", "CollectiveInitializeCommunicator", "GcsConfigureCredentials",
        "GcsConfigureBlockCache", "BigQueryReader", "GenerateBigQueryReaderPartitions",
        "DataServiceDataset", "DataServiceDatasetV2", "DataServiceDatasetV3", "DataServiceDatasetV4",
        "RegisterDataset", "RegisterDatasetV2",
    }
)  # fmt: skip
# Checkpoint I/O: present in every SavedModel's saver functions (TF writes them);
# refused anywhere a signature can reach, where they could read or write any path.
SAVEDMODEL_CHECKPOINT_OPS = frozenset(
    {"SaveV2", "RestoreV2", "MergeV2Checkpoints", "Save", "SaveSlices", "Restore", "RestoreSlice"}
)
# Domains whose operators onnxruntime implements itself ("" is the default ai.onnx).
ONNX_BUILTIN_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})


# ----------------------------------------------------------------------------- SavedModel


def _function_refs(node: Any) -> Iterator[str]:
    """Names of the functions a NodeDef calls through its attributes (f, body, branches...)."""
    for attr in node.attr.values():
        if attr.HasField("func") and attr.func.name:
            yield attr.func.name
        if attr.HasField("list"):
            for func in attr.list.func:
                yield func.name
    # A node whose op is itself a library function (old-style call).
    yield node.op


def scan_savedmodel_ops(saved_model: Any) -> tuple[set[str], set[str]]:
    """Denylisted ops found in a parsed SavedModel proto.

    Args:
        saved_model: a `tensorflow.core.protobuf.saved_model_pb2.SavedModel`.

    Returns:
        (denylisted ops anywhere, checkpoint ops reachable from a signature or the init op).
    """
    denied: set[str] = set()
    reachable_checkpoint_ops: set[str] = set()
    for meta_graph in saved_model.meta_graphs:
        graph = meta_graph.graph_def
        functions = {f.signature.name: f for f in graph.library.function}
        all_ops = {node.op for node in graph.node}
        for function in functions.values():
            all_ops |= {node.op for node in function.node_def}
        denied |= all_ops & SAVEDMODEL_OP_DENYLIST

        # Roots: every graph node except the saver's, plus every concrete function of
        # the object graph (the loader may call those); then follow function references.
        saver = meta_graph.saver_def
        saver_nodes = {name.split(":")[0] for name in (saver.save_tensor_name, saver.restore_op_name) if name}
        pending: list[str] = []
        for node in graph.node:
            if node.name in saver_nodes:
                continue
            if node.op in SAVEDMODEL_CHECKPOINT_OPS:
                reachable_checkpoint_ops.add(node.op)
            pending.extend(_function_refs(node))
        pending.extend(meta_graph.object_graph_def.concrete_functions.keys())
        seen: set[str] = set()
        while pending:
            name = pending.pop()
            if name in seen or name not in functions:
                continue
            seen.add(name)
            for node in functions[name].node_def:
                if node.op in SAVEDMODEL_CHECKPOINT_OPS:
                    reachable_checkpoint_ops.add(node.op)
                pending.extend(_function_refs(node))
    return denied, reachable_checkpoint_ops


def check_savedmodel(savedmodel_dir: str | os.PathLike[str]) -> None:
    """Refuse a SavedModel whose graph could touch files, processes or the network.

    Parses `saved_model.pb` (imports TensorFlow's protobuf modules, hence
    TensorFlow; only the SavedModel path calls this). Nothing is executed.

    Args:
        savedmodel_dir: the SavedModel folder.

    Raises:
        ExportFormatError: the folder holds no readable SavedModel.
        UnsafeExportError: a denylisted op is present.
    """
    path = Path(savedmodel_dir) / "saved_model.pb"
    if not path.is_file():
        raise ExportFormatError(f"{savedmodel_dir} holds no saved_model.pb; choose a SavedModel folder")
    _check_no_links_out(Path(savedmodel_dir))
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    try:
        saved_model.ParseFromString(path.read_bytes())
    except (DecodeError, OSError) as error:
        raise ExportFormatError(f"cannot read {path} ({error}); the SavedModel is corrupt") from error
    if not saved_model.meta_graphs:
        raise ExportFormatError(f"{path} holds no graph; the SavedModel is corrupt")
    denied, checkpoint_ops = scan_savedmodel_ops(saved_model)
    if denied:
        raise UnsafeExportError(
            f"refusing SavedModel {savedmodel_dir}: it contains operations that can touch files, processes "
            f"or the network ({', '.join(sorted(denied))}); only run it if you trust its author, e.g. "
            "re-export it yourself"
        )
    if checkpoint_ops:
        raise UnsafeExportError(
            f"refusing SavedModel {savedmodel_dir}: its signatures can read or write checkpoint files "
            f"({', '.join(sorted(checkpoint_ops))}); an exported sampler never does this"
        )


# ----------------------------------------------------------------------------- ONNX


def _graph_tensors_and_nodes(graph: Any) -> Iterator[tuple[str, Any]]:
    """('tensor', TensorProto) and ('node', NodeProto) items of a graph and all its subgraphs."""
    yield from (("tensor", t) for t in graph.initializer)
    for sparse in graph.sparse_initializer:
        yield "tensor", sparse.values
        yield "tensor", sparse.indices
    for node in graph.node:
        yield from _node_items(node)


def _node_items(node: Any) -> Iterator[tuple[str, Any]]:
    yield "node", node
    for attr in node.attribute:
        if attr.HasField("t"):
            yield "tensor", attr.t
        yield from (("tensor", t) for t in attr.tensors)
        if attr.HasField("sparse_tensor"):
            yield "tensor", attr.sparse_tensor.values
            yield "tensor", attr.sparse_tensor.indices
        for sparse in attr.sparse_tensors:
            yield "tensor", sparse.values
            yield "tensor", sparse.indices
        if attr.HasField("g"):
            yield from _graph_tensors_and_nodes(attr.g)
        for subgraph in attr.graphs:
            yield from _graph_tensors_and_nodes(subgraph)


def _model_items(model: Any) -> Iterator[tuple[str, Any]]:
    yield from _graph_tensors_and_nodes(model.graph)
    for function in model.functions:
        for node in function.node:
            yield from _node_items(node)


def _external_location(tensor: Any) -> str | None:
    """The external-data `location` of a TensorProto, or None when stored inline."""
    from onnx import TensorProto

    if tensor.data_location != TensorProto.EXTERNAL:
        return None
    for entry in tensor.external_data:
        if entry.key == "location":
            return entry.value
    return ""


def _inside(folder: Path, location: str) -> bool:
    if not location or os.path.isabs(location) or Path(location).drive or "\\" in location:
        return False
    if any(part == ".." for part in Path(location).parts):
        return False
    folder_real = Path(os.path.realpath(folder))
    target_real = Path(os.path.realpath(folder / location))
    return target_real == folder_real or folder_real in target_real.parents


def check_onnx_model(model: Any, model_path: str | os.PathLike[str]) -> None:
    """Refuse an ONNX model with external data outside its folder or custom operators.

    Args:
        model: an `onnx.ModelProto` loaded with `load_external_data=False`.
        model_path: the .onnx file it came from (external data resolves beside it).

    Raises:
        UnsafeExportError: an external-data path leaves the folder, or an operator
            (or opset import) is from a domain onnxruntime does not implement.
    """
    folder = Path(model_path).parent
    custom_domains: set[str] = {
        opset.domain for opset in model.opset_import if opset.domain not in ONNX_BUILTIN_DOMAINS
    }
    for kind, item in _model_items(model):
        if kind == "node":
            if item.domain not in ONNX_BUILTIN_DOMAINS:
                custom_domains.add(item.domain)
            continue
        location = _external_location(item)
        if location is not None and not _inside(folder, location):
            raise UnsafeExportError(
                f"refusing {model_path}: tensor {item.name!r} reads external data from {location!r}, "
                "outside the model's folder; keep external data files beside the .onnx file"
            )
    if custom_domains:
        raise UnsafeExportError(
            f"refusing {model_path}: it needs custom operators from domain(s) "
            f"{', '.join(sorted(repr(d) for d in custom_domains))}, which would load native code; "
            "the exporter writes only standard ONNX operators"
        )


def load_onnx_checked(path: str | os.PathLike[str]) -> Any:
    """Parse an .onnx file (without its external data) and run `check_onnx_model`.

    Returns:
        The `onnx.ModelProto` (external tensors not loaded).

    Raises:
        ExportFormatError: the file is missing or is not a readable ONNX model.
        UnsafeExportError: see `check_onnx_model`.
    """
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(os.fspath(path), load_external_data=False)
    except FileNotFoundError as error:
        raise ExportFormatError(f"model file not found: {path}") from error
    except (DecodeError, OSError, ValueError, RuntimeError) as error:
        raise ExportFormatError(
            f"cannot read {path} as ONNX ({type(error).__name__}); the file is corrupt or not ONNX"
        ) from error
    if not model.graph.node and not model.graph.output:
        raise ExportFormatError(f"{path} holds no ONNX graph; the file is corrupt or not ONNX")
    check_onnx_model(model, path)
    return model


# ----------------------------------------------------------------------------- paths


def _leaves(root: Path, target: Path) -> bool:
    """Whether `target` resolves (symlinks followed) outside `root`."""
    root_real = Path(os.path.realpath(root))
    target_real = Path(os.path.realpath(target))
    return target_real != root_real and root_real not in target_real.parents


def confined_path(export_dir: str | os.PathLike[str], relative: str, what: str) -> Path:
    """`export_dir / relative`, refusing a path that leaves the export folder.

    Args:
        export_dir: the export folder.
        relative: a path from a manifest (untrusted data).
        what: what the path is, for the message (e.g. "files.onnx.sample").

    Returns:
        The path (it need not exist).

    Raises:
        UnsafeExportError: `relative` is absolute, has a `..` part, or resolves
            (through symlinks) outside `export_dir`.
    """
    root = Path(export_dir)
    lexical = (
        not isinstance(relative, str)
        or not relative
        or os.path.isabs(relative)
        or PureWindowsPath(relative).drive
        or "\\" in relative
        or any(part == ".." for part in PurePosixPath(relative).parts)
    )
    if lexical:
        raise UnsafeExportError(
            f"{root}: {what} path {relative!r:.80} leaves the export folder; refusing it (re-export the model)"
        )
    path = root / relative
    if _leaves(root, path):
        raise UnsafeExportError(
            f"{root}: {what} {relative!r} is a symlink that leaves the export folder; refusing it "
            "(copy the files into the folder instead)"
        )
    return path


def _check_no_links_out(folder: Path) -> None:
    """Refuse a folder holding a symlink that resolves outside it (e.g. variables/ data read from elsewhere)."""
    for root, dirs, names in os.walk(folder):
        for name in (*dirs, *names):
            entry = Path(root) / name
            if entry.is_symlink() and _leaves(folder, entry):
                raise UnsafeExportError(
                    f"refusing SavedModel {folder}: {entry.relative_to(folder)} is a symlink that leaves the "
                    "folder; copy the files into it instead"
                )
