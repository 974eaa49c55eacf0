"""A training workdir, a checkpoint or an export folder, loaded into a `Generator`.

Exports are read through `export_format`, the one reader of the export folder
(docs/export.md): `export_format.load` locates the files, validates the manifest,
passes every model file through the safety gate and opens ONNX Runtime or the
SavedModel; its `ExportedSampler` checks every input. Nothing here parses a
manifest or opens a session itself. The export's samplers are those of its
manifest's sampler block (`manifest.sampler.settings`) and their defaults are that
block's (what `python -m export RUN --steps-per-level T` writes); the manifest's
`config` is provenance only: it gives the data set and held-out data, never a
sampler setting.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

import export_format
from export_format import layout
from ncsn_tf import configs
from ncsn_tf.configs import SamplingConfig
from ncsn_tf.evaluation.generator import EvaluationError, Generator, generator_from_model

AUTO = "auto"  # ONNX Runtime when the export has its ONNX files, else TensorFlow
RUNTIMES = (AUTO, *layout.RUNTIMES)  # "onnxruntime", "tensorflow": the names the app uses too
# The names `evaluate --runtime` took before export_format; still accepted.
RUNTIME_ALIASES = {"onnx": "onnxruntime", "savedmodel": "tensorflow"}
# Export setting name -> `SamplingConfig` field, where the two differ (the others share names).
_CONFIG_FIELD = {"denoise": "final_denoise"}


def is_export(path: str | os.PathLike[str]) -> bool:
    """Whether `path` is an export: a folder with manifest.json, that manifest.json, or an exported .onnx file."""
    path = Path(path)
    if path.is_dir():
        return (path / layout.MANIFEST_FILE).is_file()
    return path.is_file() and (path.name == layout.MANIFEST_FILE or path.suffix.lower() == ".onnx")


def open_generator(path: str | os.PathLike[str], runtime: str = AUTO, use_ema: bool = True) -> Generator:
    """Load a workdir, a checkpoint prefix or an export.

    Args:
        path: training workdir, `WORKDIR/checkpoints/ckpt-N`, or an export (`is_export`).
        runtime: for exports, "onnxruntime", "tensorflow" or "auto" (ONNX Runtime when
            the export has ONNX files, else TensorFlow); "onnx" / "savedmodel" are aliases.
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


def resolve_runtime(runtime: str, available: list[str], source: Any) -> str:
    """The runtime to open: `runtime` itself ("auto": ONNX Runtime when available, else TensorFlow).

    Raises:
        EvaluationError: an unknown runtime name.
    """
    runtime = RUNTIME_ALIASES.get(runtime, runtime)
    if runtime not in RUNTIMES:
        raise EvaluationError(
            f"unknown runtime {runtime!r}; use one of {', '.join(RUNTIMES)} (or the older names onnx, savedmodel)"
        )
    if runtime == AUTO:  # a bfloat16 export has no ONNX files
        return available[0] if available else layout.RUNTIMES[0]  # none: `load` says what is missing
    return runtime


