"""The exported endpoints: seeded samplers with the whole Langevin loop inside the graph.

`build_endpoints(model, manifest)` returns one `tf.function` per endpoint of the
export contract (`export_format.endpoints`, docs/export.md): every input a named
`TensorSpec` with a dynamic batch dimension, every output a named dict entry.
`build_archive` puts them into a `keras.export.ExportArchive` (plain
`tf.saved_model.save` fails on Keras 3 subclassed models with two inputs) together
with the manifest as a constant endpoint and as an asset file.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from export import _compat
from export_format.endpoints import ENDPOINTS, MANIFEST_ENDPOINT, OUTPUT_NAMES, endpoint_table
from export_format.layout import MANIFEST_FILE
from export_format.manifest import Manifest
from ncsn_tf import sampling

__all__ = ["ENDPOINTS", "MANIFEST_ENDPOINT", "OUTPUT_NAMES", "build_archive", "build_endpoints", "input_specs"]


def input_specs(example_shape: tuple[int, ...]) -> dict[str, dict[str, tf.TensorSpec]]:
    """The named input TensorSpecs of every endpoint, in argument order (from the endpoint table)."""
    return {
        name: {
            tensor.name: tf.TensorSpec(list(tensor.shape), tf.as_dtype(tensor.dtype), name=tensor.name)
            for tensor in endpoint.inputs
        }
        for name, endpoint in endpoint_table(example_shape).items()
    }


def build_endpoints(
    model: Callable[[tf.Tensor, tf.Tensor], tf.Tensor], manifest: Manifest
) -> dict[str, tf.types.experimental.GenericFunction]:
    """One `tf.function` per endpoint, each with its named input signature and dict output.

    Args:
        model: the score model, `model(images [B, ...], sigma_indices [B]) -> [B, ...]`.
        manifest: the export's manifest (example shape, value range, ladder, step convention).

    Returns:
        endpoint name -> tf.function (ordered as ENDPOINTS).
    """
    sigmas = np.asarray(manifest.sigmas, np.float32)  # [L], largest first
    shape, value_range, convention = manifest.image_shape, manifest.value_range, manifest.sampler.convention
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
    asset_path = os.path.join(os.fspath(asset_dir), MANIFEST_FILE)
    with open(asset_path, "w", encoding="utf-8") as f:
        f.write(manifest_text)
    # Kept as a plain file in assets/ for tools; the graph never reads it (no ReadFile op).
    # ExportArchive has no public hook for assets: the asset goes onto its trackable root.
    _compat.export_archive_root(archive).manifest_asset = tf.saved_model.Asset(asset_path)
    return archive
