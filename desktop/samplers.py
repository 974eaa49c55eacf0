"""The samplers as the app shows them: plain-language names, one-line descriptions, costs. No Qt.

The samplers themselves, their settings, ranges and the number of network
calls a run makes are `export_format.settings` (`SAMPLERS`, `SamplerSettings`,
`network_calls`): one registry, one validation and one counting rule for the
whole project. This module adds only what people read: a label and a
description per sampler, a label and a tooltip per setting, and the cost of a
run in words ("1,001 network calls per image (20 levels x 50 steps + 1)").

Adding a sampler is a change in `export_format.settings` (and the exporter);
here it only needs a label and a description (a sampler without them is shown
under its registry description).
"""

from __future__ import annotations

from dataclasses import dataclass

from export_format.settings import (
    ANNEALED_LANGEVIN,
    PREDICTOR_CORRECTOR,
    PROBABILITY_FLOW,
    SAMPLERS,
    SamplerSettings,
    sampler_kind,
)
from export_format.settings import network_calls as _network_calls

__all__ = [
    "ANNEALED_LANGEVIN",
    "ORDER_LABELS",
    "PREDICTOR_CORRECTOR",
    "PROBABILITY_FLOW",
    "SAMPLERS",
    "SETTING_LABELS",
    "SETTING_TIPS",
    "Cost",
    "check_sampler",
    "cost",
    "description",
    "label",
    "settings_text",
]

_LABELS = {
    ANNEALED_LANGEVIN: "Annealed Langevin \u2014 the paper's sampler, best quality, slow",
    PREDICTOR_CORRECTOR: "Predictor\u2013corrector \u2014 fast",
    PROBABILITY_FLOW: "Probability flow (ODE) \u2014 fastest, deterministic",
}
_SHORT_LABELS = {
    ANNEALED_LANGEVIN: "annealed Langevin",
    PREDICTOR_CORRECTOR: "predictor\u2013corrector",
    PROBABILITY_FLOW: "probability flow",
}
_DESCRIPTIONS = {
    ANNEALED_LANGEVIN: (
        "Many small noisy steps at every noise level, from the largest noise to the smallest "
        "(Song & Ermon 2019, Algorithm 1). The best images, but levels \u00d7 steps network calls."
    ),
    PREDICTOR_CORRECTOR: (
        "At each noise level a few corrector steps, then one jump to the next level "
        "(Song et al. 2021, reverse diffusion + Langevin corrector). Good images in far fewer calls."
    ),
    PROBABILITY_FLOW: (
        "Follows a smooth path from noise to an image, adding no noise on the way (Karras et al. 2022, "
        "Euler or Heun). The fewest calls; the same seed always gives exactly the same image."
    ),
}

SETTING_LABELS = {
    "steps_per_level": "Steps per level",
    "epsilon": "Step size",
    "denoise": "Clean up the last noise",
    "corrector_steps": "Corrector steps",
    "snr": "Signal-to-noise",
    "resample_steps": "Resampling",
    "order": "Solver",
}
SETTING_TIPS = {
    "steps_per_level": "More steps: better images, slower (T, Langevin steps at each noise level; the paper uses 100)",
    "epsilon": (
        "How far each step moves (epsilon; the step at noise level i is alpha_i = epsilon * sigma_i^2 / sigma_L^2; "
        "the paper uses 2e-5). The arrows halve or double it."
    ),
    "denoise": "One final denoising step after the last level: x + sigma_L^2 * score(x) (NCSNv2, Tweedie's formula)",
    "corrector_steps": (
        "Langevin corrector steps at each noise level before the jump to the next (C); each costs one "
        "network call per level. 0 = the jumps alone (reverse diffusion)."
    ),
    "snr": (
        "Signal-to-noise ratio r of the corrector steps: their size is 2 (r |z| / |score|)^2 per image. "
        "Larger moves more; too large spoils the images. score_sde uses 0.16 on CIFAR-10."
    ),
    "resample_steps": (
        "Inpainting only (RePaint, Lugmayr et al. 2022): after each noise level, go back up one level and "
        "redo it this many times, so the filled-in pixels agree better with the kept ones. Each repeat costs "
        "as many calls as the level itself; 0 = off."
    ),
    "order": "Heun (second order) takes two network calls per level and is more accurate; Euler takes one",
}
ORDER_LABELS = {2: "Heun (2nd order, better)", 1: "Euler (1st order, fewer calls)"}


