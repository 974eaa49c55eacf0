"""Typed, frozen experiment configurations: one per dataset, layered on defaults.

A `Config` is five frozen dataclasses (data, model, noise, training, sampling).
Each dataset function below starts from the defaults and overrides what differs
(the score_sde pattern); command-line overrides are applied with
`apply_overrides` and validated by `validate`, then the result is frozen.
Unknown keys and bad values raise `ConfigError` with a one-line message.

Reference settings are those of Song & Ermon (2019), arXiv:1907.05600, and the
released code ermongroup/ncsn.
"""

from __future__ import annotations

import dataclasses
import decimal
import functools
import json
import math
import os
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from export_format import safe_json
from export_format.limits import INT32_MAX, max_steps_per_level
from ncsn_tf import toy as toy_experiment
from ncsn_tf.schedule import geometric_sigmas

# Images are in [0, 1] (the network maps them to 2x - 1 itself); chains start uniform there.
IMAGE_VALUE_RANGE = (0.0, 1.0)

# Every integer setting ends up in an int32 tensor (shapes, level indices, batch sizes,
# step counts of the exported sampler), so each must fit in int32. The seed is the
# exception: `keras.utils.set_random_seed` passes it to NumPy, which takes [0, 2^32 - 1].
INT_RANGE = (-INT32_MAX - 1, INT32_MAX)
SEED_RANGE = (0, 2**32 - 1)
# The noise ladder is float32: its ends must be finite, normal float32 numbers.
FLOAT32_RANGE = (float(np.finfo(np.float32).tiny), float(np.finfo(np.float32).max))
# config.json is about 1.5 KB; a bound far above it (safe_json refuses more, and deeper
# nesting than safe_json.MAX_DEPTH) keeps a hostile file from costing memory or recursion.
CONFIG_MAX_BYTES = 1024 * 1024


class ConfigError(ValueError):
    """A configuration key or value is wrong; the message says which and what to do."""


