"""Seeded noise that is identical in TensorFlow and ONNX Runtime: Philox4x32-10 + Box-Muller.

TF's own random ops do not survive export: tf2onnx cannot convert the stateless
ones and bakes the seed of the stateful ones into the ONNX graph (docs/pitfalls.md,
"Random numbers in exported graphs"). This module builds the noise from plain integer ops that convert to
ONNX opset 18 (uint32/uint64 Mul, Add, BitwiseXor, BitShift, Cast), so the integer
words are bit-identical in TF eager, `tf.function`, a loaded SavedModel and
onnxruntime; the floats made from them (log, cos, sin) agree to a few ulp.

Layout of the stream. For image b, global step k and stream s, the element with
flat index e (row-major over the per-image shape) takes word `e % 4` of
`philox4x32(counter=(e // 4, k, s, 0), key=(seeds[b], 0))`. So an element's value
depends only on (seed, step, stream, element index): not on the batch an image
is drawn in, nor on which chunk of a sampling run draws it.

References:
    J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel random numbers:
    as easy as 1, 2, 3", SC 2011 (Philox; known-answer vectors in Random123's
    `kat_vectors`). G. E. P. Box, M. E. Muller, "A note on the generation of random
    normal deviates", Ann. Math. Stat. 1958.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

# Streams: independent sequences for the same seed and step.
STREAM_INITIAL = 0  # initial images x_0 ~ Uniform
STREAM_LANGEVIN = 1  # z of every Langevin step
STREAM_INPAINT = 2  # z of the known pixels (step: annealed level; PC level * (u + 1) + repeat; flow 0)
STREAM_PRIOR = 3  # z of the Gaussian prior start N(centre, sigma_1^2 I) (step 0)
STREAM_PREDICTOR_CORRECTOR = 4  # z of every predictor-corrector network call (step = the call's index)
STREAM_RESAMPLE = 5  # z of RePaint's re-noising after a predictor call (step = that call's index)

# Philox4x32 constants (Salmon et al. 2011, Random123 philox.h).
_MULTIPLIER_0 = 0xD2511F53
_MULTIPLIER_1 = 0xCD9E8D57
_WEYL_0 = 0x9E3779B9  # golden ratio
_WEYL_1 = 0xBB67AE85  # sqrt(3) - 1
_LOW_32_BITS = 0xFFFFFFFF
_TWO_POW_MINUS_24 = 1.0 / (1 << 24)

Words = tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]


def _mulhilo(multiplier: int, word: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(high, low) 32-bit halves of multiplier * word, via one uint64 product."""
    product = tf.constant(multiplier, tf.uint64) * tf.cast(word, tf.uint64)  # same shape, uint64
    high = tf.cast(tf.bitwise.right_shift(product, tf.constant(32, tf.uint64)), tf.uint32)
    low = tf.cast(tf.bitwise.bitwise_and(product, tf.constant(_LOW_32_BITS, tf.uint64)), tf.uint32)
    return high, low


def philox4x32(counter: Sequence[tf.Tensor], key: Sequence[tf.Tensor], rounds: int = 10) -> Words:
    """The Philox4x32 block function (10 rounds = Philox4x32-10, as TF, JAX and cuRAND).

    Args:
        counter: four uint32 tensors (broadcastable to a common shape).
        key: two uint32 tensors (broadcastable to the same shape).
        rounds: number of rounds; 10 is the standard (and the known-answer vectors').

    Returns:
        Four uint32 tensors of the broadcast shape: the random words.
    """
    if len(counter) != 4 or len(key) != 2:
        raise ValueError(f"philox4x32 needs 4 counter words and 2 key words, got {len(counter)} and {len(key)}")
    c0, c1, c2, c3 = (tf.convert_to_tensor(word, tf.uint32) for word in counter)
    k0, k1 = (tf.convert_to_tensor(word, tf.uint32) for word in key)
    # The key schedule: k += W before every round but the first. Done in uint64 and
    # masked, so the graph needs no wrapping uint32 Add (portable to any ONNX runtime).
    weyl_0 = tf.constant(_WEYL_0, tf.uint64)
    weyl_1 = tf.constant(_WEYL_1, tf.uint64)
    mask = tf.constant(_LOW_32_BITS, tf.uint64)
    k0_wide, k1_wide = tf.cast(k0, tf.uint64), tf.cast(k1, tf.uint64)
    for round_index in range(rounds):
        if round_index > 0:
            k0_wide = tf.bitwise.bitwise_and(k0_wide + weyl_0, mask)
            k1_wide = tf.bitwise.bitwise_and(k1_wide + weyl_1, mask)
        k0, k1 = tf.cast(k0_wide, tf.uint32), tf.cast(k1_wide, tf.uint32)
        high_0, low_0 = _mulhilo(_MULTIPLIER_0, c0)
        high_1, low_1 = _mulhilo(_MULTIPLIER_1, c2)
        c0, c1, c2, c3 = (
            tf.bitwise.bitwise_xor(tf.bitwise.bitwise_xor(high_1, c1), k0),
            low_1,
            tf.bitwise.bitwise_xor(tf.bitwise.bitwise_xor(high_0, c3), k1),
            low_0,
        )
    return c0, c1, c2, c3


def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(size) for size in shape)
    if not shape or any(size <= 0 for size in shape):
        raise ValueError(f"per-example shape must be non-empty with positive sizes, got {shape}")
    return shape


