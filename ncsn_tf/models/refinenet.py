"""CondRefineNetDilated: the noise-conditional score network of NCSN.

A RefineNet-style U-net with dilated convolutions, conditioned on the noise
level through CIN++ in every normalisation layer. Layout (channels for width ngf):

    input [B, H, W, C] in [0, 1] -> 2x - 1 -> 3x3 conv -> ngf
    res1: 2 blocks at ngf                                  layer1 [B, H,   W,   ngf]
    res2: down block (conv + 2x2 mean pool) + 1 block      layer2 [B, H/2, W/2, 2ngf]
    res3: 2 blocks at 2ngf, dilation 2 (no downsampling)   layer3 [B, H/2, W/2, 2ngf]
    res4: 2 blocks at 2ngf, dilation 4 (no downsampling)   layer4 [B, H/2, W/2, 2ngf]
    refine1(layer4) -> refine2(layer3, .) -> refine3(layer2, .) -> refine4(layer1, .)
    CIN++ -> ELU -> 3x3 conv -> C                          scores [B, H, W, C]

The reference passes `adjust_padding=True` to res4's first block for 28x28 input,
but that block is dilated and the dilated branch ignores the flag, so the 28x28
network is the same as the 32x32 one; no image-size argument is needed here.

References:
    Song & Ermon, "Generative Modeling by Estimating Gradients of the Data
    Distribution", NeurIPS 2019, arXiv:1907.05600, Appendix B.1.
    ermongroup/ncsn, models/cond_refinenet_dilated.py (checked layer by layer;
    parameter counts match: 7,638,657 MNIST, 30,117,635 CIFAR-10).
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from ncsn_tf.models.layers import (
    ConditionalInstanceNormPlus,
    ConditionalRefineBlock,
    ConditionalResidualBlock,
    torch_default_conv,
)


@keras.saving.register_keras_serializable(package="ncsn_tf")
class CondRefineNetDilated(keras.Model):
    """s_theta(x, i): the score of noisy images x at noise level i.

    Written with `keras.ops` / `keras.layers` only (backend independent). Under a
    mixed precision policy the body runs in the compute dtype, CIN++ statistics in
    float32, and the final conv in float32, so the scores are always float32.

    Args:
        num_levels: L, the number of noise levels (CIN++ tables have L rows).
        ngf: base width (reference: 64 for MNIST, 128 for CIFAR-10 / CelebA); >= 2.
        channels: C, image channels (1 or 3).
        rescale_input: map inputs from [0, 1] to [-1, 1] first (the reference does
            unless it uses a logit transform).

    Call arguments:
        noisy_images: [B, H, W, C] float, H and W even and static.
        sigma_indices: [B] int32 in [0, L), 0 = largest sigma.

    Returns:
        [B, H, W, C] float32, the estimated scores.
    """

    def __init__(
        self,
        num_levels: int,
        ngf: int = 64,
        channels: int = 1,
        rescale_input: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_levels < 1:
            raise ValueError(f"num_levels must be >= 1, got {num_levels}")
        if ngf < 2:
            raise ValueError(f"ngf must be >= 2 (CIN++ standardises across channels), got {ngf}")
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.num_levels = num_levels
        self.ngf = ngf
        self.channels = channels
        self.rescale_input = rescale_input
        wide = 2 * ngf

        def block(name: str, cin: int, cout: int, **options: Any) -> ConditionalResidualBlock:
            return ConditionalResidualBlock(cin, cout, num_levels, name=name, **options)

        self.begin_conv = torch_default_conv(ngf, 3, channels, name="begin_conv")
        # Attributes, not lists: tf.train.Checkpoint does not see layers inside Keras 3 lists.
        self.res1_0, self.res1_1 = block("res1_0", ngf, ngf), block("res1_1", ngf, ngf)
        self.res2_0, self.res2_1 = block("res2_0", ngf, wide, resample="down"), block("res2_1", wide, wide)
        self.res3_0 = block("res3_0", wide, wide, resample="down", dilation=2)
        self.res3_1 = block("res3_1", wide, wide, dilation=2)
        self.res4_0 = block("res4_0", wide, wide, resample="down", dilation=4)
        self.res4_1 = block("res4_1", wide, wide, dilation=4)
        self.refine1 = ConditionalRefineBlock([wide], wide, num_levels, start=True, name="refine1")
        self.refine2 = ConditionalRefineBlock([wide, wide], wide, num_levels, name="refine2")
        self.refine3 = ConditionalRefineBlock([wide, wide], ngf, num_levels, name="refine3")
        self.refine4 = ConditionalRefineBlock([ngf, ngf], ngf, num_levels, end=True, name="refine4")
        self.end_norm = ConditionalInstanceNormPlus(num_levels, name="end_norm")
        # float32 output layer: scores leave the network in float32 under mixed precision.
        self.end_conv = torch_default_conv(channels, 3, ngf, name="end_conv", dtype="float32")

    def call(self, noisy_images: Any, sigma_indices: Any) -> Any:
        shape = noisy_images.shape
        if len(shape) != 4 or shape[-1] != self.channels:
            raise ValueError(
                f"noisy_images must be [B, H, W, {self.channels}] (channels-last), got shape {tuple(shape)}"
            )
        if len(sigma_indices.shape) != 1:
            raise ValueError(f"sigma_indices must be [B] integer level indices, got shape {tuple(sigma_indices.shape)}")
        indices = ops.cast(sigma_indices, "int32")  # [B] in [0, L)
        x = noisy_images  # [B, H, W, C] in [0, 1] (plus noise)
        if self.rescale_input:
            x = 2.0 * x - 1.0  # [B, H, W, C] in [-1, 1] (plus noise)
        h = self.begin_conv(x)  # [B, H, W, ngf]
        layer1 = self.res1_1(self.res1_0(h, indices), indices)  # [B, H, W, ngf]
        layer2 = self.res2_1(self.res2_0(layer1, indices), indices)  # [B, H/2, W/2, 2ngf]
        layer3 = self.res3_1(self.res3_0(layer2, indices), indices)  # [B, H/2, W/2, 2ngf]
        layer4 = self.res4_1(self.res4_0(layer3, indices), indices)  # [B, H/2, W/2, 2ngf]
        refined = self.refine1([layer4], indices, output_size=tuple(layer4.shape[1:3]))  # [B, H/2, W/2, 2ngf]
        refined = self.refine2([layer3, refined], indices, output_size=tuple(layer3.shape[1:3]))  # [B, H/2, W/2, 2ngf]
        refined = self.refine3([layer2, refined], indices, output_size=tuple(layer2.shape[1:3]))  # [B, H/2, W/2, ngf]
        refined = self.refine4([layer1, refined], indices, output_size=tuple(layer1.shape[1:3]))  # [B, H, W, ngf]
        h = ops.elu(self.end_norm(refined, indices))  # [B, H, W, ngf]
        return self.end_conv(h)  # [B, H, W, C] float32

    def build(self, noisy_images_shape: Any, sigma_indices_shape: Any = None) -> None:
        """Create every variable from channel counts alone (no tracing).

        Keras' default build-by-symbolic-call would re-trace nested blocks once per
        nesting level (~10x slower). Variables are created in the order of the call.
        """
        ngf, wide = self.ngf, 2 * self.ngf
        self.begin_conv.build((None, None, None, self.channels))
        residual_blocks = (
            self.res1_0,
            self.res1_1,
            self.res2_0,
            self.res2_1,
            self.res3_0,
            self.res3_1,
            self.res4_0,
            self.res4_1,
        )
        for residual_block in residual_blocks:
            residual_block.build((None, None, None, residual_block.input_dim))
        self.refine1.build([(None, None, None, wide)])
        self.refine2.build([(None, None, None, wide)] * 2)
        self.refine3.build([(None, None, None, wide)] * 2)
        self.refine4.build([(None, None, None, ngf)] * 2)
        self.end_norm.build((None, None, None, ngf))
        self.end_conv.build((None, None, None, ngf))
        self.built = True

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            num_levels=self.num_levels,
            ngf=self.ngf,
            channels=self.channels,
            rescale_input=self.rescale_input,
        )
        return config
