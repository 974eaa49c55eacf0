"""The manifest of an export: the one reader and writer of `manifest.json` (docs/export.md, "The manifest").

The manifest tells a runtime everything it needs without guessing: the example
shape, the data range, the sigma ladder, the samplers and their defaults, the
endpoint table and which files hold which endpoint. `read` / `loads` validate it
completely (a manifest is untrusted data): a missing or mistyped key, an unknown or
newer `format_version`, an absurd shape or ladder is a one-line `ManifestError`
that names the file, the key and what to do. Sampler defaults live in
`manifest.sampler`; `manifest.config` (the training config) is provenance only and
never read for sampling.

Versions: the exporter writes `layout.FORMAT_VERSION` (2); version 1 (a flat
`sampler` {steps_per_level, epsilon, convention, denoise}) is read as the same
facts; a newer version is a one-line "update ncsn-tf" error.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from export_format import layout, limits, safe_json
from export_format.endpoints import DTYPES, ENDPOINTS, Endpoint, TensorInfo, endpoint_table, table_to_json
from export_format.errors import ExportInputError, ManifestError
from export_format.settings import ANNEALED_LANGEVIN, CONVENTIONS, SAMPLERS, SamplerSettings, sampler_kind

REEXPORT = "; re-export the model with `python -m export`"
UPDATE = "; update ncsn-tf to read it"
NOT_OURS = "; this is not a model the exporter wrote"
PRECISIONS = ("float32", "bfloat16")  # compute dtype of the score network; every endpoint's I/O is float32
MAX_TEXT = 256  # characters of a name or dataset


@dataclass(frozen=True)
class SamplerBlock:
    """The manifest's `sampler` block: the samplers the graphs hold, their defaults, the fixed convention.

    Attributes:
        default: the sampler used when none is named.
        convention: the Langevin step convention baked into the graphs ("code" or "paper").
        settings: sampler name -> its export defaults (complete and validated).
    """

    default: str
    convention: str
    settings: dict[str, SamplerSettings]

    @property
    def name(self) -> str:
        return self.default

    def defaults(self, sampler: str | None = None) -> SamplerSettings:
        """The export defaults of `sampler` (default: the default sampler)."""
        name = self.default if sampler is None else sampler
        sampler_kind(name)  # an unknown name: "unknown sampler ...; known samplers: ..."
        if name not in self.settings:
            raise ExportInputError(f"this export has no {name!r} sampler; it has: {', '.join(self.settings)}")
        return self.settings[name]

    # The default sampler's values under their version-1 names (what the app shows and starts from).
    @property
    def steps_per_level(self) -> int | None:
        return self.defaults().steps_per_level

    @property
    def epsilon(self) -> float | None:
        return self.defaults().epsilon

    @property
    def denoise(self) -> bool | None:
        return self.defaults().denoise

    def resolve(self, settings: SamplerSettings | None = None, **overrides: Any) -> SamplerSettings:
        """`settings` (default: the default sampler's) with `overrides` applied and every None filled in.

        Not validated: `Manifest.sampler_settings` validates against the ladder.
        """
        if settings is None:
            settings = SamplerSettings(sampler=overrides.pop("sampler", None) or self.default)
        if overrides:
            settings = settings.replace(**overrides)
        return settings.completed(self.defaults(settings.sampler))

    def to_json(self) -> dict[str, Any]:
        return {
            "default": self.default,
            "convention": self.convention,
            "settings": {name: settings.to_json() for name, settings in self.settings.items()},
        }


@dataclass(frozen=True)
class FileTable:
    """The manifest's `files`: paths relative to the export folder (confined to it when used).

    Attributes:
        savedmodel: the SavedModel folder, or None.
        onnx: endpoint -> .onnx file.
    """

    savedmodel: str | None = None
    onnx: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"savedmodel": self.savedmodel, "onnx": dict(self.onnx)}


@dataclass(frozen=True)
class Manifest:
    """The validated facts of one export.

    Attributes:
        name: export name (the folder name).
        dataset: data set the model was trained on.
        image_shape: one example: (H, W, C) images, or (D,) points (the toy).
        value_range: (low, high) of the data; chains start Uniform[low, high).
        sigmas: the noise ladder sigma_1 > ... > sigma_L (largest first).
        sampler: samplers, defaults and the step convention (`SamplerBlock`).
        files: which files hold the SavedModel and each ONNX endpoint.
        endpoints: the endpoint table (names, inputs, outputs) for this shape.
        format_version: the version the manifest was written in (read: 1 or 2).
        onnx_opset: the ONNX opset, None without ONNX files.
        score_model: class name of the score network.
        precision: compute dtype of the score network ("float32" or "bfloat16").
        checkpoint_step, checkpoint_ema: training step of the weights, whether EMA weights.
        config: the training config.json (provenance only: never read for sampling).
        versions: package versions that wrote the export.
        verification: the exporter's verification record.
        raw: the JSON object as read (empty for a manifest built in code); shown, never executed.
    """

    name: str
    dataset: str
    image_shape: tuple[int, ...]
    value_range: tuple[float, float]
    sigmas: tuple[float, ...]
    sampler: SamplerBlock
    files: FileTable = field(default_factory=FileTable)
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    format_version: int = layout.FORMAT_VERSION
    onnx_opset: int | None = None
    score_model: str | None = None
    precision: str = "float32"
    checkpoint_step: int | None = None
    checkpoint_ema: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    verification: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def num_levels(self) -> int:
        return len(self.sigmas)

    @property
    def is_image(self) -> bool:
        return len(self.image_shape) == 3

    @property
    def channels(self) -> int | None:
        return self.image_shape[2] if self.is_image else None

    @property
    def height(self) -> int:
        return self.image_shape[0]

    @property
    def width(self) -> int:
        return self.image_shape[1]

    @property
    def tolerance(self) -> float | None:
        """The exporter's ONNX-vs-SavedModel tolerance (relative), None when not recorded."""
        value = self.verification.get("tolerance")
        return float(value) if value is not None else None

    @property
    def onnx_files(self) -> dict[str, str]:
        return dict(self.files.onnx)

    @property
    def savedmodel_dir(self) -> str | None:
        return self.files.savedmodel

    def sampler_settings(self, settings: SamplerSettings | None = None, **overrides: Any) -> SamplerSettings:
        """Run-time settings: the export's defaults, then `settings`, then `overrides`, validated.

        Raises:
            ExportInputError: an unknown sampler or setting, or a value out of range (one line).
        """
        return self.sampler.resolve(settings, **overrides).validate(self.num_levels)

    def to_json(self) -> dict[str, Any]:
        """The manifest as the exporter writes it (always the current `FORMAT_VERSION`)."""
        return {
            "format": layout.FORMAT,
            "format_version": layout.FORMAT_VERSION,
            "name": self.name,
            "dataset": self.dataset,
            "image_shape": list(self.image_shape),
            "channels": self.channels,
            "value_range": list(self.value_range),
            "num_levels": self.num_levels,
            "sigmas": list(self.sigmas),
            "sampler": self.sampler.to_json(),
            "endpoints": table_to_json(self.endpoints or endpoint_table(self.image_shape)),
            "files": self.files.to_json(),
            "onnx_opset": self.onnx_opset,
            "score_model": self.score_model,
            "precision": self.precision,
            "checkpoint": {"step": self.checkpoint_step, "ema": self.checkpoint_ema},
            "config": self.config,
            "versions": self.versions,
            "verification": self.verification,
        }


# ---------------------------------------------------------------------------------------------- reading


class _Fields:
    """Typed access to one JSON object of a manifest; every failure names the file and the key."""

    def __init__(self, data: dict[str, Any], source: str, prefix: str = "") -> None:
        self.data, self.source, self.prefix = data, source, prefix

    def fail(self, key: str, problem: str, todo: str = REEXPORT) -> ManifestError:
        return ManifestError(f"{self.source}: {self.prefix}{key} {problem}{todo}")

    def has(self, key: str) -> bool:
        return key in self.data and self.data[key] is not None

    def get(self, key: str, required: bool = True) -> Any:
        if key not in self.data:
            if required:
                raise self.fail(key, "is missing")
            return None
        return self.data[key]

    def integer(self, key: str, low: int, high: int, required: bool = True) -> int | None:
        value = self.get(key, required)
        if value is None and not required:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be an integer, got {value!r}")
        if not low <= value <= high:
            raise self.fail(key, f"must be in [{low}, {high}], got {value}")
        return value

    def number(self, value: Any, key: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(key, f"must be a finite number, got {value!r}")
        return float(value)

    def text(self, key: str, default: str | None = None, choices: tuple[str, ...] | None = None) -> str | None:
        value = self.get(key, required=default is None)
        if value is None:
            return default
        if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
            raise self.fail(key, f"must be a non-empty string of at most {MAX_TEXT} characters, got {value!r:.80}")
        if choices is not None and value not in choices:
            raise self.fail(key, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def object(self, key: str, required: bool = True) -> dict[str, Any] | None:
        value = self.get(key, required)
        if value is None and not required:
            return None
        if not isinstance(value, dict):
            raise self.fail(key, f"must be a JSON object, got {type(value).__name__}")
        return value

    def child(self, key: str, required: bool = True) -> _Fields | None:
        value = self.object(key, required)
        return None if value is None else _Fields(value, self.source, f"{self.prefix}{key}.")


def _image_shape(fields: _Fields) -> tuple[int, ...]:
    shape = fields.get("image_shape")
    usage = "must be [H, W, C] (images) or [D] (points) of positive integers"
    if not isinstance(shape, list) or len(shape) not in (1, 3):
        raise fields.fail("image_shape", f"{usage}, got {shape!r:.80}")
    if not all(isinstance(size, int) and not isinstance(size, bool) and size >= 1 for size in shape):
        raise fields.fail("image_shape", f"{usage}, got {shape!r:.80}")
    if len(shape) == 3:
        height, width, channels = shape
        if max(height, width) > limits.MAX_IMAGE_SIDE or channels > limits.MAX_CHANNELS:
            raise fields.fail(
                "image_shape",
                f"{shape} is beyond the bounds of an export (sides <= {limits.MAX_IMAGE_SIDE}, channels <= "
                f"{limits.MAX_CHANNELS})",
                NOT_OURS,
            )
    elif shape[0] > limits.MAX_POINT_DIMENSIONS:
        raise fields.fail("image_shape", f"{shape} has more than {limits.MAX_POINT_DIMENSIONS} dimensions", NOT_OURS)
    if math.prod(shape) > limits.MAX_VALUES_PER_EXAMPLE:
        raise fields.fail(
            "image_shape", f"{shape} has more than {limits.MAX_VALUES_PER_EXAMPLE:,} values per example", NOT_OURS
        )
    return tuple(shape)


def _sigmas(fields: _Fields) -> tuple[float, ...]:
    values = fields.get("sigmas")
    if not isinstance(values, list):
        raise fields.fail("sigmas", f"must be a list of numbers (largest first), got {type(values).__name__}")
    if not values:
        raise fields.fail("sigmas", "is empty; a model has at least one noise level")
    if len(values) > limits.MAX_LEVELS:
        raise fields.fail("sigmas", f"has {len(values):,} levels, more than the {limits.MAX_LEVELS:,} an export can have")
    sigmas = tuple(fields.number(value, "sigmas") for value in values)
    if any(sigma <= 0 for sigma in sigmas) or any(a <= b for a, b in zip(sigmas, sigmas[1:], strict=False)):
        raise fields.fail("sigmas", "must be positive and strictly decreasing (sigma_1 largest)")
    num_levels = fields.integer("num_levels", 1, limits.MAX_LEVELS, required=False)
    if num_levels is not None and num_levels != len(sigmas):
        raise fields.fail("num_levels", f"is {num_levels} but sigmas has {len(sigmas)} values")
    return sigmas


def _value_range(fields: _Fields) -> tuple[float, float]:
    value = fields.get("value_range", required=False)
    if value is None:
        return (0.0, 1.0)
    if not isinstance(value, list) or len(value) != 2:
        raise fields.fail("value_range", f"must be [low, high], got {value!r:.80}")
    low, high = (fields.number(v, "value_range") for v in value)
    if not low < high:
        raise fields.fail("value_range", f"must have low < high, got {value}")
    return low, high


def _sampler_block(fields: _Fields, version: int, num_levels: int) -> SamplerBlock:
    block = fields.child("sampler")
    assert block is not None
    source = fields.source
    if version == 1:  # {steps_per_level, epsilon, convention, denoise}: annealed Langevin only
        convention = block.text("convention", default="code", choices=CONVENTIONS)
        values = {setting.name: block.get(setting.name) for setting in SAMPLERS[ANNEALED_LANGEVIN].settings}
        defaults = SamplerSettings(**values).validate(
            num_levels, label=f"{source}: sampler.", error=ManifestError, hint=REEXPORT
        )
        return SamplerBlock(ANNEALED_LANGEVIN, convention, {ANNEALED_LANGEVIN: defaults})
    default = block.text("default")
    convention = block.text("convention", choices=CONVENTIONS)
    table = block.object("settings")
    assert table is not None
    settings = {}
    for name, values in table.items():
        if name not in SAMPLERS:  # a sampler this reader does not know (a newer exporter): not offered
            continue
        entry = _Fields(values, source, f"sampler.settings.{name}.") if isinstance(values, dict) else None
        if entry is None:
            raise block.fail(f"settings.{name}", "must be a JSON object of setting values")
        own = [setting.name for setting in SAMPLERS[name].settings]
        unknown = sorted(set(values) - set(own))
        if unknown:
            raise block.fail(f"settings.{name}", f"has unknown setting(s) {unknown}", UPDATE)
        settings[name] = SamplerSettings(sampler=name, **{key: entry.get(key) for key in own}).validate(
            num_levels, label=f"{source}: sampler.settings.{name}.", error=ManifestError, hint=REEXPORT
        )
    if default not in settings:
        known = "unknown to this reader" if default not in SAMPLERS else "missing from sampler.settings"
        raise block.fail("default", f"names the sampler {default!r}, {known}", UPDATE if default not in SAMPLERS else REEXPORT)
    return SamplerBlock(default, convention, settings)


def _files(fields: _Fields) -> FileTable:
    files = fields.child("files")
    assert files is not None
    savedmodel = files.get("savedmodel", required=False)
    if savedmodel is not None and (not isinstance(savedmodel, str) or not savedmodel):
        raise files.fail("savedmodel", f"must be a path relative to the export folder or null, got {savedmodel!r:.80}")
    onnx = files.object("onnx", required=False) or {}
    for endpoint, path in onnx.items():
        if not isinstance(path, str) or not path:
            raise files.fail(f"onnx.{endpoint}", f"must be a path relative to the export folder, got {path!r:.80}")
    return FileTable(savedmodel, {endpoint: path for endpoint, path in onnx.items() if endpoint in ENDPOINTS})


def _endpoints(fields: _Fields, image_shape: tuple[int, ...]) -> dict[str, Endpoint]:
    contract = endpoint_table(image_shape)
    table = fields.object("endpoints", required=False)
    if table is None:
        return contract
    found = {}
    for name, entry in table.items():
        if name not in ENDPOINTS:  # an endpoint this reader does not know: not offered
            continue
        tensors = {}
        for kind in ("inputs", "outputs"):
            values = entry.get(kind) if isinstance(entry, dict) else None
            if not isinstance(values, dict):
                raise fields.fail(f"endpoints.{name}.{kind}", "must be a JSON object of {name: {shape, dtype}}")
            infos = []
            for tensor, spec in values.items():
                shape = spec.get("shape") if isinstance(spec, dict) else None
                dtype = spec.get("dtype") if isinstance(spec, dict) else None
                if (
                    not isinstance(shape, list)
                    or not all(isinstance(s, int) and not isinstance(s, bool) and s >= -1 for s in shape)
                    or dtype not in DTYPES
                ):
                    raise fields.fail(f"endpoints.{name}.{kind}.{tensor}", f"must be {{shape: [ints], dtype: one of {DTYPES}}}")
                infos.append(TensorInfo(tensor, dtype, tuple(None if s == -1 else s for s in shape)))
            tensors[kind] = tuple(infos)
        endpoint = Endpoint(name, tensors["inputs"], tensors["outputs"])
        if endpoint != contract[name]:
            raise fields.fail(
                f"endpoints.{name}",
                f"does not match the endpoint contract of this reader for image_shape {list(image_shape)}",
                REEXPORT.replace(";", "; update ncsn-tf or"),
            )
        found[name] = endpoint
    return found


def parse(data: Any, source: str) -> Manifest:
    """Validate a parsed manifest and return its typed facts.

    Args:
        data: the JSON value (must be an object).
        source: where it came from (a path), named in every error.

    Returns:
        The `Manifest`.

    Raises:
        ManifestError: one line naming the file, the key and what to do.
    """
    if not isinstance(data, dict):
        raise ManifestError(f"{source} is not an ncsn-tf export manifest (not a JSON object); open a folder written by `python -m export`")
    if data.get("format") != layout.FORMAT:
        raise ManifestError(
            f"{source} is not an ncsn-tf export (manifest format {data.get('format')!r:.40}, expected {layout.FORMAT!r}); "
            "open a folder written by `python -m export`"
        )
    fields = _Fields(data, source)
    version = fields.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise fields.fail("format_version", f"must be an integer, got {version!r:.40}")
    if version > max(layout.READABLE_VERSIONS):
        raise ManifestError(
            f"{source} uses export format version {version}, newer than this ncsn-tf reads "
            f"({max(layout.READABLE_VERSIONS)}){UPDATE}"
        )
    if version not in layout.READABLE_VERSIONS:
        raise fields.fail("format_version", f"is {version}, not a version of this format ({layout.READABLE_VERSIONS})")
    image_shape = _image_shape(fields)  # ("channels" is written for people: readers derive it from image_shape)
    sigmas = _sigmas(fields)
    checkpoint = fields.child("checkpoint", required=False)
    step, ema = None, False
    if checkpoint is not None:
        step = checkpoint.integer("step", 0, 2**63 - 1, required=False)
        ema = checkpoint.get("ema", required=False) or False
        if not isinstance(ema, bool):
            raise checkpoint.fail("ema", f"must be true or false, got {ema!r:.40}")
    opset = fields.integer("onnx_opset", 1, 10_000, required=False)
    verification = fields.object("verification", required=False) or {}
    if verification.get("tolerance") is not None:
        tolerance = _Fields(verification, source, "verification.").number(verification["tolerance"], "tolerance")
        if tolerance < 0:
            raise fields.fail("verification.tolerance", f"must be >= 0, got {tolerance}")
    versions = fields.object("versions", required=False) or {}
    if not all(isinstance(key, str) and isinstance(value, str) for key, value in versions.items()):
        raise fields.fail("versions", "must map package names to version strings")
    return Manifest(
        name=fields.text("name", default="model"),
        dataset=fields.text("dataset", default="unknown"),
        image_shape=image_shape,
        value_range=_value_range(fields),
        sigmas=sigmas,
        sampler=_sampler_block(fields, version, len(sigmas)),
        files=_files(fields),
        endpoints=_endpoints(fields, image_shape),
        format_version=version,
        onnx_opset=opset,
        score_model=fields.text("score_model", default="") or None,
        precision=fields.text("precision", default="float32", choices=PRECISIONS),
        checkpoint_step=step,
        checkpoint_ema=ema,
        config=fields.object("config", required=False) or {},
        versions=dict(versions),
        verification=dict(verification),
        raw=data,
    )


def loads(text: str | bytes, source: str) -> Manifest:
    """`parse` of manifest JSON text (an embedded copy: ONNX metadata, the SavedModel asset)."""
    try:
        data = safe_json.loads(text, source=source, max_bytes=limits.MAX_MANIFEST_BYTES)
    except safe_json.JsonLimitError as error:
        raise ManifestError(f"{error}{REEXPORT}") from None
    return parse(data, source)


def manifest_path(location: str | os.PathLike[str]) -> Path:
    """`location/manifest.json` for an export folder; `location` itself for a manifest file."""
    path = Path(location)
    return path / layout.MANIFEST_FILE if path.is_dir() else path


def read(location: str | os.PathLike[str]) -> Manifest:
    """The manifest of an export folder (or of a manifest.json file), validated.

    Raises:
        ManifestError: no manifest there, or it is invalid (one line).
    """
    path = manifest_path(location)
    try:
        data = safe_json.load(path, max_bytes=limits.MAX_MANIFEST_BYTES)
    except FileNotFoundError:
        raise ManifestError(
            f"no {layout.MANIFEST_FILE} in {path.parent}; pass an export folder (OUT/NAME) written by `python -m export`"
        ) from None
    except safe_json.JsonLimitError as error:
        raise ManifestError(f"{error}{REEXPORT}") from None
    return parse(data, str(path))


def to_text(manifest: Manifest) -> str:
    """The manifest as indented JSON text (what every copy holds)."""
    return json.dumps(manifest.to_json(), indent=2, allow_nan=False) + "\n"


def write(manifest: Manifest, folder: str | os.PathLike[str]) -> str:
    """Write `folder/manifest.json` after checking that it reads back; returns its path.

    Raises:
        ManifestError: the manifest would not pass `read` (a bug in the writer, never written).
    """
    path = os.path.join(os.fspath(folder), layout.MANIFEST_FILE)
    text = to_text(manifest)
    loads(text, source=path)  # the writer never writes what the reader refuses
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path
