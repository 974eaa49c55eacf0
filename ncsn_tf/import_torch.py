"""Import the authors' PyTorch checkpoints (ermongroup/ncsn) into a normal workdir.

    python -m ncsn_tf.import_torch CHECKPOINT --config {mnist,cifar10,celeba} --workdir DIR [section.key=value ...]

`ncsn-import` is the same command. The reference code saves
`torch.save([model.state_dict(), optimizer.state_dict()])` of a
CondRefineNetDilated wrapped in `nn.DataParallel` (every key begins with
`module.`); a bare state dict, with or without the prefix, is accepted too. The
file is read with `torch.load(..., weights_only=True)` only: a checkpoint is a
pickle, and a pickle that needs code to load (anything but tensors and plain
containers) is refused.

Every tensor is checked before anything is written: each of the 173 reference
tensors must be present once, nothing else may be there, and every shape must be
the one the config's network has (`ncsn_tf.torch_mapping` holds the names and
layouts). The result is a workdir like the trainer's (`config.json` plus one
checkpoint) that `python -m export`, `python -m ncsn_tf.evaluate` and
`python -m ncsn_tf.train` take as any other:

- The checkpoint's `step` is the number of optimizer steps the reference run took
  (the `step` count in its Adam state), 0 for a bare state dict, or `--step N`.
  The trainer therefore has nothing to do at `training.steps` = 200k; fine-tune
  with `--steps` beyond the imported step.
- The optimizer state is NOT imported (PyTorch's and Keras' Adam keep their moments
  in different layouts and bias corrections): the checkpoint holds a freshly built
  Keras Adam, so resuming is fine-tuning with a fresh optimizer. With EMA on
  (`training.ema_rate > 0`) the EMA weights start as the imported ones.
- `imported_from.json` beside `config.json` records the source file (path, SHA-256),
  its form and where the step came from.

Exit codes: 0 done, 2 bad input (checkpoint, config, workdir), 130 interrupted.

The reverse direction is `to_torch_state_dict(model)`.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ncsn_tf import __version__, configs
from ncsn_tf.configs import Config, ConfigError

PROGRAM = "ncsn-import"
REFERENCE_CONFIGS = ("mnist", "cifar10", "celeba")  # the reference's published settings
MODULE_PREFIX = "module."  # nn.DataParallel's prefix on every key
IMPORT_RECORD = "imported_from.json"
TORCH_INSTALL_HINT = (
    'install PyTorch to read .pth files: pip install -e ".[torch]" '
    "(CPU wheel; see the README section \"Importing the reference checkpoints\")"
)


class TorchImportError(ValueError):
    """A checkpoint cannot be imported as asked; the one-line message names the problem and what to do."""


@dataclasses.dataclass(frozen=True)
class ReferenceCheckpoint:
    """The tensors of a reference checkpoint, read safely.

    Attributes:
        path: absolute path of the file.
        tensors: name (without `module.`) -> NumPy array, in the file's order;
            floating point tensors as float32, others in their own dtype.
        dtypes: name -> the tensor's dtype in the file (`torch.float32`, ...).
        module_prefix: whether the keys began with `module.` (nn.DataParallel).
        wrapped: whether the file is `[model_state_dict, optimizer_state_dict]`.
        optimizer_step: the step count in the optimizer state, None if unknown.
    """

    path: str
    tensors: OrderedDict[str, np.ndarray] = dataclasses.field(repr=False)
    dtypes: dict[str, str] = dataclasses.field(repr=False)
    module_prefix: bool
    wrapped: bool
    optimizer_step: int | None


@dataclasses.dataclass(frozen=True)
class ImportResult:
    """What `import_checkpoint` wrote.

    Attributes:
        workdir: absolute path of the new workdir.
        checkpoint: its checkpoint prefix (`WORKDIR/checkpoints/ckpt-<step>`).
        step: the step the checkpoint carries.
        step_source: where that step came from (human-readable).
        tensors: number of tensors imported (173).
        parameters: number of scalars imported.
        ema: whether the checkpoint holds EMA weights (a copy of the imported ones).
        source: the reference checkpoint as read.
    """

    workdir: str
    checkpoint: str
    step: int
    step_source: str
    tensors: int
    parameters: int
    ema: bool
    source: ReferenceCheckpoint = dataclasses.field(repr=False)


# ---------------------------------------------------------------------------
# Reading a .pth file safely.
# ---------------------------------------------------------------------------


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise TorchImportError(TORCH_INSTALL_HINT) from None
    return torch


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _zip_hint(path: str) -> str:
    """For the published `run.zip` (a zip of run folders, not a torch file): which members to pass."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [name for name in archive.namelist() if name.endswith(".pth")]
    except (OSError, zipfile.BadZipFile):
        return ""
    if not members:
        return ""
    shown = ", ".join(members[:3]) + (", ..." if len(members) > 3 else "")
    return f"; it is a zip of checkpoints ({shown}): extract it and pass one .pth file"


