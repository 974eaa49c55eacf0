"""The samplers: annealed Langevin, predictor-corrector and probability flow, each one flat in-graph loop.

Three samplers of the same score network `score_fn(noisy [B, ...], sigma_indices [B])`,
each built from small pure step functions and run as ONE `tf.while_loop` whose body
calls the network exactly once (so an ONNX `Loop` body holds the network once; tf2onnx
copies the network per call site, and nested while loops hit open tf2onnx bugs):

- `annealed_langevin` / `inpaint`: the paper's Algorithm 1, T Langevin steps per level
  (`langevin_step`), and its inpainting; a loop over (level x step).
- `predictor_corrector`: C Langevin corrector steps with score_sde's signal-to-noise
  step size (`corrector_step_size`, `corrector_step`) then the reverse-diffusion
  predictor (`reverse_diffusion_step`) per level; a loop over (level x repeat x call),
  with RePaint's resampling for inpainting (`renoise`).
- `probability_flow`: Euler or Heun on the probability-flow ODE (`flow_derivative`,
  `euler_step`, `heun_step`); a Heun step's two network calls are two iterations
  told apart by a phase.

`run_sampler` is the one entry point that takes the sampler's name and settings;
`start_images` gives each sampler its start (`initial_images`: Uniform on the data
range for annealed Langevin, `prior_images`: N(centre, sigma_1^2 I) for the others).
The network was trained on the L ladder sigmas only (it is conditioned on the level
index), so every sampler evaluates it only at ladder indices: they all step
sigma_i -> sigma_{i+1} on the training ladder, with sigma_{L+1} = 0.

Contracts shared by every sampler (docs/samplers.md):
- Noise comes from `portable_random` (integer Philox + Box-Muller): an element's value
  depends only on (seeds[b], counter, stream, element index), with counters unique per
  (image, network call, purpose), so image b depends only on seeds[b], and the same
  seed gives the same images in TensorFlow and ONNX Runtime.
- Level chunks: a run over levels [first, last) chained with [last, L) equals the full
  run bit for bit (every counter is a function of the global call index).
- Inpainting (masks: 1 = known pixel): known pixels are re-imposed at the level's
  noise before every network call, and end exactly at y where a sampler ends at
  sigma = 0.
- A graph cannot raise: scalar inputs are clamped so that no int32 counter wraps
  (`export_format.limits`); the Python entry points reject bad settings with a
  one-line ValueError first.
Eager calls run a cached `tf.function`. The chain is never clipped (only displayed
images are clipped to the data range).

References:
    Song & Ermon, "Generative Modeling by Estimating Gradients of the Data
    Distribution", NeurIPS 2019, Algorithm 1 and Section 5.3 (inpainting).
    Song & Ermon, "Improved Techniques for Training Score-Based Generative Models",
    NeurIPS 2020 (final denoising step).
    Song et al., "Score-Based Generative Modeling through Stochastic Differential
    Equations", ICLR 2021, Algorithms 2-3 (VE predictor-corrector).
    Karras et al., "Elucidating the Design Space of Diffusion-Based Generative
    Models", NeurIPS 2022, Algorithm 1 (Euler / Heun).
    Lugmayr et al., "RePaint: Inpainting using Denoising Diffusion Probabilistic
    Models", CVPR 2022, Algorithm 1 (resampling).
"""

from __future__ import annotations

import numbers
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from export_format.limits import max_steps_per_level
from ncsn_tf import portable_random
from ncsn_tf.schedule import (
    CONVENTIONS,
    flow_step_sizes,
    langevin_coefficients,
    langevin_step_sizes,
    next_sigmas,
    prior_centre,
    reverse_diffusion_variances,
)

ScoreFn = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
IntLike = int | tf.Tensor
FloatLike = float | tf.Tensor
BoolLike = bool | tf.Tensor

SAMPLERS = ("annealed_langevin", "predictor_corrector", "probability_flow")
# The settings each sampler takes (run_sampler's keyword arguments beside the level range and inpainting).
SAMPLER_SETTINGS: dict[str, tuple[str, ...]] = {
    "annealed_langevin": ("steps_per_level", "epsilon", "convention", "final_denoise", "noise_scale"),
    "predictor_corrector": ("corrector_steps", "snr", "resample_steps"),
    "probability_flow": ("order",),
}
DEFAULT_CORRECTOR_STEPS = 1  # C: score_sde's default, one Langevin corrector step per level
DEFAULT_SNR = 0.16  # r: score_sde's value for VE models on CIFAR-10 (tuned per data set)
DEFAULT_RESAMPLE_STEPS = 0  # u: no RePaint resampling
DEFAULT_ORDER = 2  # Heun (Karras et al. 2022, Algorithm 1); 1 = Euler
ORDERS = (1, 2)


# ---------------------------------------------------------------------------
# One step. The network call lives in the loops; every step below except
# `langevin_step` is a pure map of (state, scores, noise) with tables gathered by level.
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


def _like(value: FloatLike, reference: tf.Tensor) -> tf.Tensor:
    """A scalar in reference's float dtype (a Python number converted exactly, a tensor cast)."""
    if isinstance(value, tf.Tensor | tf.Variable):
        return tf.cast(value, reference.dtype)
    return tf.convert_to_tensor(value, reference.dtype)


