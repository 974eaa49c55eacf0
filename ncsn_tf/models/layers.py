"""Building blocks of CondRefineNetDilated: CIN++, conditional residual and RefineNet blocks.

Everything here is written with `keras.ops` / `keras.layers` only (no `tf.*`), so
the blocks run on any Keras backend and export to ONNX without custom ops.
Feature maps are channels-last `[B, H, W, C]`; the conditioning input is
`sigma_indices [B] int32 in [0, L)` (index 0 = largest sigma).

Port notes (PyTorch reference -> Keras):
- Convolutions get PyTorch's default initialisation (weights and biases
  U(-1/sqrt(fan_in), 1/sqrt(fan_in))), so a fresh network starts where the
  reference starts.
- `nn.AvgPool2d(5, 1, 2)` counts the padding zeros (`count_include_pad=True`):
  `zero_padded_average_pool` pads with zeros and then averages over full windows.
- `F.interpolate(mode="bilinear", align_corners=True)` is implemented exactly as
  two constant interpolation matrices applied with `keras.ops.einsum`
  (`resize_bilinear_align_corners`).

References:
    Song & Ermon, "Generative Modeling by Estimating Gradients of the Data
    Distribution", NeurIPS 2019, arXiv:1907.05600 (Appendix B.1: the network).
    Lin et al., "RefineNet", CVPR 2017 (RCU, multi-resolution fusion, chained
    residual pooling). Architecture checked against ermongroup/ncsn,
    models/cond_refinenet_dilated.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import layers, ops

RESAMPLE_MODES = (None, "down")


def _set_indexed(owner: layers.Layer, prefix: str, children: Sequence[layers.Layer]) -> None:
    """Store sublayers as attributes `{prefix}_{k}`.

    Attributes rather than a Python list: Keras 3 tracks lists for `.keras` saving,
    but `tf.train.Checkpoint` does not see layers inside them (their variables would
    silently be left out of checkpoints).
    """
    for k, child in enumerate(children):
        setattr(owner, f"{prefix}_{k}", child)


def _get_indexed(owner: layers.Layer, prefix: str, count: int) -> list[layers.Layer]:
    """The sublayers stored by `_set_indexed`, in order."""
    return [getattr(owner, f"{prefix}_{k}") for k in range(count)]


def _channels_shape(channels: int) -> tuple[None, None, None, int]:
    """The build shape of a feature map with `channels` channels (weights depend only on C)."""
    return (None, None, None, channels)


# ---------------------------------------------------------------------------
# Stateless helpers
# ---------------------------------------------------------------------------


def align_corners_interpolation_matrix(in_size: int, out_size: int) -> np.ndarray:
    """The linear map of 1-D linear interpolation with align_corners=True.

    Output sample j sits at input position j * (in_size - 1) / (out_size - 1)
    (position 0 when out_size == 1), as in PyTorch's
    `F.interpolate(..., mode="bilinear", align_corners=True)`.

    Args:
        in_size: number of input samples (>= 1).
        out_size: number of output samples (>= 1).

    Returns:
        float32 array [out_size, in_size]; each row sums to 1 and holds at most
        two non-zeros. The identity when in_size == out_size.
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f"interpolation sizes must be >= 1, got in_size={in_size}, out_size={out_size}")
    scale = (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    matrix = np.zeros((out_size, in_size), np.float64)
    for j in range(out_size):
        position = j * scale
        lower = min(int(math.floor(position)), in_size - 1)
        upper = min(lower + 1, in_size - 1)
        fraction = position - lower
        matrix[j, lower] += 1.0 - fraction
        matrix[j, upper] += fraction
    return matrix.astype(np.float32)


def resize_bilinear_align_corners(images: Any, size: Sequence[int]) -> Any:
    """Bilinear resize with align_corners=True, exactly PyTorch's `F.interpolate`.

    Applied as `rows @ images @ cols^T` with constant matrices (two einsums), so it
    needs static spatial sizes and converts to plain ONNX MatMul/Einsum.

    Args:
        images: [B, H, W, C] float tensor with static H and W.
        size: (out_height, out_width).

    Returns:
        [B, out_height, out_width, C] tensor of images' dtype.
    """
    in_height, in_width = images.shape[1], images.shape[2]
    out_height, out_width = int(size[0]), int(size[1])
    if in_height is None or in_width is None:
        raise ValueError("resize_bilinear_align_corners needs static spatial sizes; build the model with fixed H and W")
    if (in_height, in_width) == (out_height, out_width):
        return images  # align_corners=True resizing to the same size is the identity
    rows = ops.convert_to_tensor(align_corners_interpolation_matrix(in_height, out_height), images.dtype)  # [H', H]
    cols = ops.convert_to_tensor(align_corners_interpolation_matrix(in_width, out_width), images.dtype)  # [W', W]
    resized = ops.einsum("yh,bhwc->bywc", rows, images)  # [B, H', W, C]
    return ops.einsum("xw,bywc->byxc", cols, resized)  # [B, H', W', C]


def zero_padded_average_pool(images: Any, pool_size: int = 5) -> Any:
    """Stride-1 average pooling over zero-padded input, PyTorch's AvgPool2d(k, 1, k // 2).

    PyTorch's default `count_include_pad=True` divides every window by k*k, padding
    zeros included, so border outputs are pulled toward zero; Keras' "same" pooling
    would divide by the number of real pixels instead.

    Args:
        images: [B, H, W, C] float tensor.
        pool_size: odd window side k.

    Returns:
        [B, H, W, C] tensor of images' dtype.
    """
    if pool_size < 1 or pool_size % 2 == 0:
        raise ValueError(f"pool_size must be a positive odd number, got {pool_size}")
    pad = pool_size // 2
    padded = ops.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])  # [B, H + 2p, W + 2p, C], zeros at the border
    return ops.average_pool(padded, pool_size, strides=1, padding="valid")  # [B, H, W, C]


