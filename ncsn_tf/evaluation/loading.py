"""A training workdir, a checkpoint or an export folder, loaded into a `Generator`.

`export_generator` is the one place in `ncsn_tf` that reads an export folder (its
`manifest.json`, ONNX Runtime sessions, the SavedModel). The export's sampler
defaults are the manifest's `sampler` block (what `python -m export RUN
--steps-per-level T` writes); its `config` block is provenance only (the data set
and held-out data), never the sampler (docs/export.md, "The manifest").
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from ncsn_tf.configs import SamplingConfig
from ncsn_tf.evaluation.generator import EvaluationError, Generator, generator_from_model

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "ncsn-tf-export"
MANIFEST_MAX_BYTES = 4 * 1024 * 1024  # a manifest is a few kB; anything far larger is not one
RUNTIMES = ("auto", "onnx", "savedmodel")
_SAMPLER_KEYS = {"steps_per_level": int, "epsilon": float, "denoise": bool, "convention": str}
# The samplers an export's graphs run today (their `sample` endpoint); the others come with a later export format.
EXPORT_SAMPLERS = ("annealed_langevin",)


def is_export(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is an export folder (it holds manifest.json)."""
    return (Path(path) / MANIFEST_FILE).is_file()


def open_generator(path: str | os.PathLike[str], runtime: str = "auto", use_ema: bool = True) -> Generator:
    """Load a workdir, a checkpoint prefix or an export folder.

    Args:
        path: training workdir, `WORKDIR/checkpoints/ckpt-N`, or export folder (has manifest.json).
        runtime: for exports, "onnx" (ONNX Runtime), "savedmodel" (TensorFlow) or "auto"
            (ONNX Runtime when the export has ONNX files, else TensorFlow).
        use_ema: for checkpoints, use the EMA weights when present.

    Returns:
        The Generator.

    Raises:
        EvaluationError / CheckpointError / ConfigError: nothing loadable at `path`.
    """
    if is_export(path):
        return export_generator(path, runtime, label=os.fspath(path))
    from ncsn_tf.checkpoints import load_for_inference

    config, model, step = load_for_inference(path, use_ema=use_ema)
    return generator_from_model(model, config, os.fspath(path), step)


def _sampler_value(sampler: dict[str, Any], key: str, source: Path) -> Any:
    kind = _SAMPLER_KEYS[key]
    value = sampler.get(key)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise EvaluationError(f"{source}: sampler.{key} should be {kind.__name__}, got {value!r}; re-export the model")
    return value


def _export_file(folder: Path, relative: Any, what: str) -> Path:
    """`folder / relative`, refused unless it is a relative path to something inside the export folder."""
    if not isinstance(relative, str) or not relative or os.path.isabs(relative):
        raise EvaluationError(f"{folder / MANIFEST_FILE}: files entry for {what} is {relative!r}; re-export the model")
    path = (folder / relative).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise EvaluationError(
            f"{folder / MANIFEST_FILE}: {what} points outside the export folder ({relative}); re-export the model"
        )
    if not path.exists():
        raise EvaluationError(f"{folder / MANIFEST_FILE}: {what} ({relative}) is missing; re-export the model")
    return path


