"""The non-Python example: examples/node/sample.mjs runs each sampler's whole-run ONNX graph with onnxruntime-node."""

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


# (export, sampler, command-line settings, the same settings for Python)
CASES = {
    "digits": ("digits", None, ["--steps-per-level", "3"], {"steps_per_level": 3}),
    "toy": ("toy", None, ["--steps-per-level", "3"], {"steps_per_level": 3}),
    "digits-flow": ("digits", "probability_flow", ["--order", "1"], {"order": 1}),
    "digits-pc": ("digits", "predictor_corrector", [], {}),  # the export's defaults
    "toy-pc": ("toy", "predictor_corrector", ["--corrector-steps", "1", "--snr", "0.2"], {"corrector_steps": 1, "snr": 0.2}),
    "toy-heun": ("toy", "probability_flow", [], {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_node_example_matches_python_onnxruntime(node_example, digits_export_dir, toy_export_dir, case):
    which, sampler_name, flags, settings = CASES[case]
    folder = digits_export_dir if which == "digits" else toy_export_dir
    seeds = [5, 0, 2**31 - 1]
    choice = ["--sampler", sampler_name] if sampler_name else []
    completed = subprocess.run(
        ["node", "sample.mjs", folder, "--json", "--seeds", ",".join(map(str, seeds)), *choice, *flags],
        cwd=node_example, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout)
    assert result["sampler"] == (sampler_name or "annealed_langevin")
    from_node = np.asarray(result["data"], np.float32).reshape(result["dims"])
    sampler = runtime.load(folder, "onnxruntime")
    expected = sampler.sample(seeds, **({"sampler": sampler_name} if sampler_name else {}), **settings)
    assert from_node.shape == expected.shape
    np.testing.assert_allclose(from_node, expected, rtol=0, atol=1e-5 * max(1.0, np.abs(expected).max()))


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--sampler", "euler_maruyama"], "has no euler_maruyama sampler in ONNX; it has: annealed_langevin, predictor_corrector"),
        (["--sampler", "probability_flow", "--order", "3"], "order must be 1 (Euler) or 2 (Heun), got 3"),
        (["--sampler", "probability_flow", "--snr", "0.2"], "snr is not a setting of probability_flow"),
    ],
)  # fmt: skip
def test_node_example_refuses_bad_sampler_choices_in_one_line(node_example, toy_export_dir, flags, message):
    completed = subprocess.run(
        ["node", "sample.mjs", toy_export_dir, "--json", *flags], cwd=node_example, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert completed.returncode == 1 and completed.stdout == ""
    assert message in completed.stderr and len(completed.stderr.strip().splitlines()) == 1, completed.stderr