def torch_default_conv(
    filters: int,
    kernel_size: int,
    in_channels: int,
    *,
    dilation: int = 1,
    use_bias: bool = True,
    name: str | None = None,
    dtype: Any = None,
) -> layers.Conv2D:
    """A stride-1 "same" Conv2D initialised like PyTorch's `nn.Conv2d`.

    PyTorch draws weights with kaiming_uniform(a=sqrt(5)) and biases from
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)); both bounds equal 1/sqrt(fan_in),
    fan_in = in_channels * kernel_size^2. "same" padding at stride 1 equals
    PyTorch's padding = dilation * (kernel_size // 2).

    Args:
        filters: output channels.
        kernel_size: odd square kernel side.
        in_channels: input channels (needed for the bias bound).
        dilation: dilation rate.
        use_bias: whether the conv has a bias.
        name: layer name.
        dtype: dtype policy override (e.g. "float32" for the output layer).

    Returns:
        An unbuilt `keras.layers.Conv2D`.
    """
    bound = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
    return layers.Conv2D(
        filters,
        kernel_size,
        padding="same",
        dilation_rate=dilation,
        use_bias=use_bias,
        kernel_initializer=keras.initializers.VarianceScaling(scale=1.0 / 3.0, mode="fan_in", distribution="uniform"),
        bias_initializer=keras.initializers.RandomUniform(-bound, bound),
        name=name,
        dtype=dtype,
    )


# ---------------------------------------------------------------------------
# Conditional instance normalisation ++
# ---------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="ncsn_tf")
class CINPlusTableInitializer(keras.initializers.Initializer):
    """Initial CIN++ table [L, 3C]: gamma and alpha columns ~ N(1, stddev), beta columns 0.

    Args:
        stddev: standard deviation of the scales (reference: 0.02).
        seed: optional int seed.
    """

    def __init__(self, stddev: float = 0.02, seed: int | None = None) -> None:
        self.stddev = stddev
        self.seed = seed

    def __call__(self, shape: Sequence[int], dtype: Any = None) -> Any:
        levels, width = shape
        if width % 3:
            raise ValueError(f"a CIN++ table needs 3C columns (gamma | alpha | beta), got shape {tuple(shape)}")
        channels = width // 3
        scales = keras.initializers.RandomNormal(mean=1.0, stddev=self.stddev, seed=self.seed)(
            (levels, 2 * channels), dtype=dtype
        )  # [L, 2C] ~ N(1, stddev)
        return ops.concatenate([scales, ops.zeros((levels, channels), dtype=dtype)], axis=1)  # [L, 3C]

    def get_config(self) -> dict[str, Any]:
        return {"stddev": self.stddev, "seed": self.seed}


