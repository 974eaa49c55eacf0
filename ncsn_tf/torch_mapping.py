"""Names and layouts of the reference PyTorch CondRefineNetDilated, tensor by tensor.

The authors' code (ermongroup/ncsn, `models/cond_refinenet_dilated.py`) saves the
network as a PyTorch state dict: one tensor per name such as
`res2.0.conv2.conv.weight`. This module pairs every such name with the Keras
variable of `ncsn_tf.models.refinenet.CondRefineNetDilated` that holds the same
numbers, and converts between the two layouts. It needs neither PyTorch nor a
checkpoint; reading `.pth` files is `ncsn_tf.import_torch`.

Only facts about the reference are used (names, shapes, layouts; its code is
GPL-3.0 and none of it is copied here):

- Names follow the reference modules' attribute names: `begin_conv`, `normalizer`
  (the final CIN++), `end_conv`, `res1`..`res4` (lists of 2 residual blocks:
  `conv1`, `normalize2`, `conv2`, `shortcut`, `normalize1`; a down-sampling
  `conv2`/`shortcut` is a `ConvMeanPool` whose conv is `.conv`), `refine1`..
  `refine4` (`adapt_convs.<i>`, `output_convs`, `msf.convs.<i>`, `msf.norms.<i>`,
  `crp.convs.<i>`, `crp.norms.<i>`; residual conv units name their stages
  `<unit>_<stage>_norm` / `<unit>_<stage>_conv`, counting from 1). Every CIN++ is
  an `nn.Embedding` named `embed`.
- Order: the reference's state-dict order (module registration order), so
  `reference_state_dict` lists tensors as `torch.save` of the reference does.
- Layouts: convolution weights are `[out, in, kh, kw]` (OIHW) in PyTorch and
  `[kh, kw, in, out]` (HWIO) in Keras; biases `[out]` in both; a CIN++ table is
  `[L, 3C]` in both with columns gamma | alpha | beta (the reference splits the
  embedding into three chunks in that order; `ConditionalInstanceNormPlus` reads
  the same columns).

A CondRefineNetDilated has 173 tensors whatever its width: 75 convolution kernels,
41 biases, 57 CIN++ tables (docs/import_torch.md lists them all).
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import keras
import numpy as np

CONV_KERNEL = "conv kernel"  # PyTorch [out, in, kh, kw] <-> Keras [kh, kw, in, out]
BIAS = "bias"  # [out] in both
CIN_TABLE = "CIN++ table"  # [L, 3C] in both: gamma | alpha | beta columns

LAYOUTS = (CONV_KERNEL, BIAS, CIN_TABLE)
LAYOUT_NOTES = {
    CONV_KERNEL: "OIHW -> HWIO (transpose 2, 3, 1, 0)",
    BIAS: "identical",
    CIN_TABLE: "identical (γ | α | β columns)",
}

_TO_KERAS_KERNEL = (2, 3, 1, 0)  # [out, in, kh, kw] -> [kh, kw, in, out]
_TO_REFERENCE_KERNEL = (3, 2, 0, 1)  # [kh, kw, in, out] -> [out, in, kh, kw]

TENSOR_COUNT = 173  # tensors of CondRefineNetDilated, any ngf / channels / levels


class MappingError(ValueError):
    """The model cannot be paired with the reference's names (not a CondRefineNetDilated, or not built)."""


@dataclasses.dataclass(frozen=True)
class TensorMapping:
    """One reference tensor and the Keras variable that holds it.

    Attributes:
        reference_name: the key in the reference's state dict (without `module.`).
        keras_name: the variable's path inside the model (`res2_0/conv2/conv/kernel`).
        layout: CONV_KERNEL, BIAS or CIN_TABLE.
        variable: the Keras variable.
        layer: the Keras layer that owns it (a Conv2D or a ConditionalInstanceNormPlus).
    """

    reference_name: str
    keras_name: str
    layout: str
    variable: Any = dataclasses.field(repr=False, compare=False)
    layer: Any = dataclasses.field(repr=False, compare=False)

    @property
    def keras_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.variable.shape)

    @property
    def reference_shape(self) -> tuple[int, ...]:
        """The shape the tensor has in the reference's state dict."""
        shape = self.keras_shape
        if self.layout == CONV_KERNEL:
            return tuple(shape[axis] for axis in _TO_REFERENCE_KERNEL)
        return shape

    def to_keras(self, array: np.ndarray) -> np.ndarray:
        """The reference tensor's values in the Keras variable's layout (float32, a copy)."""
        values = np.asarray(array, dtype=np.float32)
        if self.layout == CONV_KERNEL:
            values = np.transpose(values, _TO_KERAS_KERNEL)
        return np.array(values, dtype=np.float32, order="C", copy=True)

    def to_reference(self, array: np.ndarray) -> np.ndarray:
        """The Keras variable's values in the reference's layout (float32, a copy)."""
        values = np.asarray(array, dtype=np.float32)
        if self.layout == CONV_KERNEL:
            values = np.transpose(values, _TO_REFERENCE_KERNEL)
        return np.array(values, dtype=np.float32, order="C", copy=True)


