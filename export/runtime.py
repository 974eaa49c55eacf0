"""Run an export from Python: the endpoints of a SavedModel or ONNX export, with checked inputs.

`load(export_dir, runtime="onnxruntime" | "tensorflow")` returns an `ExportedSampler`
whose methods mirror the endpoints (docs/DESIGN.md) and validate their inputs
against the manifest first, so a wrong shape or a non-binary mask is a one-line
`ValueError` instead of a runtime stack trace. This module imports neither
`ncsn_tf` nor Qt (an export runs anywhere its runtime does); TensorFlow or
onnxruntime is imported only when that runtime is chosen.

Example:
    sampler = load("exports/digits")
    images = sampler.sample(seeds=[0, 1, 2])  # [3, 8, 8, 1], clip to [0, 1] to display
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

RUNTIMES = ("onnxruntime", "tensorflow")
MANIFEST_FILE = "manifest.json"
# Output name of every endpoint (the export contract; export.builder writes them). ONNX
# forbids a graph output named like a graph input, so the chunk endpoints, which take
# `images`, return `images_out`.
ENDPOINT_OUTPUTS = {
    "sample": "images",
    "initial_images": "images",
    "sample_levels": "images_out",
    "inpaint": "images",
    "inpaint_levels": "images_out",
    "score": "scores",
}


class ExportInputError(ValueError):
    """An input does not fit the exported model; the message says which and what to do."""


def read_manifest(export_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The manifest of an export folder (plain JSON, never executed)."""
    path = os.path.join(os.fspath(export_dir), MANIFEST_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"no {MANIFEST_FILE} in {export_dir}; pass an export folder (OUT/NAME)") from None
    if not isinstance(manifest, dict) or manifest.get("format") != "ncsn-tf-export":
        raise ValueError(f"{path} is not an ncsn-tf export manifest")
    return manifest