def _per_image(values: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """[B] values reshaped to [B, 1, ..., 1] to broadcast over `like` [B, ...]."""
    return tf.reshape(values, [-1] + [1] * (len(like.shape) - 1))  # the rank is static


def _per_image_norm(values: tf.Tensor) -> tf.Tensor:
    """[B]: the Euclidean norm of each example of [B, ...] over all its elements."""
    flat = tf.reshape(values, [tf.shape(values)[0], -1])  # [B, D]
    return tf.sqrt(tf.reduce_sum(tf.square(flat), axis=1))  # [B] >= 0


def corrector_step_size(scores: tf.Tensor, noise: tf.Tensor, snr: FloatLike) -> tf.Tensor:
    """score_sde's signal-to-noise step size, per image: eps = 2 (r ||z|| / ||s||)^2.

    The corrector's drift eps s then has norm 2 r^2 ||z||^2 / ||s|| and its noise
    sqrt(2 eps) z norm 2 r ||z||^2 / ||s||: their ratio is r. Unlike score_sde, which
    averages the norms over the batch, the norms are per image, so an image does not
    depend on the others in its batch. Where ||s|| = 0 the step is 0 (no move, no NaN).

    Args:
        scores: [B, ...] the network's scores s(x, i).
        noise: [B, ...] ~ N(0, 1), the z of the same corrector step.
        snr: [] r > 0, the target signal-to-noise ratio (score_sde: 0.16 on CIFAR-10).

    Returns:
        [B] float, eps per image (>= 0).

    References:
        Song et al. 2021, Algorithm 5 (the VE corrector; "r" is `snr`).
    """
    score_norm = _per_image_norm(scores)  # [B]
    noise_norm = _per_image_norm(noise)  # [B]
    snr = _like(snr, scores)
    has_score = score_norm > 0
    ratio = snr * noise_norm / tf.where(has_score, score_norm, tf.ones_like(score_norm))  # [B]
    return tf.where(has_score, 2.0 * tf.square(ratio), tf.zeros_like(ratio))  # [B]


def corrector_step(images: tf.Tensor, scores: tf.Tensor, noise: tf.Tensor, step_sizes: tf.Tensor) -> tf.Tensor:
    """One Langevin corrector step x <- x + eps s + sqrt(2 eps) z, eps per image.

    Args:
        images: [B, ...] the chain state x at level i.
        scores: [B, ...] s(x, i).
        noise: [B, ...] ~ N(0, 1), z.
        step_sizes: [B] eps >= 0 (`corrector_step_size`).

    Returns:
        [B, ...] the corrected state, still at level i.

    References:
        Song et al. 2021, Algorithm 5, line 6.
    """
    eps = _per_image(_like(step_sizes, images), images)  # [B, 1, ...]
    return images + eps * scores + tf.sqrt(2.0 * eps) * noise  # [B, ...]


def reverse_diffusion_step(images: tf.Tensor, scores: tf.Tensor, noise: tf.Tensor, variance: FloatLike) -> tf.Tensor:
    """The VE reverse-diffusion predictor from sigma_i to sigma_{i+1}: x + d s + sqrt(d) z.

    d = sigma_i^2 - sigma_{i+1}^2 (`schedule.reverse_diffusion_variances`). On the last
    level sigma_{L+1} = 0, d = sigma_L^2 and z = 0: the step is the Tweedie denoiser
    x + sigma_L^2 s(x, L), E[clean | x].

    Args:
        images: [B, ...] x at level i.
        scores: [B, ...] s(x, i).
        noise: [B, ...] z ~ N(0, 1), or zeros on the last level.
        variance: [] d = sigma_i^2 - sigma_{i+1}^2 > 0.

    Returns:
        [B, ...] the state at level i + 1.

    References:
        Song et al. 2021, Algorithm 2, lines 3-5 (VE SDE), and Appendix E.
    """
    variance = _like(variance, images)
    return images + variance * scores + tf.sqrt(variance) * noise  # [B, ...]


def renoise(images: tf.Tensor, noise: tf.Tensor, variance: FloatLike) -> tf.Tensor:
    """RePaint's step back up the ladder: x <- x + sqrt(sigma_i^2 - sigma_{i+1}^2) z.

    Takes a state at sigma_{i+1} to sigma_i (the forward VE process: variances add).

    Args:
        images: [B, ...] x at level i + 1.
        noise: [B, ...] z ~ N(0, 1).
        variance: [] sigma_i^2 - sigma_{i+1}^2 > 0.

    Returns:
        [B, ...] the state at level i.

    References:
        Lugmayr et al. 2022, Algorithm 1, line 9 (the VE form of x_t ~ q(x_t | x_{t-1})).
    """
    return images + tf.sqrt(_like(variance, images)) * noise  # [B, ...]


def flow_derivative(scores: tf.Tensor, sigma: FloatLike) -> tf.Tensor:
    """dx/dsigma of the VE probability-flow ODE: -sigma s(x, sigma) = (x - D(x; sigma)) / sigma.

    With the denoiser D(x; sigma) = x + sigma^2 s(x, sigma) (Tweedie).

    Args:
        scores: [B, ...] s(x, i) at the ladder level i with sigma_i = sigma.
        sigma: [] sigma > 0.

    Returns:
        [B, ...] the derivative d.

    References:
        Karras et al. 2022, Algorithm 1, line 4 (sigma(t) = t, s(t) = 1); Song et al.
        2021, Eq. 13 for the VE SDE.
    """
    return -_like(sigma, scores) * scores  # [B, ...]


def euler_step(images: tf.Tensor, derivative: tf.Tensor, step: FloatLike) -> tf.Tensor:
    """One Euler step of the ODE in sigma: x + (sigma_{i+1} - sigma_i) d.

    Args:
        images: [B, ...] x at sigma_i.
        derivative: [B, ...] d = `flow_derivative` at (x, sigma_i).
        step: [] sigma_{i+1} - sigma_i < 0 (`schedule.flow_step_sizes`).

    Returns:
        [B, ...] x at sigma_{i+1}. On the last level (sigma_{L+1} = 0) it is the
        Tweedie denoiser x + sigma_L^2 s(x, L).

    References:
        Karras et al. 2022, Algorithm 1, line 5.
    """
    return images + _like(step, images) * derivative  # [B, ...]


def heun_step(images: tf.Tensor, derivative: tf.Tensor, next_derivative: tf.Tensor, step: FloatLike) -> tf.Tensor:
    """Heun's second-order step: x + (sigma_{i+1} - sigma_i) (d + d') / 2.

    Args:
        images: [B, ...] x at sigma_i.
        derivative: [B, ...] d at (x, sigma_i).
        next_derivative: [B, ...] d' at (x', sigma_{i+1}), x' = `euler_step(x, d, step)`.
        step: [] sigma_{i+1} - sigma_i < 0.

    Returns:
        [B, ...] x at sigma_{i+1}.

    References:
        Karras et al. 2022, Algorithm 1, lines 6-8.
    """
    return images + (0.5 * _like(step, images)) * (derivative + next_derivative)  # [B, ...]


# ---------------------------------------------------------------------------
# Inputs. Each check is one small function with a one-line error, so that the
# export contract's validation (export_format) can take them over one by one.
# ---------------------------------------------------------------------------


def _check_sigmas(sigmas: Sequence[float] | np.ndarray) -> np.ndarray:
    if isinstance(sigmas, tf.Tensor) and not hasattr(sigmas, "numpy"):
        raise TypeError("sigmas must be concrete numbers (a list or NumPy array), not a symbolic tensor")
    ladder = np.asarray(sigmas, dtype=np.float32).reshape(-1)  # [L]
    if ladder.size == 0 or not np.all(np.isfinite(ladder)) or np.any(ladder <= 0) or np.any(np.diff(ladder) > 0):
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


def _check_inpainting(images: tf.Tensor, known_images: Any, masks: Any) -> tuple[tf.Tensor, tf.Tensor]:
    """(known_images, masks) as float32 tensors of the images' shape; masks must be 0 / 1."""
    if (known_images is None) != (masks is None):
        raise ValueError("inpainting needs both known_images and masks (1 = known pixel); pass both or neither")
    known = _check_images(known_images, "known_images")
    mask_values = _check_images(masks, "masks")
    if known.shape[1:] != images.shape[1:]:
        raise ValueError(f"known_images per-image shape {known.shape[1:]} differs from images {images.shape[1:]}")
    if mask_values.shape[1:] != images.shape[1:]:
        raise ValueError(
            f"masks per-image shape {mask_values.shape[1:]} differs from images {images.shape[1:]}; "
            "give one mask value per pixel and channel (1 = known)"
        )
    for name, tensor in (("known_images", known), ("masks", mask_values)):
        count, expected = tensor.shape[0], images.shape[0]
        if count is not None and expected is not None and count != expected:
            raise ValueError(f"batch mismatch: {expected} images but {count} {name}")
    if _is_concrete(mask_values):
        values = mask_values.numpy()
        if not np.all((values == 0.0) | (values == 1.0)):
            raise ValueError("masks must contain only 0 (unknown) and 1 (known); threshold them, e.g. masks > 0.5")
    return known, mask_values


def _is_concrete(value: Any) -> bool:
    return not isinstance(value, tf.Tensor) or hasattr(value, "numpy")


def _scalar(value: Any, name: str) -> Any:
    """A concrete scalar as a Python/NumPy number (tensors and 0-d arrays unwrapped)."""
    if isinstance(value, tf.Tensor):
        if value.shape.rank != 0:
            raise ValueError(f"{name} must be a scalar, got a tensor of shape {value.shape}")
        return value.numpy()
    if isinstance(value, np.ndarray):
        if value.ndim != 0:
            raise ValueError(f"{name} must be a scalar, got an array of shape {value.shape}")
        return value[()]
    return value


def _check_count(value: Any, name: str, minimum: int) -> IntLike:
    """An integer >= minimum (not a bool, float or string); symbolic tensors pass (the graph clamps)."""
    if not _is_concrete(value):
        if not value.dtype.is_integer:
            raise ValueError(f"{name} must be an integer tensor, got {value.dtype.name}")
        return value
    number = _scalar(value, name)
    if isinstance(number, bool | np.bool_) or not isinstance(number, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {number!r} ({type(number).__name__})")
    if int(number) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {int(number)}")
    return int(number)


def _check_real(value: Any, name: str, *, allow_zero: bool = False) -> FloatLike:
    """A finite real number > 0 (>= 0 with allow_zero); not a bool, string or complex."""
    if not _is_concrete(value):
        if not value.dtype.is_floating:
            raise ValueError(f"{name} must be a float tensor, got {value.dtype.name}")
        return value
    number = _scalar(value, name)
    if isinstance(number, bool | np.bool_) or not isinstance(number, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {number!r} ({type(number).__name__})")
    number = float(number)
    if not np.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number {'>= 0' if allow_zero else '> 0'}, got {number}")
    return number


def _check_flag(value: Any, name: str) -> BoolLike:
    """True or False (a bool, NumPy bool or bool tensor); not a string or a number."""
    if not _is_concrete(value):
        if value.dtype != tf.bool:
            raise ValueError(f"{name} must be a bool tensor, got {value.dtype.name}")
        return value
    flag = _scalar(value, name)
    if not isinstance(flag, bool | np.bool_):
        raise ValueError(f"{name} must be True or False, got {flag!r} ({type(flag).__name__})")
    return bool(flag)


def _check_level_range(first_level: IntLike, last_level: IntLike, num_levels: int) -> tuple[IntLike, IntLike]:
    first = _check_count(first_level, "first_level", 0)
    last = _check_count(last_level, "last_level", 0)
    if isinstance(first, int) and isinstance(last, int) and not first <= last <= num_levels:
        raise ValueError(
            f"level range [{first}, {last}) is outside the ladder [0, {num_levels}); need 0 <= first <= last <= L"
        )
    return first, last


def check_sampler_name(sampler: Any) -> str:
    """`sampler` if it names a sampler (`SAMPLERS`), else a one-line ValueError.

    Raises:
        ValueError: an unknown name or not a string.
    """
    if not isinstance(sampler, str) or sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
    return sampler


def _check_call_budget(num_levels: int, calls_per_level: int, what: str) -> None:
    """Levels x calls per level must fit the int32 loop counters (export_format.limits)."""
    limit = max_steps_per_level(num_levels)
    if calls_per_level > limit:
        raise ValueError(
            f"{what} needs {calls_per_level} network calls per level, past the int32 loop counters "
            f"({limit} per level with L = {num_levels}); use fewer"
        )


def check_settings(sampler: str, num_levels: int, settings: Mapping[str, Any], *, inpainting: bool = False) -> dict:
    """Validate one sampler's settings; fill in the defaults.

    Concrete values are checked and returned as Python numbers; symbolic tensors (an
    export's graph inputs) are returned as they are, and the graph clamps them.

    Args:
        sampler: one of `SAMPLERS`.
        num_levels: L, for the int32 counter bound.
        settings: the sampler's settings, names from `SAMPLER_SETTINGS[sampler]`.
        inpainting: whether the run inpaints (`resample_steps` > 0 needs it).

    Returns:
        name -> value, with every setting of the sampler that has a default.

    Raises:
        ValueError: an unknown sampler or setting name, or a bad value (one line).
    """
    sampler = check_sampler_name(sampler)
    unknown = sorted(set(settings) - set(SAMPLER_SETTINGS[sampler]))
    if unknown:
        raise ValueError(
            f"unknown setting {unknown[0]!r} for {sampler}; it takes {', '.join(SAMPLER_SETTINGS[sampler])}"
        )
    if sampler == "annealed_langevin":
        checked: dict[str, Any] = {}
        for name in ("steps_per_level", "epsilon"):
            if name not in settings:
                raise ValueError(f"annealed_langevin needs {name} (paper: steps_per_level 100, epsilon 2e-5)")
        checked["steps_per_level"] = _check_count(settings["steps_per_level"], "steps_per_level", 1)
        checked["epsilon"] = _check_real(settings["epsilon"], "epsilon")
        convention = settings.get("convention", "code")
        if convention not in CONVENTIONS:
            raise ValueError(f"unknown Langevin convention {convention!r}; use one of {', '.join(CONVENTIONS)}")
        checked["convention"] = convention
        checked["final_denoise"] = _check_flag(settings.get("final_denoise", False), "final_denoise")
        checked["noise_scale"] = _check_real(settings.get("noise_scale", 1.0), "noise_scale", allow_zero=True)
        if isinstance(checked["steps_per_level"], int):
            _check_call_budget(num_levels, checked["steps_per_level"], f"steps_per_level={checked['steps_per_level']}")
        return checked
    if sampler == "predictor_corrector":
        corrector_steps = _check_count(settings.get("corrector_steps", DEFAULT_CORRECTOR_STEPS), "corrector_steps", 0)
        snr = _check_real(settings.get("snr", DEFAULT_SNR), "snr")
        resample_steps = _check_count(settings.get("resample_steps", DEFAULT_RESAMPLE_STEPS), "resample_steps", 0)
        if not inpainting and not (isinstance(resample_steps, int) and resample_steps == 0):
            raise ValueError(
                "resample_steps is RePaint's resampling for inpainting: pass known_images and masks, or leave it 0"
            )
        if isinstance(corrector_steps, int) and isinstance(resample_steps, int):
            _check_call_budget(
                num_levels,
                (corrector_steps + 1) * (resample_steps + 1),
                f"corrector_steps={corrector_steps} with resample_steps={resample_steps}",
            )
        return {"corrector_steps": corrector_steps, "snr": snr, "resample_steps": resample_steps}
    order = settings.get("order", DEFAULT_ORDER)
    if _is_concrete(order):
        number = _scalar(order, "order")
        if isinstance(number, bool | np.bool_) or not isinstance(number, numbers.Integral) or int(number) not in ORDERS:
            raise ValueError(f"order must be 1 (Euler) or 2 (Heun), got {number!r}")
        order = int(number)
    elif not order.dtype.is_integer:
        raise ValueError(f"order must be an integer tensor, got {order.dtype.name}")
    return {"order": order}


# ---------------------------------------------------------------------------
# Start images.
# ---------------------------------------------------------------------------


def _check_value_range(value_range: tuple[float, float]) -> tuple[float, float]:
    low, high = float(value_range[0]), float(value_range[1])
    if not (np.isfinite(low) and np.isfinite(high) and high > low):
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
    return low, high


def initial_images(
    seeds: Any,
    shape: Sequence[int],
    *,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> tf.Tensor:
    """x_0 ~ Uniform[low, high)^D per image, from each image's seed (Algorithm 1, line 1).

    The start of annealed Langevin dynamics (its T steps at sigma_1 mix from anywhere).

    Args:
        seeds: [B] int32, one seed per image.
        shape: the per-image shape, (H, W, C) for images or (2,) for toy points.
        value_range: (low, high); [0, 1) for images, the paper's toy uses [-8, 8).

    Returns:
        [B, *shape] float32 in [low, high).
    """
    seeds = _check_seeds(seeds)
    low, high = _check_value_range(value_range)
    unit = portable_random.uniform(seeds, shape, step=0, stream=portable_random.STREAM_INITIAL)  # [B, *shape] in [0, 1)
    if (low, high) == (0.0, 1.0):
        return unit
    return low + (high - low) * unit  # [B, *shape] in [low, high)


def prior_images(
    seeds: Any,
    shape: Sequence[int],
    sigma: float,
    *,
    value_range: tuple[float, float] = (0.0, 1.0),
    centre: float | np.ndarray | None = None,
) -> tf.Tensor:
    """x ~ N(centre, sigma^2 I) per image, from each image's seed: the diffusion samplers' start.

    The prior of the variance-exploding process at sigma = sigma_1 (Song et al. 2021,
    Algorithms 2-3, line 1). It approximates p_{sigma_1}, the data convolved with
    N(0, sigma_1^2 I); the network was trained on x + sigma z with x in the data range,
    so the prior is centred on the data range, not on 0: by default at its middle
    (`schedule.prior_centre`: 0.5 for images in [0, 1], 0 for the toy's [-8, 8]). A
    deterministic sampler keeps what is left of the mismatch (docs/samplers.md).

    Args:
        seeds: [B] int32, one seed per image (noise: stream STREAM_PRIOR, counter 0).
        shape: the per-image shape, (H, W, C) for images or (2,) for toy points.
        sigma: sigma_1, the largest sigma of the ladder.
        value_range: (low, high) of the data, for the default centre.
        centre: a number or a [*shape] array (e.g. the data mean) instead of the middle of the range.

    Returns:
        [B, *shape] float32 (not clipped).

    Raises:
        ValueError: sigma not a positive number, a bad value_range or centre.
    """
    seeds = _check_seeds(seeds)
    sigma = _check_real(sigma, "sigma")
    shape = tuple(int(size) for size in shape)
    if centre is None:
        centre_values = np.float32(prior_centre(_check_value_range(value_range)))
    else:
        centre_values = np.asarray(centre, np.float32)
        if centre_values.shape not in ((), shape) or not np.all(np.isfinite(centre_values)):
            raise ValueError(
                f"centre must be a finite number or an array of shape {shape}, got shape {centre_values.shape}"
            )
    noise = portable_random.normal(seeds, shape, step=0, stream=portable_random.STREAM_PRIOR)  # [B, *shape] ~ N(0, 1)
    return tf.constant(centre_values) + np.float32(sigma) * noise  # [B, *shape]


def start_images(
    sampler: str,
    seeds: Any,
    shape: Sequence[int],
    sigmas: Sequence[float] | np.ndarray,
    *,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> tf.Tensor:
    """Each sampler's start: `initial_images` for annealed Langevin, `prior_images` for the others.

    Args:
        sampler: one of `SAMPLERS`.
        seeds: [B] int32, one seed per image.
        shape: the per-image shape.
        sigmas: the ladder [L] (the prior's sigma is sigmas[0]).
        value_range: (low, high) of the data (`DataConfig.value_range`).

    Returns:
        [B, *shape] float32, the chain state at level 0.
    """
    if check_sampler_name(sampler) == "annealed_langevin":
        return initial_images(seeds, shape, value_range=value_range)
    return prior_images(seeds, shape, float(_check_sigmas(sigmas)[0]), value_range=value_range)


# ---------------------------------------------------------------------------
# The loops. Each is ONE flat tf.while_loop with ONE network call per iteration;
# a plan (pure int32 arithmetic, clamped so no counter wraps) maps the iteration
# to its level and role. The global call index -- the iteration's index in the
# full run [0, L) -- is every noise counter, so chunks chain exactly.
# ---------------------------------------------------------------------------


def _int32(value: IntLike) -> tf.Tensor:
    return tf.cast(value, tf.int32)


def _ends_the_ladder(first: tf.Tensor, last: tf.Tensor, num_levels: int) -> tf.Tensor:
    """[] bool: the chunk contains the last level (its calls per level may differ)."""
    return tf.logical_and(tf.equal(last, num_levels), last > first)


def _annealed_plan(
    first_level: IntLike, last_level: IntLike, steps_per_level: IntLike, final_denoise: BoolLike, num_levels: int
) -> dict[str, tf.Tensor]:
    """Annealed Langevin's iterations: levels x T Langevin steps (+ 1 denoising call).

    T is clamped to [1, max_steps_per_level(L)], so L T + 1 <= 2^31 - 1 and no counter
    wraps (past it the loop would run 0 times and return its input).
    """
    first = tf.clip_by_value(_int32(first_level), 0, num_levels)  # []
    last = tf.clip_by_value(_int32(last_level), first, num_levels)  # [], exclusive
    steps = tf.clip_by_value(_int32(steps_per_level), 1, max_steps_per_level(num_levels))  # [] T
    # The denoising step runs only when this chunk ends the ladder.
    denoise = tf.logical_and(tf.cast(final_denoise, tf.bool), tf.equal(last, num_levels))  # []
    langevin_iterations = (last - first) * steps  # []
    return {
        "first": first,
        "last": last,
        "steps": steps,
        "denoise": denoise,
        "langevin_iterations": langevin_iterations,
        "total": langevin_iterations + tf.cast(denoise, tf.int32),
    }


def _predictor_corrector_plan(
    first_level: IntLike, last_level: IntLike, corrector_steps: IntLike, resample_steps: IntLike, num_levels: int
) -> dict[str, tf.Tensor]:
    """Predictor-corrector's iterations: per level (u + 1) repeats of (C correctors + 1 predictor).

    The last level has one repeat (RePaint resamples every step but the last). Clamped:
    u to [0, M - 1], C + 1 to [1, M // (u + 1)] with M = max_steps_per_level(L), so
    L (C + 1)(u + 1) <= 2^31 - 1 - L.
    """
    limit = max_steps_per_level(num_levels)
    first = tf.clip_by_value(_int32(first_level), 0, num_levels)  # []
    last = tf.clip_by_value(_int32(last_level), first, num_levels)  # [], exclusive
    repeats = tf.clip_by_value(_int32(resample_steps), 0, limit - 1) + 1  # [] u + 1
    corrector_calls = tf.clip_by_value(_int32(corrector_steps), 0, limit - 1)  # [] C
    calls_per_repeat = tf.minimum(corrector_calls + 1, limit // repeats)  # [] C + 1
    calls_per_level = calls_per_repeat * repeats  # [] <= M
    # The last level has one repeat: a chunk that ends the ladder skips its other u repeats.
    skipped = tf.where(_ends_the_ladder(first, last, num_levels), (repeats - 1) * calls_per_repeat, 0)
    return {
        "first": first,
        "last": last,
        "repeats": repeats,
        "calls_per_repeat": calls_per_repeat,
        "calls_per_level": calls_per_level,
        "offset": first * calls_per_level,  # global index of the chunk's first call
        "total": (last - first) * calls_per_level - skipped,
    }


def _flow_plan(first_level: IntLike, last_level: IntLike, order: IntLike, num_levels: int) -> dict[str, tf.Tensor]:
    """Probability flow's iterations: `order` calls per level (Heun: 2), 1 on the last (Euler to 0)."""
    first = tf.clip_by_value(_int32(first_level), 0, num_levels)  # []
    last = tf.clip_by_value(_int32(last_level), first, num_levels)  # [], exclusive
    calls_per_level = tf.where(_int32(order) >= 2, 2, 1)  # [] 1 = Euler, 2 = Heun (anything else clamped)
    skipped = tf.where(_ends_the_ladder(first, last, num_levels), calls_per_level - 1, 0)
    return {
        "first": first,
        "last": last,
        "calls_per_level": calls_per_level,
        "offset": first * calls_per_level,
        "total": (last - first) * calls_per_level - skipped,
    }


def _impose_known(state: tf.Tensor, known_values: tf.Tensor, masks: tf.Tensor) -> tf.Tensor:
    """Known pixels (masks: 1 = known) set to known_values exactly, the others kept: [B, ...]."""
    return tf.where(masks >= 0.5, known_values, state)


def _while(body: Callable, state: tuple, total: tf.Tensor, example_shape: tuple[int, ...]) -> tuple:
    invariants = (tf.TensorShape([]),) + tuple(tf.TensorShape([None, *example_shape]) for _ in state)
    results = tf.while_loop(
        lambda iteration, *_: iteration < total,
        body,
        (tf.constant(0, tf.int32), *state),
        shape_invariants=invariants,
        parallel_iterations=1,
    )
    return tuple(results[1:])


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
    """Annealed Langevin: levels [first_level, last_level) x steps_per_level steps as ONE while loop.

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

    plan = _annealed_plan(first_level, last_level, steps_per_level, final_denoise, num_levels)
    first, steps, langevin_iterations = plan["first"], plan["steps"], plan["langevin_iterations"]
    epsilon = tf.cast(epsilon, tf.float32)  # []
    sqrt_epsilon = tf.sqrt(tf.maximum(epsilon, 0.0))  # []
    noise_scale = tf.cast(noise_scale, tf.float32)  # [], 0 = deterministic path
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

    (images,) = _while(body, (images,), plan["total"], example_shape)
    return images  # [B, ...]


def _predictor_corrector_loop(
    score_fn: ScoreFn,
    sigmas: np.ndarray,
    images: tf.Tensor,
    seeds: tf.Tensor,
    first_level: tf.Tensor,
    last_level: tf.Tensor,
    corrector_steps: tf.Tensor,
    snr: tf.Tensor,
    resample_steps: tf.Tensor,
    known_images: tf.Tensor | None = None,
    masks: tf.Tensor | None = None,
) -> tf.Tensor:
    """Predictor-corrector over levels [first_level, last_level) as ONE while loop, one call per iteration.

    Global call k of the full run is at level k // P (P = (u + 1)(C + 1) calls per level),
    repeat (k % P) // (C + 1), and is a corrector call, or the predictor call when it is
    the repeat's last. Noise counters: the call's z is (STREAM_PREDICTOR_CORRECTOR, k);
    RePaint's re-noising after predictor call k is (STREAM_RESAMPLE, k); the known pixels
    of level i, repeat r are y + sigma_i z with z = (STREAM_INPAINT, i (u + 1) + r), imposed
    before every call; the chunk ends with them at its last level (exactly y at sigma = 0).
    """
    num_levels = int(sigmas.shape[0])
    example_shape = tuple(int(size) for size in images.shape[1:])
    sigma_table = tf.constant(sigmas, tf.float32)  # [L]
    end_sigma_table = tf.constant(np.concatenate([sigmas, [0.0]]), tf.float32)  # [L + 1]: sigma at a chunk's end
    variance_table = tf.constant(reverse_diffusion_variances(sigmas), tf.float32)  # [L] sigma_i^2 - sigma_{i+1}^2
    inpainting = known_images is not None
    resample_steps = resample_steps if inpainting else 0  # RePaint is for inpainting only
    plan = _predictor_corrector_plan(first_level, last_level, corrector_steps, resample_steps, num_levels)
    repeats, calls_per_repeat, calls_per_level = plan["repeats"], plan["calls_per_repeat"], plan["calls_per_level"]
    snr = tf.cast(snr, tf.float32)
    snr = tf.where(snr > 0.0, snr, 0.0)  # [] r; NaN or r <= 0 -> 0 (the correctors then do not move)
    batch_size = tf.shape(images)[0]

    def known_noise(index: tf.Tensor) -> tf.Tensor:
        return portable_random.normal(seeds, example_shape, index, portable_random.STREAM_INPAINT)  # [B, ...]

    def body(iteration: tf.Tensor, state: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        call = plan["offset"] + iteration  # [] global index of this network call: the noise counter
        level = call // calls_per_level  # [] in [0, L)
        within_level = call - level * calls_per_level
        repeat = within_level // calls_per_repeat  # [] in [0, u]
        is_predictor = tf.equal(within_level - repeat * calls_per_repeat, calls_per_repeat - 1)  # []
        is_last_level = tf.equal(level, num_levels - 1)  # []
        sigma = tf.gather(sigma_table, level)  # [] sigma_i
        variance = tf.gather(variance_table, level)  # [] sigma_i^2 - sigma_{i+1}^2
        if inpainting:
            state = _impose_known(state, known_images + sigma * known_noise(level * repeats + repeat), masks)
        scores = tf.cast(score_fn(state, tf.fill([batch_size], level)), tf.float32)  # [B, ...]: the one call
        noise = portable_random.normal(seeds, example_shape, call, portable_random.STREAM_PREDICTOR_CORRECTOR)
        corrected = corrector_step(state, scores, noise, corrector_step_size(scores, noise, snr))  # [B, ...]
        # No noise on the last predictor step: it is the Tweedie denoiser x + sigma_L^2 s.
        predicted = reverse_diffusion_step(state, scores, tf.where(is_last_level, 0.0, 1.0) * noise, variance)
        if inpainting:  # RePaint: back up to sigma_i after each predictor call of a level but its last repeat
            resample = tf.logical_and(repeat < repeats - 1, tf.logical_not(is_last_level))  # []
            resample_noise = portable_random.normal(seeds, example_shape, call, portable_random.STREAM_RESAMPLE)
            predicted = tf.where(resample, renoise(predicted, resample_noise, variance), predicted)
        return iteration + 1, tf.where(is_predictor, predicted, corrected)

    (images,) = _while(body, (images,), plan["total"], example_shape)
    if inpainting:  # the chunk's end level (L: exactly y), with the first repeat's z as the next chunk draws it
        last = plan["last"]
        end_values = known_images + tf.gather(end_sigma_table, last) * known_noise(last * repeats)  # [B, ...]
        images = _impose_known(images, end_values, masks)
    return images  # [B, ...]


def _flow_loop(
    score_fn: ScoreFn,
    sigmas: np.ndarray,
    images: tf.Tensor,
    seeds: tf.Tensor,
    first_level: tf.Tensor,
    last_level: tf.Tensor,
    order: tf.Tensor,
    known_images: tf.Tensor | None = None,
    masks: tf.Tensor | None = None,
) -> tf.Tensor:
    """Probability flow over levels [first_level, last_level) as ONE while loop, one call per iteration.

    Heun: level i takes two iterations. Phase 0 calls the network at (x, sigma_i) and
    keeps d; phase 1 calls it at Euler's x' = x + h d, at level i + 1, and takes the Heun
    step. The loop carries (x, d); a chunk starts and ends between levels, where the
    state is x alone, so chunks chain exactly. The last level is an Euler step to 0.
    Inpainting: one z per image (STREAM_INPAINT, counter 0) for the whole run; the
    known pixels of every network input at sigma are y + sigma z, the exact flow of a
    point mass at y, and they end at y.
    """
    num_levels = int(sigmas.shape[0])
    example_shape = tuple(int(size) for size in images.shape[1:])
    sigma_table = tf.constant(sigmas, tf.float32)  # [L]
    next_sigma_table = tf.constant(next_sigmas(sigmas), tf.float32)  # [L], sigma_{L+1} = 0
    end_sigma_table = tf.constant(np.concatenate([sigmas, [0.0]]), tf.float32)  # [L + 1]
    step_table = tf.constant(flow_step_sizes(sigmas), tf.float32)  # [L] sigma_{i+1} - sigma_i < 0
    plan = _flow_plan(first_level, last_level, order, num_levels)
    calls_per_level = plan["calls_per_level"]
    batch_size = tf.shape(images)[0]
    inpainting = known_images is not None
    if inpainting:
        known_noise = portable_random.normal(seeds, example_shape, 0, portable_random.STREAM_INPAINT)  # [B, ...]

    def body(iteration: tf.Tensor, state: tf.Tensor, derivative: tf.Tensor) -> tuple[tf.Tensor, ...]:
        call = plan["offset"] + iteration  # [] global index of this network call
        level = call // calls_per_level  # [] in [0, L)
        second = tf.equal(call - level * calls_per_level, 1)  # [] Heun's second call of level i
        sigma, next_sigma = tf.gather(sigma_table, level), tf.gather(next_sigma_table, level)  # []
        step = tf.gather(step_table, level)  # [] sigma_{i+1} - sigma_i
        if inpainting:
            state = _impose_known(state, known_images + sigma * known_noise, masks)
        # Phase 0: the state at sigma_i; phase 1: Euler's prediction at sigma_{i+1} (level i + 1 < L).
        point = tf.where(second, euler_step(state, derivative, step), state)  # [B, ...]
        point_sigma = tf.where(second, next_sigma, sigma)  # []
        if inpainting:
            point = _impose_known(point, known_images + point_sigma * known_noise, masks)
        point_level = tf.where(second, level + 1, level)  # []
        scores = tf.cast(score_fn(point, tf.fill([batch_size], point_level)), tf.float32)  # [B, ...]: the one call
        point_derivative = flow_derivative(scores, point_sigma)  # [B, ...]
        # Phase 0 of a Heun step keeps x and d; otherwise the step completes (Euler or Heun).
        pending = tf.logical_and(tf.logical_not(second), tf.logical_and(calls_per_level > 1, level < num_levels - 1))
        heun = heun_step(state, derivative, point_derivative, step)  # [B, ...] (phase 1)
        completed = tf.where(second, heun, euler_step(state, point_derivative, step))
        return iteration + 1, tf.where(pending, state, completed), point_derivative

    images, _ = _while(body, (images, tf.zeros_like(images)), plan["total"], example_shape)
    if inpainting:
        images = _impose_known(images, known_images + tf.gather(end_sigma_table, plan["last"]) * known_noise, masks)
    return images  # [B, ...]


# Eager callers (trainer, tests, benchmarks) get each loop as a cached tf.function per
# (score_fn, sampler, ladder, static settings, inpainting), so repeated calls do not retrace.
_COMPILED: weakref.WeakKeyDictionary[Any, dict[tuple, Callable[..., tf.Tensor]]] = weakref.WeakKeyDictionary()
_LOOPS: dict[str, Callable[..., tf.Tensor]] = {
    "annealed_langevin": _ladder_loop,
    "predictor_corrector": _predictor_corrector_loop,
    "probability_flow": _flow_loop,
}


def _compiled(
    score_fn: ScoreFn, sampler: str, sigmas: np.ndarray, static: tuple, inpainting: bool
) -> Callable[..., tf.Tensor]:
    key = (sampler, tuple(float(s) for s in sigmas), static, inpainting)
    try:
        per_model = _COMPILED.setdefault(score_fn, {})
    except TypeError:  # not weak-referenceable (e.g. a builtin): compile without caching
        per_model = {}
    if key not in per_model:
        loop_fn = _LOOPS[sampler]

        def loop(*args: tf.Tensor) -> tf.Tensor:
            return loop_fn(score_fn, sigmas, *static, *args)

        per_model[key] = tf.function(loop, reduce_retracing=True)
    return per_model[key]


def _compiled_loop(
    score_fn: ScoreFn, sigmas: np.ndarray, convention: str, inpainting: bool
) -> Callable[..., tf.Tensor]:
    """The cached annealed Langevin loop (kept for callers of the original name)."""
    return _compiled(score_fn, "annealed_langevin", sigmas, (convention,), inpainting)


def _execute(
    score_fn: ScoreFn, sampler: str, ladder: np.ndarray, static: tuple, args: list, known: Any, masks: Any
) -> tf.Tensor:
    inpainting = known is not None
    if inpainting:
        args = [*args, known, masks]
    if tf.executing_eagerly():
        return _compiled(score_fn, sampler, ladder, static, inpainting)(*args)
    return _LOOPS[sampler](score_fn, ladder, *static, *args)


def _prepare(
    images: Any, seeds: Any, sigmas: Any, first_level: Any, last_level: Any, known_images: Any, masks: Any
) -> tuple:
    """Checked (ladder, images, seeds, first, last, known, masks) shared by every sampler."""
    ladder = _check_sigmas(sigmas)
    num_levels = int(ladder.shape[0])
    images = _check_images(images, "images")
    seeds = _check_seeds(seeds)
    _check_same_batch(seeds, images)
    first, last = _check_level_range(first_level, num_levels if last_level is None else last_level, num_levels)
    known = mask_values = None
    if known_images is not None or masks is not None:
        known, mask_values = _check_inpainting(images, known_images, masks)
    first, last = tf.convert_to_tensor(first, tf.int32), tf.convert_to_tensor(last, tf.int32)
    return ladder, images, seeds, first, last, known, mask_values


# ---------------------------------------------------------------------------
# The samplers.
# ---------------------------------------------------------------------------


def _annealed(
    score_fn: ScoreFn,
    images: Any,
    seeds: Any,
    sigmas: Sequence[float] | np.ndarray,
    settings: Mapping[str, Any],
    first_level: IntLike,
    last_level: IntLike | None,
    known_images: Any = None,
    masks: Any = None,
) -> tf.Tensor:
    ladder, images, seeds, first, last, known, mask_values = _prepare(
        images, seeds, sigmas, first_level, last_level, known_images, masks
    )
    checked = check_settings("annealed_langevin", int(ladder.shape[0]), settings, inpainting=known is not None)
    args = [
        images,
        seeds,
        first,
        last,
        tf.convert_to_tensor(checked["steps_per_level"], tf.int32),
        tf.convert_to_tensor(checked["epsilon"], tf.float32),
        tf.convert_to_tensor(checked["final_denoise"], tf.bool),
        tf.convert_to_tensor(checked["noise_scale"], tf.float32),
    ]
    return _execute(score_fn, "annealed_langevin", ladder, (checked["convention"],), args, known, mask_values)


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
    Network calls per image: L T (+ 1 with final_denoise).

    Args:
        score_fn: `score_fn(noisy [B, ...], sigma_indices [B]) -> [B, ...]`.
        images: [B, ...] float32, the chain state at `first_level` (e.g. `initial_images`).
        seeds: [B] int32, one seed per image (its noise depends only on seed, step, pixel).
        sigmas: [L] descending noise ladder (concrete numbers), index 0 = largest.
        steps_per_level: T (paper: 100), an integer in [1, max_steps_per_level(L)].
        epsilon: step size at the smallest sigma (paper: 2e-5).
        convention: "code" or "paper", see above.
        first_level: first level to run, in [0, L].
        last_level: one past the last level to run (exclusive), None = L.
        final_denoise: add x <- x + sigma_L^2 s(x, L-1) at the end (NCSNv2); only
            applied when the run ends at level L.
        noise_scale: multiplies every z; 0 gives the deterministic (noise-free) path.

    Returns:
        [B, ...] float32, the chain state after the last level (not clipped).

    Raises:
        ValueError: a bad setting, level range or input (one line).

    References:
        Song & Ermon 2019, Algorithm 1; Song & Ermon 2020, Section 4 (denoising).
    """
    settings = dict(
        steps_per_level=steps_per_level, epsilon=epsilon, convention=convention,
        final_denoise=final_denoise, noise_scale=noise_scale,
    )  # fmt: skip
    return _annealed(score_fn, images, seeds, sigmas, settings, first_level, last_level)


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
    With noise_scale = 0 the known pixels end exactly equal to y. There is no RePaint
    resampling here: the T Langevin steps at each level already resample the unknown
    pixels given the known ones (more of it = a larger T).

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

    Raises:
        ValueError: a bad setting, mask or input (one line).

    References:
        Song & Ermon 2019, Section 5.3 and Algorithm 2 (appendix).
    """
    settings = dict(
        steps_per_level=steps_per_level, epsilon=epsilon, convention=convention,
        final_denoise=final_denoise, noise_scale=noise_scale,
    )  # fmt: skip
    return _annealed(score_fn, images, seeds, sigmas, settings, first_level, last_level, known_images, masks)


def predictor_corrector(
    score_fn: ScoreFn,
    images: Any,
    seeds: Any,
    sigmas: Sequence[float] | np.ndarray,
    *,
    corrector_steps: IntLike = DEFAULT_CORRECTOR_STEPS,
    snr: FloatLike = DEFAULT_SNR,
    first_level: IntLike = 0,
    last_level: IntLike | None = None,
    known_images: Any = None,
    masks: Any = None,
    resample_steps: IntLike = DEFAULT_RESAMPLE_STEPS,
) -> tf.Tensor:
    """The VE predictor-corrector sampler over levels [first_level, last_level).

    Per level i: C Langevin corrector steps at sigma_i, each x <- x + eps s(x, i) +
    sqrt(2 eps) z with eps = 2 (r ||z|| / ||s||)^2 per image (`corrector_step_size`),
    then the reverse-diffusion predictor x <- x + d_i s(x, i) + sqrt(d_i) z with
    d_i = sigma_i^2 - sigma_{i+1}^2 and sigma_{L+1} = 0; the last predictor step adds
    no noise, so the run ends with the Tweedie denoiser x + sigma_L^2 s. C = 0 is the
    reverse-diffusion sampler. The network is evaluated only at the L training levels.
    Network calls per image: L (C + 1) (+ (L - 1) u (C + 1) with resampling).

    Inpainting (`known_images`, `masks`): before every network call of level i the known
    pixels are set to y + sigma_i z (z drawn once per level and repeat); they end at
    exactly y. With `resample_steps` u > 0, RePaint: after each predictor step to level
    i + 1 but the last, the whole image is re-noised back to sigma_i (x + sqrt(d_i) z)
    and the level is repeated, u + 1 times in all (not on the last level), so that the
    unknown pixels can come to agree with the known ones.

    Args:
        score_fn: `score_fn(noisy [B, ...], sigma_indices [B]) -> [B, ...]`.
        images: [B, ...] float32, the state at `first_level` (for level 0: `prior_images`).
        seeds: [B] int32, one seed per image.
        sigmas: [L] descending noise ladder (concrete numbers), index 0 = largest.
        corrector_steps: C >= 0 corrector steps per level.
        snr: r > 0, the corrector's target signal-to-noise ratio (score_sde: 0.16 on
            CIFAR-10; tune it per data set).
        first_level: first level to run, in [0, L].
        last_level: one past the last level (exclusive), None = L.
        known_images: [B, ...] float32 y where masks = 1, or None (no inpainting).
        masks: [B, ...] float32 in {0, 1}, 1 = known pixel, or None.
        resample_steps: u >= 0, RePaint's repeats per level (inpainting only).

    Returns:
        [B, ...] float32, the state at `last_level` (at L: the denoised samples; not clipped).

    Raises:
        ValueError: a bad setting, level range or input (one line).

    References:
        Song et al. 2021, Algorithms 2-3 (VE SDE) and 5 (corrector); Lugmayr et al.
        2022, Algorithm 1 (resampling).
    """
    ladder, images, seeds, first, last, known, mask_values = _prepare(
        images, seeds, sigmas, first_level, last_level, known_images, masks
    )
    settings = {"corrector_steps": corrector_steps, "snr": snr, "resample_steps": resample_steps}
    checked = check_settings("predictor_corrector", int(ladder.shape[0]), settings, inpainting=known is not None)
    args = [
        images,
        seeds,
        first,
        last,
        tf.convert_to_tensor(checked["corrector_steps"], tf.int32),
        tf.convert_to_tensor(checked["snr"], tf.float32),
        tf.convert_to_tensor(checked["resample_steps"], tf.int32),
    ]
    return _execute(score_fn, "predictor_corrector", ladder, (), args, known, mask_values)


def probability_flow(
    score_fn: ScoreFn,
    images: Any,
    seeds: Any,
    sigmas: Sequence[float] | np.ndarray,
    *,
    order: IntLike = DEFAULT_ORDER,
    first_level: IntLike = 0,
    last_level: IntLike | None = None,
    known_images: Any = None,
    masks: Any = None,
) -> tf.Tensor:
    """Deterministic sampling: the probability-flow ODE dx/dsigma = -sigma s(x, sigma), Euler or Heun.

    Steps sigma_i -> sigma_{i+1} over the training ladder (the network knows only those
    sigmas), then a last Euler step to sigma = 0, which is the Tweedie denoiser
    x + sigma_L^2 s. Euler (order 1): x <- x + (sigma_{i+1} - sigma_i) d(x, sigma_i);
    Heun (order 2) corrects with d' at Euler's prediction: x <- x + (sigma_{i+1} -
    sigma_i)(d + d') / 2, on every step but the last. Network calls per image: L
    (Euler), 2L - 1 (Heun). No noise is drawn: the seed only sets the start.

    Inpainting: the known pixels of every network input at sigma are y + sigma z with one
    z per image for the whole run (the exact flow of the known pixels, were they a point
    mass at y); they end at exactly y.

    Args:
        score_fn: `score_fn(noisy [B, ...], sigma_indices [B]) -> [B, ...]`.
        images: [B, ...] float32, the state at `first_level` (for level 0: `prior_images`).
        seeds: [B] int32, one seed per image (used only by inpainting's z).
        sigmas: [L] descending noise ladder (concrete numbers), index 0 = largest.
        order: 1 (Euler) or 2 (Heun).
        first_level: first level to run, in [0, L]; a chunk's state is x at sigma_first.
        last_level: one past the last level (exclusive), None = L.
        known_images: [B, ...] float32 y where masks = 1, or None.
        masks: [B, ...] float32 in {0, 1}, 1 = known pixel, or None.

    Returns:
        [B, ...] float32, x at sigma_last (at L: sigma = 0, the samples; not clipped).

    Raises:
        ValueError: a bad order, level range or input (one line).

    References:
        Karras et al. 2022, Algorithm 1 (deterministic sampler, sigma(t) = t); Song et
        al. 2021, Section 4.3 (probability-flow ODE).
    """
    ladder, images, seeds, first, last, known, mask_values = _prepare(
        images, seeds, sigmas, first_level, last_level, known_images, masks
    )
    checked = check_settings("probability_flow", int(ladder.shape[0]), {"order": order}, inpainting=known is not None)
    args = [images, seeds, first, last, tf.convert_to_tensor(checked["order"], tf.int32)]
    return _execute(score_fn, "probability_flow", ladder, (), args, known, mask_values)


def run_sampler(
    score_fn: ScoreFn,
    images: Any,
    seeds: Any,
    sigmas: Sequence[float] | np.ndarray,
    *,
    sampler: str,
    first_level: IntLike = 0,
    last_level: IntLike | None = None,
    known_images: Any = None,
    masks: Any = None,
    **settings: Any,
) -> tf.Tensor:
    """Any sampler by name: the one entry point for endpoints, CLIs and the app's back ends.

    Every setting may be a Python number or a tensor (an exported graph's input);
    concrete values are validated here, tensors are clamped in the graph.

    Args:
        score_fn: `score_fn(noisy [B, ...], sigma_indices [B]) -> [B, ...]`.
        images: [B, ...] float32, the state at `first_level` (level 0: `start_images`).
        seeds: [B] int32, one seed per image.
        sigmas: [L] descending noise ladder (concrete numbers).
        sampler: one of `SAMPLERS`.
        first_level, last_level: the level chunk [first, last), last None = L.
        known_images, masks: inpainting (masks: 1 = known pixel), or None.
        **settings: the sampler's own settings (`SAMPLER_SETTINGS[sampler]`):
            annealed_langevin: steps_per_level, epsilon (both required), convention,
            final_denoise, noise_scale; predictor_corrector: corrector_steps, snr,
            resample_steps; probability_flow: order.

    Returns:
        [B, ...] float32, the state at `last_level` (not clipped).

    Raises:
        ValueError: an unknown sampler or setting, or a bad value (one line).
    """
    sampler = check_sampler_name(sampler)
    check_settings(sampler, int(_check_sigmas(sigmas).shape[0]), settings, inpainting=known_images is not None)
    chunk = {"first_level": first_level, "last_level": last_level}
    if sampler == "annealed_langevin":
        return _annealed(score_fn, images, seeds, sigmas, settings, first_level, last_level, known_images, masks)
    if sampler == "predictor_corrector":
        return predictor_corrector(
            score_fn, images, seeds, sigmas, known_images=known_images, masks=masks, **chunk, **settings
        )
    return probability_flow(score_fn, images, seeds, sigmas, known_images=known_images, masks=masks, **chunk, **settings)


def network_calls(
    sampler: str,
    num_levels: int,
    *,
    first_level: int = 0,
    last_level: int | None = None,
    inpainting: bool = False,
    **settings: Any,
) -> int:
    """Network calls per image of a run (each call evaluates the whole batch once).

    From the same plan the loops run: annealed Langevin L T (+ 1 with final_denoise);
    predictor-corrector L (C + 1) + (L - 1) u (C + 1); probability flow L (Euler) or
    2L - 1 (Heun). Over a chunk [first, last) only its calls count.

    Args:
        sampler: one of `SAMPLERS`.
        num_levels: L.
        first_level, last_level: the chunk, last None = L.
        inpainting: whether the run inpaints (resample_steps needs it).
        **settings: the sampler's settings; annealed Langevin needs steps_per_level.

    Returns:
        The number of network calls.

    Raises:
        ValueError: bad settings (one line).
    """
    sampler = check_sampler_name(sampler)
    num_levels = _check_count(num_levels, "num_levels", 1)
    first, last = _check_level_range(first_level, num_levels if last_level is None else last_level, num_levels)
    if sampler == "annealed_langevin":
        settings = {"epsilon": 1.0, **settings}  # the step size does not change the count
    checked = check_settings(sampler, num_levels, settings, inpainting=inpainting)
    if sampler == "annealed_langevin":
        plan = _annealed_plan(first, last, checked["steps_per_level"], checked["final_denoise"], num_levels)
    elif sampler == "predictor_corrector":
        plan = _predictor_corrector_plan(first, last, checked["corrector_steps"], checked["resample_steps"], num_levels)
    else:
        plan = _flow_plan(first, last, checked["order"], num_levels)
    return int(plan["total"])
