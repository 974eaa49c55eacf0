"""benchmarks/sampling.py --quick runs every runtime (eager, tf.function, SavedModel, onnxruntime)."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sampling_benchmark_quick(digits_workdir, digits_export_dir, tmp_path):
    out = tmp_path / "sampling.json"
    completed = subprocess.run(
        [
            sys.executable, os.path.join(ROOT, "benchmarks", "sampling.py"), "--quick",
            "--workdir", str(digits_workdir), "--export-dir", str(digits_export_dir), "--out", str(out),
        ],
        capture_output=True, text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert {row["runtime"] for row in rows} == {"eager TF", "tf.function", "SavedModel", "onnxruntime"}
    for row in rows:
        assert row["score_seconds"] > 0 and row["step_seconds"] > 0 and row["steps"] == 2
    assert "overhead" in completed.stdout and "onnxruntime" in completed.stdout
