"""Every sampler's loop converts to ONNX (one flat Loop, portable ops) and gives TF's images in ONNX Runtime.

The exporter's endpoints come next; here each loop is wrapped in a minimal endpoint (named
inputs, the sampler's settings as graph inputs) around the toy mixture's exact score, converted
with the exporter's tf2onnx path and run in onnxruntime against TensorFlow.
"""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import tensorflow as tf

from ncsn_tf import sampling, toy
from ncsn_tf.models.analytic import paper_toy_mixture
from ncsn_tf.schedule import geometric_sigmas

SIGMAS = geometric_sigmas(toy.SIGMA_MAX, toy.SIGMA_MIN, toy.NUM_LEVELS)
COUNT = 64
# Measured: TF vs onnxruntime differ by at most 1.4e-6 (Heun, inpainting) on points of size 5-30, i.e. about
# one float32 ulp; 0 for two of the runs. The tolerance allows ~10 ulp.
TOLERANCE = 1e-5
SCALAR_SPECS = {
    "steps_per_level": tf.TensorSpec([], tf.int32, name="steps_per_level"),
    "epsilon": tf.TensorSpec([], tf.float32, name="epsilon"),
    "corrector_steps": tf.TensorSpec([], tf.int32, name="corrector_steps"),
    "snr": tf.TensorSpec([], tf.float32, name="snr"),
    "resample_steps": tf.TensorSpec([], tf.int32, name="resample_steps"),
    "order": tf.TensorSpec([], tf.int32, name="order"),
}
# (sampler, graph inputs beside the chunk, inpainting, settings runs to compare)
CASES = {
    "annealed_langevin": (("steps_per_level", "epsilon"), False, [dict(steps_per_level=3, epsilon=0.1)]),
    "predictor_corrector": (
        ("corrector_steps", "snr"),
        False,
        [dict(corrector_steps=0, snr=0.16), dict(corrector_steps=2, snr=0.1)],
    ),
    "predictor_corrector_inpaint": (
        ("corrector_steps", "snr", "resample_steps"),
        True,
        [dict(corrector_steps=1, snr=0.1, resample_steps=2)],
    ),
    "probability_flow_inpaint": (("order",), True, [dict(order=1), dict(order=2)]),
    "probability_flow": (("order",), False, [dict(order=2)]),
}


def _endpoint(model, sampler, names, inpainting):
    """A tf.function like the exporter's chunk endpoints: every input a named TensorSpec, a dict output."""
    specs = [
        tf.TensorSpec([None, 2], tf.float32, name="images"),
        tf.TensorSpec([None], tf.int32, name="seeds"),
        tf.TensorSpec([], tf.int32, name="first_level"),
        tf.TensorSpec([], tf.int32, name="last_level"),
        *(SCALAR_SPECS[name] for name in names),
    ]
    if inpainting:
        specs += [
            tf.TensorSpec([None, 2], tf.float32, name="known_images"),
            tf.TensorSpec([None, 2], tf.float32, name="masks"),
        ]

    def body(images, seeds, first_level, last_level, *rest):
        settings = dict(zip(names, rest[: len(names)], strict=True))
        known = dict(zip(("known_images", "masks"), rest[len(names) :], strict=True)) if inpainting else {}
        out = sampling.run_sampler(
            model, images, seeds, SIGMAS, sampler=sampler, first_level=first_level, last_level=last_level,
            **settings, **known,
        )  # fmt: skip
        return {"images_out": out}

    function = tf.function(body, input_signature=specs, autograph=False)
    return function, [spec.name for spec in specs]


def _loops(graph):
    for node in graph.node:
        if node.op_type in ("Loop", "Scan"):
            yield node
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from _loops(attribute.g)


def _op_types(graph):
    for node in graph.node:
        yield node.op_type
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from _op_types(attribute.g)


