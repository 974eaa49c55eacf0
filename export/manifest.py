"""The export manifest (docs/DESIGN.md, "The export contract").

One JSON object that tells a runtime everything it needs without guessing: image
shape, value range, sigma ladder, sampler defaults, endpoint signatures, files,
versions, and the verification result. It is written as `manifest.json`, returned
by the SavedModel's `manifest` signature (a string constant), stored as the
SavedModel asset `assets/manifest.json`, and in every ONNX file's `metadata_props`
under `ncsn_manifest`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import tensorflow as tf

from export.builder import ENDPOINTS, SamplerSpec, input_specs, output_specs
from export.runtime import MANIFEST_FILE
from ncsn_tf.configs import Config, to_dict

FORMAT = "ncsn-tf-export"
FORMAT_VERSION = 1
SAVEDMODEL_DIR = "savedmodel"
ONNX_DIR = "onnx"
FORMATS = ("savedmodel", "onnx")


def versions() -> dict[str, str]:
    """Versions of the project and the frameworks that wrote an export."""
    import keras

    import ncsn_tf

    found = {"ncsn_tf": ncsn_tf.__version__, "tensorflow": tf.__version__, "keras": keras.__version__}
    for module in ("tf2onnx", "onnx", "onnxruntime"):
        try:
            found[module] = __import__(module).__version__
        except ImportError:
            pass
    return found


def _spec_entry(spec: tf.TensorSpec) -> dict[str, Any]:
    return {"shape": [-1 if size is None else int(size) for size in spec.shape], "dtype": spec.dtype.name}


def endpoint_table(example_shape: tuple[int, ...]) -> dict[str, Any]:
    """endpoint -> {"inputs": {name: {shape, dtype}}, "outputs": {...}}; -1 = any size (batch)."""
    inputs, outputs = input_specs(example_shape), output_specs(example_shape)
    return {
        name: {
            "inputs": {key: _spec_entry(spec) for key, spec in inputs[name].items()},
            "outputs": {key: _spec_entry(spec) for key, spec in outputs[name].items()},
        }
        for name in ENDPOINTS
    }


def build_manifest(
    spec: SamplerSpec,
    config: Config,
    *,
    step: int,
    ema: bool,
    score_model: str,
    formats: tuple[str, ...],
    opset: int | None,
    verification: dict[str, Any],
    precision: str = "float32",
) -> dict[str, Any]:
    """The manifest of one export.

    Args:
        spec: shape, ladder and sampler defaults.
        config: the training config (stored whole).
        step: training step of the exported weights.
        ema: whether the weights are the EMA weights.
        score_model: class name of the score model (e.g. CondRefineNetDilated).
        formats: the formats written, a subset of ("savedmodel", "onnx").
        opset: the ONNX opset (None without ONNX).
        verification: the verification block (tolerance, and the measured numbers once known).
        precision: compute dtype of the score network ("float32" or "bfloat16"); every
            input and output of every endpoint is float32/int32/bool either way.

    Returns:
        The manifest as a JSON-ready dict.
    """
    images = len(spec.example_shape) == 3
    files: dict[str, Any] = {"savedmodel": SAVEDMODEL_DIR if "savedmodel" in formats else None, "onnx": {}}
    if "onnx" in formats:
        files["onnx"] = {name: f"{ONNX_DIR}/{name}.onnx" for name in ENDPOINTS}
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": spec.name,
        "dataset": spec.dataset,
        "image_shape": list(spec.example_shape),
        "channels": spec.example_shape[-1] if images else None,
        "value_range": list(spec.value_range),
        "num_levels": spec.num_levels,
        "sigmas": list(spec.sigmas),
        "sampler": {
            "steps_per_level": spec.steps_per_level,
            "epsilon": spec.epsilon,
            "convention": spec.convention,
            "denoise": spec.denoise,
        },
        "endpoints": endpoint_table(spec.example_shape),
        "files": files,
        "onnx_opset": opset if "onnx" in formats else None,
        "score_model": score_model,
        "precision": precision,
        "checkpoint": {"step": int(step), "ema": bool(ema)},
        "config": to_dict(config),
        "versions": versions(),
        "verification": verification,
    }


def to_text(manifest: dict[str, Any]) -> str:
    """The manifest as indented JSON text (what every copy holds)."""
    return json.dumps(manifest, indent=2) + "\n"


def write(manifest: dict[str, Any], folder: str | os.PathLike[str]) -> str:
    """Write `folder/manifest.json`; returns its path."""
    path = os.path.join(os.fspath(folder), MANIFEST_FILE)
    with open(path, "w", encoding="utf-8") as f:
        f.write(to_text(manifest))
    return path
