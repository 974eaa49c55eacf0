"""Write one verified export: SavedModel + ONNX + manifest.json (the library entry points).

- `export_model(config, model, step, out_dir)`: any built score model (tests, the
  evaluator and the desktop tests export model objects directly).
- `export_checkpoint(path, out_dir)`: a training workdir or checkpoint prefix
  (`ncsn_tf.checkpoints.load_for_inference`, EMA weights when present).
- `export_toy_mixture(out_dir)`: the exact-score model of the paper's 2-D mixture.

Files are written into a hidden staging folder `OUT/.NAME.partial-PID-*` next to
`OUT/NAME`, verified (`verify.py`, through the same safety gate and readers every
consumer uses), and only then moved to `OUT/NAME`; a failure removes them and raises
`ExportError`. A staging folder left by a killed export (its process is gone) is
removed by the next export into the same OUT, which says so in `ExportResult.notes`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import keras

from export import builder, manifest, onnx_convert
from export.verify import TOLERANCE, verify_export
from export_format import ExportInputError, layout
from export_format import manifest as manifest_io
from ncsn_tf.configs import Config

DEFAULT_OPSET = 18
PRECISIONS = ("float32", "bfloat16")  # compute dtype of the exported score network
# A bfloat16 export is checked against its float32 weights: the largest score difference
# over the verification inputs, relative to the largest |float32 score|, must stay below this.
BFLOAT16_SCORE_TOLERANCE = 0.1
Progress = Callable[[str], None]


class ExportError(RuntimeError):
    """An export failed (bad input, conversion or verification); no files were left behind."""


@dataclass
class ExportResult:
    """What one export wrote.

    Attributes:
        name: export name (folder under OUT).
        path: the export folder.
        formats: formats written.
        step: training step of the weights.
        sizes: bytes per part ("savedmodel", "onnx", "manifest").
        verification: the manifest's verification record.
        seconds: wall time of the export.
        notes: one-line remarks for the user (e.g. leftovers of a killed export removed).
    """

    name: str
    path: str
    formats: tuple[str, ...]
    step: int
    sizes: dict[str, int] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.values())


def check_formats(formats: str | Sequence[str]) -> tuple[str, ...]:
    """("savedmodel", "onnx") from "both" / "savedmodel" / "onnx" or a list of them."""
    if isinstance(formats, str):
        formats = layout.FORMATS if formats == "both" else (formats,)
    unknown = [name for name in formats if name not in layout.FORMATS]
    if unknown or not formats:
        raise ValueError(f"unknown export format(s) {unknown or formats}; use savedmodel, onnx or both")
    return tuple(name for name in layout.FORMATS if name in formats)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _folder_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names)


def _replace_folder(staging: str, final: str) -> None:
    """Move `staging` to `final`, replacing an older export there."""
    if os.path.lexists(final):
        if not os.path.isfile(os.path.join(final, layout.MANIFEST_FILE)):
            raise ExportError(f"{final} exists and is not an export folder; choose another --out or name")
        trash = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.old-{os.getpid()}-", dir=os.path.dirname(final))
        os.replace(final, os.path.join(trash, "old"))
        os.replace(staging, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(staging, final)


# Hidden folders an export writes next to OUT/NAME: staging (".NAME.partial-PID-xxxx") and the
# old export being replaced (".NAME.old-PID-xxxx"). Names without a PID come from older versions.
_LEFTOVER = re.compile(r"^\.(?P<name>.+)\.(?:partial|old)-(?:(?P<pid>\d+)-)?[^/]*$")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_leftovers(out_dir: str | os.PathLike[str]) -> list[str]:
    """Remove staging/replacement folders in `out_dir` left by killed exports; returns their names.

    A folder whose PID is a running process (an export in progress) is kept.
    """
    removed = []
    for entry in sorted(os.listdir(out_dir)):
        match = _LEFTOVER.match(entry)
        path = os.path.join(out_dir, entry)
        if match is None or not os.path.isdir(path) or os.path.islink(path):
            continue
        if match["pid"] is not None and _process_alive(int(match["pid"])):
            continue
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            removed.append(entry)
    return removed


def export_model(
    config: Config,
    model: keras.Model,
    step: int,
    out_dir: str | os.PathLike[str],
    *,
    name: str | None = None,
    formats: str | Sequence[str] = "both",
    opset: int = DEFAULT_OPSET,
    steps_per_level: int | None = None,
    ema: bool = False,
    optimize_onnx: bool = True,
    precision: str = "float32",
    progress: Progress | None = None,
) -> ExportResult:
    """Export a built score model as `OUT/NAME/{manifest.json, savedmodel/, onnx/*.onnx}`, verified.

    Args:
        config: the training config (ladder, image shape, sampler defaults; stored in the manifest).
        model: the built score model, `model(images [B, ...], sigma_indices [B]) -> [B, ...]`.
        step: training step of the weights (recorded in the manifest).
        out_dir: parent folder of the export.
        name: export folder name; default `config.name`.
        formats: "both", "savedmodel", "onnx" (or a list).
        opset: ONNX opset (18; see `onnx_convert.supported_opsets`).
        steps_per_level: default T in the manifest; default `config.sampling.steps_per_level`.
        ema: whether `model` holds EMA weights (recorded in the manifest).
        optimize_onnx: run tf2onnx's graph optimizers (False: ~3x faster conversion,
            ~5-10% slower onnxruntime steps; see `onnx_convert.convert_endpoint`).
        precision: "float32", or "bfloat16": the score network computes in bfloat16
            (Keras mixed_bfloat16: float32 weights, inputs and outputs) while the sampler
            (images, noise, step sizes) stays float32. SavedModel only (onnxruntime's CPU
            provider has no bfloat16 convolution); its scores are checked against the
            float32 network (`BFLOAT16_SCORE_TOLERANCE`). Faster on CPUs with AVX-512 BF16
            or AMX and on GPUs/TPUs; see docs/export.md for speed and sample quality.
        progress: called with a short description of each stage.

    Returns:
        The ExportResult.

    Raises:
        ExportError: anything failed; no partial files remain.
    """
    started = time.perf_counter()
    report = progress or (lambda stage: None)
    formats = check_formats(formats)
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}; use one of {list(PRECISIONS)}")
    if precision == "bfloat16" and "onnx" in formats:
        raise ExportError(
            "bfloat16 exports are SavedModel only (onnxruntime's CPU provider has no bfloat16 convolution); "
            "use --format savedmodel, or --precision float32 for ONNX"
        )
    if "onnx" in formats:
        onnx_convert.check_opset(opset)
    if not getattr(model, "built", True):
        raise ExportError("the model is not built; call it once (build_score_model does) before exporting")
    name = name or config.name
    if not name or os.sep in name or name.startswith(".") or (os.altsep and os.altsep in name):
        raise ExportError(f"export name {name!r} must be a plain folder name")
    build_formats = ("savedmodel", *(("onnx",) if "onnx" in formats else ()))  # the SavedModel is the reference
    record = dict(
        name=name, steps_per_level=steps_per_level, step=step, ema=ema, score_model=type(model).__name__,
        opset=opset if "onnx" in formats else None, precision=precision,
    )  # fmt: skip
    try:
        # The copies inside the SavedModel are written before verification: they carry the tolerance only.
        document = manifest.build_manifest(
            config, **record, formats=build_formats, verification={"status": "pending", "tolerance": TOLERANCE}
        )
    except ExportInputError as error:
        raise ExportError(f"cannot export {name!r}: {error}") from None
    out_dir = os.path.abspath(os.fspath(out_dir))
    os.makedirs(out_dir, exist_ok=True)
    notes = [
        f"removed {entry} (left in {out_dir} by an export that was killed)" for entry in remove_leftovers(out_dir)
    ]
    final = os.path.join(out_dir, name)
    staging = tempfile.mkdtemp(prefix=f".{name}.partial-{os.getpid()}-", dir=out_dir)
    try:
        float32_model = model
        if precision == "bfloat16":
            report("building the bfloat16 network")
            model = bfloat16_copy(config, model)
        report("tracing endpoints")
        endpoints = builder.build_endpoints(model, document)
        scratch = os.path.join(staging, ".scratch")
        os.makedirs(scratch)
        archive = builder.build_archive(model, endpoints, manifest_io.to_text(document), scratch)
        report("writing SavedModel")
        archive.write_out(os.path.join(staging, layout.SAVEDMODEL_DIR), verbose=False)
        shutil.rmtree(scratch)
        onnx_models: dict[str, Any] = {}
        if "onnx" in formats:
            for endpoint in ("initial_images", "score", "sample_levels", "inpaint_levels"):
                report(f"converting {endpoint} to ONNX")
                onnx_models[endpoint] = onnx_convert.convert_endpoint(endpoints[endpoint], opset, optimize_onnx)
            for endpoint, levels in (("sample", "sample_levels"), ("inpaint", "inpaint_levels")):
                onnx_models[endpoint] = onnx_convert.compose_full_run(
                    onnx_models["initial_images"], onnx_models[levels], document.num_levels,
                    builder.OUTPUT_NAMES[endpoint],
                )  # fmt: skip
            os.makedirs(os.path.join(staging, layout.ONNX_DIR))
            for endpoint in builder.ENDPOINTS:
                onnx_convert.save(onnx_models[endpoint], os.path.join(staging, document.files.onnx[endpoint]))
        manifest_io.write(document, staging)
        report("verifying")
        verification = verify_export(staging, with_onnx="onnx" in formats)
        if precision == "bfloat16":
            verification["bfloat16_vs_float32"] = check_bfloat16_scores(config, float32_model, model)
        document = manifest.build_manifest(config, **record, formats=formats, verification=verification)
        text = manifest_io.to_text(document)
        sizes: dict[str, int] = {}
        for endpoint, model_proto in onnx_models.items():
            onnx_convert.set_metadata(model_proto, onnx_convert.METADATA_KEY, text)
            path = os.path.join(staging, document.files.onnx[endpoint])
            sizes["onnx"] = sizes.get("onnx", 0) + onnx_convert.save(model_proto, path)
        savedmodel_dir = os.path.join(staging, layout.SAVEDMODEL_DIR)
        if "savedmodel" in formats:
            sizes["savedmodel"] = _folder_bytes(savedmodel_dir)
        else:
            shutil.rmtree(savedmodel_dir)
        sizes["manifest"] = os.path.getsize(manifest_io.write(document, staging))
        os.chmod(staging, 0o777 & ~_current_umask())  # mkdtemp made it private
        _replace_folder(staging, final)
    except BaseException as error:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, ExportError):
            raise
        if not isinstance(error, Exception):
            raise
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ExportError(f"export of {name!r} failed: {message}") from error
    return ExportResult(
        name=name, path=final, formats=formats, step=int(step), sizes=sizes,
        verification=verification, seconds=time.perf_counter() - started, notes=notes,
    )  # fmt: skip


def bfloat16_copy(config: Config, model: keras.Model) -> keras.Model:
    """A mixed_bfloat16 copy of a float32 score model built from `config` (same weights)."""
    from ncsn_tf.checkpoints import build_model_with_policy

    copy = build_model_with_policy(config, "mixed_bfloat16")
    try:
        copy.set_weights(model.get_weights())
    except ValueError as error:  # e.g. an exact-score model, which has no trained weights
        raise ExportError(
            f"a bfloat16 export needs the trained score network its config describes, not this "
            f"{type(model).__name__}: {str(error).splitlines()[0]}"
        ) from error
    return copy


def check_bfloat16_scores(config: Config, float32_model: keras.Model, bfloat16_model: keras.Model) -> dict[str, Any]:
    """Compare the two networks' scores on seeded noisy images at every level.

    Returns:
        The record stored in the manifest's verification block.

    Raises:
        ExportError: the relative difference is above `BFLOAT16_SCORE_TOLERANCE`.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    sigmas = config.noise.sigmas()  # [L]
    levels = np.arange(len(sigmas), dtype=np.int32)  # [L], one image per level
    clean = rng.uniform(0.0, 1.0, size=(len(levels), *config.data.shape)).astype(np.float32)  # [L, H, W, C] in [0, 1]
    noise = rng.normal(size=clean.shape).astype(np.float32) * sigmas[:, None, None, None].astype(np.float32)
    noisy = clean + noise  # [L, H, W, C]
    reference = np.asarray(float32_model(noisy, levels), np.float64)  # [L, H, W, C]
    candidate = np.asarray(keras.ops.convert_to_numpy(bfloat16_model(noisy, levels)), np.float64)
    # Relative to each level's largest |score| (the scores scale like 1 / sigma).
    scale = np.maximum(np.abs(reference).reshape(len(levels), -1).max(axis=1), 1e-12)  # [L]
    relative = np.abs(candidate - reference).reshape(len(levels), -1).max(axis=1) / scale  # [L]
    record = {
        "max_relative_score_diff": float(relative.max()),
        "per_level": [float(value) for value in relative],
        "tolerance": BFLOAT16_SCORE_TOLERANCE,
    }
    if not float(relative.max()) <= BFLOAT16_SCORE_TOLERANCE:
        raise ExportError(
            f"bfloat16 scores differ from float32 by {relative.max():.3g} of their size "
            f"(tolerance {BFLOAT16_SCORE_TOLERANCE}); export in float32"
        )
    return record


