"""Checks an export must pass before it is reported as written.

1. The safety gate (`export_format.safety`, the same one the app and
   `ExportedSampler` call) accepts the SavedModel and every ONNX file: the exporter
   never reports a model that a reader would refuse.
2. Every endpoint runs in the SavedModel (finite outputs of the right shape).
3. With ONNX: every ONNX file loads in onnxruntime and a short seeded run of every
   endpoint matches the SavedModel. The noise is part of the compared path: it is
   computed from integer ops that are bit-identical in both runtimes, so the seeded
   sampler is deterministic; `score` checks the noise-free network on its own.
   Tolerance: max |ONNX - SavedModel| <= 1e-4 * max(1, max |SavedModel output|)
   for every endpoint; for image models the number of pixels that differ after
   8-bit quantisation of the clipped samples is recorded as well.

Both runs go through `export_format.ExportedSampler`, which passes every file
through the gate before loading it.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from export_format import ExportedSampler, ExportFormatError

TOLERANCE = 1e-4  # relative to max(1, max |SavedModel output|)
VERIFY_STEPS_PER_LEVEL = 2  # a short run: enough to pass through every level, the loop and the denoiser
VERIFY_SEEDS = (0, 7, 2**31 - 1)
VERIFY_PROVIDER = "CPUExecutionProvider"  # the comparison is of the conversion, not of an accelerator


class VerificationError(RuntimeError):
    """An export failed verification; its files are removed."""


def _open(export_dir: str | os.PathLike[str], runtime: str) -> ExportedSampler:
    """The export in `runtime`, through the safety gate (a refusal is a `VerificationError`)."""
    try:
        if runtime == "onnxruntime":
            return ExportedSampler(export_dir, runtime=runtime, provider=VERIFY_PROVIDER)
        return ExportedSampler(export_dir, runtime=runtime)
    except ExportFormatError as error:
        raise VerificationError(f"{runtime} refused the export: {error}") from None


# ---------------------------------------------------------------------------
# Seeded runs in both runtimes.
# ---------------------------------------------------------------------------


def _check_inputs(sampler: ExportedSampler) -> dict[str, dict[str, np.ndarray]]:
    """The inputs of the verification run, one dict per endpoint."""
    levels = sampler.num_levels
    seeds = np.asarray(VERIFY_SEEDS, np.int32)  # [3]
    start = sampler.initial_images(seeds)  # [3, ...]
    known = sampler.initial_images(seeds + 1)  # [3, ...] some data-range "pictures"
    masks = np.zeros_like(known)
    masks.reshape(len(seeds), -1)[:, : masks[0].size // 2] = 1.0  # first half of every example known
    settings = sampler.settings(steps_per_level=VERIFY_STEPS_PER_LEVEL, denoise=True).inputs()  # default epsilon
    middle = max(1, levels // 2)
    return {
        "initial_images": {"seeds": seeds},
        "score": {"images": start, "sigma_indices": (np.arange(len(seeds)) % levels).astype(np.int32)},
        "sample": {"seeds": seeds, **settings},
        "sample_levels": {
            "images": start, "seeds": seeds, "first_level": np.array(0, np.int32),
            "last_level": np.array(middle, np.int32), **settings,
        },
        "inpaint": {"known_images": known, "masks": masks, "seeds": seeds, **settings},
        "inpaint_levels": {
            "images": start, "known_images": known, "masks": masks, "seeds": seeds,
            "first_level": np.array(middle - 1, np.int32), "last_level": np.array(levels, np.int32), **settings,
        },
    }  # fmt: skip


def _uint8(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    low, high = value_range
    return np.round(np.clip((images - low) / (high - low), 0.0, 1.0) * 255.0).astype(np.uint8)


def verify_export(export_dir: str | os.PathLike[str], with_onnx: bool) -> dict[str, Any]:
    """Verify an export folder (manifest.json, savedmodel/, onnx/); returns the verification record.

    Args:
        export_dir: the folder being written (its manifest lists the SavedModel and ONNX files).
        with_onnx: compare the ONNX files with the SavedModel (else only the SavedModel is run).

    Returns:
        A JSON-ready dict: status, tolerance, the largest difference and one entry per endpoint.

    Raises:
        VerificationError: the gate refused a file, an endpoint failed, or a difference is above the tolerance.
    """
    reference = _open(export_dir, "tensorflow")
    inputs = _check_inputs(reference)
    value_range = reference.manifest.value_range
    images = len(reference.image_shape) == 3
    record: dict[str, Any] = {
        "status": "passed",
        "tolerance": TOLERANCE,
        "tolerance_scale": "max(1, max |savedmodel output|)",
        "steps_per_level": VERIFY_STEPS_PER_LEVEL,
        "seeds": list(VERIFY_SEEDS),
        "savedmodel_ops_checked": True,  # by the safety gate, as every reader checks it
        "onnx_vs_savedmodel_max_abs_diff": None,
        "endpoints": {},
    }
    expected = {}
    for endpoint, feed in inputs.items():
        try:
            output = reference.run(endpoint, feed)
        except Exception as error:
            raise VerificationError(f"SavedModel endpoint {endpoint!r} failed: {str(error).splitlines()[0]}") from None
        if output.shape != (len(VERIFY_SEEDS), *reference.image_shape) or not np.all(np.isfinite(output)):
            raise VerificationError(f"SavedModel endpoint {endpoint!r} returned shape {output.shape} or non-finite values")
        expected[endpoint] = output
    reference.close()
    if not with_onnx:
        return record
    candidate = _open(export_dir, "onnxruntime")
    largest = 0.0
    for endpoint, feed in inputs.items():
        try:
            output = candidate.run(endpoint, feed)
        except Exception as error:
            raise VerificationError(f"onnxruntime failed on {endpoint}.onnx: {str(error).splitlines()[0]}") from None
        difference = float(np.max(np.abs(output.astype(np.float64) - expected[endpoint])))
        scale = max(1.0, float(np.max(np.abs(expected[endpoint]))))
        entry: dict[str, Any] = {"max_abs_diff": difference, "scale": scale}
        if images and endpoint != "score":
            changed = _uint8(output, value_range) != _uint8(expected[endpoint], value_range)
            entry["uint8_pixels_different"] = int(np.count_nonzero(changed))
            entry["uint8_pixels_compared"] = int(changed.size)
        record["endpoints"][endpoint] = entry
        largest = max(largest, difference)
        if not difference <= TOLERANCE * scale:
            raise VerificationError(
                f"{endpoint}.onnx differs from the SavedModel by {difference:.3g} "
                f"(tolerance {TOLERANCE:g} x {scale:.3g}); the conversion is wrong"
            )
    candidate.close()
    record["onnx_vs_savedmodel_max_abs_diff"] = largest
    return record
