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
