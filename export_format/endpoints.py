"""The endpoint table: every exported entry point's named inputs and outputs, dtypes and shapes.

The exporter builds its `tf.TensorSpec`s from this table (export.builder), writes it
into the manifest (`endpoints`), and the runners feed inputs by these names. A shape
entry None is dynamic (the batch B); the manifest writes it as -1. Order matters: it
is the graphs' input order (docs/export.md, "Endpoints").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from export_format.settings import ANNEALED_LANGEVIN, ROLES, SAMPLERS

# Every endpoint this reader knows, in the order they are written (the first is also the SavedModel's
# `serving_default`): annealed Langevin's under their version-1 names, then `score`, then the other
# samplers' (`SamplerKind.endpoints`: `prior_images`, `predictor_corrector_sample`, ...).
_VERSION_1 = ("sample", "initial_images", "sample_levels", "inpaint", "inpaint_levels", "score")
ENDPOINTS: tuple[str, ...] = _VERSION_1 + tuple(
    dict.fromkeys(
        kind.endpoints[role] for kind in SAMPLERS.values() for role in ROLES if kind.endpoints[role] not in _VERSION_1
    )
)
# endpoint -> its role (`settings.ROLES` or "score"); a start endpoint may serve several samplers.
ROLE_OF: dict[str, str] = {"score": "score"} | {
    kind.endpoints[role]: role for kind in SAMPLERS.values() for role in ROLES
}
# Output name of every endpoint. ONNX forbids a graph output named like a graph input, so the chunk
# endpoints, which take `images`, return `images_out`.
_ROLE_OUTPUT = {"initial_images": "images", "sample": "images", "sample_levels": "images_out", "inpaint": "images",
                "inpaint_levels": "images_out", "score": "scores"}  # fmt: skip
OUTPUT_NAMES = {name: _ROLE_OUTPUT[ROLE_OF[name]] for name in ENDPOINTS}
MANIFEST_ENDPOINT = "manifest"  # SavedModel only: returns the manifest JSON as a string constant
SAMPLING_ENDPOINTS = ("initial_images", "sample_levels")  # what chunked annealed Langevin needs (progress, cancel)
INPAINTING_ENDPOINTS = ("initial_images", "inpaint_levels")
DTYPES = ("float32", "int32", "bool", "string")


def sampling_endpoints(sampler: str = ANNEALED_LANGEVIN) -> tuple[str, str]:
    """(start, chunk) endpoints that chunked sampling with `sampler` needs."""
    endpoints = SAMPLERS[sampler].endpoints
    return endpoints["initial_images"], endpoints["sample_levels"]


def inpainting_endpoints(sampler: str = ANNEALED_LANGEVIN) -> tuple[str, str]:
    """(start, chunk) endpoints that chunked inpainting with `sampler` needs."""
    endpoints = SAMPLERS[sampler].endpoints
    return endpoints["initial_images"], endpoints["inpaint_levels"]


def endpoints_of(samplers: Sequence[str]) -> tuple[str, ...]:
    """The endpoints an export holding `samplers` has (theirs and `score`), in `ENDPOINTS` order."""
    wanted = {"score"} | {SAMPLERS[name].endpoints[role] for name in samplers for role in ROLES}
    return tuple(name for name in ENDPOINTS if name in wanted)


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


def endpoint_table(example_shape: tuple[int, ...], samplers: Sequence[str] | None = None) -> dict[str, Endpoint]:
    """The contract's endpoints for examples of `example_shape` ((H, W, C) images or (D,) points).

    Args:
        example_shape: the shape of one example (manifest `image_shape`).
        samplers: the samplers whose endpoints to list (`export_format.settings.SAMPLERS`);
            None = every sampler.

    Returns:
        endpoint name -> Endpoint, ordered as `ENDPOINTS`. A sampling endpoint takes its
        sampler's settings as 0-d inputs after the others (`SamplerKind.role_settings`).
    """
    batch = (None, *example_shape)

    def images(name: str) -> TensorInfo:
        return TensorInfo(name, "float32", batch)  # [B, *example_shape]

    seeds = TensorInfo("seeds", "int32", (None,))  # [B], one seed per image
    levels = (TensorInfo("first_level", "int32", ()), TensorInfo("last_level", "int32", ()))  # last exclusive
    known = (images("known_images"), images("masks"))  # masks: 1 = known
    fixed = {
        "initial_images": (seeds,),
        "sample": (seeds,),
        "sample_levels": (images("images"), seeds, *levels),
        "inpaint": (*known, seeds),
        "inpaint_levels": (images("images"), *known, seeds, *levels),
    }
    table = {"score": Endpoint("score", (images("images"), TensorInfo("sigma_indices", "int32", (None,))),  # [B] in [0, L)
                               (images(OUTPUT_NAMES["score"]),))}  # fmt: skip
    for name in samplers if samplers is not None else SAMPLERS:
        kind = SAMPLERS[name]
        for role in ROLES:
            settings = tuple(TensorInfo(s.name, s.dtype, ()) for s in kind.role_settings(role))
            endpoint = kind.endpoints[role]
            table[endpoint] = Endpoint(endpoint, (*fixed[role], *settings), (images(OUTPUT_NAMES[endpoint]),))
    return {name: table[name] for name in ENDPOINTS if name in table}


def table_to_json(table: dict[str, Endpoint]) -> dict[str, Any]:
    """The manifest's `endpoints` object."""
    return {name: endpoint.to_json() for name, endpoint in table.items()}