@keras.saving.register_keras_serializable(package="ncsn_tf")
class ConditionalInstanceNormPlus(layers.Layer):
    """Conditional Instance Normalization++ (CIN++), one (gamma, alpha, beta) per noise level.

    h = gamma_i * (InstanceNorm(x) + alpha_i * mu~) + beta_i, where InstanceNorm uses
    the biased variance over H, W and mu~ are the per-channel spatial means of x
    standardised across channels with the *unbiased* variance (as torch.var):
    mu~ = (mu - mean_c(mu)) / sqrt(var_c(mu) + eps). Statistics are computed in
    float32 under mixed precision; the scales are never autocast.

    Args:
        num_levels: L, the number of noise levels.
        epsilon: added to both variances (reference: 1e-5).

    Call arguments:
        inputs: [B, H, W, C] float, C >= 2.
        sigma_indices: [B] int32 in [0, L).

    Returns:
        [B, H, W, C] in the layer's compute dtype.

    References:
        Song & Ermon 2019, Eq. (16) (Appendix A); gamma, alpha ~ N(1, 0.02), beta = 0
        at init (ermongroup/ncsn ConditionalInstanceNorm2dPlus).
    """

    def __init__(self, num_levels: int, epsilon: float = 1e-5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if num_levels < 1:
            raise ValueError(f"num_levels must be >= 1, got {num_levels}")
        self.num_levels = num_levels
        self.epsilon = epsilon

    def build(self, input_shape: Sequence[int | None]) -> None:
        channels = input_shape[-1]
        if channels is None or channels < 2:
            raise ValueError(f"CIN++ standardises means across channels and needs >= 2 channels, got {channels}")
        self.channels = channels
        # One table like the reference's nn.Embedding(L, 3C): columns [gamma | alpha | beta].
        # One gather per layer instead of three keeps the traced graph small.
        self.embedding = self.add_weight(
            name="embedding",
            shape=(self.num_levels, 3 * channels),
            initializer=CINPlusTableInitializer(),
            autocast=False,  # never round the scales to bfloat16 (resolution ~0.008 near 1)
        )  # [L, 3C]

    def call(self, inputs: Any, sigma_indices: Any) -> Any:
        x = ops.cast(inputs, "float32")  # [B, H, W, C]
        channels = self.channels
        means = ops.mean(x, axis=(1, 2))  # [B, C] per-channel spatial means
        mean_of_means = ops.mean(means, axis=-1, keepdims=True)  # [B, 1]
        var_of_means = ops.sum(ops.square(means - mean_of_means), axis=-1, keepdims=True) / (channels - 1)  # [B, 1]
        standardized_means = (means - mean_of_means) / ops.sqrt(var_of_means + self.epsilon)  # [B, C]
        means = means[:, None, None, :]  # [B, 1, 1, C]
        variances = ops.mean(ops.square(x - means), axis=(1, 2), keepdims=True)  # [B, 1, 1, C] biased
        indices = ops.cast(sigma_indices, "int32")  # [B]
        table = ops.take(self.embedding, indices, axis=0)[:, None, None, :]  # [B, 1, 1, 3C]
        gamma = table[..., :channels]  # [B, 1, 1, C]
        alpha = table[..., channels : 2 * channels]  # [B, 1, 1, C]
        beta = table[..., 2 * channels :]  # [B, 1, 1, C]
        # gamma * ((x - mu) / s + alpha * mu~) + beta folded into x * scale + shift: two
        # full-size ops instead of five (forward and backward); the per-channel terms are tiny.
        scale = gamma * ops.rsqrt(variances + self.epsilon)  # [B, 1, 1, C]
        shift = beta + gamma * alpha * standardized_means[:, None, None, :] - means * scale  # [B, 1, 1, C]
        outputs = x * scale + shift  # [B, H, W, C]
        return ops.cast(outputs, self.compute_dtype)

    def compute_output_shape(self, input_shape: Sequence[int | None], *args: Any, **kwargs: Any) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(num_levels=self.num_levels, epsilon=self.epsilon)
        return config


# ---------------------------------------------------------------------------
# Residual stages
# ---------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="ncsn_tf")
class ConvMeanPool(layers.Layer):
    """Conv (stride 1, "same") then 2x2 mean pooling with stride 2: halves H and W.

    With `adjust_padding` one row of zeros is added at the top and one column at the
    left before the conv (PyTorch `ZeroPad2d((1, 0, 1, 0))`), which maps an odd side
    2k - 1 to k (the reference's trick for 28x28 -> 14 -> 7 -> 4 ladders).

    Args:
        in_channels: input channels.
        filters: output channels.
        kernel_size: conv kernel side (3 for the main path, 1 for shortcuts).
        adjust_padding: pad top/left by one before the conv (odd input sides).

    Call arguments:
        inputs: [B, H, W, in_channels]; H, W even (odd with `adjust_padding`).

    Returns:
        [B, H // 2, W // 2, filters] ((H + 1) // 2 with `adjust_padding`).
    """

    def __init__(
        self, in_channels: int, filters: int, kernel_size: int = 3, adjust_padding: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.in_channels = in_channels
        self.filters = filters
        self.kernel_size = kernel_size
        self.adjust_padding = adjust_padding
        self.conv = torch_default_conv(filters, kernel_size, in_channels, name="conv")

    def build(self, input_shape: Sequence[int | None]) -> None:
        self.conv.build(_channels_shape(self.in_channels))

    def call(self, inputs: Any) -> Any:
        x = inputs  # [B, H, W, C_in]
        if self.adjust_padding:
            x = ops.pad(x, [[0, 0], [1, 0], [1, 0], [0, 0]])  # [B, H + 1, W + 1, C_in]
        height, width = x.shape[1], x.shape[2]
        if (height is not None and height % 2) or (width is not None and width % 2):
            raise ValueError(
                f"ConvMeanPool got spatial size {height}x{width} (after padding), which is odd; "
                "use even image sides (or adjust_padding=True for odd sides)"
            )
        x = self.conv(x)  # [B, H, W, filters]
        return ops.average_pool(x, 2, strides=2, padding="valid")  # [B, H / 2, W / 2, filters]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            in_channels=self.in_channels,
            filters=self.filters,
            kernel_size=self.kernel_size,
            adjust_padding=self.adjust_padding,
        )
        return config


@keras.saving.register_keras_serializable(package="ncsn_tf")
class ConditionalResidualBlock(layers.Layer):
    """Pre-activation conditional residual unit: (CIN++ -> ELU -> conv) x 2 + shortcut.

    The variants follow the reference exactly:
    - resample=None: conv1 in->out, conv2 out->out; shortcut = identity when
      in == out (otherwise a 1x1 conv; the reference has no working path here).
    - resample="down", no dilation: conv1 in->in (3x3), conv2 = ConvMeanPool(in->out,
      3x3), shortcut = ConvMeanPool(in->out, 1x1): halves H and W.
    - dilation=d: every conv is a 3x3 conv with dilation d. With resample="down" the
      block does NOT downsample (the reference's dilated stages keep the
      resolution); it still has a 3x3 dilated conv shortcut, and `adjust_padding` is
      ignored, exactly as in the reference.

    Args:
        input_dim: input channels.
        output_dim: output channels.
        num_levels: L, for the CIN++ layers.
        resample: None or "down".
        dilation: None or the dilation rate of every conv.
        adjust_padding: see `ConvMeanPool` (only used by the non-dilated down block).

    Call arguments:
        inputs: [B, H, W, input_dim].
        sigma_indices: [B] int32 in [0, L).

    Returns:
        [B, H', W', output_dim]; H' = H / 2 for the non-dilated down block, else H.
    """

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        num_levels: int,
        resample: str | None = None,
        dilation: int | None = None,
        adjust_padding: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if resample not in RESAMPLE_MODES:
            raise ValueError(f"resample={resample!r} is not supported; use one of {RESAMPLE_MODES}")
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.num_levels = num_levels
        self.resample = resample
        self.dilation = dilation
        self.adjust_padding = adjust_padding

        self.norm1 = ConditionalInstanceNormPlus(num_levels, name="norm1")
        if resample == "down":
            self.norm2 = ConditionalInstanceNormPlus(num_levels, name="norm2")  # over input_dim channels
            if dilation is not None:
                self.conv1 = torch_default_conv(input_dim, 3, input_dim, dilation=dilation, name="conv1")
                self.conv2 = torch_default_conv(output_dim, 3, input_dim, dilation=dilation, name="conv2")
                self.shortcut = torch_default_conv(output_dim, 3, input_dim, dilation=dilation, name="shortcut")
            else:
                self.conv1 = torch_default_conv(input_dim, 3, input_dim, name="conv1")
                self.conv2 = ConvMeanPool(input_dim, output_dim, 3, adjust_padding, name="conv2")
                self.shortcut = ConvMeanPool(input_dim, output_dim, 1, adjust_padding, name="shortcut")
        else:
            self.norm2 = ConditionalInstanceNormPlus(num_levels, name="norm2")  # over output_dim channels
            rate = 1 if dilation is None else dilation
            self.conv1 = torch_default_conv(output_dim, 3, input_dim, dilation=rate, name="conv1")
            self.conv2 = torch_default_conv(output_dim, 3, output_dim, dilation=rate, name="conv2")
            if input_dim != output_dim:
                kernel = 1 if dilation is None else 3
                self.shortcut = torch_default_conv(output_dim, kernel, input_dim, dilation=rate, name="shortcut")
            else:
                self.shortcut = None

    def build(self, input_shape: Sequence[int | None]) -> None:
        # Explicit builds (channels are all a layer's weights depend on): Keras' default
        # build-by-symbolic-call re-traces nested blocks once per nesting level.
        inner = self.conv1.filters
        self.norm1.build(_channels_shape(self.input_dim))
        self.conv1.build(_channels_shape(self.input_dim))
        self.norm2.build(_channels_shape(inner))
        self.conv2.build(_channels_shape(inner))
        if self.shortcut is not None:
            self.shortcut.build(_channels_shape(self.input_dim))

    def call(self, inputs: Any, sigma_indices: Any) -> Any:
        h = self.norm1(inputs, sigma_indices)  # [B, H, W, C_in]
        h = self.conv1(ops.elu(h))  # [B, H, W, C_in or C_out]
        h = self.norm2(h, sigma_indices)
        h = self.conv2(ops.elu(h))  # [B, H', W', C_out]
        shortcut = inputs if self.shortcut is None else self.shortcut(inputs)  # [B, H', W', C_out]
        return shortcut + h

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            input_dim=self.input_dim,
            output_dim=self.output_dim,
            num_levels=self.num_levels,
            resample=self.resample,
            dilation=self.dilation,
            adjust_padding=self.adjust_padding,
        )
        return config


