"""Sampler settings of an export: the one type, its one validation and the documented ranges.

A sampler is a name plus its run-time settings, which are graph inputs of its
endpoints (docs/export.md, "Sampler settings"). What is fixed at export time (the
Langevin step convention) is not a setting: it is part of the manifest's `sampler`
block. Every reader validates through `SamplerSettings.validate`: the Python API
(`ExportedSampler`), the export CLI's `--steps-per-level`, the manifest reader
(the defaults an export carries) and the desktop app.

Strictness (docs/export.md): integers must be integers (1.9 and True are errors,
not 1), booleans must be booleans ("no" is an error), numbers must be real and
finite and inside the range below, and levels x steps per level must fit the
graphs' int32 loop counters (`export_format.limits`).

Adding a sampler is a change here: a field per new setting on `SamplerSettings`
(default None), a `Setting` with its range for each, and an entry in `SAMPLERS`
naming its settings and endpoints. The endpoint table, the manifest block, the
Python API and the app all read from this table. Only `annealed_langevin` exists.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from export_format import limits
from export_format.errors import ExportInputError

ANNEALED_LANGEVIN = "annealed_langevin"  # Song & Ermon 2019, Algorithm 1
# Langevin step conventions (fixed at export; manifest `sampler.convention`), a_i = epsilon sigma_i^2 / sigma_L^2:
# "code" = the reference code's x += a s + sqrt(2a) z (the published numbers), "paper" = Algorithm 1 as
# printed, x += (a/2) s + sqrt(a) z.
CONVENTIONS = ("code", "paper")
MAX_STEPS_PER_LEVEL = 100_000  # 100k x L network calls per image is hours; the paper uses 100
MAX_EPSILON = 1.0  # epsilon is the step at the smallest sigma: 1 is already a step as large as sigma_L^2 / sigma_L^2


@dataclass(frozen=True)
class Setting:
    """One run-time setting of a sampler: a graph input with a kind and a documented range.

    Attributes:
        name: the graph input's name and the manifest key.
        kind: int, float or bool (checked strictly, see the module docstring).
        dtype: the graph input's dtype ("int32", "float32", "bool").
        minimum, maximum: the range (None = unbounded); `minimum_inclusive` says whether
            the minimum itself is allowed (the maximum always is).
        meaning: a few words for messages ("steps per level").
    """

    name: str
    kind: type
    dtype: str
    minimum: float | None = None
    maximum: float | None = None
    minimum_inclusive: bool = True
    meaning: str = ""

    def range_text(self) -> str:
        """The allowed values in words, e.g. "an integer in [1, 100000]"."""
        if self.kind is bool:
            return "true or false"
        noun = "an integer" if self.kind is int else "a finite number"
        low = "-inf" if self.minimum is None else f"{self.minimum:g}"
        high = "inf" if self.maximum is None else f"{self.maximum:g}"
        return f"{noun} in {'[' if self.minimum_inclusive else '('}{low}, {high}]"

    def check(self, value: Any, label: str, error: type[Exception] = ExportInputError, hint: str = "") -> Any:
        """`value` as a plain Python int/float/bool, or `error` with a one-line message.

        Args:
            value: the candidate (Python or NumPy scalar, or a 0-d array).
            label: how the message names it, e.g. "steps_per_level" or "manifest.json: sampler...".
            error: the exception class to raise.
            hint: appended to the message (what to do), e.g. "; re-export the model".

        Raises:
            error: wrong kind, not finite, or outside the range.
        """
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value[()]
        name = f"{label} ({self.meaning})" if self.meaning else label
        shown = value.item() if isinstance(value, np.generic) else value  # 1.9, not np.float64(1.9)
        got = f"got {shown!r}" + (f" ({type(value).__name__})" if not isinstance(value, (str, bool)) else "")
        boolean = isinstance(value, (bool, np.bool_))
        if self.kind is bool:
            if not boolean:
                raise error(f"{name} must be true or false, {got}{hint}")
            return bool(value)
        if self.kind is int:
            if boolean or not isinstance(value, (int, np.integer)):
                raise error(f"{name} must be {self.range_text()}, {got}{hint}")
            checked: int | float = int(value)
        else:
            if boolean or not isinstance(value, (int, float, np.integer, np.floating)):
                raise error(f"{name} must be {self.range_text()}, {got}{hint}")
            checked = float(value)
            if not math.isfinite(checked):
                raise error(f"{name} must be {self.range_text()}, {got}{hint}")
        low_ok = self.minimum is None or (checked >= self.minimum if self.minimum_inclusive else checked > self.minimum)
        if not low_ok or (self.maximum is not None and checked > self.maximum):
            raise error(f"{name} must be {self.range_text()}, {got}{hint}")
        return checked


STEPS_PER_LEVEL = Setting("steps_per_level", int, "int32", 1, MAX_STEPS_PER_LEVEL, meaning="steps per level")
EPSILON = Setting("epsilon", float, "float32", 0.0, MAX_EPSILON, minimum_inclusive=False, meaning="step size")
DENOISE = Setting("denoise", bool, "bool", meaning="final denoising step")


@dataclass(frozen=True)
class SamplerKind:
    """A sampler the exported graphs can run.

    Attributes:
        name: its name in the manifest and the API.
        settings: its run-time settings, in graph-input order.
        endpoints: role -> endpoint name, roles "sample", "sample_levels", "inpaint", "inpaint_levels".
        iterations_per_level: loop iterations (network calls) per noise level for given settings.
        description: one line for users.
    """

    name: str
    settings: tuple[Setting, ...]
    endpoints: Mapping[str, str]
    iterations_per_level: Callable[[SamplerSettings], int]
    description: str


SAMPLERS: dict[str, SamplerKind] = {
    ANNEALED_LANGEVIN: SamplerKind(
        name=ANNEALED_LANGEVIN,
        settings=(STEPS_PER_LEVEL, EPSILON, DENOISE),
        endpoints={"sample": "sample", "sample_levels": "sample_levels", "inpaint": "inpaint",
                   "inpaint_levels": "inpaint_levels"},  # fmt: skip
        iterations_per_level=lambda settings: int(settings.steps_per_level or 1),
        description="annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1)",
    ),
}


def sampler_kind(name: Any, error: type[Exception] = ExportInputError, hint: str = "") -> SamplerKind:
    """The `SamplerKind` called `name`, or `error` naming the known ones."""
    if not isinstance(name, str) or name not in SAMPLERS:
        raise error(f"unknown sampler {name!r}; known samplers: {', '.join(SAMPLERS)}{hint}")
    return SAMPLERS[name]


@dataclass(frozen=True)
class SamplerSettings:
    """A sampler and its run-time settings: the one settings type of the export layer.

    A field left None means "the export's default" (`completed` fills it in from the
    manifest). Fields of settings the sampler does not have must stay None.

    Attributes:
        steps_per_level: Langevin steps at each noise level, T (paper: 100).
        epsilon: step size at the smallest sigma; level i uses epsilon sigma_i^2 / sigma_L^2 (paper: 2e-5).
        denoise: NCSNv2's final denoising step x + sigma_L^2 s(x, L) at the end of the run.
        sampler: which sampler (`SAMPLERS`).
    """

    steps_per_level: int | None = None
    epsilon: float | None = None
    denoise: bool | None = None
    sampler: str = ANNEALED_LANGEVIN

    @property
    def kind(self) -> SamplerKind:
        return sampler_kind(self.sampler)

    def values(self) -> dict[str, Any]:
        """The sampler's settings, name -> value (None where unset), in graph-input order."""
        return {setting.name: getattr(self, setting.name) for setting in self.kind.settings}

    def replace(self, **changes: Any) -> SamplerSettings:
        """A copy with some fields changed; an unknown name is an `ExportInputError`.

        `sampler=` switches the sampler (the other fields are then those given).
        """
        names = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise ExportInputError(f"unknown sampler setting(s) {unknown}; the settings are: {', '.join(names)}")
        return dataclasses.replace(self, **changes)

    def completed(self, defaults: SamplerSettings) -> SamplerSettings:
        """These settings with every None taken from `defaults` (the same sampler's export defaults)."""
        if defaults.sampler != self.sampler:
            raise ExportInputError(f"defaults are for {defaults.sampler!r}, the settings for {self.sampler!r}")
        filled = {name: getattr(defaults, name) for name, value in self.values().items() if value is None}
        return dataclasses.replace(self, **filled)

    def validate(
        self,
        num_levels: int | None = None,
        *,
        label: str = "",
        error: type[Exception] = ExportInputError,
        hint: str = "",
    ) -> SamplerSettings:
        """Check every setting; returns a copy holding plain Python values.

        Args:
            num_levels: L of the export; with it, levels x iterations per level must fit
                the graphs' int32 counters (`limits.max_steps_per_level`).
            label: prefix of the names in messages (e.g. "manifest.json: sampler.settings.annealed_langevin.").
            error: exception class (`ExportInputError`; the manifest reader passes `ManifestError`).
            hint: appended to messages (what to do).

        Raises:
            error: an unknown sampler, a missing, mistyped or out-of-range setting, a setting
                this sampler does not have, or more loop iterations than the graphs count.
        """
        kind = sampler_kind(self.sampler, error, hint)
        own = {setting.name for setting in kind.settings}
        for field in dataclasses.fields(self):
            if field.name != "sampler" and field.name not in own and getattr(self, field.name) is not None:
                raise error(f"{label}{field.name} is not a setting of {kind.name} (its settings: {', '.join(own)}){hint}")
        checked = {}
        for setting in kind.settings:
            value = getattr(self, setting.name)
            if value is None:
                raise error(f"{label}{setting.name} ({setting.meaning}) is missing{hint}")
            checked[setting.name] = setting.check(value, label + setting.name, error, hint)
        result = dataclasses.replace(self, **checked)
        if num_levels is not None:
            iterations = kind.iterations_per_level(result)
            bound = limits.max_steps_per_level(num_levels)
            if iterations > bound:
                raise error(
                    f"{label}steps_per_level {iterations:,} x {num_levels} levels is more loop iterations than the "
                    f"graphs' int32 counters hold ({limits.MAX_LOOP_ITERATIONS:,}); use at most {bound:,}{hint}"
                )
        return result

    def network_calls(self, num_levels: int) -> int:
        """Score-network calls per image of a whole run over `num_levels` levels (+1 for the denoising step)."""
        return num_levels * self.kind.iterations_per_level(self) + int(bool(self.denoise))

    def inputs(self) -> dict[str, np.ndarray]:
        """The settings as the endpoints' 0-d graph inputs (validate first; onnxruntime rejects NumPy scalars)."""
        return {setting.name: np.array(getattr(self, setting.name), setting.dtype) for setting in self.kind.settings}

    def to_json(self) -> dict[str, Any]:
        """The settings as the manifest writes them (`sampler.settings.NAME`)."""
        return {name: value for name, value in self.values().items()}
