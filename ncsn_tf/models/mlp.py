"""A small noise-conditional MLP score network for 2-D data (the toy experiment)."""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="ncsn_tf")
class ConditionalMLP(keras.Model):
    """s(x, i) for points x in R^D, conditioned on the noise-level index i.

    Each hidden layer is Dense -> per-level scale and shift (FiLM, an embedding of
    i) -> softplus. Inputs are divided by `input_scale` so that the toy mixture
    (modes at +-5, sigma up to 20) enters the net at unit scale.

    Args:
        num_levels: L, the number of noise levels the net is conditioned on.
        dim: D, the data dimension (2 for the toy mixture).
        hidden: width of each hidden layer.
        num_layers: number of hidden layers.
        input_scale: inputs are divided by this before the first layer.

    Call arguments:
        points: [B, D] float32.
        sigma_indices: [B] int32 in [0, L).

    Returns:
        [B, D] float32, the estimated score.
    """

    def __init__(
        self,
        num_levels: int,
        dim: int = 2,
        hidden: int = 128,
        num_layers: int = 3,
        input_scale: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_levels = num_levels
        self.dim = dim
        self.hidden = hidden
        self.num_layers = num_layers
        self.input_scale = input_scale
        # Sub-layers are named attributes, not Python lists: tf.train.Checkpoint does
        # not see layers that Keras 3 keeps in lists (their weights would be lost).
        for k in range(num_layers):
            setattr(self, f"dense_{k}", layers.Dense(hidden, name=f"dense_{k}"))
            setattr(
                self,
                f"film_{k}",
                layers.Embedding(num_levels, 2 * hidden, embeddings_initializer="zeros", name=f"film_{k}"),
            )
        self.out = layers.Dense(dim, name="out")

    def call(self, points, sigma_indices):
        h = points / self.input_scale  # [B, D]
        for k in range(self.num_layers):
            dense, film = getattr(self, f"dense_{k}"), getattr(self, f"film_{k}")
            h = dense(h)  # [B, hidden]
            scale, shift = ops.split(film(sigma_indices), 2, axis=-1)  # [B, hidden] each
            h = ops.softplus(h * (1.0 + scale) + shift)
        return self.out(h)  # [B, D]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_levels=self.num_levels,
            dim=self.dim,
            hidden=self.hidden,
            num_layers=self.num_layers,
            input_scale=self.input_scale,
        )
        return config