def _load_pickle_safely(path: str) -> Any:
    torch = _torch()
    try:
        # weights_only: only tensors and plain containers are unpickled; map_location: GPU-saved
        # tensors (the published checkpoints were saved on cuda:0) land on the CPU.
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError, RuntimeError (zip), EOFError, struct.error, ...
        text = str(error)
        if "Weights only load failed" in text:
            needed = re.search(r"GLOBAL ([\w.]+)", text)
            what = f" ({needed.group(1)})" if needed else ""
            raise TorchImportError(
                f"{path} was refused: unpickling it needs code{what}, and a checkpoint of tensors never does; "
                "do not open this file with torch.load(weights_only=False) or pickle"
            ) from None
        raise TorchImportError(
            f"cannot read {path}: the file is truncated or not a PyTorch checkpoint ({_first_line(error)}){_zip_hint(path)}"
        ) from None


def _split_checkpoint(loaded: Any, path: str) -> tuple[Mapping[Any, Any], Any, bool]:
    """(model state dict, optimizer state or None, wrapped) of what `torch.load` returned."""
    if isinstance(loaded, (list, tuple)):
        if len(loaded) != 2 or not isinstance(loaded[0], Mapping):
            raise TorchImportError(
                f"{path} holds a {type(loaded).__name__} of {len(loaded)} items; the reference saves "
                "[model_state_dict, optimizer_state_dict]: not a reference checkpoint"
            )
        return loaded[0], loaded[1], True
    if isinstance(loaded, Mapping):
        return loaded, None, False
    raise TorchImportError(
        f"{path} holds a {type(loaded).__name__}, not a state dict or [model_state_dict, optimizer_state_dict]: "
        "not a reference checkpoint"
    )


def _optimizer_step(optimizer_state: Any) -> int | None:
    """The step count of a PyTorch Adam state dict (`state[i]["step"]`, an int or a 1-element tensor)."""
    if not isinstance(optimizer_state, Mapping) or not isinstance(optimizer_state.get("state"), Mapping):
        return None
    steps = []
    for entry in optimizer_state["state"].values():
        value = entry.get("step") if isinstance(entry, Mapping) else None
        if hasattr(value, "numel") and value.numel() == 1:
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and float(value).is_integer() and value >= 0:
            steps.append(int(value))
    return max(steps) if steps else None