# ---------------------------------------------------------------------------
# The walk over the Keras model, in the reference's state-dict order.
# ---------------------------------------------------------------------------


def _indexed(owner: Any, prefix: str, count: int) -> list[Any]:
    """Sublayers kept as attributes `{prefix}_{k}` (ncsn_tf.models.layers keeps them out of lists)."""
    return [getattr(owner, f"{prefix}_{k}") for k in range(count)]


def _conv(name: str, conv: Any) -> list[tuple[str, Any, str, Any]]:
    """`name.weight` (+ `name.bias` when the conv has one)."""
    entries = [(f"{name}.weight", conv.kernel, CONV_KERNEL, conv)]
    if conv.use_bias:
        entries.append((f"{name}.bias", conv.bias, BIAS, conv))
    return entries


def _norm(name: str, norm: Any) -> list[tuple[str, Any, str, Any]]:
    """A CIN++ layer: the reference's `nn.Embedding` called `embed`."""
    return [(f"{name}.embed.weight", norm.embedding, CIN_TABLE, norm)]


def _conv_or_mean_pool(name: str, layer: Any) -> list[tuple[str, Any, str, Any]]:
    from ncsn_tf.models.layers import ConvMeanPool

    if isinstance(layer, ConvMeanPool):
        # The reference keeps the conv as `.conv`, or as `.conv.1` after a ZeroPad2d when adjust_padding.
        return _conv(f"{name}.conv.1" if layer.adjust_padding else f"{name}.conv", layer.conv)
    return _conv(name, layer)


def _residual_block(name: str, block: Any) -> list[tuple[str, Any, str, Any]]:
    entries = _conv(f"{name}.conv1", block.conv1)
    entries += _norm(f"{name}.normalize2", block.norm2)
    entries += _conv_or_mean_pool(f"{name}.conv2", block.conv2)
    if block.shortcut is not None:
        entries += _conv_or_mean_pool(f"{name}.shortcut", block.shortcut)
    entries += _norm(f"{name}.normalize1", block.norm1)
    return entries


def _rcu_block(name: str, block: Any) -> list[tuple[str, Any, str, Any]]:
    count = block.n_blocks * block.n_stages
    entries: list[tuple[str, Any, str, Any]] = []
    for k, (norm, conv) in enumerate(zip(_indexed(block, "norm", count), _indexed(block, "conv", count), strict=True)):
        unit, stage = k // block.n_stages + 1, k % block.n_stages + 1
        entries += _norm(f"{name}.{unit}_{stage}_norm", norm)
        entries += _conv(f"{name}.{unit}_{stage}_conv", conv)
    return entries


def _msf_block(name: str, block: Any) -> list[tuple[str, Any, str, Any]]:
    count = len(block.in_planes)
    entries: list[tuple[str, Any, str, Any]] = []
    for i, conv in enumerate(_indexed(block, "conv", count)):  # the reference registers all convs first
        entries += _conv(f"{name}.convs.{i}", conv)
    for i, norm in enumerate(_indexed(block, "norm", count)):
        entries += _norm(f"{name}.norms.{i}", norm)
    return entries


def _crp_block(name: str, block: Any) -> list[tuple[str, Any, str, Any]]:
    entries: list[tuple[str, Any, str, Any]] = []
    for i, conv in enumerate(_indexed(block, "conv", block.n_stages)):
        entries += _conv(f"{name}.convs.{i}", conv)
    for i, norm in enumerate(_indexed(block, "norm", block.n_stages)):
        entries += _norm(f"{name}.norms.{i}", norm)
    return entries


def _refine_block(name: str, block: Any) -> list[tuple[str, Any, str, Any]]:
    entries: list[tuple[str, Any, str, Any]] = []
    for i, adapt in enumerate(_indexed(block, "adapt", len(block.in_planes))):
        entries += _rcu_block(f"{name}.adapt_convs.{i}", adapt)
    entries += _rcu_block(f"{name}.output_convs", block.output_convs)
    if block.msf is not None:
        entries += _msf_block(f"{name}.msf", block.msf)
    entries += _crp_block(f"{name}.crp", block.crp)
    return entries


