"""Annealed Langevin dynamics and inpainting, as one flat in-graph loop.

`langevin_step` is one step; `annealed_langevin` and `inpaint` run the ladder of
noise levels as a single `tf.while_loop` over (level x step), with the level's
sigma and step size gathered by index. One flat loop is the form that converts to
ONNX (`Loop`); nested while loops hit open tf2onnx bugs (PITFALLS.md).

Noise comes from `portable_random` (Philox + Box-Muller from integer ops): image b's
noise at global step k = level * T + t depends only on (seeds[b], k, element index),
so a run over levels [0, L) equals runs over [0, j) then [j, L) chained, an image does
not change with the batch it is drawn in, and the same seed gives the same images in
TensorFlow and in ONNX Runtime. Noise is added at every step including the last; the
chain is never clipped (only displayed images are clipped to [0, 1]).

The samplers take a score function `score_fn(noisy [B, ...], sigma_indices [B]) -> [B, ...]`
(a Keras score model is one) and know nothing of networks or training.

References:
    Song & Ermon, "Generative Modeling by Estimating Gradients of the Data
    Distribution", NeurIPS 2019, Algorithm 1 and Section 5.3 (inpainting).
    Song & Ermon, "Improved Techniques for Training Score-Based Generative Models",
    NeurIPS 2020 (final denoising step).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from ncsn_tf import portable_random
from ncsn_tf.schedule import CONVENTIONS, langevin_coefficients, langevin_step_sizes

ScoreFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
IntLike = int | tf.Tensor
FloatLike = float | tf.Tensor
BoolLike = bool | tf.Tensor


# ---------------------------------------------------------------------------
# One step.
# ---------------------------------------------------------------------------


def langevin_step(
    score_fn: ScoreFn,
    images: tf.Tensor,
    sigma_indices: tf.Tensor,
    noise: tf.Tensor,
    drift: FloatLike,
    noise_std: FloatLike,
) -> tf.Tensor:
    """One Langevin step x <- x + drift * s(x, i) + noise_std * z.

    The convention is in the coefficients (`schedule.langevin_coefficients`): the
    reference code uses drift = alpha, noise_std = sqrt(2 alpha); the paper's
    Algorithm 1 drift = alpha / 2, noise_std = sqrt(alpha). With noise_std = 0 and
    drift = sigma^2 it is the final denoising step x + sigma^2 s(x) (Tweedie).

    Args:
        score_fn: `score_fn(noisy, sigma_indices) -> scores` of noisy's shape.
        images: [B, ...] float32, the current chain state (not clipped).
        sigma_indices: [B] int32 in [0, L), the level of each image.
        noise: [B, ...] float32 ~ N(0, 1), z.
        drift: [] float32, the score's multiplier.
        noise_std: [] float32, the noise's multiplier.

    Returns:
        [B, ...] float32, the next chain state.
    """
    scores = tf.cast(score_fn(images, sigma_indices), tf.float32)  # [B, ...]
    return images + drift * scores + noise_std * noise  # [B, ...]


# ---------------------------------------------------------------------------
# Inputs.
# ---------------------------------------------------------------------------


def _check_sigmas(sigmas: Sequence[float] | np.ndarray) -> np.ndarray:
    if isinstance(sigmas, tf.Tensor) and not hasattr(sigmas, "numpy"):
        raise TypeError("sigmas must be concrete numbers (a list or NumPy array), not a symbolic tensor")
    ladder = np.asarray(sigmas, dtype=np.float32).reshape(-1)  # [L]
    if ladder.size == 0 or np.any(ladder <= 0) or np.any(np.diff(ladder) > 0):
        raise ValueError(f"sigmas must be a non-empty descending list of positive numbers, got {ladder.tolist()}")
    return ladder


def _check_seeds(seeds: Any) -> tf.Tensor:
    """[B] int32 seeds from a tensor or anything NumPy can read."""
    if isinstance(seeds, tf.Tensor):
        if seeds.dtype != tf.int32:
            raise TypeError(f"seeds must be int32 [B], got {seeds.dtype.name}; cast them with tf.cast(seeds, tf.int32)")
        if seeds.shape.rank is not None and seeds.shape.rank != 1:
            raise ValueError(f"seeds must be one integer per image, shape [B], got shape {seeds.shape}")
        return seeds
    values = np.asarray(seeds)
    if values.ndim != 1:
        raise ValueError(f"seeds must be one integer per image, shape [B], got shape {values.shape}")
    if values.size and values.dtype.kind not in "iu":
        raise TypeError(f"seeds must be integers, got dtype {values.dtype}")
    if values.size and (values.min() < -(2**31) or values.max() >= 2**31):
        raise ValueError("seeds must fit in int32 ([-2^31, 2^31)); reduce them, e.g. seed % 2**31")
    return tf.constant(values.astype(np.int32))


def _check_images(images: Any, name: str) -> tf.Tensor:
    images = tf.convert_to_tensor(images)
    if not images.dtype.is_floating:
        raise TypeError(f"{name} must be float32, got {images.dtype.name}")
    images = tf.cast(images, tf.float32)
    if images.shape.rank is None or images.shape.rank < 2:
        raise ValueError(f"{name} must be [B, ...] with a per-example shape, got shape {images.shape}")
    if not images.shape[1:].is_fully_defined():
        raise ValueError(f"{name} needs a static per-example shape, got {images.shape}")
    return images


def _check_same_batch(seeds: tf.Tensor, images: tf.Tensor) -> None:
    seed_count, image_count = seeds.shape[0], images.shape[0]
    if seed_count is not None and image_count is not None and seed_count != image_count:
        raise ValueError(f"batch mismatch: {image_count} images but {seed_count} seeds; pass one seed per image")


def _is_concrete(value: Any) -> bool:
    return not isinstance(value, tf.Tensor) or hasattr(value, "numpy")


def _check_level_range(first_level: IntLike, last_level: IntLike, num_levels: int) -> None:
    if _is_concrete(first_level) and _is_concrete(last_level):
        first, last = int(first_level), int(last_level)
        if not 0 <= first <= last <= num_levels:
            raise ValueError(
                f"level range [{first}, {last}) is outside the ladder [0, {num_levels}); need 0 <= first <= last <= L"
            )


def _check_positive(value: Any, name: str, allow_zero: bool = False) -> None:
    if _is_concrete(value):
        number = float(value)
        if number < 0 or (number == 0 and not allow_zero) or not np.isfinite(number):
            raise ValueError(f"{name} must be {'>= 0' if allow_zero else 'positive'}, got {number}")


# ---------------------------------------------------------------------------
# Initial images.
# ---------------------------------------------------------------------------


def initial_images(
    seeds: Any,
    shape: Sequence[int],
    *,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> tf.Tensor:
    """x_0 ~ Uniform[low, high)^D per image, from each image's seed (Algorithm 1, line 1).

    Args:
        seeds: [B] int32, one seed per image.
        shape: the per-image shape, (H, W, C) for images or (2,) for toy points.
        value_range: (low, high); [0, 1) for images, the paper's toy uses [-8, 8).

    Returns:
        [B, *shape] float32 in [low, high).
    """
    seeds = _check_seeds(seeds)
    low, high = float(value_range[0]), float(value_range[1])
    if not high > low:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
    unit = portable_random.uniform(seeds, shape, step=0, stream=portable_random.STREAM_INITIAL)  # [B, *shape] in [0, 1)
    if (low, high) == (0.0, 1.0):
        return unit
    return low + (high - low) * unit  # [B, *shape] in [low, high)


# ---------------------------------------------------------------------------
# The loop.
# ---------------------------------------------------------------------------


def _ladder_loop(
    score_fn: ScoreFn,
    sigmas: np.ndarray,
    convention: str,
    images: tf.Tensor,
    seeds: tf.Tensor,
    first_level: tf.Tensor,
    last_level: tf.Tensor,
    steps_per_level: tf.Tensor,
    epsilon: tf.Tensor,
    final_denoise: tf.Tensor,
    noise_scale: tf.Tensor,
    known_images: tf.Tensor | None = None,
    masks: tf.Tensor | None = None,
) -> tf.Tensor:
    """Levels [first_level, last_level) x steps_per_level Langevin steps as ONE while loop.

    With `known_images`/`masks` (1 = known) the known pixels are set to
    y + sigma_i z_i (z_i drawn once per level) before and after every step.
    Scalars arrive as tensors and are clamped to valid ranges (an exported graph
    cannot raise); the Python entry points validate them first.
    """
    num_levels = int(sigmas.shape[0])
    example_shape = tuple(int(size) for size in images.shape[1:])
    # Per-level coefficients for epsilon = 1; drift scales with epsilon, noise with sqrt(epsilon).
    drift_per_epsilon, noise_per_sqrt_epsilon = langevin_coefficients(langevin_step_sizes(sigmas, 1.0), convention)
    drift_table = tf.constant(drift_per_epsilon, tf.float32)  # [L]
    noise_table = tf.constant(noise_per_sqrt_epsilon, tf.float32)  # [L]
    sigma_table = tf.constant(sigmas, tf.float32)  # [L], descending
    smallest_sigma = float(sigmas[-1])

    first = tf.clip_by_value(tf.cast(first_level, tf.int32), 0, num_levels)  # []
    last = tf.clip_by_value(tf.cast(last_level, tf.int32), first, num_levels)  # [], exclusive
    steps = tf.maximum(tf.cast(steps_per_level, tf.int32), 1)  # [] T
    epsilon = tf.cast(epsilon, tf.float32)  # []
    sqrt_epsilon = tf.sqrt(tf.maximum(epsilon, 0.0))  # []
    noise_scale = tf.cast(noise_scale, tf.float32)  # [], 0 = deterministic path
    # The denoising step runs only when this chunk ends the ladder.
    denoise = tf.logical_and(tf.cast(final_denoise, tf.bool), tf.equal(last, num_levels))  # []
    langevin_iterations = (last - first) * steps  # []
    total_iterations = langevin_iterations + tf.cast(denoise, tf.int32)  # []
    batch_size = tf.shape(images)[0]
    inpainting = known_images is not None

    def impose_known(state: tf.Tensor, known_values: tf.Tensor) -> tf.Tensor:
        return masks * known_values + (1.0 - masks) * state  # [B, ...]; masks: 1 = known pixel

    def body(iteration: tf.Tensor, state: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        is_denoise_step = iteration >= langevin_iterations  # []
        level = tf.where(is_denoise_step, num_levels - 1, first + iteration // steps)  # [] in [0, L)
        global_step = first * steps + iteration  # [] = level * T + t: the noise counter
        sigma = tf.gather(sigma_table, level)  # []
        drift = tf.where(is_denoise_step, smallest_sigma**2, epsilon * tf.gather(drift_table, level))  # []
        noise_std = tf.where(is_denoise_step, 0.0, sqrt_epsilon * tf.gather(noise_table, level) * noise_scale)  # []
        if inpainting:
            # z_level is drawn once per level: its counter is the level, not the step.
            level_noise = portable_random.normal(seeds, example_shape, level, portable_random.STREAM_INPAINT)
            known_offset = (sigma * noise_scale) * level_noise  # [B, ...]
            state = impose_known(state, known_images + known_offset)  # y + sigma_i z_i
        noise = portable_random.normal(seeds, example_shape, global_step, portable_random.STREAM_LANGEVIN)  # [B, ...]
        sigma_indices = tf.fill([batch_size], level)  # [B] int32
        state = langevin_step(score_fn, state, sigma_indices, noise, drift, noise_std)  # [B, ...]
        if inpainting:
            # After the denoising step the known pixels are the clean data y.
            keep_noise = tf.where(is_denoise_step, 0.0, 1.0)  # []
            state = impose_known(state, known_images + keep_noise * known_offset)
        return iteration + 1, state

    _, images = tf.while_loop(
        lambda iteration, _: iteration < total_iterations,
        body,
        (tf.constant(0, tf.int32), images),
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, *example_shape])),
        parallel_iterations=1,
    )
    return images  # [B, ...]


# Eager callers (trainer, tests, benchmarks) get the loop as a cached tf.function per
# (score_fn, ladder, convention, inpainting), so repeated calls do not retrace.
_COMPILED: weakref.WeakKeyDictionary[Any, dict[tuple, Callable[..., tf.Tensor]]] = weakref.WeakKeyDictionary()


def _compiled_loop(score_fn: ScoreFn, sigmas: np.ndarray, convention: str, inpainting: bool) -> Callable[..., tf.Tensor]:
    key = (tuple(float(s) for s in sigmas), convention, inpainting)
    try:
        per_model = _COMPILED.setdefault(score_fn, {})
    except TypeError:  # not weak-referenceable (e.g. a builtin): compile without caching
        per_model = {}
    if key not in per_model:

        def loop(*args: tf.Tensor) -> tf.Tensor:
            return _ladder_loop(score_fn, sigmas, convention, *args)

        per_model[key] = tf.function(loop, reduce_retracing=True)
    return per_model[key]


def _run(
    score_fn: ScoreFn,
    images: Any,
    seeds: Any,
    sigmas: Sequence[float] | np.ndarray,
    steps_per_level: IntLike,
    epsilon: FloatLike,
    convention: str,
    first_level: IntLike,
    last_level: IntLike | None,
    final_denoise: BoolLike,
    noise_scale: FloatLike,
    known_images: Any = None,
    masks: Any = None,
) -> tf.Tensor:
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown Langevin convention {convention!r}; use one of {', '.join(CONVENTIONS)}")
    ladder = _check_sigmas(sigmas)
    num_levels = int(ladder.shape[0])
    images = _check_images(images, "images")
    seeds = _check_seeds(seeds)
    _check_same_batch(seeds, images)
    last_level = num_levels if last_level is None else last_level
    _check_level_range(first_level, last_level, num_levels)
    _check_positive(steps_per_level, "steps_per_level")
    _check_positive(epsilon, "epsilon")
    _check_positive(noise_scale, "noise_scale", allow_zero=True)
    args = [
        images,
        seeds,
        tf.convert_to_tensor(first_level, tf.int32),
        tf.convert_to_tensor(last_level, tf.int32),
        tf.convert_to_tensor(steps_per_level, tf.int32),
        tf.convert_to_tensor(epsilon, tf.float32),
        tf.convert_to_tensor(final_denoise, tf.bool),
        tf.convert_to_tensor(noise_scale, tf.float32),
    ]
    inpainting = known_images is not None
    if inpainting:
        args += [known_images, masks]
    if tf.executing_eagerly():
        return _compiled_loop(score_fn, ladder, convention, inpainting)(*args)
    return _ladder_loop(score_fn, ladder, convention, *args)


def annealed_langevin(
    score_fn: ScoreFn,
    images: Any,
    seeds: Any,
    sigmas: Sequence[float] | np.ndarray,
    *,
    steps_per_level: IntLike,
    epsilon: FloatLike,
    convention: str = "code",
    first_level: IntLike = 0,
    last_level: IntLike | None = None,
    final_denoise: BoolLike = False,
    noise_scale: FloatLike = 1.0,
) -> tf.Tensor:
    """Annealed Langevin dynamics over levels [first_level, last_level) (Algorithm 1).

    For each level i: alpha_i = epsilon * sigma_i^2 / sigma_L^2, then T steps
    x <- x + drift_i s(x, i) + noise_i z, with (drift_i, noise_i) from
    `schedule.langevin_coefficients(alpha_i, convention)`: "code" (default, the
    reference implementation and its published numbers) alpha, sqrt(2 alpha);
    "paper" (Algorithm 1 as printed) alpha / 2, sqrt(alpha). Runs as one flat
    `tf.while_loop` over (level x step); called eagerly it is a cached `tf.function`.

    Args:
        score_fn: `score_fn(noisy [B, ...], sigma_indices [B]) -> [B, ...]`.
        images: [B, ...] float32, the chain state at `first_level` (e.g. `initial_images`).
        seeds: [B] int32, one seed per image (its noise depends only on seed, step, pixel).
        sigmas: [L] descending noise ladder (concrete numbers), index 0 = largest.
        steps_per_level: T (paper: 100).
        epsilon: step size at the smallest sigma (paper: 2e-5).
        convention: "code" or "paper", see above.
        first_level: first level to run, in [0, L].
        last_level: one past the last level to run (exclusive), None = L.
        final_denoise: add x <- x + sigma_L^2 s(x, L-1) at the end (NCSNv2); only
            applied when the run ends at level L.
        noise_scale: multiplies every z; 0 gives the deterministic (noise-free) path.

    Returns:
        [B, ...] float32, the chain state after the last level (not clipped).

    References:
        Song & Ermon 2019, Algorithm 1; Song & Ermon 2020, Section 4 (denoising).
    """
    return _run(
        score_fn, images, seeds, sigmas, steps_per_level, epsilon, convention,
        first_level, last_level, final_denoise, noise_scale,
    )  # fmt: skip


def inpaint(
    score_fn: ScoreFn,
    images: Any,
    known_images: Any,
    masks: Any,
    seeds: Any,
    sigmas: Sequence[float] | np.ndarray,
    *,
    steps_per_level: IntLike,
    epsilon: FloatLike,
    convention: str = "code",
    first_level: IntLike = 0,
    last_level: IntLike | None = None,
    final_denoise: BoolLike = False,
    noise_scale: FloatLike = 1.0,
) -> tf.Tensor:
    """Inpainting with arbitrary masks by annealed Langevin dynamics (masks: 1 = known pixel).

    At each level i a noise z_i is drawn once and the known pixels are set to
    y + sigma_i z_i before the T steps and again after every step; only the unknown
    pixels evolve (the reference scheme, generalised from "right half unknown" to any
    mask). After an optional final denoising step the known pixels are set to y.
    With noise_scale = 0 the known pixels end exactly equal to y.

    Args:
        score_fn: `score_fn(noisy [B, ...], sigma_indices [B]) -> [B, ...]`.
        images: [B, ...] float32, the chain state at `first_level` (e.g. `initial_images`).
        known_images: [B, ...] float32 y, the data (in [0, 1] for images) where masks = 1.
        masks: [B, ...] float32 in {0, 1}, 1 = known pixel, same shape as images.
        seeds: [B] int32, one seed per image.
        sigmas, steps_per_level, epsilon, convention, first_level, last_level,
        final_denoise, noise_scale: as `annealed_langevin`.

    Returns:
        [B, ...] float32, the chain state; known pixels = y + sigma_last z (not clipped).

    References:
        Song & Ermon 2019, Section 5.3 and Algorithm 2 (appendix).
    """
    checked_images = _check_images(images, "images")
    known = _check_images(known_images, "known_images")
    mask_values = _check_images(masks, "masks")
    if known.shape[1:] != checked_images.shape[1:]:
        raise ValueError(f"known_images per-image shape {known.shape[1:]} differs from images {checked_images.shape[1:]}")
    if mask_values.shape[1:] != checked_images.shape[1:]:
        raise ValueError(
            f"masks per-image shape {mask_values.shape[1:]} differs from images {checked_images.shape[1:]}; "
            "give one mask value per pixel and channel (1 = known)"
        )
    for name, tensor in (("known_images", known), ("masks", mask_values)):
        count, expected = tensor.shape[0], checked_images.shape[0]
        if count is not None and expected is not None and count != expected:
            raise ValueError(f"batch mismatch: {expected} images but {count} {name}")
    if _is_concrete(mask_values):
        values = mask_values.numpy()
        if not np.all((values == 0.0) | (values == 1.0)):
            raise ValueError("masks must contain only 0 (unknown) and 1 (known); threshold them, e.g. masks > 0.5")
    return _run(
        score_fn, checked_images, seeds, sigmas, steps_per_level, epsilon, convention,
        first_level, last_level, final_denoise, noise_scale, known, mask_values,
    )  # fmt: skip
