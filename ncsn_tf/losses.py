"""Denoising score matching over a ladder of noise levels (paper Eq. 5-6).

Losses take a score function and return one value per example; callers reduce
(so `tf.distribute` can divide by the global batch).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import ops

ScoreFn = Callable[..., "keras.KerasTensor"]


def denoising_score_matching(
    score_fn: ScoreFn,
    clean: keras.KerasTensor,
    sigma_indices: keras.KerasTensor,
    noise: keras.KerasTensor,
    sigmas: keras.KerasTensor,
) -> keras.KerasTensor:
    """Per-example loss 1/2 * lambda(sigma) * ||s(x~, i) + z / sigma||^2 with lambda = sigma^2.

    Equivalently 1/2 * ||sigma * s(x~, i) + z||^2, the form used here (paper Eq. 6,
    with the target score -(x~ - x) / sigma^2 = -z / sigma).

    Args:
        score_fn: `score_fn(noisy, sigma_indices) -> scores`, same shape as `noisy`.
        clean: [B, ...] data, images in [0, 1] (or 2-D points for the toy).
        sigma_indices: [B] int32 in [0, L), 0 = largest sigma.
        noise: [B, ...] standard normal z, same shape as `clean`.
        sigmas: [L] float32, the ladder.

    Returns:
        [B] float32 loss per example.
    """
    per_example_sigma = ops.take(ops.convert_to_tensor(sigmas, "float32"), sigma_indices, axis=0)  # [B]
    sigma_b = ops.reshape(per_example_sigma, (-1,) + (1,) * (len(clean.shape) - 1))  # [B, 1, ...]
    noisy = clean + sigma_b * noise  # [B, ...]
    scores = ops.cast(score_fn(noisy, sigma_indices), "float32")  # [B, ...]
    residual = sigma_b * scores + noise  # [B, ...]
    axes = tuple(range(1, len(clean.shape)))
    return 0.5 * ops.sum(ops.square(residual), axis=axes)  # [B]
