"""Philox4x32-10 against Random123's known answers; uniform/normal statistics; ONNX parity."""

import math

import numpy as np
import pytest
import tensorflow as tf

from ncsn_tf import portable_random

# Random123 kat_vectors, "philox4x32 10" lines: counter[4] key[2] -> output[4].
KNOWN_ANSWERS = [
    ([0x00000000] * 4, [0x00000000] * 2, [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
    ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
    (
        [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
        [0xA4093822, 0x299F31D0],
        [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
    ),
]


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_philox_matches_random123_known_answers(counter, key, expected):
    words = portable_random.philox4x32(
        [tf.constant(c, tf.uint32) for c in counter], [tf.constant(k, tf.uint32) for k in key]
    )
    assert [int(w.numpy()) for w in words] == expected


def test_philox_is_elementwise_over_broadcast_shapes():
    counter, key, expected = KNOWN_ANSWERS[2]
    batch = [tf.constant([0, c], tf.uint32) for c in counter]  # element 1 = the known answer
    words = portable_random.philox4x32(batch, [tf.constant(k, tf.uint32) for k in key])
    assert [int(w.numpy()[1]) for w in words] == expected
    assert [int(w.numpy()[0]) for w in words] != expected


def test_uniform_range_and_moments():
    seeds = tf.range(200, dtype=tf.int32)
    values = portable_random.uniform(seeds, (8, 8, 1)).numpy()  # [200, 8, 8, 1]
    assert values.shape == (200, 8, 8, 1) and values.dtype == np.float32
    assert values.min() >= 0.0 and values.max() < 1.0
    n = values.size  # 12800: mean has SE sqrt(1/12/n) = 0.0026, variance SE ~ 0.00079
    assert abs(values.mean() - 0.5) < 4 * math.sqrt(1 / 12 / n)
    assert abs(values.var() - 1 / 12) < 4 * math.sqrt(1 / 180 / n)
    # on the 2^-24 grid
    assert np.all(values * 2**24 == np.round(values * 2**24))


def test_normal_moments_quantiles_and_independence():
    seeds = tf.range(400, dtype=tf.int32)
    values = portable_random.normal(seeds, (7, 5)).numpy().reshape(400, -1)  # odd size: 35 elements per image
    flat = values.reshape(-1)
    n = flat.size  # 14000
    assert abs(flat.mean()) < 4 / math.sqrt(n)
    assert abs(flat.var() - 1.0) < 4 * math.sqrt(2 / n)
    # quantiles of N(0, 1): Phi^-1(0.1, 0.5, 0.9) = -1.2816, 0, 1.2816 (SE of a quantile < 0.02 here)
    np.testing.assert_allclose(np.quantile(flat, [0.1, 0.5, 0.9]), [-1.2816, 0.0, 1.2816], atol=0.06)
    # cos/sin pairs from one Box-Muller draw and neighbouring elements are uncorrelated
    for lag in (1, 2, 4):
        correlation = np.corrcoef(values[:, :-lag].reshape(-1), values[:, lag:].reshape(-1))[0, 1]
        assert abs(correlation) < 4 / math.sqrt(values[:, lag:].size)
    # |z| is bounded by sqrt(2 ln 2^24)
    assert np.abs(flat).max() <= math.sqrt(2 * math.log(2**24)) + 1e-5


def test_streams_steps_and_seeds_are_independent():
    seeds = tf.constant([3, 4], tf.int32)
    base = portable_random.normal(seeds, (16,), step=5, stream=1).numpy()
    assert np.array_equal(base, portable_random.normal(seeds, (16,), step=5, stream=1).numpy())
    for other in (
        portable_random.normal(seeds, (16,), step=6, stream=1),
        portable_random.normal(seeds, (16,), step=5, stream=2),
        portable_random.normal(tf.constant([4, 3], tf.int32), (16,), step=5, stream=1),
    ):
        other = other.numpy()
        assert not np.any(other == base)  # no coincident float among 32 draws
    assert not np.any(base[0] == base[1])


def test_an_example_does_not_depend_on_its_batch():
    shape = (5, 3, 2)
    alone = portable_random.normal(tf.constant([11], tf.int32), shape, step=9, stream=1).numpy()
    batch = portable_random.normal(tf.constant([-7, 11, 2**31 - 1], tf.int32), shape, step=9, stream=1).numpy()
    assert np.array_equal(alone[0], batch[1])
    bits_alone = portable_random.random_bits(tf.constant([11], tf.int32), shape, step=9, stream=1).numpy()
    bits_batch = portable_random.random_bits(tf.constant([0, 11], tf.int32), shape, step=9, stream=1).numpy()
    assert bits_alone.dtype == np.uint32 and np.array_equal(bits_alone[0], bits_batch[1])


def test_element_values_do_not_depend_on_the_example_shape():
    """Element e takes word e % 4 of counter e // 4, whatever the per-example shape."""
    seeds = tf.constant([1, 2], tf.int32)
    flat = portable_random.uniform(seeds, (24,), step=3).numpy()
    image = portable_random.uniform(seeds, (2, 3, 4), step=3).numpy()
    shorter = portable_random.uniform(seeds, (22,), step=3).numpy()
    assert np.array_equal(flat, image.reshape(2, -1))
    assert np.array_equal(flat[:, :22], shorter)


def test_graph_mode_equals_eager_bitwise():
    seeds = tf.constant([0, -1, 123456789], tf.int32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32), tf.TensorSpec([], tf.int32)])
    def draw(seeds, step):
        return portable_random.normal(seeds, (4, 4, 3), step, 1)

    assert np.array_equal(draw(seeds, tf.constant(17)).numpy(), portable_random.normal(seeds, (4, 4, 3), 17, 1).numpy())


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(TypeError, match="int32"):
        portable_random.uniform(tf.constant([1], tf.int64), (4,))
    with pytest.raises(ValueError, match="positive sizes"):
        portable_random.normal(tf.constant([1], tf.int32), (0, 3))
    with pytest.raises(ValueError, match="4 counter words"):
        portable_random.philox4x32([tf.constant(0, tf.uint32)] * 3, [tf.constant(0, tf.uint32)] * 2)


def test_onnx_runtime_reproduces_the_words_bit_for_bit():
    tf2onnx = pytest.importorskip("tf2onnx")
    onnxruntime = pytest.importorskip("onnxruntime")

    @tf.function(
        input_signature=[tf.TensorSpec([None], tf.int32, name="seeds"), tf.TensorSpec([], tf.int32, name="step")]
    )
    def draw(seeds, step):
        return {
            "bits": portable_random.random_bits(seeds, (3, 3, 2), step, 1),
            "uniform": portable_random.uniform(seeds, (3, 3, 2), step, 0),
            "normal": portable_random.normal(seeds, (3, 3, 2), step, 1),
        }

    model, _ = tf2onnx.convert.from_function(draw, input_signature=draw.input_signature, opset=18)
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    seeds = np.array([0, 1, -1, 2**31 - 1, 987654321], np.int32)
    outputs = dict(
        zip(
            [o.name for o in session.get_outputs()],
            session.run(None, {"seeds": seeds, "step": np.array(41, np.int32)}),
            strict=True,
        )
    )
    expected = {name: value.numpy() for name, value in draw(tf.constant(seeds), tf.constant(41)).items()}
    assert np.array_equal(outputs["bits"], expected["bits"])
    assert np.array_equal(outputs["uniform"], expected["uniform"])
    # floats from log/cos/sin: a few ulp at most
    np.testing.assert_allclose(outputs["normal"], expected["normal"], rtol=0, atol=4e-6)