def _keras_name(variable: Any, model: keras.Model) -> str:
    """The variable's path without the model's own name (`res2_0/conv2/conv/kernel`)."""
    path = str(variable.path)
    prefix = f"{model.name}/"
    return path[len(prefix) :] if path.startswith(prefix) else path


def tensor_mappings(model: keras.Model) -> tuple[TensorMapping, ...]:
    """Every reference tensor of `model`'s architecture with its Keras variable, in the reference's order.

    Args:
        model: a built `CondRefineNetDilated` (e.g. from `build_score_model`).

    Returns:
        173 TensorMappings; each reference name appears once and each variable of
        `model.weights` once.

    Raises:
        MappingError: not a CondRefineNetDilated, not built, or a variable the walk
            does not reach (the model class changed without this module).
    """
    from ncsn_tf.models.refinenet import CondRefineNetDilated

    if not isinstance(model, CondRefineNetDilated):
        raise MappingError(
            f"{type(model).__name__} has no reference PyTorch counterpart; only CondRefineNetDilated "
            "(model.architecture=refinenet) maps to the reference checkpoints"
        )
    if not model.built or not model.weights:
        raise MappingError("the model is not built; build it (call it once, e.g. build_score_model) before mapping its weights")
    entries = _conv("begin_conv", model.begin_conv)
    entries += _norm("normalizer", model.end_norm)
    entries += _conv("end_conv", model.end_conv)
    for stage in (1, 2, 3, 4):
        for k in (0, 1):
            entries += _residual_block(f"res{stage}.{k}", getattr(model, f"res{stage}_{k}"))
    for n in (1, 2, 3, 4):
        entries += _refine_block(f"refine{n}", getattr(model, f"refine{n}"))
    mappings = tuple(
        TensorMapping(name, _keras_name(variable, model), layout, variable, layer) for name, variable, layout, layer in entries
    )
    _check_one_to_one(mappings, model)
    return mappings


def _check_one_to_one(mappings: Sequence[TensorMapping], model: keras.Model) -> None:
    names = [m.reference_name for m in mappings]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise MappingError(f"reference name {duplicated[0]} is mapped twice; the name walk is wrong")
    mapped = [id(m.variable) for m in mappings]
    if len(set(mapped)) != len(mapped):
        twice = next(m for m in mappings if mapped.count(id(m.variable)) > 1)
        raise MappingError(f"Keras variable {twice.keras_name} is mapped twice; the name walk is wrong")
    unmapped = [v for v in model.weights if id(v) not in set(mapped)]
    if unmapped or len(mapped) != len(model.weights):
        first = _keras_name(unmapped[0], model) if unmapped else "?"
        raise MappingError(f"Keras variable {first} has no reference name; the model changed without ncsn_tf.torch_mapping")


# ---------------------------------------------------------------------------
# Whole state dicts and the documentation table.
# ---------------------------------------------------------------------------


def reference_state_dict(model: keras.Model) -> OrderedDict[str, np.ndarray]:
    """The model's weights under the reference's names and layouts (float32 NumPy, reference order)."""
    return OrderedDict((m.reference_name, m.to_reference(np.asarray(m.variable))) for m in tensor_mappings(model))


def parameter_count(mappings: Iterable[TensorMapping]) -> int:
    """The number of scalars in the mapped tensors."""
    return int(sum(int(np.prod(m.keras_shape)) for m in mappings))


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def mapping_table_markdown(models: dict[str, keras.Model]) -> str:
    """The full mapping as a Markdown table, one reference-shape column per model.

    Args:
        models: column title -> built CondRefineNetDilated (e.g. {"MNIST": ..., "CIFAR-10": ...}).
            All must map the same names (they do: names do not depend on ngf, C or L).

    Returns:
        The table text (header, separator, 173 rows), ending with a newline.
    """
    columns = {title: tensor_mappings(model) for title, model in models.items()}
    tables = list(columns.values())
    first = tables[0]
    for title, table in columns.items():
        if [m.reference_name for m in table] != [m.reference_name for m in first]:
            raise MappingError(f"model {title!r} maps other names than {next(iter(columns))!r}")
    titles = [f"shape, {title}" for title in columns]
    lines = [
        "| # | reference tensor | Keras variable | layout | " + " | ".join(titles) + " |",
        "|---|---|---|---|" + "---|" * len(titles),
    ]
    for index, rows in enumerate(zip(*tables, strict=True)):
        mapping = rows[0]
        shapes = " | ".join(_shape_text(row.reference_shape) for row in rows)
        lines.append(f"| {index + 1} | `{mapping.reference_name}` | `{mapping.keras_name}` | {mapping.layout} | {shapes} |")
    return "\n".join(lines) + "\n"