@pytest.fixture(scope="module")
def model():
    return paper_toy_mixture(SIGMAS)


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_sampler_loop_runs_in_onnxruntime_like_tensorflow(model, case):
    # the exporter's converter (imported by tests only: ncsn_tf never imports export)
    from export.onnx_convert import convert_endpoint

    names, inpainting, runs = CASES[case]
    sampler = case.removesuffix("_inpaint")
    endpoint, input_names = _endpoint(model, sampler, names, inpainting)
    proto = convert_endpoint(endpoint, opset=18)
    loops = list(_loops(proto.graph))
    assert len(loops) == 1, f"{len(loops)} loops: one flat Loop expected"
    (body,) = [attribute.g for attribute in loops[0].attribute if attribute.name == "body"]
    assert not list(_loops(body)), "nested loop in the body"
    # The mixture score's logsumexp is the body's only ReduceMax: the network is in the Loop body once.
    assert list(_op_types(body)).count("ReduceMax") == 1
    assert not any(
        op.startswith(("Sequence", "SplitToSequence", "ConcatFromSequence")) for op in _op_types(proto.graph)
    )
    assert not any(op.startswith("Random") for op in _op_types(proto.graph))  # only the portable Philox noise
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])

    seeds = np.arange(COUNT, dtype=np.int32) * 7919
    start = sampling.start_images(sampler, seeds, (2,), SIGMAS, value_range=toy.START_RANGE).numpy()
    known = {}
    if inpainting:
        known = {
            "known_images": np.tile(np.float32([[-5.0, 0.0]]), (COUNT, 1)),
            "masks": np.tile(np.float32([[1.0, 0.0]]), (COUNT, 1)),
        }
    for settings in runs:
        scalars = {name: np.asarray(settings[name], SCALAR_SPECS[name].dtype.as_numpy_dtype) for name in names}

        def feeds(images, first, last, scalars=scalars):
            chunk = {"first_level": np.array(first, np.int32), "last_level": np.array(last, np.int32)}
            return {"images": images, "seeds": seeds, **chunk, **scalars, **known}

        full = feeds(start, 0, len(SIGMAS))
        reference = endpoint(*(tf.constant(full[name]) for name in input_names))["images_out"].numpy()
        (onnx_out,) = session.run(["images_out"], full)
        difference = float(np.max(np.abs(onnx_out - reference)))
        print(f"{case} {settings}: TF vs onnxruntime max |difference| {difference:.2e}")  # the measured number
        assert np.all(np.isfinite(onnx_out)) and difference <= TOLERANCE
        if inpainting:
            np.testing.assert_array_equal(onnx_out[:, 0], known["known_images"][:, 0])  # exactly y, in ORT too
        (half,) = session.run(["images_out"], feeds(start, 0, 4))
        (rest,) = session.run(["images_out"], feeds(half, 4, len(SIGMAS)))
        np.testing.assert_array_equal(rest, onnx_out)  # chunks chain exactly in onnxruntime as well


@pytest.mark.slow
def test_prior_start_runs_in_onnxruntime_like_tensorflow():
    """The Gaussian prior start (the diffusion samplers' initial_images) converts with its Philox noise."""
    from export.onnx_convert import convert_endpoint

    @tf.function(input_signature=[tf.TensorSpec([None], tf.int32, name="seeds")], autograph=False)
    def prior(seeds):
        return {
            "images": sampling.start_images("predictor_corrector", seeds, (3, 3, 2), SIGMAS, value_range=(0.0, 1.0))
        }

    session = onnxruntime.InferenceSession(convert_endpoint(prior, opset=18).SerializeToString())
    seeds = np.array([0, 1, -5, 2**31 - 1, 123456], np.int32)
    (onnx_out,) = session.run(["images"], {"seeds": seeds})
    reference = prior(tf.constant(seeds))["images"].numpy()
    np.testing.assert_allclose(onnx_out, reference, rtol=0, atol=20.0 * 1e-6)  # sigma_1 = 20: a few ulp of z
    assert abs(float(np.mean(reference)) - 0.5) < 4 * 20.0 / np.sqrt(reference.size)  # centred on the data range