class ExportedSampler:
    """The endpoints of one export, run by onnxruntime or TensorFlow.

    Args:
        export_dir: the export folder (with manifest.json).
        runtime: "onnxruntime" (the ONNX files) or "tensorflow" (the SavedModel).
        threads: intra-op threads for onnxruntime (0 = its default).

    Attributes:
        manifest: the parsed manifest.
        image_shape: per-image shape, e.g. (8, 8, 1); (2,) for the toy.
        num_levels: L.
    """

    def __init__(self, export_dir: str | os.PathLike[str], runtime: str = "onnxruntime", threads: int = 0) -> None:
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
        self.export_dir = os.fspath(export_dir)
        self.runtime = runtime
        self.manifest = read_manifest(self.export_dir)
        self.image_shape = tuple(int(size) for size in self.manifest["image_shape"])
        self.num_levels = int(self.manifest["num_levels"])
        self._threads = threads
        self._sessions: dict[str, Any] = {}
        self._signatures: dict[str, Any] | None = None
        files = self.manifest.get("files", {})
        if runtime == "onnxruntime" and not files.get("onnx"):
            raise FileNotFoundError(f"{self.export_dir} has no ONNX files; export with --format onnx or both")
        if runtime == "tensorflow" and not files.get("savedmodel"):
            raise FileNotFoundError(f"{self.export_dir} has no SavedModel; export with --format savedmodel or both")

    # -- running ---------------------------------------------------------------

    def _onnx_session(self, endpoint: str) -> Any:
        if endpoint not in self._sessions:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3  # errors only
            if self._threads:
                options.intra_op_num_threads = self._threads
            path = os.path.join(self.export_dir, self.manifest["files"]["onnx"][endpoint])
            self._sessions[endpoint] = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return self._sessions[endpoint]

    def _tf_signature(self, endpoint: str) -> Any:
        if self._signatures is None:
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
            import tensorflow as tf

            loaded = tf.saved_model.load(os.path.join(self.export_dir, self.manifest["files"]["savedmodel"]))
            self._loaded = loaded  # keep the object alive: signatures reference its variables
            self._signatures = dict(loaded.signatures)
        return self._signatures[endpoint]

    def run(self, endpoint: str, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """Run one endpoint on already-checked inputs (NumPy, contract dtypes); returns its output."""
        if endpoint not in ENDPOINT_OUTPUTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; endpoints: {', '.join(ENDPOINT_OUTPUTS)}")
        output = ENDPOINT_OUTPUTS[endpoint]
        if self.runtime == "onnxruntime":
            (result,) = self._onnx_session(endpoint).run([output], inputs)
            return np.asarray(result)
        import tensorflow as tf

        signature = self._tf_signature(endpoint)
        return signature(**{name: tf.constant(value) for name, value in inputs.items()})[output].numpy()

    # -- input checks ----------------------------------------------------------

    def _seeds(self, seeds: Any) -> np.ndarray:
        values = np.asarray(seeds)
        if values.ndim != 1 or values.size == 0:
            raise ExportInputError(f"seeds must be a non-empty 1-D list of integers (one per image), got shape {values.shape}")
        if values.dtype.kind not in "iu":
            raise ExportInputError(f"seeds must be integers, got dtype {values.dtype}")
        if values.min() < -(2**31) or values.max() >= 2**31:
            raise ExportInputError("seeds must fit in int32 ([-2^31, 2^31)); reduce them, e.g. seed % 2**31")
        return values.astype(np.int32)

    def _images(self, images: Any, name: str, batch: int) -> np.ndarray:
        values = np.asarray(images, dtype=np.float32)
        expected = (batch, *self.image_shape)
        if values.shape != expected:
            raise ExportInputError(
                f"{name} must have shape {list(expected)} ([B, *image_shape] with B = {batch} seeds), got {list(values.shape)}"
            )
        if not np.all(np.isfinite(values)):
            raise ExportInputError(f"{name} contains NaN or infinite values")
        return values

    def _masks(self, masks: Any, batch: int) -> np.ndarray:
        values = self._images(masks, "masks", batch)
        if not np.all((values == 0.0) | (values == 1.0)):
            raise ExportInputError("masks must contain only 0 (unknown) and 1 (known); threshold them, e.g. masks > 0.5")
        return values

    def _settings(self, steps_per_level: int | None, epsilon: float | None, denoise: bool | None) -> dict[str, np.ndarray]:
        defaults = self.manifest["sampler"]
        steps = int(defaults["steps_per_level"] if steps_per_level is None else steps_per_level)
        step_size = float(defaults["epsilon"] if epsilon is None else epsilon)
        if steps < 1:
            raise ExportInputError(f"steps_per_level must be >= 1, got {steps}")
        if not step_size > 0 or not np.isfinite(step_size):
            raise ExportInputError(f"epsilon must be a positive number, got {step_size}")
        return {
            "steps_per_level": np.array(steps, np.int32),
            "epsilon": np.array(step_size, np.float32),
            "denoise": np.array(bool(defaults["denoise"] if denoise is None else denoise)),
        }

    def _levels(self, first_level: int, last_level: int | None) -> dict[str, np.ndarray]:
        last = self.num_levels if last_level is None else int(last_level)
        if not 0 <= int(first_level) <= last <= self.num_levels:
            raise ExportInputError(
                f"level range [{first_level}, {last}) is outside [0, {self.num_levels}); need 0 <= first <= last <= L"
            )
        return {"first_level": np.array(int(first_level), np.int32), "last_level": np.array(last, np.int32)}

    # -- endpoints ---------------------------------------------------------------

    def initial_images(self, seeds: Sequence[int] | np.ndarray) -> np.ndarray:
        """x_0 ~ Uniform over the value range. Returns [B, *image_shape] float32."""
        return self.run("initial_images", {"seeds": self._seeds(seeds)})

    def sample(
        self,
        seeds: Sequence[int] | np.ndarray,
        steps_per_level: int | None = None,
        epsilon: float | None = None,
        denoise: bool | None = None,
    ) -> np.ndarray:
        """The whole annealed Langevin run (manifest defaults for None). Returns [B, *image_shape], not clipped."""
        inputs = {"seeds": self._seeds(seeds), **self._settings(steps_per_level, epsilon, denoise)}
        return self.run("sample", inputs)

    def sample_levels(
        self,
        images: np.ndarray,
        seeds: Sequence[int] | np.ndarray,
        first_level: int = 0,
        last_level: int | None = None,
        steps_per_level: int | None = None,
        epsilon: float | None = None,
        denoise: bool | None = None,
    ) -> np.ndarray:
        """Levels [first_level, last_level) from `images`; chain chunks to get `sample`."""
        seeds = self._seeds(seeds)
        inputs = {
            "images": self._images(images, "images", len(seeds)),
            "seeds": seeds,
            **self._levels(first_level, last_level),
            **self._settings(steps_per_level, epsilon, denoise),
        }
        return self.run("sample_levels", inputs)

    def inpaint(
        self,
        known_images: np.ndarray,
        masks: np.ndarray,
        seeds: Sequence[int] | np.ndarray,
        steps_per_level: int | None = None,
        epsilon: float | None = None,
        denoise: bool | None = None,
    ) -> np.ndarray:
        """Fill the unknown pixels (masks: 1 = known) of `known_images` by annealed Langevin dynamics."""
        seeds = self._seeds(seeds)
        inputs = {
            "known_images": self._images(known_images, "known_images", len(seeds)),
            "masks": self._masks(masks, len(seeds)),
            "seeds": seeds,
            **self._settings(steps_per_level, epsilon, denoise),
        }
        return self.run("inpaint", inputs)

    def inpaint_levels(
        self,
        images: np.ndarray,
        known_images: np.ndarray,
        masks: np.ndarray,
        seeds: Sequence[int] | np.ndarray,
        first_level: int = 0,
        last_level: int | None = None,
        steps_per_level: int | None = None,
        epsilon: float | None = None,
        denoise: bool | None = None,
    ) -> np.ndarray:
        """Inpainting over levels [first_level, last_level) from the chain state `images`."""
        seeds = self._seeds(seeds)
        inputs = {
            "images": self._images(images, "images", len(seeds)),
            "known_images": self._images(known_images, "known_images", len(seeds)),
            "masks": self._masks(masks, len(seeds)),
            "seeds": seeds,
            **self._levels(first_level, last_level),
            **self._settings(steps_per_level, epsilon, denoise),
        }
        return self.run("inpaint_levels", inputs)

    def score(self, images: np.ndarray, sigma_indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """The score network at noise levels `sigma_indices` ([B] in [0, L))."""
        indices = np.asarray(sigma_indices)
        if indices.ndim != 1 or indices.dtype.kind not in "iu":
            raise ExportInputError(f"sigma_indices must be a 1-D list of integers, got shape {indices.shape}")
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_levels):
            raise ExportInputError(f"sigma_indices must be in [0, {self.num_levels})")
        images = self._images(images, "images", len(indices))
        return self.run("score", {"images": images, "sigma_indices": indices.astype(np.int32)})

    def close(self) -> None:
        """Drop sessions / the loaded SavedModel."""
        self._sessions.clear()
        self._signatures = None
        self._loaded = None


def load(export_dir: str | os.PathLike[str], runtime: str = "onnxruntime", threads: int = 0) -> ExportedSampler:
    """Open an export folder for sampling; see `ExportedSampler`."""
    return ExportedSampler(export_dir, runtime=runtime, threads=threads)