def export_generator(path: str | os.PathLike[str], runtime: str = "auto", label: str | None = None) -> Generator:
    """An export folder as a Generator, run by ONNX Runtime or TensorFlow (all export reading is here).

    Args:
        path: the export folder (manifest.json + savedmodel/ + onnx/).
        runtime: "onnx", "savedmodel" or "auto" (ONNX Runtime when the export has ONNX files).
        label: name for tables; default the path.

    Returns:
        A Generator whose `sampler_defaults` are the manifest's `sampler` block; it runs
        annealed Langevin only (`EXPORT_SAMPLERS`).

    Raises:
        EvaluationError: the manifest is missing, malformed, or the asked runtime's files are absent.
    """
    from export_format import safe_json
    from ncsn_tf import configs

    folder = Path(path)
    manifest_path = folder / MANIFEST_FILE
    try:
        manifest = safe_json.load(manifest_path, max_bytes=MANIFEST_MAX_BYTES)
    except FileNotFoundError:
        raise EvaluationError(f"{manifest_path} does not exist; is {folder} an export folder?") from None
    except safe_json.JsonLimitError as error:
        raise EvaluationError(f"{error}; re-export the model") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise EvaluationError(f"{manifest_path} is not an ncsn-tf export manifest (format={found!r})")
    try:
        config = configs.from_dict(manifest.get("config"))
        sigmas = np.asarray(manifest["sigmas"], np.float32)  # [L]
    except (configs.ConfigError, KeyError, TypeError, ValueError) as error:
        raise EvaluationError(f"{manifest_path}: bad config or sigmas ({error}); re-export the model") from None
    sampler = manifest.get("sampler")
    if not isinstance(sampler, dict):
        raise EvaluationError(f"{manifest_path} has no 'sampler' block of defaults; re-export the model")
    values = {key: _sampler_value(sampler, key, manifest_path) for key in _SAMPLER_KEYS}
    defaults = dataclasses.replace(
        config.sampling,
        sampler=EXPORT_SAMPLERS[0],  # the training config's choice is provenance; the graphs run this one
        steps_per_level=values["steps_per_level"],
        epsilon=values["epsilon"],
        final_denoise=values["denoise"],
        convention=values["convention"],
    )
    try:  # one set of ranges: the config's
        configs.validate(dataclasses.replace(config, sampling=defaults))
    except configs.ConfigError as error:
        raise EvaluationError(f"{manifest_path}: sampler block: {error}; re-export the model") from None
    step = (manifest.get("checkpoint") or {}).get("step")
    files = manifest.get("files") or {}
    onnx_files = files.get("onnx") or {}
    if runtime == "auto":  # ONNX Runtime where the export has ONNX files (a bfloat16 export has none)
        runtime = "onnx" if onnx_files else "savedmodel"
    if runtime == "onnx":
        import onnxruntime as ort

        endpoints = ("sample", "score")
        for endpoint in endpoints:
            if endpoint not in onnx_files:
                raise EvaluationError(
                    f"export {folder} has no ONNX {endpoint!r} endpoint; re-export or use --runtime savedmodel"
                )
        model_files = {
            endpoint: _export_file(folder, onnx_files[endpoint], f"ONNX {endpoint!r}") for endpoint in endpoints
        }
        sessions = {
            endpoint: ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])
            for endpoint, model_file in model_files.items()
        }

        def sample(seeds: np.ndarray, settings: SamplingConfig) -> np.ndarray:
            feeds = {
                "seeds": seeds.astype(np.int32),  # [B]
                "steps_per_level": np.asarray(settings.steps_per_level, np.int32),
                "epsilon": np.asarray(settings.epsilon, np.float32),
                "denoise": np.asarray(settings.final_denoise, np.bool_),
            }
            return sessions["sample"].run(["images"], feeds)[0]  # [B, *shape]

        def score(noisy: np.ndarray, sigma_indices: np.ndarray) -> np.ndarray:
            return sessions["score"].run(["scores"], {"images": noisy, "sigma_indices": sigma_indices})[0]

    elif runtime == "savedmodel":
        import tensorflow as tf

        saved_model = _export_file(folder, files.get("savedmodel", "savedmodel"), "the SavedModel")
        signatures = tf.saved_model.load(str(saved_model)).signatures

        def sample(seeds: np.ndarray, settings: SamplingConfig) -> np.ndarray:
            out = signatures["sample"](
                seeds=tf.constant(seeds, tf.int32),  # [B]
                steps_per_level=tf.constant(settings.steps_per_level, tf.int32),
                epsilon=tf.constant(settings.epsilon, tf.float32),
                denoise=tf.constant(settings.final_denoise, tf.bool),
            )
            return out["images"].numpy()  # [B, *shape]

        def score(noisy: np.ndarray, sigma_indices: np.ndarray) -> np.ndarray:
            out = signatures["score"](images=tf.constant(noisy), sigma_indices=tf.constant(sigma_indices))
            return out["scores"].numpy()  # [B, *shape]

    else:
        raise EvaluationError(f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)}")
    return Generator(
        label if label is not None else os.fspath(path), runtime, config, step, sigmas, defaults,
        f"{MANIFEST_FILE} sampler", _sample=sample, _score=score, samplers=EXPORT_SAMPLERS,
    )  # fmt: skip
