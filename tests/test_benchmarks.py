"""Smoke test of the training-step benchmark: `--quick` runs end to end and writes its JSON."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

from benchmarks.train_step import conv_flops

ROOT = pathlib.Path(__file__).resolve().parents[1]

ROW_FIELDS = {
    "config",
    "image_shape",
    "parameters",
    "batch_size",
    "precision",
    "jit_compile",
    "trace_s",
    "warmup_s",
    "step_s",
    "median_step_s",
    "images_per_s",
    "best_step_s",
    "conv_gflop_per_step",
    "achieved_gflops",
    "final_loss",
    "peak_rss_mb",
}


def test_quick_benchmark_writes_expected_json(tmp_path: pathlib.Path) -> None:
    output = tmp_path / "train_step.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks.train_step", "--quick", "--output", str(output)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "img/s" in completed.stdout  # the table

    report = json.loads(output.read_text())
    assert report["benchmark"] == "train_step" and report["peak_gflops_fp32"] == 200.0
    assert {"machine", "arguments", "pytorch_reference", "rows"} <= set(report)
    (row,) = report["rows"]
    assert ROW_FIELDS <= set(row), ROW_FIELDS - set(row)
    assert row["batch_size"] == 2 and row["precision"] == "float32" and row["jit_compile"] is False
    assert row["image_shape"] == [8, 8, 1] and len(row["step_s"]) == 1
    assert row["images_per_s"] == 2 / row["median_step_s"]
    assert row["conv_gflop_per_step"] > 0 and row["peak_rss_mb"] > 100
    assert row["final_loss"] == row["final_loss"]  # not NaN


def test_conv_flops_counts_forward_and_gradient_convs() -> None:
    import tensorflow as tf

    filters = tf.Variable(tf.ones((3, 3, 2, 5)))

    @tf.function
    def step(images: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.nn.conv2d(images, filters, strides=1, padding="SAME"))
        return tape.gradient(loss, filters)

    graph = step.get_concrete_function(tf.TensorSpec((4, 6, 6, 2))).graph
    forward = 2 * (4 * 6 * 6 * 5) * (3 * 3 * 2)  # 2 * output elements * kh * kw * C_in
    types = [op.type for op in graph.get_operations() if op.type.startswith("Conv2D")]
    assert sorted(types) == ["Conv2D", "Conv2DBackpropFilter", "Conv2DBackpropInput"]
    # The input gradient is in the graph but unused (pruned at run time): forward + filter gradient.
    assert conv_flops(graph) == 2 * forward