@dataclass(frozen=True)
class DataConfig:
    # Where images come from: "toy" (2-D mixture), "digits" (scikit-learn's bundled
    # 8x8 digits, no network), "mnist", "cifar10", "celeba" (TFDS), "tfds:<name>"
    # (any TFDS image dataset) or "folder" (a folder of PNG/JPEG files at `path`).
    dataset: str = "digits"
    path: str = ""  # folder of images when dataset == "folder"
    data_dir: str = ""  # TFDS data_dir; "" = TFDS default (~/tensorflow_datasets)
    split: str = "train"
    image_size: int = 8  # square side after crop/resize, even and >= 2 (see validate); ignored for "toy"
    channels: int = 1  # 1 = grayscale, 3 = RGB; ignored for "toy"
    center_crop: int = 0  # crop side before resizing; 0 = none (CelebA: 140)
    random_flip: bool = False  # horizontal flips (reference: CIFAR-10, CelebA)
    dequantize: bool = True  # x*255/256 + U(0,1)/256, as the reference
    shuffle_buffer: int = 10_000

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one example: (2,) for the toy mixture, else (H, W, C)."""
        if self.dataset == "toy":
            return (2,)
        return (self.image_size, self.image_size, self.channels)

    @property
    def value_range(self) -> tuple[float, float]:
        """(low, high) where sampling chains start uniformly: [0, 1) for images, [-8, 8)^2 for the toy."""
        return toy_experiment.START_RANGE if self.dataset == "toy" else IMAGE_VALUE_RANGE


@dataclass(frozen=True)
class ModelConfig:
    # "refinenet" = CondRefineNetDilated (the paper's network); "mlp" = a small
    # conditional MLP for 2-D data (toy experiment).
    architecture: str = "refinenet"
    ngf: int = 64  # base width of CondRefineNetDilated (reference: 64 MNIST, 128 CIFAR)
    mlp_hidden: int = 128  # width of the toy MLP's hidden layers
    mlp_layers: int = 3  # number of hidden layers of the toy MLP
    rescale_input: bool = True  # map [0, 1] input to [-1, 1] inside the net (reference)


@dataclass(frozen=True)
class NoiseConfig:
    # Geometric ladder sigma_1 > ... > sigma_L (paper: 1.0 -> 0.01, L = 10).
    sigma_max: float = 1.0
    sigma_min: float = 0.01
    num_levels: int = 10

    def sigmas(self) -> np.ndarray:
        """The ladder [L] float32, descending (index 0 = sigma_max): the one place it is derived."""
        return geometric_sigmas(self.sigma_max, self.sigma_min, self.num_levels)


@dataclass(frozen=True)
class TrainingConfig:
    batch_size: int = 128  # global batch, split across replicas
    steps: int = 200_000  # total optimizer steps (reference: 200k)
    learning_rate: float = 1e-3  # Adam (reference NCSN: 1e-3; NCSNv2: 1e-4)
    beta1: float = 0.9
    beta2: float = 0.999
    adam_epsilon: float = 1e-8  # PyTorch's Adam default, as the reference
    ema_rate: float = 0.0  # EMA of weights (NCSNv2: 0.999); 0 = off
    checkpoint_every: int = 5_000  # steps between checkpoints (reference: 5k)
    keep_checkpoints: int = 3  # how many recent checkpoints CheckpointManager keeps
    log_every: int = 100  # steps between TensorBoard scalars / progress updates
    sample_every: int = 0  # steps between sample grids; 0 = only at the end
    seed: int = 0  # seeds weights, data order and noise; in [0, 2^32 - 1] (NumPy's seed range)
    precision: str = "float32"  # "float32" or "mixed_bfloat16"
    strategy: str = "auto"  # auto | default | mirrored | multi_worker | tpu


@dataclass(frozen=True)
class SamplingConfig:
    # Which sampler (docs/samplers.md), one of SAMPLERS: "annealed_langevin" (the paper's
    # Algorithm 1, the default), "predictor_corrector" (Song et al. 2021, Algorithms 2-3) or
    # "probability_flow" (the deterministic ODE, Karras et al. 2022, Algorithm 1).
    sampler: str = "annealed_langevin"
    # annealed_langevin:
    steps_per_level: int = 100  # T (paper: 100)
    epsilon: float = 2e-5  # step size at the smallest sigma (paper: 2e-5)
    # "code": x += a*s + sqrt(2a)*z (ermongroup/ncsn, produces the published numbers)
    # "paper": x += (a/2)*s + sqrt(a)*z (Algorithm 1 as printed).
    convention: str = "code"
    final_denoise: bool = False  # NCSNv2's x += sigma_L^2 * s(x, L) at the end
    # predictor_corrector: C Langevin corrector steps per level, each with the step size that
    # makes the drift / noise ratio r = snr, then the reverse-diffusion predictor; L (C + 1)
    # network calls. score_sde's C = 1, r = 0.16 is tuned for CIFAR-10 on 1,000 levels; on the
    # default digits model (20 levels) it gives Frechet distance 15.3 and 49% confident samples.
    # Measured there (README, Results, "Samplers"; 1,000 samples each):
    corrector_steps: int = 2
    snr: float = 0.6
    resample_steps: int = 0  # u, RePaint's resampling, inpainting only (0 = off): (u + 1) passes per level
    # probability_flow: 1 = Euler (L calls), 2 = Heun (2L - 1 calls, second order; EDM's choice).
    order: int = 2
    num_samples: int = 64  # images in the sample grid the trainer writes

    def sampler_arguments(self, *, inpainting: bool = False) -> dict[str, Any]:
        """`ncsn_tf.sampling.run_sampler` keyword arguments: the sampler's name and its settings.

        The one place a config becomes a sampler run (trainer grids, evaluate, experiments).
        Settings of the other samplers are left out, and `resample_steps` unless inpainting.

        Args:
            inpainting: whether the run inpaints (RePaint's `resample_steps` applies only then).

        Returns:
            {"sampler": name, setting: value, ...} for `run_sampler(..., **arguments)`.
        """
        names = SAMPLER_FIELDS[self.sampler]
        settings = {name: getattr(self, name) for name in names if inpainting or name != "resample_steps"}
        return {"sampler": self.sampler, **settings}

    def network_calls(self, num_levels: int, *, inpainting: bool = False) -> int:
        """Network calls per image of a whole run of this sampler over `num_levels` levels."""
        from ncsn_tf.sampling import network_calls  # imports TensorFlow

        arguments = self.sampler_arguments(inpainting=inpainting)
        return network_calls(arguments.pop("sampler"), num_levels, inpainting=inpainting, **arguments)


_SAMPLING_FIELDS = frozenset(f.name for f in dataclasses.fields(SamplingConfig))


@dataclass(frozen=True)
class Config:
    name: str = "default"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)


_SECTIONS = ("data", "model", "noise", "training", "sampling")

DATASET_NAMES = ("toy", "digits", "mnist", "cifar10", "celeba", "folder")
ARCHITECTURES = ("refinenet", "mlp")
PRECISIONS = ("float32", "mixed_bfloat16")
STRATEGIES = ("auto", "default", "mirrored", "multi_worker", "tpu")
# The samplers of `ncsn_tf.sampling` (docs/samplers.md) and which `SamplingConfig` fields are
# each one's settings: that module's SAMPLERS and SAMPLER_SETTINGS, here without TensorFlow
# (this module must not import it, so that a bad config is an instant one-line error; a test
# keeps the two equal). `check_sampling` checks their ranges.
SAMPLERS = ("annealed_langevin", "predictor_corrector", "probability_flow")
SAMPLER_FIELDS: dict[str, tuple[str, ...]] = {
    "annealed_langevin": ("steps_per_level", "epsilon", "convention", "final_denoise"),
    "predictor_corrector": ("corrector_steps", "snr", "resample_steps"),
    "probability_flow": ("order",),
}
CONVENTIONS = ("code", "paper")  # Langevin step conventions (SamplingConfig.convention)
ORDERS = (1, 2)  # probability flow: Euler, Heun


def _replace(config: Config, **sections: dict[str, Any]) -> Config:
    """Return `config` with fields of the named sections replaced."""
    updated = {name: dataclasses.replace(getattr(config, name), **values) for name, values in sections.items()}
    return dataclasses.replace(config, **updated)


# ---------------------------------------------------------------------------
# One function per dataset, each layered on the defaults above.
# ---------------------------------------------------------------------------


def toy() -> Config:
    """Paper Section 3.2: 0.2 N((-5,-5), I) + 0.8 N((5,5), I), sigma 20 -> 1, L = 10."""
    return _replace(
        Config(name="toy"),
        data=dict(dataset="toy", dequantize=False, shuffle_buffer=0),
        model=dict(architecture="mlp", rescale_input=False),
        noise=dict(
            sigma_max=toy_experiment.SIGMA_MAX, sigma_min=toy_experiment.SIGMA_MIN, num_levels=toy_experiment.NUM_LEVELS
        ),
        # 30k steps (~75 s on 2 cores): at 5k the learned sampler still leaves a trail of chains
        # between the modes (MMD^2 0.047); at 30k it matches the exact-score sampler (0.026 vs 0.021).
        training=dict(batch_size=128, steps=30_000, checkpoint_every=5_000, log_every=500),
        # Paper's toy run: alpha_i = 0.1 * sigma_i^2 / sigma_L^2, x += (a/2)s + sqrt(a)z.
        sampling=dict(
            steps_per_level=toy_experiment.STEPS_PER_LEVEL, epsilon=toy_experiment.EPSILON,
            convention=toy_experiment.CONVENTION, num_samples=toy_experiment.NUM_CHAINS,
        ),  # fmt: skip
    )


def digits() -> Config:
    """The embedded default: scikit-learn's 1,797 real 8x8 handwritten digits.

    Sized for two CPU cores (6,000 steps; ~7 steps/s alone on the machine). Tuned
    with the digits classifier metrics (README, Results): the paper's ladder
    (sigma 1 -> 0.01, L 10) left 8x8 digits with a skewed class mix (4% threes,
    20% zeros); starting at sigma 5 (NCSNv2's advice: about the largest distance
    between training images) over 20 levels, with EMA, gives every class 8-12%.
    """
    return _replace(
        Config(name="digits"),
        # No dequantisation: with only 17 grey levels its U(0, 1/17) noise is as large as
        # the smallest sigmas and cost more than half the Frechet distance (run C vs B).
        data=dict(dataset="digits", image_size=8, channels=1, random_flip=False, dequantize=False),
        model=dict(architecture="refinenet", ngf=16),
        noise=dict(sigma_max=5.0, sigma_min=0.01, num_levels=20),
        training=dict(batch_size=128, steps=6_000, checkpoint_every=500, log_every=50, ema_rate=0.999),
        # T = 50 over 20 levels keeps 1,000 network calls per sample, as the paper's 10 x 100.
        # epsilon = the paper's 2e-5 (measured on run C: 5e-6 -> FD 1.47, 1e-5 -> 1.09,
        # 2e-5 -> 0.88, 4e-5 -> 1.58 with the class mix out of 5-15%).
        sampling=dict(num_samples=100, steps_per_level=50, epsilon=2e-5),
    )


def mnist() -> Config:
    """Reference MNIST setting: 28x28x1, ngf 64 (7,638,657 parameters)."""
    return _replace(
        Config(name="mnist"),
        data=dict(dataset="mnist", image_size=28, channels=1, random_flip=False),
        model=dict(architecture="refinenet", ngf=64),
    )


def cifar10() -> Config:
    """Reference CIFAR-10 setting: 32x32x3, ngf 128 (30,117,635 parameters), flips."""
    return _replace(
        Config(name="cifar10"),
        data=dict(dataset="cifar10", image_size=32, channels=3, random_flip=True),
        model=dict(architecture="refinenet", ngf=128),
    )


def celeba() -> Config:
    """Reference CelebA setting: center crop 140, resize to 32x32x3, ngf 128, flips."""
    return _replace(
        Config(name="celeba"),
        data=dict(dataset="celeba", image_size=32, channels=3, center_crop=140, random_flip=True),
        model=dict(architecture="refinenet", ngf=128),
    )


CONFIGS: dict[str, Callable[[], Config]] = {
    "toy": toy,
    "digits": digits,
    "mnist": mnist,
    "cifar10": cifar10,
    "celeba": celeba,
}


def get_config(name: str) -> Config:
    """The named dataset configuration, validated."""
    if name not in CONFIGS:
        raise ConfigError(f"unknown config {name!r}; choose one of: {', '.join(CONFIGS)}")
    return validate(CONFIGS[name]())


# ---------------------------------------------------------------------------
# Overrides, validation, JSON.
# ---------------------------------------------------------------------------


@functools.cache
def _field_types(section_cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(section_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(section_cls)}


def _parse_int(text: str, key: str) -> int:
    """An integer from text, exactly: "1_000", "1e3" and "1000.0" are 1000; "1.5" is an error.

    Decimal (not float) keeps every digit, so "12345678901234567" or "1.2345678901234567e16"
    is never rounded to a neighbouring integer.
    """
    try:
        number = decimal.Decimal(text.strip())
    except decimal.InvalidOperation:
        raise ConfigError(f"{key}: expected an integer, got {text!r}") from None
    if number.is_finite() and number.adjusted() >= 19:  # >= 1e19: refused before any huge integer is built
        raise ConfigError(f"{key}: {text!r} is not an integer that fits in 32 bits")
    if not number.is_finite() or number != number.to_integral_value():
        raise ConfigError(f"{key}: expected an integer, got {text!r}")
    return int(number)


def _parse_value(text: str, kind: Any, key: str) -> Any:
    if kind is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{key}: expected true/false, got {text!r}")
    if kind is int:
        return _parse_int(text, key)
    if kind is float:
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise ConfigError(f"{key}: expected a finite number, got {text!r}")
        return value
    return text


def apply_overrides(config: Config, overrides: Sequence[str]) -> Config:
    """Apply "section.key=value" strings (e.g. "training.steps=100"), then validate.

    Raises:
        ConfigError: for a malformed string, an unknown section or key, or a bad value.
    """
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form section.key=value (e.g. training.steps=100)")
        dotted, text = item.split("=", 1)
        dotted = dotted.strip()
        if dotted == "name":
            config = dataclasses.replace(config, name=text)
            continue
        if "." not in dotted:
            raise ConfigError(f"override key {dotted!r} needs a section: one of {', '.join(_SECTIONS)} (e.g. training.steps)")
        section, key = dotted.split(".", 1)
        if section not in _SECTIONS:
            raise ConfigError(f"unknown config section {section!r} in {item!r}; sections: {', '.join(_SECTIONS)}")
        types = _field_types(type(getattr(config, section)))
        if key not in types:
            raise ConfigError(f"unknown config key {dotted!r}; {section} keys: {', '.join(types)}")
        value = _parse_value(text, types[key], dotted)
        config = _replace(config, **{section: {key: value}})
    return validate(config)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_types(config: Config) -> None:
    """Every field holds its declared type: int (never bool), float (or int, finite), bool, str.

    This is what keeps the Python API as strict as the command line: `steps=1.5`,
    `random_flip="no"` or `sigma_max=float("inf")` are errors, never coerced.
    """
    _check(isinstance(config, Config), f"expected a Config, got {type(config).__name__}")
    _check(isinstance(config.name, str), f"name must be a string, got {_short(config.name)}")
    for section in _SECTIONS:
        _check_section_types(section, getattr(config, section))


def _check_section_types(section: str, values: Any) -> None:
    """The types of one section's values (see `_check_types`)."""
    cls = type(getattr(Config(), section))
    _check(isinstance(values, cls), f"config section {section!r} must be a {cls.__name__}, got {type(values).__name__}")
    for key, kind in _field_types(cls).items():
        value, dotted = getattr(values, key), f"{section}.{key}"
        if kind is bool:
            _check(isinstance(value, bool), f"{dotted}: expected true or false, got {_short(value)}")
        elif kind is int:
            low, high = SEED_RANGE if dotted == "training.seed" else INT_RANGE
            _check(isinstance(value, int) and not isinstance(value, bool), f"{dotted}: expected an integer, got {_short(value)}")
            _check(low <= value <= high, f"{dotted} must be an integer in [{low}, {high}], got {value}")
        elif kind is float:
            _check(isinstance(value, int | float) and not isinstance(value, bool), f"{dotted}: expected a number, got {_short(value)}")
            _check(_is_finite(value), f"{dotted}: expected a finite number, got {_short(value)}")
        elif kind is str:
            _check(isinstance(value, str), f"{dotted}: expected a string, got {_short(value)}")


def _is_finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def validate(config: Config) -> Config:
    """Check every value; return the config unchanged or raise ConfigError.

    Types first (see `_check_types`; integers in int32, the seed in [0, 2^32 - 1],
    floats finite), then each setting's own range.
    """
    _check_types(config)
    d, m, n, t, s = config.data, config.model, config.noise, config.training, config.sampling
    _check(
        d.dataset in DATASET_NAMES or d.dataset.startswith("tfds:"),
        f"data.dataset={d.dataset!r} is unknown; use one of {', '.join(DATASET_NAMES)} or tfds:<name>",
    )
    _check(d.dataset != "folder" or bool(d.path), "data.dataset=folder needs data.path=<folder of images>")
    # CondRefineNetDilated halves H and W once (a 2x2 mean pool in res2) and has no
    # odd-size padding path, so sides must be even; 2 is the smallest that builds and
    # trains (probed: every even side from 2 up works, every odd side fails).
    _check(
        d.dataset == "toy" or (d.image_size >= 2 and d.image_size % 2 == 0),
        f"data.image_size must be an even number >= 2 (the network halves the image once), got {d.image_size}",
    )
    _check(d.channels in (1, 3), f"data.channels must be 1 or 3, got {d.channels}")
    _check(d.center_crop >= 0, f"data.center_crop must be >= 0, got {d.center_crop}")
    _check(d.shuffle_buffer >= 0, f"data.shuffle_buffer must be >= 0, got {d.shuffle_buffer}")
    _check(m.architecture in ARCHITECTURES, f"model.architecture={m.architecture!r}; use one of {', '.join(ARCHITECTURES)}")
    _check(
        (m.architecture == "mlp") == (d.dataset == "toy"),
        "model.architecture=mlp is for data.dataset=toy (2-D points) and refinenet for images",
    )
    _check(m.ngf > 0 and m.mlp_hidden > 0 and m.mlp_layers > 0, "model.ngf, model.mlp_hidden and model.mlp_layers must be positive")
    _check(n.sigma_min > 0, f"noise.sigma_min must be positive, got {n.sigma_min}")
    _check(
        FLOAT32_RANGE[0] <= n.sigma_min and n.sigma_max <= FLOAT32_RANGE[1],
        f"noise.sigma_min and noise.sigma_max must be float32 numbers in [{FLOAT32_RANGE[0]:.3g}, {FLOAT32_RANGE[1]:.3g}], "
        f"got {n.sigma_min} and {n.sigma_max}",
    )
    _check(n.num_levels >= 1, f"noise.num_levels must be >= 1, got {n.num_levels}")
    _check(
        n.sigma_max > n.sigma_min or (n.num_levels == 1 and n.sigma_max == n.sigma_min),
        f"noise.sigma_max ({n.sigma_max}) must be larger than noise.sigma_min ({n.sigma_min})",
    )
    _check(t.batch_size > 0, f"training.batch_size must be positive, got {t.batch_size}")
    _check(t.steps >= 0, f"training.steps must be >= 0, got {t.steps}")
    _check(t.learning_rate > 0, f"training.learning_rate must be positive, got {t.learning_rate}")
    _check(0 <= t.beta1 < 1 and 0 <= t.beta2 < 1, "training.beta1 and training.beta2 must be in [0, 1)")
    _check(t.adam_epsilon > 0, f"training.adam_epsilon must be positive, got {t.adam_epsilon}")
    _check(0 <= t.ema_rate < 1, f"training.ema_rate must be in [0, 1) (0 = off), got {t.ema_rate}")
    _check(t.checkpoint_every > 0, f"training.checkpoint_every must be positive, got {t.checkpoint_every}")
    _check(t.keep_checkpoints > 0, f"training.keep_checkpoints must be positive, got {t.keep_checkpoints}")
    _check(t.log_every > 0, f"training.log_every must be positive, got {t.log_every}")
    _check(t.sample_every >= 0, f"training.sample_every must be >= 0 (0 = only at the end), got {t.sample_every}")
    _check(t.precision in PRECISIONS, f"training.precision={t.precision!r}; use one of {', '.join(PRECISIONS)}")
    _check(t.strategy in STRATEGIES, f"training.strategy={t.strategy!r}; use one of {', '.join(STRATEGIES)}")
    check_sampling(s, n.num_levels)
    _check(s.num_samples > 0, f"sampling.num_samples must be positive, got {s.num_samples}")
    return config


def check_sampling(sampling: SamplingConfig, num_levels: int) -> SamplingConfig:
    """Check the sampler choice and the settings of every sampler (no TensorFlow).

    The ranges are those of `ncsn_tf.sampling.check_settings`, which checks again when a
    run is made (tests/test_configs.py keeps the two in agreement on every edge): T >= 1,
    epsilon > 0, a known convention, C >= 0, snr > 0, u >= 0, order 1 or 2, all finite,
    and levels x calls per level within the graphs' int32 loop counters
    (`export_format.limits`). Every sampler's settings are checked, not only the chosen
    one's, so a config never holds a value that would fail when another sampler is
    picked. The types were checked by `validate` / the strict loader.

    Args:
        sampling: the sampling section (types already checked).
        num_levels: L, the ladder's length.

    Returns:
        `sampling`, unchanged.

    Raises:
        ConfigError: an unknown sampler or a bad setting, one line naming `sampling.<key>`.
    """
    s = sampling
    _check(s.sampler in SAMPLERS, f"sampling.sampler: unknown sampler {s.sampler!r}; use one of {', '.join(SAMPLERS)}")
    _check(s.steps_per_level >= 1, f"sampling.steps_per_level must be an integer >= 1, got {s.steps_per_level}")
    _check(
        math.isfinite(s.epsilon) and s.epsilon > 0, f"sampling.epsilon must be a finite number > 0, got {float(s.epsilon)}"
    )
    _check(
        s.convention in CONVENTIONS,
        f"sampling.convention: unknown Langevin convention {s.convention!r}; use one of {', '.join(CONVENTIONS)}",
    )
    _check(s.corrector_steps >= 0, f"sampling.corrector_steps must be an integer >= 0, got {s.corrector_steps}")
    _check(math.isfinite(s.snr) and s.snr > 0, f"sampling.snr must be a finite number > 0, got {float(s.snr)}")
    _check(s.resample_steps >= 0, f"sampling.resample_steps must be an integer >= 0, got {s.resample_steps}")
    _check(s.order in ORDERS, f"sampling.order must be 1 (Euler) or 2 (Heun), got {s.order}")
    limit = max_steps_per_level(num_levels)
    for what, calls in (
        (f"steps_per_level={s.steps_per_level}", s.steps_per_level),
        (
            f"corrector_steps={s.corrector_steps} with resample_steps={s.resample_steps}",
            (s.corrector_steps + 1) * (s.resample_steps + 1),
        ),
    ):
        _check(
            calls <= limit,
            f"sampling ({what}) needs {calls} network calls per level, past the int32 loop counters "
            f"({limit} per level with L = {num_levels}); use fewer",
        )
    return sampling


def override_sampling(
    sampling: SamplingConfig, num_levels: int, *, inpainting: bool = False, **overrides: Any
) -> SamplingConfig:
    """`sampling` with some of its sampler settings replaced (None = keep), checked.

    What a command line's sampler flags do to a model's defaults (evaluate, experiments).
    A setting given for a sampler other than the one that runs is an error rather than
    silently ignored (`--snr` with annealed Langevin), and so is `resample_steps`
    without inpainting.

    Args:
        sampling: the defaults (a config's `sampling`, or an export's).
        num_levels: L.
        inpainting: whether the run inpaints (`resample_steps` applies only then).
        **overrides: `SamplingConfig` field names (not `num_samples`) -> value or None.

    Returns:
        The new, checked `SamplingConfig`.

    Raises:
        ConfigError: an unknown name, a setting of another sampler, or a bad value (one line).
    """
    given = {name: value for name, value in overrides.items() if value is not None}
    unknown = sorted(set(given) - (_SAMPLING_FIELDS - {"num_samples"}))
    if unknown:
        raise ConfigError(f"unknown sampler setting {unknown[0]!r}; use one of {', '.join(sorted(_SAMPLING_FIELDS))}")
    changed = dataclasses.replace(sampling, **given)
    _check_section_types("sampling", changed)
    check_sampling(changed, num_levels)
    own = set(SAMPLER_FIELDS[changed.sampler])
    for name in given:
        if name != "sampler" and name not in own:
            owner = next(sampler for sampler, names in SAMPLER_FIELDS.items() if name in names)
            raise ConfigError(
                f"{name} is a setting of {owner}, not of {changed.sampler} (the sampler that runs); "
                f"choose {owner} or leave {name} out"
            )
    if "resample_steps" in given and not inpainting:
        raise ConfigError("resample_steps is RePaint's resampling for inpainting; it does not apply here")
    return changed


def to_dict(config: Config) -> dict[str, Any]:
    """A JSON-ready dict of the config."""
    return dataclasses.asdict(config)


def from_dict(values: dict[str, Any]) -> Config:
    """Rebuild a Config from `to_dict` output; unknown keys are errors."""
    if not isinstance(values, dict):
        raise ConfigError("config must be a JSON object")
    name = values.get("name", "default")
    if not isinstance(name, str):
        raise ConfigError(f"config name must be a string, got {_short(name)}")
    unknown = set(values) - {"name", *_SECTIONS}
    if unknown:
        raise ConfigError(f"unknown config section(s) {sorted(unknown)}; sections: name, {', '.join(_SECTIONS)}")
    sections: dict[str, Any] = {}
    for section in _SECTIONS:
        cls = type(getattr(Config(), section))
        given = values.get(section, {})
        if not isinstance(given, dict):
            raise ConfigError(f"config section {section!r} must be a JSON object, got {given!r}")
        types = _field_types(cls)
        bad = set(given) - set(types)
        if bad:
            raise ConfigError(f"unknown config key(s) {sorted(f'{section}.{k}' for k in bad)}")
        parsed = {}
        for key, value in given.items():
            kind = types[key]
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                try:
                    value = float(value)
                except OverflowError:  # an integer literal hundreds of digits long
                    raise ConfigError(f"{section}.{key}: {_short(value)} is too large for a number") from None
            # bool is a subclass of int in Python: `"steps": true` must not pass as 1.
            wrong_bool = isinstance(value, bool) and kind is not bool
            if kind in (int, float, bool, str) and (wrong_bool or not isinstance(value, kind)):
                raise ConfigError(f"{section}.{key}: expected {kind.__name__}, got {_short(value)}")
            parsed[key] = value
        sections[section] = cls(**parsed)
    return validate(Config(name=name, **sections))


def save_json(config: Config, path: str | os.PathLike[str]) -> None:
    """Write the config as indented JSON (the `config.json` beside checkpoints).

    This writes `path` in place; `ncsn_tf.checkpoints.write_config` is the atomic
    (temporary file + rename) writer for workdirs.
    """
    with open(path, "w", encoding="utf-8") as f:
        json.dump(to_dict(config), f, indent=2, sort_keys=True)
        f.write("\n")


def load_json(path: str | os.PathLike[str]) -> Config:
    """Read a `config.json` with the bounded JSON reader (`export_format.safe_json`).

    Raises:
        ConfigError: a missing file, one larger than CONFIG_MAX_BYTES or nested deeper
            than `safe_json.MAX_DEPTH`, invalid JSON, or an invalid config.
    """
    try:
        values = safe_json.load(path, max_bytes=CONFIG_MAX_BYTES)
    except FileNotFoundError:
        raise ConfigError(f"no config file at {os.fspath(path)}; is this a training workdir?") from None
    except safe_json.JsonLimitError as error:
        raise ConfigError(f"{error}; restore it or start a new workdir") from None
    return from_dict(values)
