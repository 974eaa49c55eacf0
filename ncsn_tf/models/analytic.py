"""Exact scores of Gaussian and Gaussian-mixture data perturbed by N(0, sigma^2 I).

Score models with no weights to learn: they let samplers, the exporter and the
evaluation be tested against closed forms (the paper's toy experiment, Section 3.2,
uses exact scores). Like every score model, `model(noisy, sigma_indices)` returns
the score of the data convolved with N(0, sigma_i^2 I) at `noisy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops


def _as_sigmas(sigmas: Sequence[float]) -> list[float]:
    values = [float(sigma) for sigma in np.asarray(sigmas, dtype=np.float64).reshape(-1)]
    if not values or any(sigma <= 0 for sigma in values):
        raise ValueError(f"sigmas must be a non-empty list of positive numbers, got {values}")
    return values


def _gather_per_example(table: Any, sigma_indices: Any, rank: int) -> Any:
    """table[sigma_indices] reshaped to [B, 1, ..., 1] to broadcast over an example of `rank` dims."""
    per_example = ops.take(table, ops.cast(sigma_indices, "int32"), axis=0)  # [B]
    return ops.reshape(per_example, (-1,) + (1,) * (rank - 1))  # [B, 1, ...]


@keras.saving.register_keras_serializable(package="ncsn_tf")
class GaussianScore(keras.Model):
    """Exact score of N(mu, s^2 I) data perturbed by sigma_i: -(x - mu) / (s^2 + sigma_i^2).

    Args:
        std: s, the data standard deviation.
        sigmas: the noise ladder [L], index 0 = largest sigma.
        mean: mu, the data mean (the same in every coordinate); default 0.

    Call arguments:
        noisy: [B, ...] float32, any per-example shape.
        sigma_indices: [B] int32 in [0, L).

    Returns:
        [B, ...] float32, the exact score.

    References:
        Song & Ermon 2019, Section 4.2: the minimiser of the DSM objective (Eq. 5) is
        the score of the perturbed data q_sigma; for N(0, s^2 I) data q_sigma is
        N(0, (s^2 + sigma^2) I) (Gaussian data plus Gaussian noise), with the score above.
    """

    def __init__(self, std: float, sigmas: Sequence[float], mean: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if float(std) <= 0:
            raise ValueError(f"std must be positive, got {std}")
        if not np.isfinite(float(mean)):
            raise ValueError(f"mean must be a finite number, got {mean}")
        self.std = float(std)
        self.mean = float(mean)
        self.sigmas = _as_sigmas(sigmas)
        self.num_levels = len(self.sigmas)
        # [L] float32: 1 / (s^2 + sigma_i^2), computed in float64
        self._precisions = np.asarray([1.0 / (self.std**2 + s**2) for s in self.sigmas], np.float32)

    def call(self, noisy, sigma_indices):
        noisy = ops.convert_to_tensor(noisy, "float32")  # [B, ...]
        precision = _gather_per_example(ops.convert_to_tensor(self._precisions), sigma_indices, len(noisy.shape))
        if self.mean:
            noisy = noisy - self.mean
        return -noisy * precision  # [B, ...]

    def get_build_config(self) -> None:
        return None  # no weights: nothing to build on deserialisation

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(std=self.std, sigmas=list(self.sigmas), mean=self.mean)
        return config


@keras.saving.register_keras_serializable(package="ncsn_tf")
class GaussianMixtureScore(keras.Model):
    """Exact score of an isotropic Gaussian mixture perturbed by sigma_i.

    Data p = sum_k w_k N(mu_k, v I). Perturbed by N(0, sigma^2 I) it stays a mixture,
    p_sigma = sum_k w_k N(mu_k, (v + sigma^2) I), whose score is
    sum_k r_k(x) (mu_k - x) / (v + sigma^2) with responsibilities
    r_k = softmax_k(log w_k - ||x - mu_k||^2 / (2 (v + sigma^2))).

    Args:
        weights: [K] mixture weights (positive; normalised here).
        means: [K, D] component means.
        variance: v, the per-coordinate variance shared by all components.
        sigmas: the noise ladder [L], index 0 = largest sigma.

    Call arguments:
        noisy: [B, D] float32 points.
        sigma_indices: [B] int32 in [0, L).

    Returns:
        [B, D] float32, the exact score.

    References:
        Song & Ermon 2019, Section 3.2 (toy: 0.2 N((-5,-5), I) + 0.8 N((5,5), I)).
    """

    def __init__(
        self,
        weights: Sequence[float],
        means: Sequence[Sequence[float]],
        variance: float,
        sigmas: Sequence[float],
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        weights_array = np.asarray(weights, dtype=np.float64).reshape(-1)
        means_array = np.asarray(means, dtype=np.float64)
        if weights_array.size == 0 or np.any(weights_array <= 0):
            raise ValueError(f"weights must be positive numbers, got {weights_array.tolist()}")
        if means_array.ndim != 2 or means_array.shape[0] != weights_array.size:
            raise ValueError(
                f"means must be [K, D] with K = len(weights) = {weights_array.size}, got shape {means_array.shape}"
            )
        if float(variance) <= 0:
            raise ValueError(f"variance must be positive, got {variance}")
        self.mixture_weights = (weights_array / weights_array.sum()).tolist()
        self.means = means_array.tolist()
        self.variance = float(variance)
        self.sigmas = _as_sigmas(sigmas)
        self.num_levels = len(self.sigmas)
        self.dim = means_array.shape[1]
        self._log_weights = np.log(np.asarray(self.mixture_weights)).astype(np.float32)  # [K]
        self._means = means_array.astype(np.float32)  # [K, D]
        self._variances = np.asarray([self.variance + s**2 for s in self.sigmas], np.float32)  # [L]

    def call(self, noisy, sigma_indices):
        noisy = ops.convert_to_tensor(noisy, "float32")  # [B, D]
        variance = _gather_per_example(ops.convert_to_tensor(self._variances), sigma_indices, 2)  # [B, 1]
        offsets = ops.convert_to_tensor(self._means)[None, :, :] - noisy[:, None, :]  # [B, K, D] = mu_k - x
        logits = ops.convert_to_tensor(self._log_weights)[None, :] - 0.5 * ops.sum(
            ops.square(offsets), axis=-1
        ) / variance  # [B, K]
        responsibilities = ops.exp(logits - ops.logsumexp(logits, axis=-1, keepdims=True))  # [B, K], rows sum to 1
        return ops.sum(responsibilities[:, :, None] * offsets, axis=1) / variance  # [B, D]

    def get_build_config(self) -> None:
        return None  # no weights: nothing to build on deserialisation

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            weights=list(self.mixture_weights),
            means=[list(mean) for mean in self.means],
            variance=self.variance,
            sigmas=list(self.sigmas),
        )
        return config


def paper_toy_mixture(sigmas: Sequence[float]) -> GaussianMixtureScore:
    """The toy data of the paper: 0.2 N((-5, -5), I) + 0.8 N((5, 5), I), built (called once).

    Args:
        sigmas: the noise ladder [L] (paper: geometric 20 -> 1, L = 10).

    Returns:
        A built GaussianMixtureScore.
    """
    from ncsn_tf import toy

    model = GaussianMixtureScore(
        weights=toy.WEIGHTS.tolist(), means=toy.MEANS.tolist(), variance=toy.STD**2, sigmas=sigmas,
        name="toy_mixture_score",
    )  # fmt: skip
    model(np.zeros((1, 2), np.float32), np.zeros((1,), np.int32))
    return model