# ---------------------------------------------------------------------------
# RefineNet blocks
# ---------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="ncsn_tf")
class ConditionalRCUBlock(layers.Layer):
    """Conditional residual conv units: n_blocks x [(CIN++ -> ELU -> 3x3 conv) x n_stages + skip].

    Convs have no bias (as the reference).

    Args:
        features: channels (unchanged).
        n_blocks: residual units in sequence.
        n_stages: norm-act-conv stages per unit.
        num_levels: L.

    Call arguments:
        inputs: [B, H, W, features].
        sigma_indices: [B] int32 in [0, L).

    Returns:
        [B, H, W, features].
    """

    def __init__(self, features: int, n_blocks: int, n_stages: int, num_levels: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.features = features
        self.n_blocks = n_blocks
        self.n_stages = n_stages
        self.num_levels = num_levels
        # In (unit, stage) order; layer names follow the reference's "{i}_{j}_norm/conv".
        _set_indexed(
            self,
            "norm",
            [
                ConditionalInstanceNormPlus(num_levels, name=f"norm_{i + 1}_{j + 1}")
                for i in range(n_blocks)
                for j in range(n_stages)
            ],
        )
        _set_indexed(
            self,
            "conv",
            [
                torch_default_conv(features, 3, features, use_bias=False, name=f"conv_{i + 1}_{j + 1}")
                for i in range(n_blocks)
                for j in range(n_stages)
            ],
        )

    def build(self, input_shape: Sequence[int | None]) -> None:
        for norm, conv in zip(*self._stages(), strict=True):
            norm.build(_channels_shape(self.features))
            conv.build(_channels_shape(self.features))

    def _stages(self) -> tuple[list[layers.Layer], list[layers.Layer]]:
        count = self.n_blocks * self.n_stages
        return _get_indexed(self, "norm", count), _get_indexed(self, "conv", count)

    def call(self, inputs: Any, sigma_indices: Any) -> Any:
        norms, convs = self._stages()
        x = inputs  # [B, H, W, features]
        for unit in range(self.n_blocks):
            residual = x
            for stage in range(unit * self.n_stages, (unit + 1) * self.n_stages):
                x = convs[stage](ops.elu(norms[stage](x, sigma_indices)))  # [B, H, W, features]
            x = x + residual
        return x

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            features=self.features, n_blocks=self.n_blocks, n_stages=self.n_stages, num_levels=self.num_levels
        )
        return config


