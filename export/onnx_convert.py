"""tf2onnx conversion of the endpoints, with the manifest in `metadata_props`.

Opset 18 is required: the portable Philox generator needs ONNX `BitwiseXor`, which
tf2onnx emits only from opset 18 (below it the model is silently invalid), and
tf2onnx 1.17 supports opsets up to 18.

Conversion is slow (tf2onnx processes every node in Python several times; a
score network inside a `Loop` body is thousands of nodes), so:
- only the optimizers that matter for these graphs run (transposes around the
  NHWC convolutions, constant folding, loops, duplicates, reshapes, identities);
  tf2onnx's deep copy of the whole graph before each optimizer is skipped, and a
  conversion that fails that way is retried with tf2onnx's defaults;
- `sample` and `inpaint` are not converted again: they are composed in ONNX from
  `initial_images` and the converted `sample_levels` / `inpaint_levels` graphs
  with the level range fixed to [0, L) (the same ops the SavedModel runs).
- the weights a `tf.while_loop` carries through every iteration are hoisted out
  of the ONNX `Loop` (`hoist_loop_invariants`): onnxruntime then folds, pre-packs
  and blocks the convolutions inside the loop as it does outside it; then duplicate
  nodes are merged in every graph (`merge_duplicate_nodes`), which tf2onnx does for
  the main graph only.
Unsupported ops raise here instead of producing a broken file; every file is
still run in onnxruntime by `verify.py` before an export is reported as written.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import tensorflow as tf

from export_format.layout import ONNX_METADATA_KEY

METADATA_KEY = ONNX_METADATA_KEY  # ONNX metadata_props key holding the manifest JSON
MIN_OPSET = 18  # BitwiseXor / BitShift on unsigned words
# tf2onnx optimizers worth their time on these graphs (names in tf2onnx's optimizer table).
_OPTIMIZERS = (
    "optimize_transpose",
    "fold_constants",
    "loop_optimizer",
    "merge_duplication",
    "reshape_optimizer",
    "remove_identity",
    "remove_back_to_back",
)
_CATCH_ERRORS_ENV = "TF2ONNX_CATCH_ERRORS"  # tf2onnx: when set (to anything), no deep copies
_COMPOSED_PREFIX = "initial_images/"


class ConversionError(RuntimeError):
    """tf2onnx could not convert an endpoint."""


def supported_opsets() -> tuple[int, ...]:
    """The ONNX opsets this exporter can write (>= 18 and known to the installed tf2onnx)."""
    from tf2onnx import constants

    return tuple(opset for opset in sorted(constants.OPSET_TO_IR_VERSION) if opset >= MIN_OPSET)


def check_opset(opset: int) -> int:
    """`opset` if it is supported, else a ValueError saying which are."""
    supported = supported_opsets()
    if opset not in supported:
        raise ValueError(
            f"ONNX opset {opset} is not supported; use one of {list(supported)} "
            f"(the in-graph random generator needs BitwiseXor, opset >= {MIN_OPSET})"
        )
    return opset


def _convert(concrete: Any, opset: int, fast: bool, optimize: bool) -> Any:
    """tf2onnx.convert.from_function's steps, with our optimizer list and error handling."""
    from tf2onnx import convert, tf_loader

    from export import _compat

    input_names = [t.name for t in concrete.inputs if t.dtype != tf.resource]
    output_names = [t.name for t in concrete.outputs if t.dtype != tf.resource]
    tensors_to_rename = convert.tensor_names_from_structed(concrete, input_names, output_names)
    optimizers = None
    if fast:
        available = _compat.tf2onnx_optimizers()  # tf2onnx has no public list
        optimizers = {name: available[name] for name in _OPTIMIZERS if optimize and name in available}
    previous = os.environ.get(_CATCH_ERRORS_ENV)
    if fast:
        os.environ[_CATCH_ERRORS_ENV] = "false"
    try:
        with tf.device("/cpu:0"):
            frozen = tf_loader.from_function(concrete, input_names, output_names)
            model_proto, _ = _compat.tf2onnx_convert_common(  # from_function without its optimizer list
                frozen,
                name=concrete.name,
                continue_on_error=False,  # an unsupported op is an error, not a broken file
                opset=opset,
                input_names=input_names,
                output_names=output_names,
                tensors_to_rename=tensors_to_rename,
                optimizers=optimizers,
            )
    finally:
        if fast:
            if previous is None:
                os.environ.pop(_CATCH_ERRORS_ENV, None)
            else:
                os.environ[_CATCH_ERRORS_ENV] = previous
    return model_proto


