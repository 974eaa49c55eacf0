"""The endpoint table: every exported entry point's named inputs and outputs, dtypes and shapes.

The exporter builds its `tf.TensorSpec`s from this table (export.builder), writes it
into the manifest (`endpoints`), and the runners feed inputs by these names. A shape
entry None is dynamic (the batch B); the manifest writes it as -1. Order matters: it
is the graphs' input order (docs/export.md, "Endpoints").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from export_format.settings import ANNEALED_LANGEVIN, SAMPLERS

# The endpoints, in the order they are written (the first is also the SavedModel's `serving_default`).
ENDPOINTS = ("sample", "initial_images", "sample_levels", "inpaint", "inpaint_levels", "score")
# Output name of every endpoint. ONNX forbids a graph output named like a graph input, so the chunk
# endpoints, which take `images`, return `images_out`.
OUTPUT_NAMES = {
    "sample": "images",
    "initial_images": "images",
    "sample_levels": "images_out",
    "inpaint": "images",
    "inpaint_levels": "images_out",
    "score": "scores",
}
MANIFEST_ENDPOINT = "manifest"  # SavedModel only: returns the manifest JSON as a string constant
SAMPLING_ENDPOINTS = ("initial_images", "sample_levels")  # what chunked sampling needs (progress, cancel)
INPAINTING_ENDPOINTS = ("initial_images", "inpaint_levels")
DTYPES = ("float32", "int32", "bool", "string")


@dataclass(frozen=True)
class TensorInfo:
    """One named input or output of an endpoint.

    Attributes:
        name: the TensorSpec / ONNX value name.
        dtype: one of `DTYPES`.
        shape: sizes, None = dynamic (the batch).
    """

    name: str
    dtype: str
    shape: tuple[int | None, ...]

    def to_json(self) -> dict[str, Any]:
        return {"shape": [-1 if size is None else int(size) for size in self.shape], "dtype": self.dtype}


@dataclass(frozen=True)
class Endpoint:
    """An endpoint's inputs (in argument order) and outputs."""

    name: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "inputs": {tensor.name: tensor.to_json() for tensor in self.inputs},
            "outputs": {tensor.name: tensor.to_json() for tensor in self.outputs},
        }


def endpoint_table(example_shape: tuple[int, ...], sampler: str = ANNEALED_LANGEVIN) -> dict[str, Endpoint]:
    """The contract's endpoints for examples of `example_shape` ((H, W, C) images or (D,) points).

    Args:
        example_shape: the shape of one example (manifest `image_shape`).
        sampler: whose settings the sampling endpoints take (`export_format.settings.SAMPLERS`).

    Returns:
        endpoint name -> Endpoint, ordered as `ENDPOINTS`.
    """
    batch = (None, *example_shape)

    def images(name: str) -> TensorInfo:
        return TensorInfo(name, "float32", batch)  # [B, *example_shape]

    seeds = TensorInfo("seeds", "int32", (None,))  # [B], one seed per image
    levels = (TensorInfo("first_level", "int32", ()), TensorInfo("last_level", "int32", ()))  # last exclusive
    settings = tuple(TensorInfo(setting.name, setting.dtype, ()) for setting in SAMPLERS[sampler].settings)
    known = (images("known_images"), images("masks"))  # masks: 1 = known
    inputs = {
        "sample": (seeds, *settings),
        "initial_images": (seeds,),
        "sample_levels": (images("images"), seeds, *levels, *settings),
        "inpaint": (*known, seeds, *settings),
        "inpaint_levels": (images("images"), *known, seeds, *levels, *settings),
        "score": (images("images"), TensorInfo("sigma_indices", "int32", (None,))),  # [B] in [0, L)
    }
    return {name: Endpoint(name, inputs[name], (images(OUTPUT_NAMES[name]),)) for name in ENDPOINTS}


def table_to_json(table: dict[str, Endpoint]) -> dict[str, Any]:
    """The manifest's `endpoints` object."""
    return {name: endpoint.to_json() for name, endpoint in table.items()}
