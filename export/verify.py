"""Checks an export must pass before it is reported as written.

1. The safety gate (`export_format.safety`, the same one the app and
   `ExportedSampler` call) accepts the SavedModel and every ONNX file: the exporter
   never reports a model that a reader would refuse.
2. Every endpoint of every sampler the export holds runs in the SavedModel (finite
   outputs of the right shape), and its level chunks chain exactly to its whole run.
3. With ONNX: every ONNX file loads in onnxruntime and a short seeded run of every
   endpoint matches the SavedModel (the chunks chain exactly there too). The noise is part of the compared path: it is
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
from export_format.endpoints import ENDPOINTS
from export_format.settings import ANNEALED_LANGEVIN, PREDICTOR_CORRECTOR, PROBABILITY_FLOW, SAMPLERS

TOLERANCE = 1e-4  # relative to max(1, max |SavedModel output|)
VERIFY_STEPS_PER_LEVEL = 2  # a short run: enough to pass through every level, the loop and the denoiser
# Each sampler's short verification run (the rest are the export's defaults): every branch of its loop
# runs (annealed Langevin's denoising call, a corrector and the predictor, RePaint's re-noising, Heun).
VERIFY_SETTINGS: dict[str, dict[str, Any]] = {
    ANNEALED_LANGEVIN: {"steps_per_level": VERIFY_STEPS_PER_LEVEL, "denoise": True},
    PREDICTOR_CORRECTOR: {"corrector_steps": 1, "resample_steps": 1},
    PROBABILITY_FLOW: {"order": 2},
}
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
    """The inputs of the verification run, one dict per endpoint of every sampler the export holds."""
    levels = sampler.num_levels
    seeds = np.asarray(VERIFY_SEEDS, np.int32)  # [3]
    known = sampler.initial_images(seeds + 1, ANNEALED_LANGEVIN if ANNEALED_LANGEVIN in sampler.samplers else None)
    known = np.clip(known, *sampler.manifest.value_range)  # [3, ...] data-range "pictures"
    masks = np.zeros_like(known)
    masks.reshape(len(seeds), -1)[:, : masks[0].size // 2] = 1.0  # first half of every example known
    middle = max(1, levels // 2)
    inputs: dict[str, dict[str, np.ndarray]] = {}
    for name in sampler.samplers:
        kind = SAMPLERS[name]
        endpoints = kind.endpoints
        settings = sampler.settings(sampler=name, **VERIFY_SETTINGS[name])
        start = sampler.initial_images(seeds, name)  # [3, ...] this sampler's start
        inputs[endpoints["initial_images"]] = {"seeds": seeds}
        inputs[endpoints["sample"]] = {"seeds": seeds, **settings.inputs("sample")}
        inputs[endpoints["sample_levels"]] = {
            "images": start, "seeds": seeds, "first_level": np.array(0, np.int32),
            "last_level": np.array(middle, np.int32), **settings.inputs("sample_levels"),
        }  # fmt: skip
        inputs[endpoints["inpaint"]] = {"known_images": known, "masks": masks, "seeds": seeds, **settings.inputs("inpaint")}
        inputs[endpoints["inpaint_levels"]] = {
            "images": start, "known_images": known, "masks": masks, "seeds": seeds,
            "first_level": np.array(middle - 1, np.int32), "last_level": np.array(levels, np.int32),
            **settings.inputs("inpaint_levels"),
        }  # fmt: skip
    start = sampler.initial_images(seeds)
    inputs["score"] = {"images": start, "sigma_indices": (np.arange(len(seeds)) % levels).astype(np.int32)}
    return {name: inputs[name] for name in ENDPOINTS if name in inputs}


def _uint8(images: np.ndarray, value_range: tuple[float, float]) -> np.ndarray:
    low, high = value_range
    return np.round(np.clip((images - low) / (high - low), 0.0, 1.0) * 255.0).astype(np.uint8)


def _chain(
    runner: ExportedSampler, inputs: dict[str, dict[str, np.ndarray]], outputs: dict[str, np.ndarray], sampler: str
) -> np.ndarray:
    """The rest of the ladder [middle, L) after the verification chunk [0, middle): equals `sample` exactly."""
    chunk = SAMPLERS[sampler].endpoints["sample_levels"]
    feed = dict(inputs[chunk])
    feed.update(
        images=outputs[chunk], first_level=feed["last_level"], last_level=np.array(runner.num_levels, np.int32)
    )
    return runner.run(chunk, feed)


def verify_export(export_dir: str | os.PathLike[str], with_onnx: bool) -> dict[str, Any]:
    """Verify an export folder (manifest.json, savedmodel/, onnx/); returns the verification record.

    Every endpoint of every sampler runs in the SavedModel; with ONNX, in onnxruntime too,
    compared with the SavedModel. In each runtime the verification chunk [0, L/2) followed
    by [L/2, L) must give `sample`'s images bit for bit (the chunk contract).

    Args:
        export_dir: the folder being written (its manifest lists the SavedModel and ONNX files).
        with_onnx: compare the ONNX files with the SavedModel (else only the SavedModel is run).

    Returns:
        A JSON-ready dict: status, tolerance, the largest difference, one entry per endpoint
        and one per sampler (its largest difference and 8-bit pixel agreement).

    Raises:
        VerificationError: the gate refused a file, an endpoint failed, a difference is above
            the tolerance, or chunks do not chain to the whole run.
    """
    reference = _open(export_dir, "tensorflow")
    inputs = _check_inputs(reference)
    value_range = reference.manifest.value_range
    images = len(reference.image_shape) == 3
    samplers = reference.samplers
    record: dict[str, Any] = {
        "status": "passed",
        "tolerance": TOLERANCE,
        "tolerance_scale": "max(1, max |savedmodel output|)",
        "steps_per_level": VERIFY_STEPS_PER_LEVEL,
        "settings": {name: VERIFY_SETTINGS[name] for name in samplers},
        "seeds": list(VERIFY_SEEDS),
        "savedmodel_ops_checked": True,  # by the safety gate, as every reader checks it
        "chunks_chain_exactly": True,  # checked below in every runtime verified
        "onnx_vs_savedmodel_max_abs_diff": None,
        "endpoints": {},
        "samplers": {},
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
    _check_chains(reference, inputs, expected, samplers, "SavedModel")
    reference.close()
    if not with_onnx:
        return record
    candidate = _open(export_dir, "onnxruntime")
    largest = 0.0
    found = {}
    for endpoint, feed in inputs.items():
        try:
            output = candidate.run(endpoint, feed)
        except Exception as error:
            raise VerificationError(f"onnxruntime failed on {endpoint}.onnx: {str(error).splitlines()[0]}") from None
        found[endpoint] = output
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
    _check_chains(candidate, inputs, found, samplers, "onnxruntime")
    candidate.close()
    for name in samplers:
        entries = [record["endpoints"][endpoint] for endpoint in dict.fromkeys(SAMPLERS[name].endpoints.values())]
        summary: dict[str, Any] = {"max_abs_diff": max(entry["max_abs_diff"] for entry in entries)}
        if images:
            summary["uint8_pixels_different"] = sum(entry["uint8_pixels_different"] for entry in entries)
            summary["uint8_pixels_compared"] = sum(entry["uint8_pixels_compared"] for entry in entries)
        record["samplers"][name] = summary
    record["onnx_vs_savedmodel_max_abs_diff"] = largest
    return record


def _check_chains(
    runner: ExportedSampler,
    inputs: dict[str, dict[str, np.ndarray]],
    outputs: dict[str, np.ndarray],
    samplers: tuple[str, ...],
    what: str,
) -> None:
    """Each sampler's chunks [0, L/2) + [L/2, L) reproduce its whole-run `sample` exactly in `runner`."""
    for name in samplers:
        whole = SAMPLERS[name].endpoints["sample"]
        try:
            chained = _chain(runner, inputs, outputs, name)
        except Exception as error:
            raise VerificationError(f"{what}: {name}'s second chunk failed: {str(error).splitlines()[0]}") from None
        if not np.array_equal(chained, outputs[whole]):
            difference = float(np.max(np.abs(chained.astype(np.float64) - outputs[whole])))
            raise VerificationError(
                f"{what}: {name}'s level chunks do not chain to its whole run (max difference {difference:.3g}); "
                "the chunk contract is broken"
            )
