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
naming its settings, endpoints and network-call count. The endpoint table, the
manifest block, the Python API and the app all read from this table.

The samplers (docs/samplers.md): `annealed_langevin` (the paper's), `predictor_corrector`
(score_sde's VE predictor-corrector) and `probability_flow` (Euler / Heun on the
probability-flow ODE). Their ranges are those of `ncsn_tf.sampling.check_settings`
(tests/test_export_samplers.py compares both on the edges), except that annealed
Langevin's export is stricter (T <= 100,000, epsilon <= 1). `network_calls` counts a
run's score-network calls as `ncsn_tf.sampling.network_calls` does.
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
PREDICTOR_CORRECTOR = "predictor_corrector"  # Song et al. 2021, Algorithms 2-3 (VE)
PROBABILITY_FLOW = "probability_flow"  # Karras et al. 2022, Algorithm 1 (sigma(t) = t)
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
        inpainting_only: a graph input of the inpainting endpoints only (RePaint's resampling).
    """

    name: str
    kind: type
    dtype: str
    minimum: float | None = None
    maximum: float | None = None
    minimum_inclusive: bool = True
    meaning: str = ""
    inpainting_only: bool = False

    def range_text(self) -> str:
        """The allowed values in words, e.g. "an integer in [1, 100000]"."""
        if self.kind is bool:
            return "true or false"
        noun = "an integer" if self.kind is int else "a finite number"
        if self.maximum is None and self.minimum is not None:
            return f"{noun} {'>=' if self.minimum_inclusive else '>'} {self.minimum:g}"
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
# Predictor-corrector (Song et al. 2021, Algorithms 2-3 and 5): C corrector steps per level, their target
# signal-to-noise ratio r, and RePaint's resampling repeats u (Lugmayr et al. 2022; inpainting only).
CORRECTOR_STEPS = Setting("corrector_steps", int, "int32", 0, None, meaning="corrector steps per level")
SNR = Setting("snr", float, "float32", 0.0, None, minimum_inclusive=False, meaning="corrector signal-to-noise ratio")
RESAMPLE_STEPS = Setting(
    "resample_steps", int, "int32", 0, None, meaning="RePaint resampling repeats per level", inpainting_only=True
)
# Probability flow (Karras et al. 2022, Algorithm 1): 1 = Euler, 2 = Heun.
ORDER = Setting("order", int, "int32", 1, 2, meaning="1 = Euler, 2 = Heun")
ORDERS = (1, 2)

ROLES = ("initial_images", "sample", "sample_levels", "inpaint", "inpaint_levels")  # what each sampler has
INPAINTING_ROLES = ("inpaint", "inpaint_levels")


@dataclass(frozen=True)
class SamplerKind:
    """A sampler the exported graphs can run.

    Attributes:
        name: its name in the manifest and the API.
        settings: its run-time settings, in graph-input order (inpainting-only ones last).
        endpoints: role -> endpoint name, for every role in `ROLES`; "initial_images" is
            the sampler's start (`initial_images`: Uniform on the data range; `prior_images`:
            N(centre, sigma_1^2 I)), shared by samplers with the same start.
        calls_per_level: network calls per noise level for given settings (loop iterations;
            the int32 budget is checked on it, as `ncsn_tf.sampling.check_settings` does).
        description: one line for users.
        divergence_hint: what to change when its samples become non-finite.
    """

    name: str
    settings: tuple[Setting, ...]
    endpoints: Mapping[str, str]
    calls_per_level: Callable[[SamplerSettings], int]
    description: str
    divergence_hint: str

    def role_settings(self, role: str) -> tuple[Setting, ...]:
        """The settings that are graph inputs of the endpoint of `role` (none for the start)."""
        if role == "initial_images":
            return ()
        return tuple(s for s in self.settings if role in INPAINTING_ROLES or not s.inpainting_only)


def _endpoint_names(prefix: str, start: str) -> dict[str, str]:
    return {"initial_images": start, **{role: prefix + role for role in ROLES[1:]}}


SAMPLERS: dict[str, SamplerKind] = {
    ANNEALED_LANGEVIN: SamplerKind(
        name=ANNEALED_LANGEVIN,
        settings=(STEPS_PER_LEVEL, EPSILON, DENOISE),
        endpoints=_endpoint_names("", "initial_images"),  # the version-1 names, unchanged
        calls_per_level=lambda settings: int(settings.steps_per_level or 1),
        description="annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1)",
        divergence_hint="reduce epsilon",
    ),
    PREDICTOR_CORRECTOR: SamplerKind(
        name=PREDICTOR_CORRECTOR,
        settings=(CORRECTOR_STEPS, SNR, RESAMPLE_STEPS),
        endpoints=_endpoint_names(PREDICTOR_CORRECTOR + "_", "prior_images"),
        calls_per_level=lambda settings: (int(settings.corrector_steps or 0) + 1) * (int(settings.resample_steps or 0) + 1),
        description="predictor-corrector: reverse diffusion + Langevin corrector (Song et al. 2021, Algorithms 2-3)",
        divergence_hint="reduce snr or corrector_steps",
    ),
    PROBABILITY_FLOW: SamplerKind(
        name=PROBABILITY_FLOW,
        settings=(ORDER,),
        endpoints=_endpoint_names(PROBABILITY_FLOW + "_", "prior_images"),
        calls_per_level=lambda settings: 2 if int(settings.order or 1) >= 2 else 1,
        description="probability-flow ODE, Euler or Heun (Karras et al. 2022, Algorithm 1)",
        divergence_hint="the network's scores are not finite on this path; try order 1 or another sampler",
    ),
}


def sampler_kind(name: Any, error: type[Exception] = ExportInputError, hint: str = "") -> SamplerKind:
    """The `SamplerKind` called `name`, or `error` naming the known ones."""
    if not isinstance(name, str) or name not in SAMPLERS:
        raise error(f"unknown sampler {name!r:.80}; known samplers: {', '.join(SAMPLERS)}{hint}")
    return SAMPLERS[name]


@dataclass(frozen=True)
class SamplerSettings:
    """A sampler and its run-time settings: the one settings type of the export layer.

    A field left None means "the export's default" (`completed` fills it in from the
    manifest). Fields of settings the sampler does not have must stay None. The first
    three fields are annealed Langevin's, positional for compatibility
    (`SamplerSettings(100, 2e-5, False)`); give the others by name.

    Attributes:
        steps_per_level: annealed Langevin: steps at each noise level, T (paper: 100).
        epsilon: annealed Langevin: step size at the smallest sigma; level i uses
            epsilon sigma_i^2 / sigma_L^2 (paper: 2e-5).
        denoise: annealed Langevin: NCSNv2's final denoising step x + sigma_L^2 s(x, L).
        sampler: which sampler (`SAMPLERS`).
        corrector_steps: predictor-corrector: C >= 0 corrector steps per level (0 = reverse diffusion).
        snr: predictor-corrector: r > 0, the correctors' target signal-to-noise ratio.
        resample_steps: predictor-corrector inpainting: RePaint's u >= 0 repeats per level.
        order: probability flow: 1 (Euler) or 2 (Heun).
    """

    steps_per_level: int | None = None
    epsilon: float | None = None
    denoise: bool | None = None
    sampler: str = ANNEALED_LANGEVIN
    corrector_steps: int | None = None
    snr: float | None = None
    resample_steps: int | None = None
    order: int | None = None

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
            num_levels: L of the export; with it, levels x network calls per level must fit
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
                raise error(
                    f"{label}{field.name} is not a setting of {kind.name} "
                    f"(its settings: {', '.join(s.name for s in kind.settings)}){hint}"
                )
        checked = {}
        for setting in kind.settings:
            value = getattr(self, setting.name)
            if value is None:
                raise error(f"{label}{setting.name} ({setting.meaning}) is missing{hint}")
            checked[setting.name] = setting.check(value, label + setting.name, error, hint)
        result = dataclasses.replace(self, **checked)
        if num_levels is not None:
            calls = kind.calls_per_level(result)
            bound = limits.max_steps_per_level(num_levels)
            if calls > bound:
                what = {
                    ANNEALED_LANGEVIN: f"steps_per_level {calls:,}",
                    PREDICTOR_CORRECTOR: f"(corrector_steps + 1) x (resample_steps + 1) = {calls:,} calls per level",
                }.get(kind.name, f"{calls:,} calls per level")
                raise error(
                    f"{label}{what} x {num_levels} levels is more loop iterations than the graphs' int32 counters "
                    f"hold ({limits.MAX_LOOP_ITERATIONS:,}); use at most {bound:,}{hint}"
                )
        return result

    def for_role(self, role: str) -> SamplerSettings:
        """These settings as the endpoint of `role` takes them: inpainting-only settings dropped when sampling."""
        if role in INPAINTING_ROLES:
            return self
        dropped = {s.name: None for s in self.kind.settings if s.inpainting_only}
        return dataclasses.replace(self, **dropped) if dropped else self

    def network_calls(self, num_levels: int, inpainting: bool = False) -> int:
        """Score-network calls per image of a whole run over `num_levels` levels (see `network_calls`).

        Sampling (`inpainting` False) ignores inpainting-only settings, as the sampling endpoints do.
        """
        settings = self if inpainting else self.for_role("sample")
        return network_calls(self.sampler, num_levels, settings, inpainting=inpainting)

    def inputs(self, role: str = "sample") -> dict[str, np.ndarray]:
        """The settings as the 0-d graph inputs of the endpoint of `role` (validate first; onnxruntime
        rejects NumPy scalars)."""
        values = {}
        for setting in self.kind.role_settings(role):
            value = getattr(self, setting.name)
            values[setting.name] = np.array(0 if value is None and setting.inpainting_only else value, setting.dtype)
        return values

    def to_json(self) -> dict[str, Any]:
        """The settings as the manifest writes them (`sampler.settings.NAME`)."""
        return {name: value for name, value in self.values().items()}


def network_calls(
    sampler: str,
    num_levels: int,
    settings: SamplerSettings | Mapping[str, Any],
    *,
    inpainting: bool = False,
    first_level: int = 0,
    last_level: int | None = None,
) -> int:
    """Score-network calls per image of a run (each call evaluates the whole batch once).

    The count of `ncsn_tf.sampling.network_calls` (tests compare both), as pure Python for
    readers without TensorFlow (the app's cost estimate): annealed Langevin L T (+ 1 with
    denoise); predictor-corrector L (C + 1) + (L - 1) u (C + 1) (u only when inpainting);
    probability flow L (Euler) or 2L - 1 (Heun). Over a chunk [first, last) only its calls.

    Args:
        sampler: a name in `SAMPLERS`.
        num_levels: L.
        settings: the sampler's settings (a `SamplerSettings` or a name -> value mapping);
            validated here.
        inpainting: whether the run inpaints (only then do resample_steps count).
        first_level, last_level: the chunk, last None = L.

    Returns:
        The number of network calls.

    Raises:
        ExportInputError: an unknown sampler, bad settings or a bad level range (one line).
    """
    kind = sampler_kind(sampler)
    if isinstance(num_levels, bool) or not isinstance(num_levels, (int, np.integer)) or not 1 <= num_levels <= limits.MAX_LEVELS:
        raise ExportInputError(f"num_levels must be an integer in [1, {limits.MAX_LEVELS}], got {num_levels!r}")
    num_levels = int(num_levels)
    if isinstance(settings, SamplerSettings):
        if settings.sampler != kind.name:
            raise ExportInputError(f"the settings are for {settings.sampler!r}, not {kind.name!r}")
        values = settings.values()
    else:
        values = dict(settings)
    if not inpainting and values.get(RESAMPLE_STEPS.name) not in (None, 0):
        raise ExportInputError(
            "resample_steps is RePaint's resampling for inpainting: count an inpainting run, or leave it 0"
        )
    filled = {s.name: 0 for s in kind.settings if s.inpainting_only and values.get(s.name) is None}
    if kind.name == ANNEALED_LANGEVIN:  # the step size and the denoiser flag's default do not change a count
        filled.update({name: value for name, value in (("epsilon", 1e-5), ("denoise", False)) if values.get(name) is None})
    checked = SamplerSettings(sampler=kind.name, **{**values, **filled}).validate(num_levels)
    last = num_levels if last_level is None else last_level
    for name, value in (("first_level", first_level), ("last_level", last)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ExportInputError(f"{name} must be an integer, got {value!r}")
    first, last = int(first_level), int(last)
    if not 0 <= first <= last <= num_levels:
        raise ExportInputError(f"level range [{first}, {last}) is outside [0, {num_levels}); need 0 <= first <= last <= L")
    per_level = kind.calls_per_level(checked)
    ends_ladder = last == num_levels and last > first
    if kind.name == ANNEALED_LANGEVIN:  # the denoising call belongs to a chunk that ends at L
        return (last - first) * per_level + int(bool(checked.denoise) and last == num_levels)
    if kind.name == PREDICTOR_CORRECTOR:  # the last level has one repeat (no resampling there)
        repeat_calls = int(checked.corrector_steps) + 1
        return (last - first) * per_level - (per_level - repeat_calls if ends_ladder else 0)
    return (last - first) * per_level - (per_level - 1 if ends_ladder else 0)  # the last step is Euler to 0
