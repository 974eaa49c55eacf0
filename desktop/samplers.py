"""The samplers the app offers, with their plain names and their cost in network calls. No Qt.

A sampler is one entry of `SAMPLERS`; the sampler panel lists them, the state
stores the chosen one (`SamplerState.sampler`), PNG records and the history
name it, and `network_calls` says how many times a run evaluates the score
network, which the time estimate multiplies by a measured time per call.
Adding a sampler means adding it here (name, label, description, cost) and to
the run that drives its endpoints.
"""

from __future__ import annotations

ANNEALED_LANGEVIN = "annealed_langevin"
SAMPLERS = (ANNEALED_LANGEVIN,)
SAMPLER_LABELS = {ANNEALED_LANGEVIN: "Annealed Langevin"}
SAMPLER_DESCRIPTIONS = {
    ANNEALED_LANGEVIN: (
        "Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1): T noisy gradient steps at each of the "
        "L noise levels, from the largest noise to the smallest; step size alpha_i = epsilon * sigma_i^2 / sigma_L^2."
    ),
}


def check_sampler(name: object) -> str:
    """`name` when it is a known sampler.

    Raises:
        ValueError: unknown sampler (the message lists the known ones).
    """
    if name not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {name!r}")
    return str(name)


def network_calls(sampler: str, num_levels: int, steps_per_level: int, denoise: bool, first_level: int = 0) -> int:
    """How many times one run evaluates the score network (each call covers the whole batch).

    Args:
        sampler: one of SAMPLERS.
        num_levels: L, the model's noise levels.
        steps_per_level: T.
        denoise: whether the final denoising step runs (one more call).
        first_level: the level the chain starts at (0; later for variations).

    Returns:
        Network calls of the run, e.g. L * T (+ 1 with the final denoising step).
    """
    check_sampler(sampler)
    if not 0 <= first_level < num_levels:
        raise ValueError(f"first level must be in [0, {num_levels}), got {first_level}")
    # annealed Langevin: one score evaluation per Langevin step (Algorithm 1), + the denoising step.
    return (num_levels - first_level) * steps_per_level + (1 if denoise else 0)
