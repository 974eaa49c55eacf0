"""The export manifest (docs/DESIGN.md, "The export contract"), read strictly as data.

The manifest says everything a runtime needs (image shape, sigma ladder, sampler
defaults, which files hold which endpoint), so the app never guesses. It comes
from `manifest.json`, from a SavedModel's `assets/manifest.json`, or from an ONNX
file's `metadata_props["ncsn_manifest"]`; all three are parsed by `parse_manifest`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from desktop.backend.errors import ModelError

MANIFEST_FORMAT = "ncsn-tf-export"
SUPPORTED_FORMAT_VERSION = 1
# The endpoints the app drives chunk by chunk (progress, previews, cancel).
SAMPLING_ENDPOINTS = ("initial_images", "sample_levels")
INPAINTING_ENDPOINTS = ("initial_images", "inpaint_levels")
# A manifest is a few kB; anything far larger is not one.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class SamplerDefaults:
    """Sampler settings the model was exported with (manifest `sampler`)."""

    steps_per_level: int
    epsilon: float
    convention: str  # "code" (ermongroup/ncsn) or "paper" (Algorithm 1 as printed)
    denoise: bool


@dataclass(frozen=True)
class Manifest:
    """The validated facts of one export.

    Attributes:
        name: export name.
        dataset: data set the model was trained on.
        image_shape: (H, W, C) of one image.
        value_range: (low, high) of the data range, normally (0, 1).
        sigmas: the noise ladder, sigma_1 (largest) first; len = num_levels.
        sampler: the exported sampler defaults.
        onnx_files: endpoint -> path relative to the export folder.
        savedmodel_dir: SavedModel folder relative to the export folder, or None.
        tolerance: the exporter's stated ONNX-vs-SavedModel tolerance, or None.
        checkpoint_step: training step of the exported weights, or None.
        raw: the whole manifest as parsed JSON (shown to users, never executed).
    """

    name: str
    dataset: str
    image_shape: tuple[int, int, int]
    value_range: tuple[float, float]
    sigmas: tuple[float, ...]
    sampler: SamplerDefaults
    onnx_files: dict[str, str] = field(default_factory=dict)
    savedmodel_dir: str | None = None
    tolerance: float | None = None
    checkpoint_step: int | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def num_levels(self) -> int:
        return len(self.sigmas)

    @property
    def height(self) -> int:
        return self.image_shape[0]

    @property
    def width(self) -> int:
        return self.image_shape[1]

    @property
    def channels(self) -> int:
        return self.image_shape[2]


def _require(data: dict[str, Any], key: str, kinds: type | tuple[type, ...], source: str) -> Any:
    """data[key], checked to be of `kinds` (bool is never accepted as a number)."""
    if key not in data:
        raise ModelError(f"manifest of {source} lacks {key!r}; re-export the model with the current exporter")
    value = data[key]
    kinds_tuple = kinds if isinstance(kinds, tuple) else (kinds,)
    if isinstance(value, bool) and bool not in kinds_tuple:
        raise ModelError(f"manifest of {source}: {key!r} must be {kinds_tuple[0].__name__}, got a boolean")
    if not isinstance(value, kinds_tuple):
        raise ModelError(f"manifest of {source}: {key!r} must be {kinds_tuple[0].__name__}, got {type(value).__name__}")
    return value


def _finite(value: Any, key: str, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelError(f"manifest of {source}: {key!r} must be a finite number, got {value!r}")
    return float(value)


def parse_manifest(data: Any, source: str) -> Manifest:
    """Validate a parsed manifest and return its typed facts.

    Args:
        data: the JSON value (must be an object).
        source: where it came from, for error messages (a path).

    Returns:
        The validated `Manifest`.

    Raises:
        ModelError: a key is missing or has the wrong type or value.
    """
    if not isinstance(data, dict):
        raise ModelError(f"manifest of {source} is not a JSON object; is this an ncsn-tf export?")
    if data.get("format") != MANIFEST_FORMAT:
        raise ModelError(f"{source} is not an ncsn-tf export (manifest format {data.get('format')!r})")
    version = _require(data, "format_version", int, source)
    if version > SUPPORTED_FORMAT_VERSION:
        raise ModelError(
            f"{source} uses export format {version}, newer than this app understands "
            f"({SUPPORTED_FORMAT_VERSION}); update ncsn-desktop"
        )
    shape = _require(data, "image_shape", list, source)
    if len(shape) == 1:
        raise ModelError(
            f"{source} is a model of {shape[0]}-D points (the toy experiment), not images; the app shows images"
        )
    if len(shape) != 3 or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise ModelError(f"manifest of {source}: image_shape must be [H, W, C] positive integers, got {shape!r}")
    if shape[2] not in (1, 3):
        raise ModelError(f"manifest of {source}: the app handles 1 or 3 channels, the model has {shape[2]}")
    sigmas = _require(data, "sigmas", list, source)
    if not sigmas:
        raise ModelError(f"manifest of {source}: sigmas is empty")
    sigmas_f = tuple(_finite(s, "sigmas", source) for s in sigmas)
    num_levels = data.get("num_levels", len(sigmas_f))
    if num_levels != len(sigmas_f):
        raise ModelError(f"manifest of {source}: num_levels {num_levels!r} != len(sigmas) {len(sigmas_f)}")
    value_range = data.get("value_range", [0.0, 1.0])
    if not isinstance(value_range, list) or len(value_range) != 2:
        raise ModelError(f"manifest of {source}: value_range must be [low, high], got {value_range!r}")
    low, high = (_finite(v, "value_range", source) for v in value_range)
    sampler = _require(data, "sampler", dict, source)
    steps = _require(sampler, "steps_per_level", int, source)
    epsilon = _finite(_require(sampler, "epsilon", (int, float), source), "sampler.epsilon", source)
    denoise = _require(sampler, "denoise", bool, source)
    convention = sampler.get("convention", "code")
    if not isinstance(convention, str):
        raise ModelError(f"manifest of {source}: sampler.convention must be a string")
    files = data.get("files", {})
    if not isinstance(files, dict):
        raise ModelError(f"manifest of {source}: files must be an object")
    onnx_files = files.get("onnx", {})
    if not isinstance(onnx_files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in onnx_files.items()
    ):
        raise ModelError(f"manifest of {source}: files.onnx must map endpoint names to paths")
    savedmodel_dir = files.get("savedmodel")
    if savedmodel_dir is not None and not isinstance(savedmodel_dir, str):
        raise ModelError(f"manifest of {source}: files.savedmodel must be a path")
    verification = data.get("verification", {})
    tolerance = verification.get("tolerance") if isinstance(verification, dict) else None
    if tolerance is not None:
        tolerance = _finite(tolerance, "verification.tolerance", source)
    checkpoint = data.get("checkpoint", {})
    step = checkpoint.get("step") if isinstance(checkpoint, dict) else None
    return Manifest(
        name=str(data.get("name", "model")),
        dataset=str(data.get("dataset", "unknown")),
        image_shape=(shape[0], shape[1], shape[2]),
        value_range=(low, high),
        sigmas=sigmas_f,
        sampler=SamplerDefaults(steps_per_level=steps, epsilon=epsilon, convention=convention, denoise=denoise),
        onnx_files=dict(onnx_files),
        savedmodel_dir=savedmodel_dir,
        tolerance=tolerance,
        checkpoint_step=step if isinstance(step, int) and not isinstance(step, bool) else None,
        raw=data,
    )


def parse_manifest_text(text: str | bytes, source: str) -> Manifest:
    """`parse_manifest` of JSON text; plain data only (json.loads, never eval)."""
    if len(text) > MAX_MANIFEST_BYTES:
        raise ModelError(f"manifest of {source} is {len(text)} bytes, too large to be a manifest")
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        raise ModelError(f"manifest of {source} is not valid JSON ({error}); the export is corrupt") from error
    return parse_manifest(data, source)