def read_reference_checkpoint(path: str | os.PathLike[str]) -> ReferenceCheckpoint:
    """Read a reference checkpoint with `torch.load(weights_only=True)` (nothing else runs).

    Args:
        path: a `.pth` file: `[model_state_dict, optimizer_state_dict]` as the
            reference saves it, or a bare state dict; keys with or without `module.`.

    Returns:
        The tensors as NumPy arrays (names without `module.`) and what the file says
        about its training step.

    Raises:
        TorchImportError: PyTorch is missing; the file is missing, truncated, not a
            PyTorch file, needs code to unpickle, or does not hold a state dict.
    """
    torch = _torch()
    path = os.path.abspath(os.fspath(path))
    if not os.path.isfile(path):
        raise TorchImportError(f"no checkpoint file at {path}; pass the reference's checkpoint.pth (run/logs/<doc>/checkpoint.pth)")
    state_dict, optimizer_state, wrapped = _split_checkpoint(_load_pickle_safely(path), path)
    if not state_dict:
        raise TorchImportError(f"{path} holds an empty state dict: not a reference checkpoint")
    keys = list(state_dict)
    bad_key = next((key for key in keys if not isinstance(key, str)), None)
    if bad_key is not None:
        raise TorchImportError(f"{path} has a key {bad_key!r} that is not a string: not a state dict")
    prefixed = [key.startswith(MODULE_PREFIX) for key in keys]
    if any(prefixed) and not all(prefixed):
        odd = keys[prefixed.index(False)]
        raise TorchImportError(f"key {odd} lacks the {MODULE_PREFIX!r} prefix the other keys have: the state dict is mixed up, not a saved model")
    module_prefix = all(prefixed)
    tensors: OrderedDict[str, np.ndarray] = OrderedDict()
    dtypes: dict[str, str] = {}
    for key in keys:
        name = key[len(MODULE_PREFIX) :] if module_prefix else key
        value = state_dict[key]
        if not isinstance(value, torch.Tensor):
            raise TorchImportError(f"{name} is a {type(value).__name__}, not a tensor: {path} is not a model state dict")
        try:
            value = value.detach()
            array = value.to(torch.float32).numpy() if value.is_floating_point() else value.numpy()
        except Exception as error:  # sparse, quantized, meta tensors
            raise TorchImportError(f"tensor {name} cannot be read as a dense array ({_first_line(error)}): not a reference checkpoint") from None
        tensors[name] = array
        dtypes[name] = str(value.dtype)
    return ReferenceCheckpoint(path, tensors, dtypes, module_prefix, wrapped, _optimizer_step(optimizer_state))


# ---------------------------------------------------------------------------
# The strict check: every tensor by name, shape and dtype, before anything is set or written.
# ---------------------------------------------------------------------------


def _matching_reference_configs(ngf: int, channels: int) -> list[str]:
    found = []
    for name in REFERENCE_CONFIGS:
        config = configs.get_config(name)
        if config.model.ngf == ngf and config.data.channels == channels:
            found.append(name)
    return found


def _use_hint(ngf: int, channels: int, config_name: str, fallback: str) -> str:
    candidates = _matching_reference_configs(ngf, channels)
    if candidates and config_name not in candidates:
        return "use " + " or ".join(f"--config {name}" for name in candidates)
    return fallback


def _more(count: int) -> str:
    return f" (and {count} more)" if count else ""


def check_architecture(tensors: Mapping[str, np.ndarray], config: Config, config_name: str | None = None) -> None:
    """Check the network's width, image channels and number of noise levels against `config`.

    Read off `begin_conv.weight` ([ngf, C, 3, 3]) and `normalizer.embed.weight`
    ([L, 3 ngf]); needs no model, so a wrong `--config` is reported before any
    network is built. Tensors that are absent or oddly shaped are left to
    `check_state_dict`.

    Raises:
        TorchImportError: one line saying which config fits (or which override to add).
    """
    name = config_name or config.name
    channels, ngf, levels = config.data.channels, config.model.ngf, config.noise.num_levels
    begin = tensors.get("begin_conv.weight")
    if begin is not None and np.ndim(begin) == 4:
        found_ngf, found_channels = int(begin.shape[0]), int(begin.shape[1])
        if found_ngf != ngf:
            hint = _use_hint(found_ngf, found_channels, name, f"set model.ngf={found_ngf}")
            raise TorchImportError(f"checkpoint has ngf {found_ngf} but --config {name} expects {ngf}: {hint}")
        if found_channels != channels:
            hint = _use_hint(found_ngf, found_channels, name, f"set data.channels={found_channels}")
            raise TorchImportError(
                f"checkpoint has {found_channels} image channel(s) (begin_conv.weight {list(begin.shape)}) "
                f"but --config {name} expects {channels}: {hint}"
            )
    table = tensors.get("normalizer.embed.weight")
    if table is not None and np.ndim(table) == 2 and int(table.shape[0]) != levels:
        found = int(table.shape[0])
        raise TorchImportError(
            f"checkpoint has {found} noise levels (normalizer.embed.weight has {found} rows) but the config has "
            f"noise.num_levels={levels}: set noise.num_levels={found} and the sigma range the run was trained with"
        )


