"""The manifest of a new export, built from the training config (the writer's side of the contract).

`export_format.manifest` defines, validates, reads and writes the manifest; this
module only gathers what an export's manifest says from the training config and the
export options (it imports TensorFlow and ncsn_tf, which the contract must not). The
manifest is written as `manifest.json`, returned by the SavedModel's `manifest`
signature (a string constant), stored as the SavedModel asset `assets/manifest.json`
and in every ONNX file's `metadata_props` under `ncsn_manifest`.
"""

from __future__ import annotations

from typing import Any

from export_format import layout
from export_format.endpoints import ENDPOINTS, endpoint_table
from export_format.manifest import FileTable, Manifest, SamplerBlock
from export_format.settings import ANNEALED_LANGEVIN, SamplerSettings
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


def sampler_block(config: Config, steps_per_level: int | None = None) -> SamplerBlock:
    """The manifest's sampler block: annealed Langevin with the config's defaults (T overridable).

    Raises:
        ExportInputError: a default outside the documented ranges (e.g. `--steps-per-level 0`).
    """
    sampling = config.sampling
    defaults = SamplerSettings(
        steps_per_level=sampling.steps_per_level if steps_per_level is None else steps_per_level,
        epsilon=sampling.epsilon,
        denoise=sampling.final_denoise,
        sampler=ANNEALED_LANGEVIN,
    ).validate(config.noise.num_levels)
    return SamplerBlock(ANNEALED_LANGEVIN, sampling.convention, {ANNEALED_LANGEVIN: defaults})


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

    Returns:
        The `Manifest` (validated when written).
    """
    example_shape = tuple(int(size) for size in config.data.shape)
    onnx = {endpoint: layout.onnx_file(endpoint) for endpoint in ENDPOINTS} if "onnx" in formats else {}
    return Manifest(
        name=name,
        dataset=config.data.dataset,
        image_shape=example_shape,
        value_range=tuple(float(value) for value in config.data.value_range),
        sigmas=tuple(float(sigma) for sigma in config.noise.sigmas()),
        sampler=sampler_block(config, steps_per_level),
        files=FileTable(savedmodel=layout.SAVEDMODEL_DIR if "savedmodel" in formats else None, onnx=onnx),
        endpoints=endpoint_table(example_shape),
        onnx_opset=opset if "onnx" in formats else None,
        score_model=score_model,
        precision=precision,
        checkpoint_step=int(step),
        checkpoint_ema=bool(ema),
        config=to_dict(config),
        versions=versions(),
        verification=verification,
    )
