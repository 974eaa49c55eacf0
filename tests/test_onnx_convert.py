"""ONNX graph surgery of the exporter: loop invariants hoisted out of `Loop` bodies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from export.onnx_convert import hoist_loop_invariants, merge_duplicate_nodes


def _loop_model() -> onnx.ModelProto:
    """x_{k+1} = x_k @ W + b for `trips` iterations, W and b carried through the loop.

    W passes through under its own name (as tf2onnx writes captured variables), b via
    an Identity, x changes; the Loop's final W is also read after the loop.
    """
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(3, 3)).astype(np.float32)
    bias = rng.normal(size=(3,)).astype(np.float32)
    body = helper.make_graph(
        [
            helper.make_node("MatMul", ["x_in", "w_in"], ["xw"]),
            helper.make_node("Add", ["xw", "b_in"], ["x_out"]),
            helper.make_node("Identity", ["b_in"], ["b_out"]),
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x_in", TensorProto.FLOAT, ["n", 3]),
            helper.make_tensor_value_info("w_in", TensorProto.FLOAT, [3, 3]),
            helper.make_tensor_value_info("b_in", TensorProto.FLOAT, [3]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x_out", TensorProto.FLOAT, ["n", 3]),
            helper.make_tensor_value_info("w_in", TensorProto.FLOAT, [3, 3]),
            helper.make_tensor_value_info("b_out", TensorProto.FLOAT, [3]),
        ],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Constant", [], ["keep_going"], value=numpy_helper.from_array(np.array(True), "t")),
            helper.make_node(
                "Loop", ["trips", "keep_going", "x0", "W", "B"], ["x_final", "w_final", "b_final"], body=body
            ),
            helper.make_node("ReduceSum", ["w_final"], ["w_sum"], keepdims=0),
        ],
        "loop_model",
        [
            helper.make_tensor_value_info("trips", TensorProto.INT64, []),
            helper.make_tensor_value_info("x0", TensorProto.FLOAT, ["n", 3]),
        ],
        [
            helper.make_tensor_value_info("x_final", TensorProto.FLOAT, ["n", 3]),
            helper.make_tensor_value_info("w_sum", TensorProto.FLOAT, []),
        ],
        initializer=[numpy_helper.from_array(weight, "W"), numpy_helper.from_array(bias, "B")],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def test_hoisting_removes_pass_through_values_and_keeps_the_results():
    model = _loop_model()
    feeds = {"trips": np.array(4, np.int64), "x0": np.random.default_rng(1).normal(size=(5, 3)).astype(np.float32)}
    before = _run(model, feeds)

    assert hoist_loop_invariants(model) == 2  # W (same name) and B (via Identity); x changes
    onnx.checker.check_model(model, full_check=True)
    (loop,) = [node for node in model.graph.node if node.op_type == "Loop"]
    body = loop.attribute[0].g
    assert list(loop.input) == ["trips", "keep_going", "x0"]
    assert [value.name for value in body.input] == ["iteration", "cond_in", "x_in"]
    assert [value.name for value in body.output] == ["cond_out", "x_out"]
    body_reads = {name for node in body.node for name in node.input}
    assert {"W", "B"} <= body_reads  # the outer-scope initializers, read directly
    assert not any(node.op_type == "Identity" and node.input[0] == "b_in" for node in body.node)
    (reduce,) = [node for node in model.graph.node if node.op_type == "ReduceSum"]
    assert list(reduce.input) == ["W"]  # the loop's final W is W itself

    after = _run(model, feeds)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    assert hoist_loop_invariants(model) == 0  # idempotent


def test_values_that_change_or_leave_the_graph_stay_carried():
    model = _loop_model()
    # Make the loop's final W a graph output: it must stay a Loop output.
    model.graph.output.append(helper.make_tensor_value_info("w_final", TensorProto.FLOAT, [3, 3]))
    assert hoist_loop_invariants(model) == 1  # only B
    (loop,) = [node for node in model.graph.node if node.op_type == "Loop"]
    assert list(loop.input) == ["trips", "keep_going", "x0", "W"]
    onnx.checker.check_model(model, full_check=True)


def _loops(graph):
    for node in graph.node:
        if node.op_type == "Loop":
            yield graph, node
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from _loops(attribute.g)


@pytest.mark.parametrize("name", ["sample", "sample_levels", "inpaint_levels"])
def test_exported_loops_carry_only_the_sampler_state(digits_export_dir, name):
    """No network weight rides through the exported Loop (onnxruntime could not pre-pack it)."""
    model = onnx.load(Path(digits_export_dir) / "onnx" / f"{name}.onnx")
    loops = list(_loops(model.graph))
    assert loops, f"{name}.onnx has no Loop"
    for _, loop in loops:
        (body,) = [attribute.g for attribute in loop.attribute if attribute.name == "body"]
        carried_in = [value.name for value in body.input[2:]]
        carried_out = [value.name for value in body.output[1:1 + len(carried_in)]]
        unchanged = [name for name, out in zip(carried_in, carried_out, strict=True) if name == out]
        assert not unchanged, f"{len(unchanged)} values pass unchanged through the loop of {name}.onnx"
        assert len(carried_in) < 20, f"{len(carried_in)} loop-carried values in {name}.onnx"
        conv_weights = [node.input[1] for node in body.node if node.op_type == "Conv"]
        assert conv_weights and not set(conv_weights) & set(carried_in)
    assert merge_duplicate_nodes(model) == 0  # the exporter already merged every duplicate


def _duplicated_body_model() -> onnx.ModelProto:
    """A Loop whose body computes the same index chain twice from two equal constants.

    x_{k+1} = x_k * (cast(not(i < zero_a)) + cast(not(i < zero_b))) with i the iteration;
    the two chains are identical once zero_a and zero_b are seen to be equal.
    """
    chain = []
    for tag in ("a", "b"):
        chain += [
            helper.make_node("Less", ["iteration_f", f"zero_{tag}"], [f"less_{tag}"]),
            helper.make_node("Not", [f"less_{tag}"], [f"not_{tag}"]),
            helper.make_node("Cast", [f"not_{tag}"], [f"cast_{tag}"], to=TensorProto.FLOAT),
        ]
    body = helper.make_graph(
        [
            helper.make_node("Cast", ["iteration"], ["iteration_f"], to=TensorProto.FLOAT),
            *chain,
            helper.make_node("Add", ["cast_a", "cast_b"], ["factor"]),
            helper.make_node("Mul", ["x_in", "factor"], ["x_out"]),
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("iteration", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x_in", TensorProto.FLOAT, ["n"]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x_out", TensorProto.FLOAT, ["n"]),
        ],
        initializer=[
            numpy_helper.from_array(np.array(0.0, np.float32), "zero_a"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero_b"),
        ],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "", "x0"], ["x_final"], body=body)],
        "cse_model",
        [helper.make_tensor_value_info("trips", TensorProto.INT64, []),
         helper.make_tensor_value_info("x0", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("x_final", TensorProto.FLOAT, ["n"])],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_duplicate_chains_inside_a_loop_body_are_merged():
    model = _duplicated_body_model()
    feeds = {"trips": np.array(3, np.int64), "x0": np.array([1.0, -2.0, 0.5], np.float32)}
    before = _run(model, feeds)[0]
    np.testing.assert_array_equal(before, feeds["x0"] * 8)  # factor 2 per iteration

    assert merge_duplicate_nodes(model) == 4  # zero_b, then Less, Not and Cast of chain b
    onnx.checker.check_model(model, full_check=True)
    body = model.graph.node[0].attribute[0].g
    assert [i.name for i in body.initializer] == ["zero_a"]
    assert sorted(node.op_type for node in body.node) == ["Add", "Cast", "Cast", "Identity", "Less", "Mul", "Not"]
    (add,) = [node for node in body.node if node.op_type == "Add"]
    assert list(add.input) == ["cast_a", "cast_a"]
    np.testing.assert_array_equal(_run(model, feeds)[0], before)
    assert merge_duplicate_nodes(model) == 0  # idempotent


# ---------------------------------------------------------------------------
# Private APIs of tf2onnx and Keras: one adapter, pinned to the tested versions.
# ---------------------------------------------------------------------------


def test_private_apis_are_those_of_the_tested_versions():
    """Fails on a tf2onnx or Keras upgrade with a message naming what to check and update."""
    from export import _compat

    problems = _compat.problems()
    assert not problems, "\n".join(problems)
    assert set(_compat.tf2onnx_optimizers()) >= {"optimize_transpose", "fold_constants", "merge_duplication"}


def test_no_private_name_of_another_library_outside_the_adapter():
    root = Path(__file__).resolve().parents[1]
    private = ("._get_optimizers", "._convert_common", "._tf_trackable", '"_tf_trackable"')
    offenders = [
        f"{path.relative_to(root)}: {name}"
        for folder in ("ncsn_tf", "export", "export_format", "desktop", "benchmarks")
        for path in (root / folder).rglob("*.py")
        if path != root / "export" / "_compat.py"
        for name in private
        if name in path.read_text()
    ]
    assert not offenders, f"use export/_compat.py instead: {offenders}"