def check_state_dict(
    tensors: Mapping[str, np.ndarray],
    mappings: Sequence[Any],
    config: Config,
    config_name: str | None = None,
    dtypes: Mapping[str, str] | None = None,
) -> None:
    """Check a reference state dict against the network of `config`, strictly.

    In this order, so that the first error names the likeliest cause: width
    (ngf), image channels and number of noise levels read off `begin_conv.weight`
    and `normalizer.embed.weight`; unexpected names; missing names; shapes;
    dtypes (floating point) and finiteness.

    Args:
        tensors: reference name (no `module.`) -> array.
        mappings: `torch_mapping.tensor_mappings(model)` of the model built from `config`.
        config: the config the workdir will carry.
        config_name: the `--config` name for messages (default `config.name`).
        dtypes: name -> dtype in the file, for messages (default: the arrays' dtypes).

    Raises:
        TorchImportError: one line naming the first offending tensor and the likely cause.
    """
    check_architecture(tensors, config, config_name)
    name = config_name or config.name
    channels, ngf, levels = config.data.channels, config.model.ngf, config.noise.num_levels
    expected = {m.reference_name: m for m in mappings}
    unexpected = [key for key in tensors if key not in expected]
    if unexpected:
        raise TorchImportError(f"unexpected key {unexpected[0]}{_more(len(unexpected) - 1)}: not a CondRefineNetDilated checkpoint")
    missing = [m.reference_name for m in mappings if m.reference_name not in tensors]
    if missing:
        raise TorchImportError(
            f"missing tensor {missing[0]}{_more(len(missing) - 1)}: the checkpoint is incomplete or not a CondRefineNetDilated checkpoint"
        )
    for mapping in mappings:
        shape = tuple(int(d) for d in np.shape(tensors[mapping.reference_name]))
        if shape != mapping.reference_shape:
            raise TorchImportError(
                f"tensor {mapping.reference_name} has shape {list(shape)} but --config {name} expects "
                f"{list(mapping.reference_shape)} (ngf {ngf}, {channels} channel(s), {levels} levels): "
                "not a CondRefineNetDilated checkpoint of this configuration"
            )
    for mapping in mappings:
        array = tensors[mapping.reference_name]
        if not np.issubdtype(array.dtype, np.floating):
            dtype = (dtypes or {}).get(mapping.reference_name, str(array.dtype))
            raise TorchImportError(f"tensor {mapping.reference_name} has dtype {dtype}, not floating point weights: not a CondRefineNetDilated checkpoint")
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise TorchImportError(
                f"tensor {mapping.reference_name} has {bad} NaN/Inf value(s): the checkpoint is corrupt "
                "(or its run diverged); use an earlier checkpoint"
            )


def load_into_model(
    tensors: Mapping[str, np.ndarray],
    model: Any,
    config: Config,
    config_name: str | None = None,
    dtypes: Mapping[str, str] | None = None,
) -> tuple[Any, ...]:
    """Check `tensors` strictly, then set every weight of `model` from them, each exactly once.

    Args:
        tensors: reference name (no `module.`) -> array.
        model: the built CondRefineNetDilated of `config` (float32).
        config: its config.
        config_name: the `--config` name for messages.
        dtypes: name -> dtype in the file, for messages.

    Returns:
        The `TensorMapping`s used (reference order).

    Raises:
        TorchImportError: from `check_state_dict`, or the model is not a CondRefineNetDilated.
    """
    from ncsn_tf.torch_mapping import MappingError, tensor_mappings

    try:
        mappings = tensor_mappings(model)
    except MappingError as error:
        raise TorchImportError(str(error)) from None
    check_state_dict(tensors, mappings, config, config_name, dtypes)
    for mapping in mappings:  # each variable once (tensor_mappings checked the pairing is one-to-one)
        mapping.variable.assign(mapping.to_keras(tensors[mapping.reference_name]))
    return mappings