@keras.saving.register_keras_serializable(package="ncsn_tf")
class ConditionalMSFBlock(layers.Layer):
    """Multi-resolution fusion: sum_i upsample(conv3x3(CIN++(x_i))) at the output size.

    No activation between norm and conv (as the reference); convs have biases;
    upsampling is bilinear with align_corners=True.

    Args:
        in_planes: channels of each input.
        features: output channels.
        num_levels: L.

    Call arguments:
        inputs: list of [B, H_i, W_i, in_planes[i]].
        sigma_indices: [B] int32 in [0, L).
        output_size: (H, W) of the result (static ints).

    Returns:
        [B, H, W, features].
    """

    def __init__(self, in_planes: Sequence[int], features: int, num_levels: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.in_planes = list(in_planes)
        self.features = features
        self.num_levels = num_levels
        _set_indexed(
            self,
            "norm",
            [ConditionalInstanceNormPlus(num_levels, name=f"norm_{i}") for i in range(len(self.in_planes))],
        )
        _set_indexed(
            self,
            "conv",
            [torch_default_conv(features, 3, planes, name=f"conv_{i}") for i, planes in enumerate(self.in_planes)],
        )

    def _branches(self) -> tuple[list[layers.Layer], list[layers.Layer]]:
        count = len(self.in_planes)
        return _get_indexed(self, "norm", count), _get_indexed(self, "conv", count)

    def build(self, input_shape: Any) -> None:
        for planes, norm, conv in zip(self.in_planes, *self._branches(), strict=True):
            norm.build(_channels_shape(planes))
            conv.build(_channels_shape(planes))

    def call(self, inputs: Sequence[Any], sigma_indices: Any, output_size: Sequence[int]) -> Any:
        total = None
        for x, norm, conv in zip(inputs, *self._branches(), strict=True):
            h = conv(norm(x, sigma_indices))  # [B, H_i, W_i, features]
            h = resize_bilinear_align_corners(h, output_size)  # [B, H, W, features]
            total = h if total is None else total + h
        return total

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(in_planes=self.in_planes, features=self.features, num_levels=self.num_levels)
        return config


@keras.saving.register_keras_serializable(package="ncsn_tf")
class ConditionalCRPBlock(layers.Layer):
    """Conditional chained residual pooling: x = ELU(x); n_stages x [p = conv(avgpool5(CIN++(p))); x += p].

    The 5x5 stride-1 average pool counts padding zeros (PyTorch AvgPool2d(5, 1, 2));
    convs are 3x3 without bias.

    Args:
        features: channels (unchanged).
        n_stages: pooling stages in the chain.
        num_levels: L.

    Call arguments:
        inputs: [B, H, W, features].
        sigma_indices: [B] int32 in [0, L).

    Returns:
        [B, H, W, features].
    """

    def __init__(self, features: int, n_stages: int, num_levels: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.features = features
        self.n_stages = n_stages
        self.num_levels = num_levels
        _set_indexed(self, "norm", [ConditionalInstanceNormPlus(num_levels, name=f"norm_{i}") for i in range(n_stages)])
        _set_indexed(
            self,
            "conv",
            [torch_default_conv(features, 3, features, use_bias=False, name=f"conv_{i}") for i in range(n_stages)],
        )

    def _stages(self) -> tuple[list[layers.Layer], list[layers.Layer]]:
        return _get_indexed(self, "norm", self.n_stages), _get_indexed(self, "conv", self.n_stages)

    def build(self, input_shape: Sequence[int | None]) -> None:
        for norm, conv in zip(*self._stages(), strict=True):
            norm.build(_channels_shape(self.features))
            conv.build(_channels_shape(self.features))

    def call(self, inputs: Any, sigma_indices: Any) -> Any:
        x = ops.elu(inputs)  # [B, H, W, features]
        path = x
        for norm, conv in zip(*self._stages(), strict=True):
            path = conv(zero_padded_average_pool(norm(path, sigma_indices), 5))  # [B, H, W, features]
            x = x + path
        return x

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(features=self.features, n_stages=self.n_stages, num_levels=self.num_levels)
        return config


@keras.saving.register_keras_serializable(package="ncsn_tf")
class ConditionalRefineBlock(layers.Layer):
    """RefineNet block: per-input RCUs (2x2) -> fusion (if > 1 input) -> CRP (2 stages) -> output RCUs.

    Args:
        in_planes: channels of each input (one input when `start`).
        features: output channels.
        num_levels: L.
        start: the first block (one input, no fusion).
        end: the last block (3 output RCU units instead of 1).

    Call arguments:
        inputs: list of [B, H_i, W_i, in_planes[i]].
        sigma_indices: [B] int32 in [0, L).
        output_size: (H, W) of the result (static ints).

    Returns:
        [B, H, W, features].
    """

    def __init__(
        self,
        in_planes: Sequence[int],
        features: int,
        num_levels: int,
        start: bool = False,
        end: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.in_planes = list(in_planes)
        self.features = features
        self.num_levels = num_levels
        self.start = start
        self.end = end
        if start and len(self.in_planes) != 1:
            raise ValueError(f"the start RefineNet block takes one input, got in_planes={self.in_planes}")
        if len(self.in_planes) == 1 and self.in_planes[0] != features:
            raise ValueError(
                f"a one-input RefineNet block needs in_planes == features, got {self.in_planes} and {features}"
            )
        _set_indexed(
            self,
            "adapt",
            [
                ConditionalRCUBlock(planes, 2, 2, num_levels, name=f"adapt_{i}")
                for i, planes in enumerate(self.in_planes)
            ],
        )
        self.msf = None if start else ConditionalMSFBlock(self.in_planes, features, num_levels, name="msf")
        self.crp = ConditionalCRPBlock(features, 2, num_levels, name="crp")
        self.output_convs = ConditionalRCUBlock(features, 3 if end else 1, 2, num_levels, name="output")

    def build(self, input_shape: Any) -> None:
        for planes, adapt in zip(self.in_planes, _get_indexed(self, "adapt", len(self.in_planes)), strict=True):
            adapt.build(_channels_shape(planes))
        if self.msf is not None:
            self.msf.build([_channels_shape(planes) for planes in self.in_planes])
        self.crp.build(_channels_shape(self.features))
        self.output_convs.build(_channels_shape(self.features))

    def call(self, inputs: Sequence[Any], sigma_indices: Any, output_size: Sequence[int]) -> Any:
        adapt_convs = _get_indexed(self, "adapt", len(self.in_planes))
        if len(inputs) != len(adapt_convs):
            raise ValueError(f"RefineNet block {self.name} expects {len(adapt_convs)} inputs, got {len(inputs)}")
        adapted = [
            adapt(x, sigma_indices) for adapt, x in zip(adapt_convs, inputs, strict=True)
        ]  # [B, H_i, W_i, C_i] each
        if self.msf is not None and len(adapted) > 1:
            h = self.msf(adapted, sigma_indices, output_size=output_size)  # [B, H, W, features]
        else:
            h = adapted[0]
        h = self.crp(h, sigma_indices)
        return self.output_convs(h, sigma_indices)  # [B, H, W, features]

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.update(
            in_planes=self.in_planes,
            features=self.features,
            num_levels=self.num_levels,
            start=self.start,
            end=self.end,
        )
        return config
