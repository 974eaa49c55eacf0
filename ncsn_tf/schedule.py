"""The noise process as tables of numbers: the sigma ladder and Langevin step sizes.

Pure functions of floats and NumPy arrays; nothing here knows about networks,
training or TensorFlow (the improved-diffusion / score_sde split).
"""

from __future__ import annotations

import numpy as np

CONVENTIONS = ("code", "paper")


def geometric_sigmas(sigma_max: float, sigma_min: float, num_levels: int) -> np.ndarray:
    """The geometric ladder sigma_1 > ... > sigma_L of NCSN (paper Section 4.2).

    `exp(linspace(log sigma_max, log sigma_min, L))`; index 0 is the largest sigma.

    Returns:
        float32 array [L], descending, sigmas[0] = sigma_max, sigmas[-1] = sigma_min.
    """
    if num_levels < 1:
        raise ValueError(f"num_levels must be >= 1, got {num_levels}")
    if sigma_min <= 0 or sigma_max < sigma_min:
        raise ValueError(f"need sigma_max >= sigma_min > 0, got {sigma_max} and {sigma_min}")
    if num_levels == 1:
        return np.asarray([sigma_max], dtype=np.float32)
    return np.exp(np.linspace(np.log(sigma_max), np.log(sigma_min), num_levels)).astype(np.float32)


def langevin_step_sizes(sigmas: np.ndarray, epsilon: float) -> np.ndarray:
    """alpha_i = epsilon * sigma_i^2 / sigma_L^2 (Algorithm 1, line 3).

    Returns:
        float32 array [L], the step size for each level.
    """
    sigmas = np.asarray(sigmas, dtype=np.float64)
    return (epsilon * sigmas**2 / sigmas[-1] ** 2).astype(np.float32)


def langevin_coefficients(step_size: float | np.ndarray, convention: str = "code") -> tuple[np.ndarray, np.ndarray]:
    """(drift, noise) multipliers of one Langevin step x <- x + drift * s + noise * z.

    "paper": Algorithm 1 as printed, drift = alpha/2, noise = sqrt(alpha).
    "code": ermongroup/ncsn, drift = alpha, noise = sqrt(2 alpha) -- the same chain
    as "paper" with twice the step; the published samples and scores use it.
    """
    step_size = np.asarray(step_size, dtype=np.float64)
    if convention == "code":
        drift, noise = step_size, np.sqrt(2.0 * step_size)
    elif convention == "paper":
        drift, noise = step_size / 2.0, np.sqrt(step_size)
    else:
        raise ValueError(f"unknown Langevin convention {convention!r}; use one of {CONVENTIONS}")
    return drift.astype(np.float32), noise.astype(np.float32)


# ---------------------------------------------------------------------------
# Tables of the samplers beyond the paper (docs/samplers.md). Every sampler steps
# from sigma_i to sigma_{i+1} on the training ladder, with sigma_{L+1} = 0.
# ---------------------------------------------------------------------------


def next_sigmas(sigmas: np.ndarray) -> np.ndarray:
    """sigma_{i+1} for each level i, with sigma_{L+1} = 0 after the last level.

    Returns:
        float32 array [L]: sigmas[1:] followed by 0.
    """
    sigmas = np.asarray(sigmas, dtype=np.float32).reshape(-1)
    return np.concatenate([sigmas[1:], np.zeros(1, np.float32)])


def reverse_diffusion_variances(sigmas: np.ndarray) -> np.ndarray:
    """sigma_i^2 - sigma_{i+1}^2 (sigma_{L+1} = 0): the reverse-diffusion predictor's drift
    multiplier and noise variance, and the variance RePaint adds to go back up a level.

    Song et al. 2021, Appendix E (the VE reverse-diffusion discretisation). Computed in
    float64 so nearby sigmas lose no precision.

    Returns:
        float32 array [L], positive; the last entry is sigma_L^2.
    """
    sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    following = np.concatenate([sigmas[1:], np.zeros(1)])
    return (sigmas**2 - following**2).astype(np.float32)


def flow_step_sizes(sigmas: np.ndarray) -> np.ndarray:
    """sigma_{i+1} - sigma_i (sigma_{L+1} = 0): the step of the probability-flow ODE in sigma.

    Karras et al. 2022, Algorithm 1 (t = sigma for the VE process). Negative: sigma falls.

    Returns:
        float32 array [L]; the last entry is -sigma_L (the step to sigma = 0).
    """
    sigmas = np.asarray(sigmas, dtype=np.float64).reshape(-1)
    following = np.concatenate([sigmas[1:], np.zeros(1)])
    return (following - sigmas).astype(np.float32)


def prior_centre(value_range: tuple[float, float]) -> float:
    """Where the Gaussian prior N(centre, sigma_1^2 I) of the diffusion samplers is centred.

    The network was trained on x + sigma z with x in the data range, so p_{sigma_1} is
    centred on the data, not on 0. The middle of the range is the centre that needs
    no data: 0.5 for images in [0, 1] (no pixel value is more than 0.5 from it; N(0,
    sigma_1^2 I) would sit up to a whole data range away), 0 for the toy's [-8, 8].

    Args:
        value_range: (low, high) of the data (`DataConfig.value_range`).

    Returns:
        (low + high) / 2.
    """
    low, high = float(value_range[0]), float(value_range[1])
    if not (np.isfinite(low) and np.isfinite(high) and high > low):
        raise ValueError(f"value_range must be (low, high) with finite high > low, got {value_range}")
    return 0.5 * (low + high)