def default_name(path: str | os.PathLike[str]) -> str:
    """Export name of a workdir or checkpoint path: the workdir's folder name (+ "-ckpt-N" for a prefix)."""
    from ncsn_tf.checkpoints import resolve_checkpoint

    workdir, prefix = resolve_checkpoint(path)
    name = os.path.basename(os.path.normpath(workdir))
    if not os.path.isdir(os.path.abspath(os.fspath(path))):  # an explicit checkpoint prefix
        name = f"{name}-{os.path.basename(prefix)}"
    return name


def export_checkpoint(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    use_ema: bool = True,
    name: str | None = None,
    progress: Progress | None = None,
    **options: Any,
) -> ExportResult:
    """Export a training workdir (latest checkpoint) or a checkpoint prefix.

    Args:
        path: a workdir, its checkpoints/ folder, or a prefix such as WORKDIR/checkpoints/ckpt-500.
        out_dir: parent folder of the export.
        use_ema: export the EMA weights when the checkpoint has them.
        name: export name; default `default_name(path)`.
        progress: as `export_model`.
        **options: formats, opset, steps_per_level, optimize_onnx, precision (see `export_model`).

    Raises:
        ExportError: the workdir/checkpoint is missing or corrupt, or the export failed.
    """
    from ncsn_tf.checkpoints import checkpoint_has_ema, load_for_inference, resolve_checkpoint

    report = progress or (lambda stage: None)
    try:
        report("loading checkpoint")
        _, prefix = resolve_checkpoint(path)
        config, model, step = load_for_inference(path, use_ema=use_ema)
        ema = use_ema and checkpoint_has_ema(prefix)
        name = name or default_name(path)
    except Exception as error:
        raise ExportError(f"cannot load {os.fspath(path)}: {str(error).splitlines()[0]}") from error
    return export_model(config, model, step, out_dir, name=name, ema=ema, progress=progress, **options)


def toy_mixture_config() -> Config:
    """The toy config (paper Section 3.2) used by the exact-score mixture export."""
    from ncsn_tf.configs import toy, validate

    return validate(toy())


def export_toy_mixture(
    out_dir: str | os.PathLike[str], *, name: str = "toy_mixture", progress: Progress | None = None, **options: Any
) -> ExportResult:
    """Export the exact score of 0.2 N((-5,-5), I) + 0.8 N((5,5), I) with the paper's toy sampler.

    Points are [B, 2]; initial points ~ Uniform[-8, 8)^2 (manifest value_range).
    """
    from ncsn_tf.models.analytic import paper_toy_mixture

    config = toy_mixture_config()
    model = paper_toy_mixture(tuple(float(sigma) for sigma in config.noise.sigmas()))
    return export_model(config, model, 0, out_dir, name=name, progress=progress, **options)
