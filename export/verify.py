"""Checks an export must pass before it is reported as written.

1. The SavedModel contains no operation that touches files, processes or the
   network (ReadFile, WriteFile, MatchingFiles, PyFunc, ...), and no signature
   can reach checkpoint I/O: the desktop app refuses such graphs.
2. Every endpoint runs in the SavedModel (finite outputs of the right shape).
3. With ONNX: every ONNX file loads in onnxruntime and a short seeded run of every
   endpoint matches the SavedModel. The noise is part of the compared path: it is
   computed from integer ops that are bit-identical in both runtimes, so the seeded
   sampler is deterministic; `score` checks the noise-free network on its own.
   Tolerance: max |ONNX - SavedModel| <= 1e-4 * max(1, max |SavedModel output|)
   for every endpoint; for image models the number of pixels that differ after
   8-bit quantisation of the clipped samples is recorded as well.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from export.runtime import ExportedSampler

TOLERANCE = 1e-4  # relative to max(1, max |SavedModel output|)
VERIFY_STEPS_PER_LEVEL = 2  # a short run: enough to pass through every level, the loop and the denoiser
VERIFY_SEEDS = (0, 7, 2**31 - 1)

# Ops that read/write files, run Python, or talk to other processes or hosts.
FORBIDDEN_OPS = frozenset(
    {
        "ReadFile", "WriteFile", "MatchingFiles", "ImmutableConst", "FileSystemSetConfiguration",
        "InitializeTableFromTextFile", "InitializeTableFromTextFileV2", "LoadAndRemapMatrix",
        "WholeFileReader", "WholeFileReaderV2", "TextLineReader", "TextLineReaderV2", "TFRecordReader",
        "TFRecordReaderV2", "FixedLengthRecordReader", "FixedLengthRecordReaderV2", "ReaderRead", "ReaderReadV2",
        "TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset", "FixedLengthRecordDataset",
        "FixedLengthRecordDatasetV2", "CSVDataset", "CSVDatasetV2", "SqlDataset", "LMDBDataset",
        "SaveDataset", "SaveDatasetV2", "LoadDataset", "SnapshotDataset", "SnapshotDatasetV2",
        "Print", "PrintV2", "CreateSummaryFileWriter", "WriteSummary", "WriteScalarSummary",
        "WriteImageSummary", "WriteHistogramSummary", "WriteRawProtoSummary", "WriteGraphSummary",
        "FlushSummaryWriter", "DebugIdentity", "DebugIdentityV2", "DebugIdentityV3",
        "PyFunc", "PyFuncStateless", "EagerPyFunc",
        "RpcClient", "RpcCall", "RpcServer", "Rpc", "TryRpc", "RemoteCall", "_Send", "_Recv", "_HostSend",
        "_HostRecv", "CollectiveReduce", "CollectiveReduceV2", "CollectiveGather", "CollectiveGatherV2",
        "CollectiveBcastSend", "CollectiveBcastRecv", "DataServiceDataset", "DataServiceDatasetV2",
    }
)  # fmt: skip
# In every SavedModel's saver (restoring the variables); never reachable from a signature.
CHECKPOINT_OPS = frozenset({"SaveV2", "RestoreV2", "MergeV2Checkpoints", "Save", "Restore", "RestoreSlice"})


class VerificationError(RuntimeError):
    """An export failed verification; its files are removed."""


# ---------------------------------------------------------------------------
# SavedModel graph scan.
# ---------------------------------------------------------------------------


def _called_functions(node: Any) -> list[str]:
    names = [node.op]  # a node whose op is a library function
    for attribute in node.attr.values():
        if attribute.HasField("func"):
            names.append(attribute.func.name)
        if attribute.HasField("list"):
            names.extend(function.name for function in attribute.list.func)
    return names


def savedmodel_ops(savedmodel_dir: str | os.PathLike[str]) -> tuple[set[str], set[str]]:
    """(all op types anywhere, op types reachable from the signatures and the init op).

    Parses `saved_model.pb` only; nothing is executed.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(os.fspath(savedmodel_dir), "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    everywhere: set[str] = set()
    reachable: set[str] = set()
    for meta_graph in saved_model.meta_graphs:
        graph = meta_graph.graph_def
        functions = {function.signature.name: function for function in graph.library.function}
        everywhere |= {node.op for node in graph.node}
        for function in functions.values():
            everywhere |= {node.op for node in function.node_def}
        nodes = {node.name: node for node in graph.node}
        # Start from every signature's tensors (and the init op), walk graph inputs backwards.
        pending_nodes = [
            info.name.split(":")[0].lstrip("^")
            for signature in meta_graph.signature_def.values()
            for info in (*signature.inputs.values(), *signature.outputs.values())
        ]
        seen_nodes: set[str] = set()
        pending_functions: list[str] = []
        while pending_nodes:
            name = pending_nodes.pop()
            if name in seen_nodes or name not in nodes:
                continue
            seen_nodes.add(name)
            node = nodes[name]
            reachable.add(node.op)
            pending_functions.extend(_called_functions(node))
            pending_nodes.extend(source.split(":")[0].lstrip("^") for source in node.input)
        pending_functions.extend(meta_graph.object_graph_def.concrete_functions.keys())
        seen_functions: set[str] = set()
        while pending_functions:
            name = pending_functions.pop()
            if name in seen_functions or name not in functions:
                continue
            seen_functions.add(name)
            for node in functions[name].node_def:
                reachable.add(node.op)
                pending_functions.extend(_called_functions(node))
    return everywhere, reachable


def check_savedmodel_ops(savedmodel_dir: str | os.PathLike[str]) -> None:
    """Raise VerificationError if the SavedModel has file/process/network ops or reachable checkpoint I/O."""
    everywhere, reachable = savedmodel_ops(savedmodel_dir)
    forbidden = everywhere & FORBIDDEN_OPS
    if forbidden:
        raise VerificationError(f"the SavedModel contains file/process/network ops {sorted(forbidden)}")
    checkpoint_io = reachable & CHECKPOINT_OPS
    if checkpoint_io:
        raise VerificationError(f"a SavedModel signature can reach checkpoint I/O ops {sorted(checkpoint_io)}")


# ---------------------------------------------------------------------------
# Seeded runs in both runtimes.
# ---------------------------------------------------------------------------


def _check_inputs(sampler: ExportedSampler) -> dict[str, dict[str, np.ndarray]]:
    """The inputs of the verification run, one dict per endpoint."""
    levels = sampler.num_levels
    seeds = np.asarray(VERIFY_SEEDS, np.int32)  # [3]
    start = sampler.initial_images(seeds)  # [3, ...]
    known = sampler.initial_images(seeds + 1)  # [3, ...] some data-range "pictures"
    masks = np.zeros_like(known)
    masks.reshape(len(seeds), -1)[:, : masks[0].size // 2] = 1.0  # first half of every example known
    settings = {
        "steps_per_level": np.array(VERIFY_STEPS_PER_LEVEL, np.int32),
        "epsilon": np.array(sampler.manifest["sampler"]["epsilon"], np.float32),
        "denoise": np.array(True),
    }
    middle = max(1, levels // 2)
    return {
        "initial_images": {"seeds": seeds},
        "score": {"images": start, "sigma_indices": (np.arange(len(seeds)) % levels).astype(np.int32)},
        "sample": {"seeds": seeds, **settings},
        "sample_levels": {
            "images": start, "seeds": seeds, "first_level": np.array(0, np.int32),
            "last_level": np.array(middle, np.int32), **settings,
        },
        "inpaint": {"known_images": known, "masks": masks, "seeds": seeds, **settings},
        "inpaint_levels": {
            "images": start, "known_images": known, "masks": masks, "seeds": seeds,
            "first_level": np.array(middle - 1, np.int32), "last_level": np.array(levels, np.int32), **settings,
        },
    }  # fmt: skip


def _uint8(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    low, high = value_range
    return np.round(np.clip((images - low) / (high - low), 0.0, 1.0) * 255.0).astype(np.uint8)


def verify_export(export_dir: str | os.PathLike[str], with_onnx: bool) -> dict[str, Any]:
    """Verify an export folder (manifest.json, savedmodel/, onnx/); returns the verification record.

    Args:
        export_dir: the folder being written (its manifest lists the SavedModel and ONNX files).
        with_onnx: compare the ONNX files with the SavedModel (else only the SavedModel is run).

    Returns:
        A JSON-ready dict: status, tolerance, the largest difference and one entry per endpoint.

    Raises:
        VerificationError: a forbidden op, a failing endpoint, or a difference above the tolerance.
    """
    reference = ExportedSampler(export_dir, runtime="tensorflow")
    check_savedmodel_ops(os.path.join(os.fspath(export_dir), reference.manifest["files"]["savedmodel"]))
    inputs = _check_inputs(reference)
    value_range = tuple(reference.manifest["value_range"])
    images = len(reference.image_shape) == 3
    record: dict[str, Any] = {
        "status": "passed",
        "tolerance": TOLERANCE,
        "tolerance_scale": "max(1, max |savedmodel output|)",
        "steps_per_level": VERIFY_STEPS_PER_LEVEL,
        "seeds": list(VERIFY_SEEDS),
        "savedmodel_ops_checked": True,
        "onnx_vs_savedmodel_max_abs_diff": None,
        "endpoints": {},
    }
    expected = {}
    for endpoint, feed in inputs.items():
        try:
            output = reference.run(endpoint, feed)
        except Exception as error:
            raise VerificationError(f"SavedModel endpoint {endpoint!r} failed: {str(error).splitlines()[0]}") from None
        if output.shape != (len(VERIFY_SEEDS), *reference.image_shape) or not np.all(np.isfinite(output)):
            raise VerificationError(f"SavedModel endpoint {endpoint!r} returned shape {output.shape} or non-finite values")
        expected[endpoint] = output
    reference.close()
    if not with_onnx:
        return record
    candidate = ExportedSampler(export_dir, runtime="onnxruntime")
    largest = 0.0
    for endpoint, feed in inputs.items():
        try:
            output = candidate.run(endpoint, feed)
        except Exception as error:
            raise VerificationError(f"onnxruntime failed on {endpoint}.onnx: {str(error).splitlines()[0]}") from None
        difference = float(np.max(np.abs(output.astype(np.float64) - expected[endpoint])))
        scale = max(1.0, float(np.max(np.abs(expected[endpoint]))))
        entry: dict[str, Any] = {"max_abs_diff": difference, "scale": scale}
        if images and endpoint != "score":
            changed = _uint8(output, value_range) != _uint8(expected[endpoint], value_range)
            entry["uint8_pixels_different"] = int(np.count_nonzero(changed))
            entry["uint8_pixels_compared"] = int(changed.size)
        record["endpoints"][endpoint] = entry
        largest = max(largest, difference)
        if not difference <= TOLERANCE * scale:
            raise VerificationError(
                f"{endpoint}.onnx differs from the SavedModel by {difference:.3g} "
                f"(tolerance {TOLERANCE:g} x {scale:.3g}); the conversion is wrong"
            )
    candidate.close()
    record["onnx_vs_savedmodel_max_abs_diff"] = largest
    return record