# ---------------------------------------------------------------------------
# Writing the workdir.
# ---------------------------------------------------------------------------


def _refuse_existing_run(root: str) -> None:
    from ncsn_tf import checkpoints

    paths = checkpoints.workdir_paths(root)
    if os.path.exists(root) and not os.path.isdir(root):
        raise TorchImportError(f"--workdir {root} is a file; pass a new folder")
    existing = [p for p in (paths.config, os.path.join(root, IMPORT_RECORD)) if os.path.exists(p)]
    if os.path.isdir(paths.checkpoints) and os.listdir(paths.checkpoints):
        existing.append(paths.checkpoints)
    if existing:
        raise TorchImportError(
            f"{root} already holds a run ({os.path.basename(existing[0])}); importing would overwrite it: choose a new --workdir"
        )


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _move_into_place(staging: str, root: str) -> None:
    """Move the staged workdir to `root` (one rename when `root` is absent or empty)."""
    if os.path.isdir(root) and not os.listdir(root):
        os.rmdir(root)
    if not os.path.exists(root):
        os.rename(staging, root)
        return
    from ncsn_tf.checkpoints import CONFIG_FILE

    for entry in sorted(os.listdir(staging), key=lambda e: e == CONFIG_FILE):  # config.json last
        os.rename(os.path.join(staging, entry), os.path.join(root, entry))