def check_sampler(name: object) -> str:
    """`name` when it is a sampler of `export_format.settings.SAMPLERS`.

    Raises:
        ValueError: unknown sampler (one line listing the known ones).
    """
    return sampler_kind(name).name


def label(name: str) -> str:
    """The sampler's name for the sampler choice, e.g. "Predictor-corrector - fast"."""
    return _LABELS.get(name, name.replace("_", " "))


def short_label(name: str) -> str:
    """The sampler's name inside a sentence ("predictor-corrector")."""
    return _SHORT_LABELS.get(name, name.replace("_", " "))


def description(name: str) -> str:
    """One or two sentences for people: what the sampler does and what it is good for."""
    return _DESCRIPTIONS.get(name) or SAMPLERS[name].description


def settings_text(settings: SamplerSettings, inpainting: bool = False) -> str:
    """The settings in a few words, e.g. "predictor-corrector, 2 corrector steps, signal-to-noise 0.6".

    Args:
        settings: complete settings (every field of the sampler set).
        inpainting: also name inpainting-only settings (RePaint's resampling) when on.
    """
    name = settings.sampler
    if name == ANNEALED_LANGEVIN:
        parts = [
            f"{settings.steps_per_level} steps/level",
            f"step size {settings.epsilon:g}",
            f"clean-up {'on' if settings.denoise else 'off'}",
        ]
    elif name == PREDICTOR_CORRECTOR:
        steps = settings.corrector_steps
        parts = [f"{steps} corrector step{'s' if steps != 1 else ''}", f"signal-to-noise {settings.snr:g}"]
        if inpainting and settings.resample_steps:
            parts.append(f"resampling {settings.resample_steps}")
    elif name == PROBABILITY_FLOW:
        parts = ["Heun" if settings.order == 2 else "Euler"]
    else:
        parts = [f"{key} {value}" for key, value in settings.values().items()]
    return ", ".join([short_label(name), *parts])


@dataclass(frozen=True)
class Cost:
    """What a run costs in network calls per image (each call evaluates the whole batch once).

    Attributes:
        calls: network calls of the run (`export_format.settings.network_calls`).
        detail: how they add up, in words ("20 levels x 50 steps + 1").
    """

    calls: int
    detail: str

    def text(self) -> str:
        """ "1,001 network calls per image (20 levels x 50 steps + 1)"."""
        return f"{self.calls:,} network call{'s' if self.calls != 1 else ''} per image ({self.detail})"


def cost(settings: SamplerSettings, num_levels: int, inpainting: bool = False, first_level: int = 0) -> Cost:
    """The network calls of a run with `settings` over levels [first_level, L), with how they add up.

    The count is `export_format.settings.network_calls` (the one counting rule);
    only the words are added here.

    Args:
        settings: complete, valid settings of one sampler.
        num_levels: L, the model's noise levels.
        inpainting: an inpainting run (only then does RePaint's resampling count).
        first_level: the level the chain starts at (0; the middle for variations).

    Returns:
        The count and its breakdown.

    Raises:
        ValueError: bad settings or level (one line, from `export_format`).
    """
    counted = settings if inpainting else settings.for_role("sample")
    calls = _network_calls(settings.sampler, num_levels, counted, inpainting=inpainting, first_level=first_level)
    levels = num_levels - first_level
    what = f"{levels} level{'s' if levels != 1 else ''}"
    name = settings.sampler
    if name == ANNEALED_LANGEVIN:
        detail = f"{what} \u00d7 {settings.steps_per_level} steps" + (" + 1" if settings.denoise else "")
    elif name == PREDICTOR_CORRECTOR:
        per_level = int(settings.corrector_steps) + 1
        detail = f"{what} \u00d7 {per_level} call{'s' if per_level != 1 else ''}"
        repeats = int(settings.resample_steps or 0) if inpainting else 0
        if repeats and levels > 1:
            detail += f", {levels - 1} levels redone {repeats}\u00d7"
    elif name == PROBABILITY_FLOW:
        detail = f"{what} \u00d7 2 calls \u2212 1" if settings.order == 2 and levels > 0 else f"{what} \u00d7 1 call"
    else:
        detail = what
    return Cost(calls, detail)
