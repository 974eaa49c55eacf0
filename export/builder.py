"""The exported endpoints: seeded samplers with the whole Langevin loop inside the graph.

`build_endpoints(model, spec)` returns one `tf.function` per endpoint of the export
contract (docs/DESIGN.md): every input a named `TensorSpec` with a dynamic batch
dimension, every output a named dict entry. `build_archive` puts them into a
`keras.export.ExportArchive` (PITFALLS.md: plain `tf.saved_model.save` fails on
Keras 3 subclassed models) together with the manifest as a constant endpoint and
as an asset file.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from export.runtime import ENDPOINT_OUTPUTS
from ncsn_tf import sampling
from ncsn_tf.configs import Config

# The endpoints, in the order they are written (the first is also `serving_default`).
ENDPOINTS = ("sample", "initial_images", "sample_levels", "inpaint", "inpaint_levels", "score")
OUTPUT_NAMES = ENDPOINT_OUTPUTS  # endpoint -> output name, defined with the TF-free runtime
MANIFEST_ENDPOINT = "manifest"  # SavedModel only: returns the manifest JSON as a string constant
MANIFEST_ASSET = "manifest.json"


@dataclass(frozen=True)
class SamplerSpec:
    """What an export is built for: the example shape, the ladder and the sampler defaults.

    Attributes:
        name: export name (folder name).
        dataset: data set the model was trained on.
        example_shape: (H, W, C) for images, (2,) for toy points.
        value_range: (low, high) of the data; initial images are Uniform[low, high).
        sigmas: [L] float32 ladder, descending.
        convention: Langevin step convention fixed at export ("code" or "paper").
        steps_per_level: default T.
        epsilon: default step size at the smallest sigma.
        denoise: default for the final denoising step.
    """

    name: str
    dataset: str
    example_shape: tuple[int, ...]
    value_range: tuple[float, float]
    sigmas: tuple[float, ...]
    convention: str
    steps_per_level: int
    epsilon: float
    denoise: bool

    @property
    def num_levels(self) -> int:
        return len(self.sigmas)


def sampler_spec(config: Config, name: str | None = None, steps_per_level: int | None = None) -> SamplerSpec:
    """The `SamplerSpec` of a training config (ladder, shape and sampler defaults from it).

    Args:
        config: the training config (config.json of the workdir).
        name: export name; default `config.name`.
        steps_per_level: default T written into the manifest; default `config.sampling.steps_per_level`.

    Returns:
        The spec.
    """
    if steps_per_level is not None and steps_per_level < 1:
        raise ValueError(f"steps_per_level must be >= 1, got {steps_per_level}")
    sigmas = config.noise.sigmas()
    return SamplerSpec(
        name=name or config.name,
        dataset=config.data.dataset,
        example_shape=tuple(int(size) for size in config.data.shape),
        value_range=config.data.value_range,
        sigmas=tuple(float(sigma) for sigma in sigmas),
        convention=config.sampling.convention,
        steps_per_level=int(steps_per_level or config.sampling.steps_per_level),
        epsilon=float(config.sampling.epsilon),
        denoise=bool(config.sampling.final_denoise),
    )


def input_specs(example_shape: tuple[int, ...]) -> dict[str, dict[str, tf.TensorSpec]]:
    """The named input TensorSpecs of every endpoint, in argument order."""
    shape = [None, *example_shape]

    def images(name: str) -> tf.TensorSpec:
        return tf.TensorSpec(shape, tf.float32, name=name)

    seeds = tf.TensorSpec([None], tf.int32, name="seeds")  # [B], one seed per image
    levels = {
        "first_level": tf.TensorSpec([], tf.int32, name="first_level"),
        "last_level": tf.TensorSpec([], tf.int32, name="last_level"),  # exclusive
    }
    settings = {
        "steps_per_level": tf.TensorSpec([], tf.int32, name="steps_per_level"),
        "epsilon": tf.TensorSpec([], tf.float32, name="epsilon"),
        "denoise": tf.TensorSpec([], tf.bool, name="denoise"),
    }
    known = {"known_images": images("known_images"), "masks": images("masks")}
    return {
        "sample": {"seeds": seeds, **settings},
        "initial_images": {"seeds": seeds},
        "sample_levels": {"images": images("images"), "seeds": seeds, **levels, **settings},
        "inpaint": {**known, "seeds": seeds, **settings},
        "inpaint_levels": {"images": images("images"), **known, "seeds": seeds, **levels, **settings},
        "score": {"images": images("images"), "sigma_indices": tf.TensorSpec([None], tf.int32, name="sigma_indices")},
    }


def output_specs(example_shape: tuple[int, ...]) -> dict[str, dict[str, tf.TensorSpec]]:
    """The named outputs of every endpoint (`OUTPUT_NAMES`)."""
    images = tf.TensorSpec([None, *example_shape], tf.float32)
    return {name: {OUTPUT_NAMES[name]: images} for name in ENDPOINTS}


def build_endpoints(model: Callable[[tf.Tensor, tf.Tensor], tf.Tensor], spec: SamplerSpec) -> dict[str, tf.types.experimental.GenericFunction]:
    """One `tf.function` per endpoint, each with its named input signature and dict output.

    Args:
        model: the score model, `model(images [B, ...], sigma_indices [B]) -> [B, ...]`.
        spec: shape, ladder and convention of the export.

    Returns:
        endpoint name -> tf.function (ordered as ENDPOINTS).
    """
    sigmas = np.asarray(spec.sigmas, np.float32)
    shape, value_range, convention = spec.example_shape, spec.value_range, spec.convention
    specs = input_specs(shape)

    # The network as ONE function that every endpoint calls: traced once (Keras layers are slow
    # to trace) and stored once in the SavedModel instead of once per endpoint.
    @tf.function(input_signature=list(specs["score"].values()), autograph=False)
    def score_network(images, sigma_indices):
        return tf.cast(model(images, sigma_indices), tf.float32)  # [B, ...]

    def start(seeds: tf.Tensor) -> tf.Tensor:
        return sampling.initial_images(seeds, shape, value_range=value_range)  # [B, ...] in [low, high)

    def binary(masks: tf.Tensor) -> tf.Tensor:
        # A graph cannot raise: any value >= 0.5 counts as known (the Python API rejects non-binary masks).
        return tf.cast(masks >= 0.5, tf.float32)  # [B, ...] in {0, 1}, 1 = known

    def initial_images(seeds):
        return {"images": start(seeds)}

    def sample(seeds, steps_per_level, epsilon, denoise):
        images = sampling.annealed_langevin(
            score_network, start(seeds), seeds, sigmas, steps_per_level=steps_per_level, epsilon=epsilon,
            convention=convention, final_denoise=denoise,
        )  # fmt: skip
        return {"images": images}

    def sample_levels(images, seeds, first_level, last_level, steps_per_level, epsilon, denoise):
        images = sampling.annealed_langevin(
            score_network, images, seeds, sigmas, steps_per_level=steps_per_level, epsilon=epsilon, convention=convention,
            first_level=first_level, last_level=last_level, final_denoise=denoise,
        )  # fmt: skip
        return {"images_out": images}

    def inpaint(known_images, masks, seeds, steps_per_level, epsilon, denoise):
        images = sampling.inpaint(
            score_network, start(seeds), known_images, binary(masks), seeds, sigmas, steps_per_level=steps_per_level,
            epsilon=epsilon, convention=convention, final_denoise=denoise,
        )  # fmt: skip
        return {"images": images}

    def inpaint_levels(images, known_images, masks, seeds, first_level, last_level, steps_per_level, epsilon, denoise):
        images = sampling.inpaint(
            score_network, images, known_images, binary(masks), seeds, sigmas, steps_per_level=steps_per_level,
            epsilon=epsilon, convention=convention, first_level=first_level, last_level=last_level,
            final_denoise=denoise,
        )  # fmt: skip
        return {"images_out": images}

    def score(images, sigma_indices):
        return {"scores": score_network(images, sigma_indices)}

    bodies = {
        "sample": sample,
        "initial_images": initial_images,
        "sample_levels": sample_levels,
        "inpaint": inpaint,
        "inpaint_levels": inpaint_levels,
        "score": score,
    }
    return {
        name: tf.function(bodies[name], input_signature=list(specs[name].values()), autograph=False)
        for name in ENDPOINTS
    }


def build_archive(
    model: keras.Model,
    endpoints: dict[str, tf.types.experimental.GenericFunction],
    manifest_text: str,
    asset_dir: str | os.PathLike[str],
) -> keras.export.ExportArchive:
    """An ExportArchive with every endpoint, the manifest constant and the manifest asset.

    Args:
        model: the score model (tracked so its weights are saved).
        endpoints: from `build_endpoints`.
        manifest_text: the manifest JSON, returned by the `manifest` endpoint and saved as an asset.
        asset_dir: a scratch folder for the asset file (copied into the SavedModel's assets/).

    Returns:
        The archive, ready for `write_out`.
    """
    archive = keras.export.ExportArchive()
    if model.weights:
        archive.track(model)
    for name, function in endpoints.items():
        function.get_concrete_function()  # trace once; the SavedModel and tf2onnx share this trace
        archive.add_endpoint(name, function)
    archive.add_endpoint(MANIFEST_ENDPOINT, lambda: {"manifest": tf.constant(manifest_text)}, input_signature=[])
    asset_path = os.path.join(os.fspath(asset_dir), MANIFEST_ASSET)
    with open(asset_path, "w", encoding="utf-8") as f:
        f.write(manifest_text)
    # Kept as a plain file in assets/ for tools; the graph never reads it (no ReadFile op).
    # ExportArchive has no public hook for assets; its trackable root is what gets saved.
    root = getattr(archive, "_tf_trackable", None)
    if root is None:
        raise RuntimeError("keras.export.ExportArchive changed (no _tf_trackable); update export/builder.py")
    root.manifest_asset = tf.saved_model.Asset(asset_path)
    return archive