def export_generator(path: str | os.PathLike[str], runtime: str = AUTO, label: str | None = None) -> Generator:
    """An export as a Generator, run by `export_format.ExportedSampler` in ONNX Runtime or TensorFlow.

    Args:
        path: the export folder (or its manifest.json, or one of its .onnx files).
        runtime: "onnxruntime", "tensorflow" or "auto" (see `resolve_runtime`).
        label: name for tables; default the path.

    Returns:
        A Generator whose `samplers` are the manifest's (`manifest.sampler.settings`) and
        whose `sampler_defaults` are the manifest's sampler block: its default sampler,
        convention and each sampler's settings.

    Raises:
        EvaluationError: not an export, an invalid manifest, a file the safety gate
            refuses, the asked runtime's files absent, or a config block that is not a
            valid training config (one line each).
    """
    try:
        files = export_format.locate(path)
        runtime = resolve_runtime(runtime, files.runtimes(), path)
        exported = export_format.load(files, runtime=runtime)  # the safety gate runs here
    except export_format.ExportFormatError as error:
        raise EvaluationError(str(error)) from None
    manifest = exported.manifest
    source = os.fspath(files.source)
    try:  # provenance: the data set, its shape and held-out data; never the sampler
        config = configs.from_dict(manifest.config)
    except configs.ConfigError as error:
        raise EvaluationError(f"{source}: manifest config block: {error}; re-export the model") from None
    defaults = _sampling_defaults(manifest.sampler)
    sigmas = np.asarray(manifest.sigmas, np.float32)  # [L]
    try:
        configs.check_sampling(defaults, len(sigmas))
    except configs.ConfigError as error:
        raise EvaluationError(f"{source}: manifest sampler block: {error}; re-export the model") from None
    config = dataclasses.replace(config, sampling=dataclasses.replace(defaults, num_samples=config.sampling.num_samples))

    def overrides(sampling: SamplingConfig) -> dict[str, Any]:
        """The export's own settings of `sampling.sampler` from a SamplingConfig; refuses the others changed."""
        names = list(manifest.sampler.defaults(sampling.sampler).values())
        own = {_CONFIG_FIELD.get(name, name) for name in names}
        for field in configs.SAMPLER_FIELDS.get(sampling.sampler, ()):
            if field not in own and field != "convention" and getattr(sampling, field) != getattr(defaults, field):
                raise EvaluationError(
                    f"{source}: this export's {sampling.sampler} has no setting {field} (it has "
                    f"{', '.join(names) or 'none'}); leave it out or evaluate the training workdir"
                )
        if sampling.convention != manifest.sampler.convention and sampling.sampler == "annealed_langevin":
            raise EvaluationError(
                f"{source}: the Langevin convention is fixed at export ({manifest.sampler.convention!r}); "
                "re-export the model to change it"
            )
        values = {name: getattr(sampling, _CONFIG_FIELD.get(name, name)) for name in names
                  if hasattr(sampling, _CONFIG_FIELD.get(name, name))}  # fmt: skip  # others: the export's default
        return {"sampler": sampling.sampler, **values}

    def network_calls(sampling: SamplingConfig) -> int:
        try:
            return exported.settings(**overrides(sampling)).network_calls(len(sigmas))
        except export_format.ExportFormatError as error:
            raise EvaluationError(f"{source}: {error}") from None

    def sample(seeds: np.ndarray, sampling: SamplingConfig) -> np.ndarray:
        try:
            return exported.sample(seeds, **overrides(sampling))  # [B, *shape], not clipped
        except export_format.ExportFormatError as error:  # DivergedError: non-finite samples
            raise EvaluationError(f"{source}: {error}") from None

    def score(noisy: np.ndarray, sigma_indices: np.ndarray) -> np.ndarray:
        return exported.score(noisy, sigma_indices)  # [B, *shape]

    return Generator(
        label if label is not None else os.fspath(path), runtime, config, manifest.checkpoint_step, sigmas, defaults,
        f"{layout.MANIFEST_FILE} sampler", _sample=sample, _score=score, samplers=tuple(manifest.sampler.settings),
        _network_calls=network_calls,
    )  # fmt: skip


def _sampling_defaults(block: Any) -> SamplingConfig:
    """A `SamplingConfig` of the manifest's sampler block (`export_format.SamplerBlock`).

    The default sampler, the fixed convention and each exported sampler's settings; the
    settings of samplers the export lacks keep `SamplingConfig`'s defaults (they cannot
    run: `Generator.samplers` says which can).
    """
    fields = {field.name for field in dataclasses.fields(SamplingConfig)}
    values: dict[str, Any] = {"convention": block.convention}
    for name in block.settings:
        for setting, value in block.defaults(name).values().items():
            field = _CONFIG_FIELD.get(setting, setting)
            if field in fields and value is not None:
                values[field] = value
    if block.default in configs.SAMPLERS:
        values["sampler"] = block.default
    return dataclasses.replace(SamplingConfig(), **values)
