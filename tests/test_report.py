"""benchmarks/report.py: REPORT.md from benchmark JSON (goals, tables, plot), without running them."""

from __future__ import annotations

import json

from benchmarks import report


def _train_row(config, batch, precision, seconds):
    return {
        "config": config, "batch_size": batch, "precision": precision, "median_step_s": seconds,
        "images_per_s": batch / seconds, "achieved_gflops": 50.0, "trace_s": 20.0, "warmup_s": 10.0,
    }  # fmt: skip


def _sampling_row(config, runtime, batch, score, step):
    return {
        "config": config, "runtime": runtime, "batch": batch, "score_seconds": score, "step_seconds": step,
        "step_seconds_per_image": step / batch, "loop_overhead": step / score - 1.0,
    }  # fmt: skip


def test_report_states_each_goal_and_whether_it_is_met(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    train = {"rows": [
        _train_row("mnist", 128, "float32", 12.8),  # 10 img/s < 13.7: missed
        _train_row("mnist", 128, "mixed_bfloat16", 6.4),  # 20 img/s >= 1.5 x 13.7 = 20.55? no: missed
        _train_row("mnist", 32, "float32", 2.0),  # 16 img/s >= 13.5: met
        {"config": "mnist", "batch_size": 32, "precision": "float32_xla", "error": "killed at 20 GB"},
    ]}  # fmt: skip
    (results / "train_step_mnist.json").write_text(json.dumps(train))
    sampling = {"rows": [
        _sampling_row("mnist", "onnxruntime", 64, 1.0, 1.05),  # +5%: met; 1.63 / 1.05 = 1.55x: met
        _sampling_row("mnist", "tf.function", 16, 0.40, 0.48),  # +20%: missed; 0.875x: missed
        _sampling_row("mnist", "SavedModel bf16", 64, 0.9, 0.92),  # 1.77x >= 1.6: met
        _sampling_row("digits", "eager TF", 16, 0.3, 0.3),  # eager: no goal
    ]}  # fmt: skip
    (results / "sampling.json").write_text(json.dumps(sampling))
    out = tmp_path / "REPORT.md"

    assert report.main(["--skip-run", "--results", str(results), "--report", str(out)]) == 0

    text = out.read_text()
    assert (tmp_path / "REPORT_steps.png").stat().st_size > 1000
    goals = {
        line.split("|")[1].strip() + " / " + line.split("|")[2].strip(): line.split("|")[5].strip()
        for line in text.splitlines()
        if line.startswith("| ") and line.count("|") == 6 and "goal" not in line
    }
    assert goals["training float32 >= 1x PyTorch / mnist batch 128"] == "**no**"
    assert goals["training mixed_bfloat16 >= 1.5x PyTorch / mnist batch 128"] == "**no**"
    assert goals["training float32 >= 1x PyTorch / mnist batch 32"] == "yes"
    assert goals["in-graph loop overhead < 10% / mnist onnxruntime batch 64"] == "yes"
    assert goals["in-graph loop overhead < 10% / mnist tf.function batch 16"] == "**no**"
    assert goals["Langevin step >= 1.2x faster than PyTorch / mnist onnxruntime batch 64"] == "yes"
    assert goals["Langevin step >= 1.2x faster than PyTorch / mnist tf.function batch 16"] == "**no**"
    assert goals["Langevin step >= 1.6x faster than PyTorch / mnist SavedModel bf16 batch 64"] == "yes"
    assert not any("eager" in key for key in goals)
    assert "error: killed at 20 GB" in text  # a failed row is shown, not dropped
    assert "## Machine" in text and "cpu_count" in text and "% of 200 GFLOP/s" in text
    assert "Not run" not in text or "train_step_cifar10" not in text
