"""Score networks. None of them imports the noise process or the trainer."""

from __future__ import annotations

import keras
import numpy as np

from ncsn_tf.configs import Config
from ncsn_tf.models.mlp import ConditionalMLP


def build_score_model(config: Config) -> keras.Model:
    """The score network described by `config`, already built (called once).

    Building here matters: a tf.train.Checkpoint restored into an unbuilt
    subclassed model silently creates duplicate variables (docs/pitfalls.md,
    "Restoring checkpoints into Keras models").

    Returns:
        A keras.Model with `model(noisy, sigma_indices) -> scores` of noisy's shape.
    """
    num_levels = config.noise.num_levels
    if config.model.architecture == "mlp":
        model = ConditionalMLP(
            num_levels=num_levels,
            dim=config.data.shape[0],
            hidden=config.model.mlp_hidden,
            num_layers=config.model.mlp_layers,
            name="score_mlp",
        )
    elif config.model.architecture == "refinenet":
        from ncsn_tf.models.refinenet import CondRefineNetDilated

        model = CondRefineNetDilated(
            num_levels=num_levels,
            ngf=config.model.ngf,
            channels=config.data.channels,
            rescale_input=config.model.rescale_input,
            name="cond_refinenet_dilated",
        )
    else:  # validate() rejects this earlier; kept for direct callers
        raise ValueError(f"unknown model.architecture {config.model.architecture!r}")
    dummy = np.zeros((1,) + tuple(config.data.shape), np.float32)
    model(dummy, np.zeros((1,), np.int32))
    return model