def _words_per_counter(seeds: tf.Tensor, num_counters: int, step: tf.Tensor | int, stream: int) -> Words:
    """The 4 words of counters 0..num_counters-1 for each seed.

    Returns:
        Four uint32 tensors [B, num_counters].
    """
    seeds = tf.convert_to_tensor(seeds)
    if seeds.dtype != tf.int32:
        raise TypeError(f"seeds must be int32 [B], got {seeds.dtype.name}; cast them with tf.cast(seeds, tf.int32)")
    key_0 = tf.cast(seeds, tf.uint32)[:, None]  # [B, 1], int32 bits reinterpreted (-1 -> 2^32 - 1)
    key_1 = tf.zeros_like(key_0)  # [B, 1]
    # ONNX Range has no unsigned types: make the index in int32, then cast.
    element_blocks = tf.cast(tf.range(num_counters, dtype=tf.int32), tf.uint32)[None, :]  # [1, N]
    step_word = tf.cast(tf.convert_to_tensor(step, tf.int32), tf.uint32)  # []
    stream_word = tf.constant(stream, tf.uint32)  # []
    zero_word = tf.constant(0, tf.uint32)
    batch_zeros = tf.zeros_like(key_0)  # [B, 1], broadcasts the counter over the batch
    counter = (element_blocks + batch_zeros, step_word + batch_zeros, stream_word + batch_zeros, zero_word + batch_zeros)
    return philox4x32(counter, (key_0, key_1))  # 4 x [B, N] uint32


def random_bits(seeds: tf.Tensor, shape: Sequence[int], step: tf.Tensor | int = 0, stream: int = 0) -> tf.Tensor:
    """Raw Philox words, one per element.

    Args:
        seeds: [B] int32, one seed per example.
        shape: the per-example shape (static), e.g. (H, W, C).
        step: [] int32, the global step (part of the counter).
        stream: which independent stream (a STREAM_* constant).

    Returns:
        [B, *shape] uint32.
    """
    shape = _check_shape(shape)
    size = int(np.prod(shape))
    num_counters = (size + 3) // 4
    words = tf.stack(_words_per_counter(seeds, num_counters, step, stream), axis=-1)  # [B, N, 4]
    flat = tf.reshape(words, [-1, 4 * num_counters])[:, :size]  # [B, size]
    return tf.reshape(flat, [-1, *shape])  # [B, *shape]


def _to_unit_interval(words: tf.Tensor, offset: float = 0.0) -> tf.Tensor:
    """(top 24 bits + offset) / 2^24 as float32: offset 0 -> [0, 1), offset 1 -> (0, 1]."""
    top_bits = tf.cast(tf.bitwise.right_shift(words, tf.constant(8, tf.uint32)), tf.int32)  # < 2^24
    return (tf.cast(top_bits, tf.float32) + offset) * _TWO_POW_MINUS_24  # exact in float32


def uniform(seeds: tf.Tensor, shape: Sequence[int], step: tf.Tensor | int = 0, stream: int = 0) -> tf.Tensor:
    """Uniform[0, 1) noise on a 2^-24 grid, one independent stream per seed.

    Args:
        seeds: [B] int32, one seed per example.
        shape: the per-example shape (static), e.g. (H, W, C).
        step: [] int32, the global step (part of the counter).
        stream: which independent stream (a STREAM_* constant).

    Returns:
        [B, *shape] float32 in [0, 1).
    """
    return _to_unit_interval(random_bits(seeds, shape, step, stream))  # [B, *shape] in [0, 1)


def normal(seeds: tf.Tensor, shape: Sequence[int], step: tf.Tensor | int = 0, stream: int = 0) -> tf.Tensor:
    """Standard normal noise by Box-Muller, one independent stream per seed.

    Each Philox call gives 4 words = 2 uniform pairs (u1, u2), each pair two normals
    sqrt(-2 ln u1) * (cos 2 pi u2, sin 2 pi u2), with u1 in (0, 1] (no log 0).

    Args:
        seeds: [B] int32, one seed per example.
        shape: the per-example shape (static), e.g. (H, W, C).
        step: [] int32, the global step (part of the counter).
        stream: which independent stream (a STREAM_* constant).

    Returns:
        [B, *shape] float32 ~ N(0, 1), |z| <= sqrt(2 ln 2^24) ~ 5.77.
    """
    shape = _check_shape(shape)
    size = int(np.prod(shape))
    num_counters = (size + 3) // 4
    w0, w1, w2, w3 = _words_per_counter(seeds, num_counters, step, stream)  # 4 x [B, N] uint32
    radius_a = tf.sqrt(-2.0 * tf.math.log(_to_unit_interval(w0, offset=1.0)))  # [B, N] >= 0
    radius_b = tf.sqrt(-2.0 * tf.math.log(_to_unit_interval(w2, offset=1.0)))  # [B, N] >= 0
    angle_a = (2.0 * math.pi) * _to_unit_interval(w1)  # [B, N] in [0, 2 pi)
    angle_b = (2.0 * math.pi) * _to_unit_interval(w3)  # [B, N] in [0, 2 pi)
    normals = tf.stack(
        [radius_a * tf.cos(angle_a), radius_a * tf.sin(angle_a), radius_b * tf.cos(angle_b), radius_b * tf.sin(angle_b)],
        axis=-1,
    )  # [B, N, 4]
    flat = tf.reshape(normals, [-1, 4 * num_counters])[:, :size]  # [B, size]
    return tf.reshape(flat, [-1, *shape])  # [B, *shape]