def convert_endpoint(function: Any, opset: int, optimize: bool = True) -> Any:
    """Convert one endpoint (a `tf.function` with an input signature, or a concrete function).

    Args:
        function: the endpoint; input names = its TensorSpec names, outputs = its dict keys.
        opset: ONNX opset, see `supported_opsets`.
        optimize: run tf2onnx's graph optimizers (see `_OPTIMIZERS`). False converts about
            3x faster; onnxruntime's own graph optimizations then do most of the work
            (measured: ~5-10% more time per Langevin step on the digits network).

    Returns:
        onnx.ModelProto.

    Raises:
        ConversionError: tf2onnx failed (e.g. an op it cannot convert).
    """
    import tf2onnx  # noqa: F401 (fail early with ImportError if missing)

    check_opset(opset)
    concrete = function.get_concrete_function() if hasattr(function, "get_concrete_function") else function
    errors = []
    for fast in (True, False):
        try:
            model_proto = _convert(concrete, opset, fast, optimize)
        except Exception as error:  # tf2onnx raises many types
            errors.append(f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
            continue
        hoist_loop_invariants(model_proto)
        merge_duplicate_nodes(model_proto)
        return model_proto
    raise ConversionError(f"tf2onnx could not convert {concrete.name}: {errors[-1]}")


# ---------------------------------------------------------------------------
# Composition: sample = sample_levels(initial_images(seeds), seeds, 0, L, ...).
# ---------------------------------------------------------------------------


def _graphs(graph: Any) -> Iterator[Any]:
    """The graph and every subgraph (Loop / If bodies), depth first."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from _graphs(attribute.g)
            for subgraph in attribute.graphs:
                yield from _graphs(subgraph)


def _rename_everywhere(graph: Any, old: str, new: str) -> None:
    """Rename tensor `old` to `new` in the graph and all subgraphs (outer-scope references too)."""
    for g in _graphs(graph):
        for node in g.node:
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = new
            for i, name in enumerate(node.output):
                if name == old:
                    node.output[i] = new
        for collection in (g.input, g.output, g.value_info):
            for value in collection:
                if value.name == old:
                    value.name = new
        for initializer in g.initializer:
            if initializer.name == old:
                initializer.name = new


def compose_full_run(initial_model: Any, levels_model: Any, num_levels: int, output_name: str = "images") -> Any:
    """`levels_model` over all levels [0, L), started from `initial_model`'s images.

    Args:
        initial_model: the `initial_images` ONNX model (seeds -> images).
        levels_model: the `sample_levels` or `inpaint_levels` ONNX model (images, ..., seeds,
            first_level, last_level, ... -> images_out).
        num_levels: L.
        output_name: name of the composed model's output.

    Returns:
        A new onnx.ModelProto with the levels model's inputs minus images/first_level/last_level.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = copy.deepcopy(levels_model)
    graph = model.graph
    (levels_output,) = [o.name for o in graph.output]
    start_name = f"{_COMPOSED_PREFIX}start_images"
    _rename_everywhere(graph, "images", start_name)  # the levels model's input
    _rename_everywhere(graph, levels_output, output_name)
    fixed = {"first_level": 0, "last_level": int(num_levels)}
    kept_inputs = [value for value in graph.input if value.name not in (start_name, *fixed)]
    del graph.input[:]
    graph.input.extend(kept_inputs)

    start = copy.deepcopy(initial_model.graph)
    (start_output,) = [o.name for o in start.output]
    inputs = {value.name for value in start.input}
    internal = {name for node in start.node for name in node.output} | {i.name for i in start.initializer}
    for name in internal - inputs:
        _rename_everywhere(start, name, start_name if name == start_output else _COMPOSED_PREFIX + name)
    for node in start.node:
        node.name = _COMPOSED_PREFIX + node.name
    constants = [
        helper.make_node("Constant", [], [name], name=f"{_COMPOSED_PREFIX}{name}", value=numpy_helper.from_array(np.array(value, np.int32), name))
        for name, value in fixed.items()
    ]
    nodes = [*constants, *start.node, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    graph.initializer.extend(start.initializer)
    graph.value_info.extend(start.value_info)
    merge_duplicate_nodes(model)  # constants the two parts share
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------------------
# Loop invariants: weights as outer-scope constants, not loop-carried values.
# ---------------------------------------------------------------------------


def hoist_loop_invariants(model_proto: Any) -> int:
    """Stop passing unchanged values through `Loop` iterations; read them from the outer scope.

    A `tf.while_loop` captures the network's variables as loop inputs, and tf2onnx
    turns every one into a loop-carried value that the body hands back unchanged.
    onnxruntime must then treat ~180 weight tensors as dynamic: it cannot constant-fold
    their NHWC->NCHW transposes, pre-pack the convolution kernels or use its blocked
    (NCHWc) convolutions, and copies them every iteration. ONNX lets a body read any
    outer-scope value by name, so a loop-carried value whose body output is its body
    input (or an Identity of it) is removed from the carried list and referenced
    directly. The Loop's results for removed values (equal to their inputs) are
    renamed to those inputs outside the loop. Edits in place, every Loop at any depth.

    Returns:
        The number of loop-carried values removed.
    """
    removed = 0
    for graph in list(_graphs(model_proto.graph)):
        outer_outputs = {value.name for value in graph.output}
        for node in graph.node:
            if node.op_type != "Loop":
                continue
            (body,) = [attribute.g for attribute in node.attribute if attribute.name == "body"]
            producers = {name: inner for inner in body.node for name in inner.output}
            defined_in_body = set(producers) | {value.name for value in body.input} | {i.name for i in body.initializer}
            num_carried = len(body.input) - 2
            for j in reversed(range(num_carried)):
                inner_in, inner_out = body.input[2 + j].name, body.output[1 + j].name
                source = producers.get(inner_out)
                passes_through = inner_out == inner_in or (
                    source is not None and source.op_type == "Identity" and source.input[0] == inner_in
                )
                outer = node.input[2 + j] if len(node.input) > 2 + j else ""
                result = node.output[j] if len(node.output) > j else ""
                if not passes_through or not outer or outer in defined_in_body or result in outer_outputs:
                    continue
                del body.output[1 + j]
                del body.input[2 + j]
                if source is not None and source.op_type == "Identity" and inner_out != inner_in:
                    still_used = any(inner_out in other.input for g in _graphs(body) for other in g.node)
                    if not still_used:
                        body.node.remove(source)
                for g in _graphs(body):
                    for inner in g.node:
                        for i, name in enumerate(inner.input):
                            if name == inner_in:
                                inner.input[i] = outer
                del node.input[2 + j]
                del node.output[j]
                if result:
                    for other in graph.node:
                        for i, name in enumerate(other.input):
                            if name == result:
                                other.input[i] = outer
                removed += 1
    return removed


_NEVER_MERGED_PREFIXES = ("Random", "Multinomial", "Dropout")  # ops whose copies differ


def _value_key(initializer: Any) -> tuple:
    """(dtype, shape, SHA-256 of the values): equal keys = equal constants, without keeping a copy."""
    import hashlib

    from onnx import numpy_helper

    digest = hashlib.sha256(numpy_helper.to_array(initializer).tobytes()).digest()
    return initializer.data_type, tuple(initializer.dims), digest


def _merge_in_graph(graph: Any, alias: dict[str, str]) -> int:
    """One graph of `merge_duplicate_nodes`, then its subgraphs; `alias` maps removed names to kept ones."""
    alias = dict(alias)
    interface = {value.name for value in graph.input} | {value.name for value in graph.output}
    kept_initializers, by_value = [], {}
    for initializer in graph.initializer:
        key = _value_key(initializer)
        if initializer.name not in interface and key in by_value:
            alias[initializer.name] = by_value[key]
        else:
            by_value.setdefault(key, initializer.name)
            kept_initializers.append(initializer)
    removed = len(graph.initializer) - len(kept_initializers)
    outputs = {value.name for value in graph.output}  # their producers keep their names
    seen: dict[tuple, Any] = {}
    kept_nodes = []
    for node in graph.node:  # ONNX keeps nodes in topological order
        for i, name in enumerate(node.input):
            node.input[i] = alias.get(name, name)
        subgraphs = [a.g for a in node.attribute if a.HasField("g")] + [g for a in node.attribute for g in a.graphs]
        for subgraph in subgraphs:
            removed += _merge_in_graph(subgraph, alias)
        if subgraphs or node.op_type.startswith(_NEVER_MERGED_PREFIXES) or set(node.output) & outputs:
            kept_nodes.append(node)
            continue
        attributes = tuple(a.SerializeToString() for a in sorted(node.attribute, key=lambda a: a.name))
        key = (node.domain, node.op_type, tuple(node.input), attributes, len(node.output))
        first = seen.get(key)
        if first is None:
            seen[key] = node
            kept_nodes.append(node)
            continue
        for duplicate, original in zip(node.output, first.output, strict=True):
            alias[duplicate] = original
        removed += 1
    kept_info = [value for value in graph.value_info if value.name not in alias]
    del graph.initializer[:]
    graph.initializer.extend(kept_initializers)
    del graph.node[:]
    graph.node.extend(kept_nodes)
    del graph.value_info[:]
    graph.value_info.extend(kept_info)
    return removed


def merge_duplicate_nodes(model_proto: Any) -> int:
    """Common-subexpression elimination in every graph, `Loop` bodies included.

    tf2onnx merges duplicates in the main graph only. Inside the sampler's loop body
    each of the ~70 CIN++ layers keeps its own copy of the same small index
    computation (Keras `ops.take`'s negative-index handling: Less, Not, Cast, ...),
    each reading its own copy of the same constant. Initializers with equal values
    are merged first, then nodes with the same op, attributes and inputs, in
    topological order (so whole duplicated chains collapse). Random ops and nodes
    with subgraphs are never merged. Edits in place.

    Returns:
        The number of nodes and initializers removed.
    """
    return _merge_in_graph(model_proto.graph, {})


# ---------------------------------------------------------------------------
# Metadata and files.
# ---------------------------------------------------------------------------


def set_metadata(model_proto: Any, key: str, value: str) -> None:
    """Set (or replace) one `metadata_props` entry of an ONNX model."""
    for entry in model_proto.metadata_props:
        if entry.key == key:
            entry.value = value
            return
    entry = model_proto.metadata_props.add()
    entry.key, entry.value = key, value


def save(model_proto: Any, path: str | os.PathLike[str]) -> int:
    """Write the ONNX file; returns its size in bytes."""
    data = model_proto.SerializeToString()
    with open(path, "wb") as f:
        f.write(data)
    return len(data)
