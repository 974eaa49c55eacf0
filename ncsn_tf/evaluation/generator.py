"""`Generator`: a trained score model ready to sample and score, whatever it was loaded from.

Every evaluation module takes a `Generator`; `ncsn_tf.evaluation.loading` builds one
from a workdir, checkpoint or export, `generator_from_model` from a model in memory.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from ncsn_tf.configs import SAMPLERS, Config, SamplingConfig

SampleFn = Callable[[np.ndarray, SamplingConfig], np.ndarray]  # (seeds [B], sampler settings) -> images [B, ...]
ScoreArrayFn = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (noisy, sigma_indices) -> scores


class EvaluationError(RuntimeError):
    """A model cannot be evaluated as asked; the message says why and what to do."""


@dataclasses.dataclass
class Generator:
    """A trained score model ready to sample and score.

    Attributes:
        label: short name for tables (the path as given).
        source: "checkpoint" (a model in memory), or the runtime of an export:
            "onnxruntime" or "tensorflow".
        config: the training Config (data set, image shape, held-out data). For an
            export it is the manifest's provenance copy: never its sampler defaults.
        step: training step of the weights (None if unknown).
        sigmas: [L] float32 noise ladder, descending.
        sampler_defaults: the sampler settings used when a run gives none: the
            config's `sampling` for a checkpoint, the manifest's `sampler` block for
            an export (docs/export.md).
        defaults_from: where `sampler_defaults` came from, recorded in evaluation.json.
        samplers: the samplers it can run: every one of `configs.SAMPLERS` for a model
            in memory; for an export those of its manifest's sampler block.
    """

    label: str
    source: str
    config: Config
    step: int | None
    sigmas: np.ndarray
    sampler_defaults: SamplingConfig
    defaults_from: str
    _sample: SampleFn = dataclasses.field(repr=False)
    _score: ScoreArrayFn = dataclasses.field(repr=False)
    samplers: tuple[str, ...] = SAMPLERS
    # settings -> network calls per image, raising on settings the model cannot run (an
    # export checks them with its own ranges); None = `SamplingConfig.network_calls`.
    _network_calls: Callable[[SamplingConfig], int] | None = dataclasses.field(default=None, repr=False)

    @property
    def is_export(self) -> bool:
        """Whether it runs an export's graphs (rather than a model in memory)."""
        return self.source != "checkpoint"

    @property
    def dataset(self) -> str:
        """The training data set ("toy", "digits", "mnist", ...)."""
        return self.config.data.dataset

    def sample(self, seeds: np.ndarray, sampling: SamplingConfig) -> np.ndarray:
        """Samples of `sampling.sampler` with its settings. seeds: [B] int32 -> [B, *shape] float32 (not clipped).

        `sampling` should come from `evaluation.draw.sampler_settings` (validated, and a
        sampler this generator has).
        """
        return np.asarray(self._sample(np.asarray(seeds, np.int32), sampling))

    def network_calls(self, sampling: SamplingConfig) -> int:
        """Network calls per image of a run with `sampling`; checks that this model can run those settings.

        Raises:
            EvaluationError: settings an export refuses (its ranges, a setting it lacks).
        """
        if self._network_calls is not None:
            return self._network_calls(sampling)
        return sampling.network_calls(len(self.sigmas))

    def score(self, noisy: np.ndarray, sigma_indices: np.ndarray) -> np.ndarray:
        """s(x, i). noisy: [B, *shape] float32, sigma_indices: [B] int32 -> [B, *shape] float32."""
        return np.asarray(self._score(np.asarray(noisy, np.float32), np.asarray(sigma_indices, np.int32)))


def generator_from_model(model: Any, config: Config, label: str, step: int | None = None) -> Generator:
    """Wrap an in-memory score model (`model(noisy, sigma_indices)`) and its config.

    The ladder is `config.noise.sigmas()`, each sampler starts where `sampling.start_images`
    says (on `config.data.value_range`) and the sampler defaults are `config.sampling`;
    every sampler runs (`sampling.run_sampler` with `SamplingConfig.sampler_arguments`).

    Args:
        model: a score function `model(noisy [B, *shape], sigma_indices [B]) -> [B, *shape]`.
        config: its training config.
        label: name for tables.
        step: training step of the weights, if known.

    Returns:
        A Generator with source "checkpoint".
    """
    import tensorflow as tf

    from ncsn_tf.sampling import run_sampler, start_images

    sigmas = config.noise.sigmas()  # [L]
    value_range = config.data.value_range

    def sample(seeds: np.ndarray, sampling: SamplingConfig) -> np.ndarray:
        seeds_tensor = tf.constant(seeds, tf.int32)  # [B]
        start = start_images(sampling.sampler, seeds_tensor, config.data.shape, sigmas, value_range=value_range)
        return run_sampler(model, start, seeds_tensor, sigmas, **sampling.sampler_arguments()).numpy()  # [B, *shape]

    def score(noisy: np.ndarray, sigma_indices: np.ndarray) -> np.ndarray:
        return np.asarray(model(tf.constant(noisy), tf.constant(sigma_indices)), np.float32)  # [B, *shape]

    return Generator(
        label, "checkpoint", config, step, sigmas, config.sampling, "config.sampling", _sample=sample, _score=score
    )