def _write_workdir(
    root: str,
    config: Config,
    model: Any,
    ema_model: Any,
    optimizer: Any,
    step: int,
    record: dict[str, Any],
) -> str:
    """Write config.json, one checkpoint and the import record into a staging folder, then move it to `root`."""
    import tensorflow as tf

    from ncsn_tf import checkpoints

    parent = os.path.dirname(root)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(root)}.importing-", dir=parent)
    try:
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes it 0700; the workdir gets the usual mode
        checkpoints.write_config(staging, config)
        checkpoint_dir = checkpoints.workdir_paths(staging).checkpoints
        os.makedirs(checkpoint_dir)
        step_variable = tf.Variable(step, dtype=tf.int64, trainable=False, name="step")
        checkpoint = checkpoints.make_checkpoint(model, ema_model=ema_model, optimizer=optimizer, step=step_variable)
        manager = tf.train.CheckpointManager(
            checkpoint, checkpoint_dir, max_to_keep=config.training.keep_checkpoints, checkpoint_name=checkpoints.CHECKPOINT_PREFIX
        )
        saved = manager.save(checkpoint_number=step)  # the "checkpoint" state file holds relative paths
        with open(os.path.join(staging, IMPORT_RECORD), "w", encoding="utf-8") as f:
            json.dump(record, f, indent=2)
            f.write("\n")
        _move_into_place(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return os.path.join(checkpoints.workdir_paths(root).checkpoints, os.path.basename(saved))


def import_checkpoint(
    path: str | os.PathLike[str],
    config: Config,
    workdir: str | os.PathLike[str],
    *,
    step: int | None = None,
    config_name: str | None = None,
) -> ImportResult:
    """Import a reference checkpoint into a new workdir (config.json + one checkpoint).

    Nothing is written unless every tensor passed `check_state_dict`; the workdir is
    staged beside its final place and moved there at the end.

    Args:
        path: the reference `.pth` file.
        config: the validated config of the network (e.g. `configs.get_config("cifar10")`
            with overrides); its ngf, channels and num_levels must match the file.
        workdir: a new (or empty) folder; one holding a run is refused.
        step: the step the checkpoint carries; None = the Adam state's step count
            (0 for a bare state dict).
        config_name: the `--config` name for messages (default `config.name`).

    Returns:
        An ImportResult.

    Raises:
        TorchImportError: PyTorch missing, an unreadable or unsafe file, a tensor that
            does not fit (the first one is named), a workdir that holds a run.
    """
    from ncsn_tf import checkpoints, torch_mapping
    from ncsn_tf.trainer import make_optimizer

    root = os.path.abspath(os.fspath(workdir))
    if config.model.architecture != "refinenet":
        raise TorchImportError(
            f"--config {config_name or config.name} uses model.architecture={config.model.architecture}; the reference "
            f"checkpoints are CondRefineNetDilated: use {' or '.join(f'--config {n}' for n in REFERENCE_CONFIGS)}"
        )
    if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise TorchImportError(f"--step must be a non-negative integer, got {step!r}")
    _refuse_existing_run(root)
    source = read_reference_checkpoint(path)
    check_architecture(source.tensors, config, config_name)  # before building a network of the wrong size
    model = checkpoints.build_float32_model(config)
    mappings = load_into_model(source.tensors, model, config, config_name, source.dtypes)
    if step is not None:
        chosen, step_source = step, "set with --step"
    elif source.optimizer_step is not None:
        chosen, step_source = source.optimizer_step, "the step count of the file's Adam state"
    else:
        chosen, step_source = 0, "unknown, the file has no optimizer state"
    ema_model = None
    if config.training.ema_rate > 0:  # the trainer resumes EMA runs only from checkpoints with EMA weights
        ema_model = checkpoints.build_float32_model(config)
        ema_model.set_weights(model.get_weights())
    optimizer = make_optimizer(config)
    optimizer.build(model.trainable_variables)  # fresh slots, in the trainer's order: resume = fine-tuning
    parameters = torch_mapping.parameter_count(mappings)
    record = {
        "source": source.path,
        "sha256": _sha256(source.path),
        "network": "CondRefineNetDilated (ermongroup/ncsn)",
        "saved_as": "[model_state_dict, optimizer_state_dict]" if source.wrapped else "state dict",
        "module_prefix": source.module_prefix,
        "tensors": len(mappings),
        "parameters": parameters,
        "step": chosen,
        "step_source": step_source,
        "optimizer": "not imported: the checkpoint holds a fresh Adam state (resuming = fine-tuning)",
        "config": config_name or config.name,
        "versions": {"ncsn_tf": __version__, "torch": str(_torch().__version__)},
    }
    prefix = _write_workdir(root, config, model, ema_model, optimizer, chosen, record)
    return ImportResult(root, prefix, chosen, step_source, len(mappings), parameters, ema_model is not None, source)


# ---------------------------------------------------------------------------
# The reverse direction and the documentation table.
# ---------------------------------------------------------------------------


def to_torch_state_dict(model: Any, prefix: str = "") -> OrderedDict[str, Any]:
    """The model's weights as a reference state dict of torch tensors (names, layouts, order of the reference).

    `torch.save([to_torch_state_dict(model, prefix="module."), optimizer_state], path)`
    writes what the reference's runner loads into its `nn.DataParallel` model.

    Args:
        model: a built CondRefineNetDilated.
        prefix: put before every name (`"module."` for the reference's DataParallel form).

    Returns:
        OrderedDict name -> float32 CPU tensor (173 entries).

    Raises:
        TorchImportError: PyTorch missing, or the model has no reference counterpart.
    """
    from ncsn_tf.torch_mapping import MappingError, reference_state_dict

    torch = _torch()
    try:
        arrays = reference_state_dict(model)
    except MappingError as error:
        raise TorchImportError(str(error)) from None
    return OrderedDict((prefix + name, torch.from_numpy(array)) for name, array in arrays.items())


def documentation_table() -> str:
    """The Markdown mapping table of docs/import_torch.md (MNIST and CIFAR-10 / CelebA shapes)."""
    from ncsn_tf.checkpoints import build_float32_model
    from ncsn_tf.torch_mapping import mapping_table_markdown

    mnist, cifar10 = configs.get_config("mnist"), configs.get_config("cifar10")
    return mapping_table_markdown(
        {
            "MNIST (ngf 64, C 1, L 10)": build_float32_model(mnist),
            "CIFAR-10 / CelebA (ngf 128, C 3, L 10)": build_float32_model(cifar10),
        }
    )


# ---------------------------------------------------------------------------
# The command line.
# ---------------------------------------------------------------------------


def _refinenet_configs() -> list[str]:
    return [name for name, make in configs.CONFIGS.items() if make().model.architecture == "refinenet"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Import a PyTorch checkpoint of the reference NCSN code (ermongroup/ncsn, CondRefineNetDilated) "
        "into a new workdir that export, evaluate and the trainer accept.",
    )
    parser.add_argument("checkpoint", nargs="?", help="the reference's checkpoint.pth (run/logs/<doc>/checkpoint.pth)")
    parser.add_argument(
        "--config",
        choices=_refinenet_configs(),
        help="the settings the checkpoint was trained with (mnist, cifar10, celeba: the reference's)",
    )
    parser.add_argument("--workdir", help="the new workdir to write (must not hold a run)")
    parser.add_argument(
        "--step",
        type=int,
        default=None,
        help="training step the checkpoint carries (default: the step count of its Adam state, else 0)",
    )
    parser.add_argument(
        "--print-mapping",
        action="store_true",
        help="print the name mapping table (Markdown, as in docs/import_torch.md) and exit",
    )
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="section.key=value",
        help="config overrides, e.g. model.ngf=16 for a narrower network trained with the reference code",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, import, print what was written and what to run next; return the exit code."""
    parser = _parser()
    args = parser.parse_intermixed_args(argv)  # CHECKPOINT, options and overrides in any order

    def fail(message: str, code: int = 2) -> int:
        print(f"{PROGRAM}: error: {message}", file=sys.stderr)
        return code

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.print_mapping:
        print(documentation_table(), end="")
        return 0
    if not args.checkpoint or not args.config or not args.workdir:
        missing = [flag for flag, value in (("CHECKPOINT", args.checkpoint), ("--config", args.config), ("--workdir", args.workdir)) if not value]
        return fail(f"{', '.join(missing)} required, e.g. {PROGRAM} run/logs/cifar10/checkpoint.pth --config cifar10 --workdir runs/cifar10_reference")
    try:
        config = configs.apply_overrides(configs.get_config(args.config), args.overrides)
    except ConfigError as error:
        return fail(str(error))
    try:
        _torch()  # before TensorFlow starts: a missing PyTorch is reported at once
        result = import_checkpoint(args.checkpoint, config, args.workdir, step=args.step, config_name=args.config)
    except TorchImportError as error:
        return fail(str(error))
    except KeyboardInterrupt:
        return fail("interrupted; nothing was written", 130)
    source = result.source
    form = "[model_state_dict, optimizer_state_dict]" if source.wrapped else "a state dict"
    form += ", keys with 'module.'" if source.module_prefix else ""
    print(f"{PROGRAM}: read {result.tensors} tensors ({result.parameters:,} parameters) from {source.path} ({form})")
    print(f"{PROGRAM}: wrote {result.workdir} (--config {args.config}; step {result.step}: {result.step_source})")
    print(f"{PROGRAM}: the optimizer state is not imported: training this workdir further is fine-tuning with a fresh Adam")
    name = os.path.basename(os.path.normpath(result.workdir))
    print(f"next: python -m export {args.workdir} --out exports && ncsn-desktop exports/{name}")
    print(f"fine-tune: python -m ncsn_tf.train --workdir {args.workdir} --steps {max(result.step, 0) + config.training.checkpoint_every}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
