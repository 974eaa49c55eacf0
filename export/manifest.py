"""The manifest of a new export, built from the training config (the writer's side of the contract).

`export_format.manifest` defines, validates, reads and writes the manifest; this
module only gathers what an export's manifest says from the training config and the
export options (it imports TensorFlow and ncsn_tf, which the contract must not). The
manifest is written as `manifest.json`, returned by the SavedModel's `manifest`
signature (a string constant), stored as the SavedModel asset `assets/manifest.json`
and in every ONNX file's `metadata_props` under `ncsn_manifest`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from export_format import layout
from export_format.endpoints import endpoint_table, endpoints_of
from export_format.errors import ExportInputError
from export_format.manifest import FileTable, Manifest, SamplerBlock
from export_format.settings import ANNEALED_LANGEVIN, SAMPLERS, SamplerSettings, sampler_kind
from ncsn_tf.configs import Config, to_dict


def versions() -> dict[str, str]:
    """Versions of the project and the frameworks that wrote an export."""
    import keras
    import tensorflow as tf

    import ncsn_tf

    found = {"ncsn_tf": ncsn_tf.__version__, "tensorflow": tf.__version__, "keras": keras.__version__}
    for module in ("tf2onnx", "onnx", "onnxruntime"):
        try:
            found[module] = __import__(module).__version__
        except ImportError:
            pass
    return found


def check_samplers(samplers: Sequence[str] | None) -> tuple[str, ...]:
    """The samplers to export, in registry order (None: all of them).

    Raises:
        ExportInputError: an unknown name, or none at all.
    """
    if samplers is None:
        return tuple(SAMPLERS)
    names = list(samplers)
    for name in names:
        sampler_kind(name, hint="")
    if not names:
        raise ExportInputError(f"no sampler to export; choose some of {', '.join(SAMPLERS)}")
    return tuple(name for name in SAMPLERS if name in names)


def sampler_block(
    config: Config,
    steps_per_level: int | None = None,
    *,
    samplers: Sequence[str] | None = None,
    default: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> SamplerBlock:
    """The manifest's sampler block: the exported samplers with their defaults, and the default sampler.

    Defaults come from the config's `sampling` section (annealed Langevin: steps_per_level,
    epsilon, final_denoise; the others: their fields of the same names, `SamplingConfig`);
    `steps_per_level` and `overrides` (setting name -> value, e.g. {"snr": 0.3}) replace
    them. The default sampler is `default`, else the config's `sampling.sampler` when
    exported, else annealed Langevin when exported, else the first exported.

    Raises:
        ExportInputError: an unknown sampler, a default or an override for a sampler that is
            not exported, or a default outside the documented ranges (e.g. `--steps-per-level 0`).
    """
    held = check_samplers(samplers)
    sampling = config.sampling
    changes = dict(overrides or {})
    if steps_per_level is not None:
        changes["steps_per_level"] = steps_per_level
    owners = {setting.name: kind.name for kind in SAMPLERS.values() for setting in kind.settings}
    for name in changes:
        if name not in owners:
            raise ExportInputError(f"unknown sampler setting {name!r}; the settings are: {', '.join(owners)}")
        if owners[name] not in held:
            raise ExportInputError(
                f"{name} is a setting of {owners[name]}, which this export does not hold (samplers: {', '.join(held)})"
            )
    settings: dict[str, SamplerSettings] = {}
    for name in held:
        if name == ANNEALED_LANGEVIN:
            values = {
                "steps_per_level": sampling.steps_per_level, "epsilon": sampling.epsilon, "denoise": sampling.final_denoise,
            }  # fmt: skip
        else:
            values = {setting.name: getattr(sampling, setting.name) for setting in SAMPLERS[name].settings}
        values.update({key: value for key, value in changes.items() if owners[key] == name})
        settings[name] = SamplerSettings(sampler=name, **values).validate(config.noise.num_levels)
    if default is not None:
        sampler_kind(default)
        if default not in held:
            raise ExportInputError(f"the default sampler {default!r} is not exported (samplers: {', '.join(held)})")
    else:
        default = next(name for name in (sampling.sampler, ANNEALED_LANGEVIN, *held) if name in held)
    ordered = {name: settings[name] for name in (default, *held) if name in settings}
    return SamplerBlock(default, sampling.convention, ordered)


def build_manifest(
    config: Config,
    *,
    name: str,
    steps_per_level: int | None,
    step: int,
    ema: bool,
    score_model: str,
    formats: tuple[str, ...],
    opset: int | None,
    verification: dict[str, Any],
    precision: str = "float32",
    samplers: Sequence[str] | None = None,
    default_sampler: str | None = None,
    sampler_overrides: Mapping[str, Any] | None = None,
) -> Manifest:
    """The manifest of one export.

    Args:
        config: the training config (ladder, shape, sampler defaults; stored whole as provenance).
        name: export name.
        steps_per_level: default T written into the sampler block (None: the config's).
        step: training step of the exported weights.
        ema: whether the weights are the EMA weights.
        score_model: class name of the score model (e.g. CondRefineNetDilated).
        formats: the formats written, a subset of `layout.FORMATS`.
        opset: the ONNX opset (None without ONNX).
        verification: the verification block (tolerance, and the measured numbers once known).
        precision: compute dtype of the score network ("float32" or "bfloat16"); every
            input and output of every endpoint is float32/int32/bool either way.
        samplers, default_sampler, sampler_overrides: which samplers the graphs hold (None:
            all), the default one and changed defaults (see `sampler_block`).

    Returns:
        The `Manifest` (validated when written).
    """
    example_shape = tuple(int(size) for size in config.data.shape)
    block = sampler_block(
        config, steps_per_level, samplers=samplers, default=default_sampler, overrides=sampler_overrides
    )
    held = tuple(name for name in SAMPLERS if name in block.settings)
    onnx = {endpoint: layout.onnx_file(endpoint) for endpoint in endpoints_of(held)} if "onnx" in formats else {}
    return Manifest(
        name=name,
        dataset=config.data.dataset,
        image_shape=example_shape,
        value_range=tuple(float(value) for value in config.data.value_range),
        sigmas=tuple(float(sigma) for sigma in config.noise.sigmas()),
        sampler=block,
        files=FileTable(savedmodel=layout.SAVEDMODEL_DIR if "savedmodel" in formats else None, onnx=onnx),
        endpoints=endpoint_table(example_shape, held),
        onnx_opset=opset if "onnx" in formats else None,
        score_model=score_model,
        precision=precision,
        checkpoint_step=int(step),
        checkpoint_ema=bool(ema),
        config=to_dict(config),
        versions=versions(),
        verification=verification,
    )
