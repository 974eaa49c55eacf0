"""The exported endpoints: seeded samplers with the whole sampling loop inside the graph.

`build_endpoints(model, manifest)` returns one `tf.function` per endpoint of the
export contract (`export_format.endpoints`, docs/export.md): every input a named
`TensorSpec` with a dynamic batch dimension, every output a named dict entry.
`build_archive` puts them into a `keras.export.ExportArchive` (plain
`tf.saved_model.save` fails on Keras 3 subclassed models with two inputs) together
with the manifest as a constant endpoint and as an asset file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from export import _compat
from export_format.endpoints import ENDPOINTS, MANIFEST_ENDPOINT, OUTPUT_NAMES, endpoint_table
from export_format.layout import MANIFEST_FILE
from export_format.manifest import Manifest
from export_format.settings import ANNEALED_LANGEVIN, SAMPLERS
from ncsn_tf import sampling

__all__ = ["ENDPOINTS", "MANIFEST_ENDPOINT", "OUTPUT_NAMES", "build_archive", "build_endpoints", "input_specs"]


def input_specs(
    example_shape: tuple[int, ...], samplers: Sequence[str] | None = None
) -> dict[str, dict[str, tf.TensorSpec]]:
    """The named input TensorSpecs of every endpoint, in argument order (from the endpoint table)."""
    return {
        name: {
            tensor.name: tf.TensorSpec(list(tensor.shape), tf.as_dtype(tensor.dtype), name=tensor.name)
            for tensor in endpoint.inputs
        }
        for name, endpoint in endpoint_table(example_shape, samplers).items()
    }


def build_endpoints(
    model: Callable[[tf.Tensor, tf.Tensor], tf.Tensor], manifest: Manifest
) -> dict[str, tf.types.experimental.GenericFunction]:
    """One `tf.function` per endpoint of the samplers the manifest holds, each with its named input
    signature and dict output.

    Every sampling endpoint runs `ncsn_tf.sampling.run_sampler` with the sampler's settings
    as graph inputs (`export_format.settings.SamplerKind.role_settings`); the start
    endpoints are `sampling.start_images` (annealed Langevin: `initial_images`, Uniform on
    the value range; the others: `prior_images`, N(centre, sigma_1^2 I)).

    Args:
        model: the score model, `model(images [B, ...], sigma_indices [B]) -> [B, ...]`.
        manifest: the export's manifest (example shape, value range, ladder, samplers, step convention).

    Returns:
        endpoint name -> tf.function (ordered as `export_format.endpoints.ENDPOINTS`).
    """
    sigmas = np.asarray(manifest.sigmas, np.float32)  # [L], largest first
    shape, value_range, convention = manifest.image_shape, manifest.value_range, manifest.sampler.convention
    held = tuple(name for name in SAMPLERS if name in manifest.sampler.settings)
    specs = input_specs(shape, held)

    # The network as ONE function that every endpoint calls: traced once (Keras layers are slow
    # to trace) and stored once in the SavedModel instead of once per endpoint.
    @tf.function(input_signature=list(specs["score"].values()), autograph=False)
    def score_network(images, sigma_indices):
        return tf.cast(model(images, sigma_indices), tf.float32)  # [B, ...]

    def binary(masks: tf.Tensor) -> tf.Tensor:
        # A graph cannot raise: any value >= 0.5 counts as known (the Python API rejects non-binary masks).
        return tf.cast(masks >= 0.5, tf.float32)  # [B, ...] in {0, 1}, 1 = known

    def score(images, sigma_indices):
        return {"scores": score_network(images, sigma_indices)}

    def role_body(sampler: str, role: str) -> Callable[..., dict[str, tf.Tensor]]:
        """The endpoint of `role` for `sampler`: its inputs in the endpoint table's order."""
        names = [setting.name for setting in SAMPLERS[sampler].role_settings(role)]

        def start(seeds: tf.Tensor) -> tf.Tensor:
            return sampling.start_images(sampler, seeds, shape, sigmas, value_range=value_range)  # [B, ...]

        def run(images, seeds, values, first_level=0, last_level=None, known_images=None, masks=None):
            settings = dict(zip(names, values, strict=True))
            if sampler == ANNEALED_LANGEVIN:  # the graph input `denoise` is the library's final_denoise
                settings["final_denoise"] = settings.pop("denoise")
                settings["convention"] = convention
            return sampling.run_sampler(
                score_network, images, seeds, sigmas, sampler=sampler, first_level=first_level, last_level=last_level,
                known_images=known_images, masks=None if masks is None else binary(masks), **settings,
            )  # fmt: skip

        if role == "initial_images":
            return lambda seeds: {"images": start(seeds)}
        if role == "sample":
            return lambda seeds, *values: {"images": run(start(seeds), seeds, values)}
        if role == "sample_levels":
            return lambda images, seeds, first_level, last_level, *values: {
                "images_out": run(images, seeds, values, first_level, last_level)
            }
        if role == "inpaint":
            return lambda known_images, masks, seeds, *values: {
                "images": run(start(seeds), seeds, values, known_images=known_images, masks=masks)
            }
        return lambda images, known_images, masks, seeds, first_level, last_level, *values: {
            "images_out": run(images, seeds, values, first_level, last_level, known_images, masks)
        }

    bodies: dict[str, Callable[..., dict[str, tf.Tensor]]] = {"score": score}
    for sampler in held:
        for role, endpoint in SAMPLERS[sampler].endpoints.items():
            bodies.setdefault(endpoint, role_body(sampler, role))  # a shared start is built once
    return {
        name: tf.function(bodies[name], input_signature=list(specs[name].values()), autograph=False)
        for name in ENDPOINTS
        if name in bodies
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
