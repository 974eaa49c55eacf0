"""The non-Python example: examples/node/sample.mjs runs sample.onnx with onnxruntime-node."""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from export import runtime

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "node")


@pytest.fixture(scope="module")
def node_example():
    """The example folder with onnxruntime-node installed by the README's test command (no download here)."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed; the Node.js example is not tested here")
    if not os.path.isdir(os.path.join(EXAMPLE, "node_modules", "onnxruntime-node")):
        # --ignore-scripts: the package's install script downloads extra binaries (docs/pitfalls.md, "Node.js").
        missing = (
            "onnxruntime-node is not installed for examples/node: run the README's test command "
            "(npm install --prefix examples/node --ignore-scripts ...)"
        )
        if os.environ.get("CI"):
            pytest.fail(missing)  # CI runs the README command, which installs it: missing means a broken set-up
        pytest.skip(missing)
    return EXAMPLE


@pytest.mark.parametrize("which", ["digits", "toy"])
def test_node_example_matches_python_onnxruntime(node_example, digits_export_dir, toy_export_dir, which):
    folder = digits_export_dir if which == "digits" else toy_export_dir
    seeds, steps = [5, 0, 2**31 - 1], 3
    completed = subprocess.run(
        ["node", "sample.mjs", folder, "--json", "--seeds", ",".join(map(str, seeds)), "--steps-per-level", str(steps)],
        cwd=node_example, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout)
    from_node = np.asarray(result["data"], np.float32).reshape(result["dims"])
    sampler = runtime.load(folder, "onnxruntime")
    expected = sampler.sample(seeds, steps_per_level=steps)
    assert from_node.shape == expected.shape
    np.testing.assert_allclose(from_node, expected, rtol=0, atol=1e-5 * max(1.0, np.abs(expected).max()))
