"""The training workdir: its layout, `config.json`, and checkpoints of model/EMA weights.

A workdir (DESIGN.md) is::

    WORKDIR/
      config.json     # configs.to_dict(config): everything needed to rebuild the model
      checkpoints/    # tf.train.CheckpointManager: ckpt-N.index/.data-*, "checkpoint"
      samples/        # PNG grids
      logs/           # TensorBoard event files

Which checkpoints a workdir holds is decided by listing `checkpoints/` (every
`ckpt-N.index`), not by trusting the manager's `checkpoint` state file alone: a
kill between a save and the state update, a deleted state file or a deleted
checkpoint make the two disagree, and the trainer then resumes from the newest
checkpoint that restores (`list_checkpoints`, `read_state`, `repair_state`).

A checkpoint holds `model` and (when EMA is on) `ema_model` weights, the
`optimizer`, the `step` (int64) and, where possible, the data `iterator`.

Keras 3 models are NOT fully tracked by `tf.train.Checkpoint`: layers kept in
Python lists (`self.blocks = [...]`) are invisible to TensorFlow's object graph,
so `tf.train.Checkpoint(model=model)` silently saves only the layers assigned
directly as attributes (probed here: the toy MLP lost all but its output layer).
This module therefore checkpoints a model as its `model.weights` keyed by
position and variable name (`0007_kernel`), which is stable for the same code
and independent of Keras' process-global automatic layer names. Always go
through `make_checkpoint` / `load_for_inference` instead of building a
`tf.train.Checkpoint` on a Keras model directly.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import time
import uuid
from typing import Any

import keras
import tensorflow as tf

from ncsn_tf import configs
from ncsn_tf.configs import Config, ConfigError

CONFIG_FILE = "config.json"
CHECKPOINTS_DIR = "checkpoints"
SAMPLES_DIR = "samples"
LOGS_DIR = "logs"
CHECKPOINT_PREFIX = "ckpt"  # CheckpointManager names checkpoints ckpt-<step>
STATE_FILE = "checkpoint"  # tf.train.CheckpointManager's list of its checkpoints, in checkpoints/

MODEL_KEY = "model"
EMA_KEY = "ema_model"
OPTIMIZER_KEY = "optimizer"
STEP_KEY = "step"
ITERATOR_KEY = "iterator"


_INDEX_FILE = re.compile(rf"^{CHECKPOINT_PREFIX}-(\d+)\.index$")
_DATA_FILE = re.compile(rf"^({CHECKPOINT_PREFIX}-\d+)\.data-\d{{5}}-of-\d{{5}}$")
# What a save killed midway leaves behind (names as TensorFlow 2.21 writes them):
# the sharded save stages its files in `<prefix>_temp/` and merges them into
# `<prefix>.index/.data-*` (TF documents the staging folder of a failed save as safe
# to remove); the state file is written to `checkpoint.tmp<uuid4 hex>` and renamed.
_SAVE_STAGING_DIR = re.compile(rf"^{CHECKPOINT_PREFIX}-\d+_temp$")
_STATE_TEMP_FILE = re.compile(rf"^{STATE_FILE}\.tmp[0-9a-f]{{32}}$")
_CONFIG_TEMP_FILE = CONFIG_FILE + ".tmp"  # write_config's temporary file

logger = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint or workdir is missing, corrupt or does not match; the message says what to do."""


class UnreadableCheckpointError(CheckpointError):
    """A checkpoint's files are missing, truncated or corrupt (as opposed to belonging to another model).

    Attributes:
        reason: the underlying error in one short line (e.g. TF's "Checksum does not match ...").
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


@dataclasses.dataclass(frozen=True)
class WorkdirPaths:
    """Absolute paths of the parts of one training workdir."""

    root: str
    config: str
    checkpoints: str
    samples: str
    logs: str


def workdir_paths(workdir: str | os.PathLike[str]) -> WorkdirPaths:
    """The paths of the workdir layout (nothing is created)."""
    root = os.path.abspath(os.fspath(workdir))
    return WorkdirPaths(
        root=root,
        config=os.path.join(root, CONFIG_FILE),
        checkpoints=os.path.join(root, CHECKPOINTS_DIR),
        samples=os.path.join(root, SAMPLES_DIR),
        logs=os.path.join(root, LOGS_DIR),
    )


def check_workdir_path(workdir: str | os.PathLike[str]) -> WorkdirPaths:
    """The workdir's paths, after checking that a training run can use (or create) them.

    Nothing is created. Checked: the workdir and its parts are folders (or absent) and
    `config.json` is a file (or absent), and the nearest existing folder above a new
    workdir is writable.

    Raises:
        CheckpointError: a file where a folder must be (or the reverse), or no write access.
    """
    paths = workdir_paths(workdir)
    if os.path.exists(paths.root) and not os.path.isdir(paths.root):
        raise CheckpointError(f"workdir {paths.root} is a file, not a folder; pass a new folder or a training workdir as --workdir")
    for folder in (paths.checkpoints, paths.samples, paths.logs):
        if os.path.exists(folder) and not os.path.isdir(folder):
            raise CheckpointError(f"{folder} is a file, but the workdir needs a folder there; move it away or use a new --workdir")
    if os.path.exists(paths.config) and not os.path.isfile(paths.config):
        raise CheckpointError(f"{paths.config} is not a file; move it away or use a new --workdir")
    existing = paths.root
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise CheckpointError(f"cannot create workdir {paths.root}: {existing} is a file, not a folder; pass another --workdir")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise CheckpointError(f"cannot write into {existing}; pass a --workdir you can write to")
    return paths


# ---------------------------------------------------------------------------
# What goes into a checkpoint.
# ---------------------------------------------------------------------------


def _variable_key(index: int, variable: Any) -> str:
    short_name = re.sub(r"[^0-9A-Za-z_]", "_", variable.name.split("/")[-1].split(":")[0])
    return f"{index:04d}_{short_name}"


def model_weights_trackable(model: keras.Model) -> tf.train.Checkpoint:
    """A trackable holding every variable of `model`, keyed `0000_kernel`, `0001_bias`, ...

    Keys come from the position in `model.weights` and the variable's own name, so
    they do not depend on Keras' automatic layer names (which change with whatever
    was built earlier in the process). The model must be built.
    """
    if not model.weights:
        raise CheckpointError(f"model {model.name!r} has no weights; build it (call it once) before checkpointing")
    return tf.train.Checkpoint(**{_variable_key(i, v): v for i, v in enumerate(model.weights)})


def make_checkpoint(
    model: keras.Model,
    *,
    ema_model: keras.Model | None = None,
    optimizer: keras.optimizers.Optimizer | None = None,
    step: tf.Variable | None = None,
    iterator: Any = None,
) -> tf.train.Checkpoint:
    """The `tf.train.Checkpoint` of a training run (the only layout this project writes).

    Args:
        model: the built score model (its weights go under `model`).
        ema_model: built EMA copy of the model, or None when EMA is off.
        optimizer: the built optimizer, or None (inference / `write_workdir`).
        step: int64 variable, the number of optimizer steps taken.
        iterator: a checkpointable data iterator, or None.

    Returns:
        A tf.train.Checkpoint; save it with a `tf.train.CheckpointManager` on the
        workdir's `checkpoints/` folder.
    """
    parts: dict[str, Any] = {MODEL_KEY: model_weights_trackable(model)}
    if ema_model is not None:
        parts[EMA_KEY] = model_weights_trackable(ema_model)
    if optimizer is not None:
        parts[OPTIMIZER_KEY] = optimizer
    if step is not None:
        parts[STEP_KEY] = step
    if iterator is not None:
        parts[ITERATOR_KEY] = iterator
    return tf.train.Checkpoint(**parts)


# ---------------------------------------------------------------------------
# Finding and inspecting checkpoints.
# ---------------------------------------------------------------------------


def checkpoint_number(prefix: str | os.PathLike[str]) -> int:
    """N of a prefix `.../ckpt-N` (the training step it was saved at)."""
    match = re.fullmatch(rf"{CHECKPOINT_PREFIX}-(\d+)", os.path.basename(os.fspath(prefix)))
    if match is None:
        raise CheckpointError(f"{os.fspath(prefix)} is not a checkpoint prefix of the form .../{CHECKPOINT_PREFIX}-N")
    return int(match.group(1))


def list_checkpoints(checkpoints_dir: str | os.PathLike[str]) -> list[str]:
    """Prefixes of every checkpoint in the folder (a `ckpt-N.index` file), oldest (smallest N) first.

    The folder is listed; the `checkpoint` state file is not consulted, so a missing
    or stale state file hides nothing. Whether each one restores is not checked.
    """
    checkpoints_dir = os.path.abspath(os.fspath(checkpoints_dir))
    if not os.path.isdir(checkpoints_dir):
        return []
    numbers = sorted(int(m.group(1)) for name in os.listdir(checkpoints_dir) if (m := _INDEX_FILE.match(name)))
    return [os.path.join(checkpoints_dir, f"{CHECKPOINT_PREFIX}-{n}") for n in numbers]


def latest_checkpoint(checkpoints_dir: str | os.PathLike[str]) -> str | None:
    """Prefix of the newest checkpoint in `checkpoints_dir` (`.../ckpt-12`, the largest N), or None."""
    found = list_checkpoints(checkpoints_dir)
    return found[-1] if found else None


@dataclasses.dataclass(frozen=True)
class CheckpointState:
    """What the manager's `checkpoint` state file says, and whether it can be used.

    Attributes:
        latest: absolute prefix the file names as the latest checkpoint, or None.
        listed: absolute prefixes the file lists (the manager rotates these), oldest first.
        problem: None when the file is readable and names a checkpoint, else why not
            ("is missing", "is unreadable").
    """

    latest: str | None
    listed: tuple[str, ...]
    problem: str | None


def read_state(checkpoints_dir: str | os.PathLike[str]) -> CheckpointState:
    """Read the `checkpoint` state file of `checkpoints_dir` (never raises for a bad file)."""
    checkpoints_dir = os.path.abspath(os.fspath(checkpoints_dir))
    if not os.path.isfile(os.path.join(checkpoints_dir, STATE_FILE)):
        return CheckpointState(None, (), "is missing")
    tf_logger = tf.get_logger()
    level = tf_logger.level
    tf_logger.setLevel(logging.ERROR)  # get_checkpoint_state logs two warnings for an unparsable file
    try:
        state = tf.train.get_checkpoint_state(checkpoints_dir)
    except (ValueError, tf.errors.OpError):  # ValueError: parses but names no checkpoint
        state = None
    finally:
        tf_logger.setLevel(level)
    if state is None:
        return CheckpointState(None, (), "is unreadable")
    listed = tuple(os.path.abspath(p) for p in state.all_model_checkpoint_paths)
    return CheckpointState(os.path.abspath(state.model_checkpoint_path), listed, None)


def repair_state(checkpoints_dir: str | os.PathLike[str], latest: str) -> str:
    """Rewrite the state file so that the manager sees every checkpoint in the folder, `latest` last.

    `tf.train.CheckpointManager` rotates only the checkpoints its state file lists:
    one it does not know is never deleted (kept forever), one listed but absent is
    harmless, and a wrong `latest` misleads every other reader. After a
    disagreement the list is rebuilt from the folder: checkpoints newer than
    `latest` (they did not restore) first, so rotation removes them first, then the
    older ones by step, then `latest`. Nothing is deleted here; the manager rotates
    only after its next save is complete. Written atomically (temporary file +
    rename, the temporary named as TF names its own, so `remove_save_leftovers`
    knows it).

    Returns:
        The path of the state file.
    """
    checkpoints_dir = os.path.abspath(os.fspath(checkpoints_dir))
    found = list_checkpoints(checkpoints_dir)
    step = checkpoint_number(latest)
    newer = [p for p in found if checkpoint_number(p) > step]
    older = [p for p in found if checkpoint_number(p) < step]
    ordered = [*newer, *older, os.path.join(checkpoints_dir, f"{CHECKPOINT_PREFIX}-{step}")]
    # The manager keeps only entries younger than last_preserved_timestamp (0 here), so every
    # entry needs a real timestamp: the index file's modification time.
    timestamps = [_modified(p + ".index") for p in ordered]
    proto = tf.compat.v1.train.generate_checkpoint_state_proto(
        checkpoints_dir,
        os.path.basename(ordered[-1]),
        all_model_checkpoint_paths=[os.path.basename(p) for p in ordered],  # relative: the workdir may move
        all_model_checkpoint_timestamps=timestamps,
        last_preserved_timestamp=0.0,
    )
    path = os.path.join(checkpoints_dir, STATE_FILE)
    temporary = f"{path}.tmp{uuid.uuid4().hex}"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(str(proto))  # the text format get_checkpoint_state parses
    os.replace(temporary, path)
    return path


def _modified(path: str) -> float:
    try:
        return min(os.path.getmtime(path), time.time())
    except OSError:  # absent (a checkpoint listed but gone): any positive time will do
        return time.time()


def remove_save_leftovers(workdir: str | os.PathLike[str]) -> list[str]:
    """Delete what a kill during a save left in the workdir; returns the names removed.

    Removed: `checkpoints/ckpt-N_temp/` (a sharded save's staging folder),
    `checkpoints/checkpoint.tmp<hex>` (a state file never renamed into place),
    `checkpoints/ckpt-N.data-*` without its `ckpt-N.index` (a merge killed before the
    index was written, or a rotation killed between its two deletions: TF cannot read
    a data file without its index), and `config.json.tmp`. Never a checkpoint that has
    an index file. Call it only while no other process saves into this workdir (the
    trainer's chief, before its first save).
    """
    paths = workdir_paths(workdir)
    removed = []
    if os.path.isfile(os.path.join(paths.root, _CONFIG_TEMP_FILE)):
        os.remove(os.path.join(paths.root, _CONFIG_TEMP_FILE))
        removed.append(_CONFIG_TEMP_FILE)
    if not os.path.isdir(paths.checkpoints):
        return removed
    names = sorted(os.listdir(paths.checkpoints))
    indexed = {m.group(0)[: -len(".index")] for name in names if (m := _INDEX_FILE.match(name))}
    for name in names:
        full = os.path.join(paths.checkpoints, name)
        data = _DATA_FILE.match(name)
        if _SAVE_STAGING_DIR.match(name) and os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full)
            removed.append(f"{CHECKPOINTS_DIR}/{name}/")
        elif (_STATE_TEMP_FILE.match(name) or (data and data.group(1) not in indexed)) and os.path.isfile(full):
            os.remove(full)
            removed.append(f"{CHECKPOINTS_DIR}/{name}")
    return removed


def resolve_checkpoint(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(workdir, checkpoint prefix) for a workdir, a checkpoints dir or a prefix.

    Raises:
        CheckpointError: nothing at `path`, or no checkpoint there.
    """
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        inner = os.path.join(path, CHECKPOINTS_DIR)
        if os.path.isdir(inner):  # a workdir
            workdir, checkpoints_dir = path, inner
        else:  # a checkpoints dir
            workdir, checkpoints_dir = os.path.dirname(path), path
        prefix = latest_checkpoint(checkpoints_dir)
        if prefix is None:
            raise CheckpointError(f"no checkpoint in {checkpoints_dir}; train first (python -m ncsn_tf.train) or pass a checkpoint prefix such as .../ckpt-500")
        return workdir, prefix
    if os.path.exists(path + ".index"):  # a prefix .../checkpoints/ckpt-N
        return os.path.dirname(os.path.dirname(path)), path
    if path.endswith(".index") and os.path.exists(path):
        prefix = path[: -len(".index")]
        return os.path.dirname(os.path.dirname(prefix)), prefix
    raise CheckpointError(f"no workdir, checkpoints folder or checkpoint at {path}; pass a training workdir or a prefix such as WORKDIR/checkpoints/ckpt-500")


def _list_variables(prefix: str) -> dict[str, list[int]]:
    try:
        return dict(tf.train.list_variables(prefix))
    except Exception as error:  # OpError, IndexError ("Parsed past limit"), ...: all mean unreadable
        raise unreadable_error(prefix, error) from None


def error_summary(error: BaseException) -> str:
    """The first line of an error's text, without TF's `{{function_node ...}}` and `[Op:...]` wrapping."""
    text = str(error).strip().splitlines()
    line = text[0] if text else type(error).__name__
    line = re.sub(r"^\{\{function_node [^}]*\}\}\s*", "", line)
    return re.sub(r"\s*\[Op:\w+\]$", "", line)


def unreadable_error(prefix: str, error: BaseException) -> UnreadableCheckpointError:
    """The error for a checkpoint whose files cannot be read by `error`, saying what to do instead."""
    directory = os.path.dirname(prefix)
    older = [p for p in list_checkpoints(directory) if checkpoint_number(p) < _number_or_zero(prefix)]
    instead = f"pass an older checkpoint such as {older[-1]}" if older else "no older checkpoint is there"
    reason = error_summary(error)
    return UnreadableCheckpointError(
        f"checkpoint {prefix} is unreadable or corrupt ({reason}); {instead}, "
        "or rerun training on the workdir, which resumes from the newest checkpoint that restores",
        reason,
    )


def _number_or_zero(prefix: str) -> int:
    try:
        return checkpoint_number(prefix)
    except CheckpointError:
        return 0


def _model_variable_count(variables: dict[str, list[int]], key: str) -> int:
    pattern = re.compile(rf"^{key}/[^/]+/\.ATTRIBUTES/VARIABLE_VALUE$")
    return sum(1 for name in variables if pattern.match(name))


def checkpoint_has_ema(prefix: str) -> bool:
    """Whether the checkpoint at `prefix` holds EMA weights."""
    return _model_variable_count(_list_variables(prefix), EMA_KEY) > 0


def checkpoint_step(prefix: str) -> int:
    """The training step stored in the checkpoint at `prefix`."""
    variables = _list_variables(prefix)
    name = f"{STEP_KEY}/.ATTRIBUTES/VARIABLE_VALUE"
    if name not in variables:
        raise CheckpointError(f"checkpoint {prefix} has no training step; it was not written by ncsn_tf")
    try:
        return int(tf.train.load_variable(prefix, name))
    except Exception as error:  # OpError, IndexError ("Parsed past limit"), ...: all mean unreadable
        raise unreadable_error(prefix, error) from None


def restore_model_weights(model: keras.Model, prefix: str, *, key: str = MODEL_KEY) -> None:
    """Restore the weights stored under `key` into the built `model`, checking the match.

    Raises:
        CheckpointError: corrupt files, no weights under `key`, a different number of
            variables, or a shape mismatch (e.g. a checkpoint of another `ngf`).
    """
    variables = _list_variables(prefix)
    stored = _model_variable_count(variables, key)
    if stored == 0:
        raise CheckpointError(f"checkpoint {prefix} holds no {key!r} weights; it was not written by ncsn_tf")
    if stored != len(model.weights):
        raise CheckpointError(
            f"checkpoint {prefix} holds {stored} {key} variables but the model from config.json has {len(model.weights)}; "
            "the checkpoint belongs to a different model configuration: use its own config.json"
        )
    checkpoint = tf.train.Checkpoint(**{key: model_weights_trackable(model)})
    try:
        status = checkpoint.restore(prefix)
        status.assert_existing_objects_matched()
        status.expect_partial()  # optimizer / iterator / the other weights are not wanted here
    except (ValueError, AssertionError) as error:
        raise CheckpointError(
            f"checkpoint {prefix} does not match the model built from config.json ({error_summary(error)}); "
            "the checkpoint belongs to a different model configuration: use its own config.json"
        ) from None
    except Exception as error:  # OpError, IndexError ("Parsed past limit"), ...: all mean unreadable
        raise unreadable_error(prefix, error) from None


# ---------------------------------------------------------------------------
# Configs beside checkpoints.
# ---------------------------------------------------------------------------


def read_config(workdir: str | os.PathLike[str]) -> Config:
    """The `config.json` of a workdir.

    Raises:
        CheckpointError: the file is missing, not JSON, or not a valid config.
    """
    path = workdir_paths(workdir).config
    if not os.path.isfile(path):
        raise CheckpointError(f"no {CONFIG_FILE} in {os.path.dirname(path)}; a workdir needs the config it was trained with")
    try:
        return configs.load_json(path)
    except ConfigError as error:
        raise CheckpointError(f"{path} is not a valid config ({error}); restore the file written by the trainer") from None


def write_config(workdir: str | os.PathLike[str], config: Config) -> str:
    """Write `config.json` into the workdir atomically; returns its path.

    The JSON goes to `config.json.tmp`, is flushed to disk, then renamed over
    `config.json`: a reader (or a kill at any moment) sees the old file or the new
    one, never a part.
    """
    path = workdir_paths(workdir).config
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = os.path.join(os.path.dirname(path), _CONFIG_TEMP_FILE)
    configs.save_json(config, temporary)
    with open(temporary, "rb") as f:
        os.fsync(f.fileno())
    os.replace(temporary, path)
    return path


def model_defining_fields(config: Config) -> dict[str, Any]:
    """The config values that determine the network's weights and meaning."""
    return {
        "data.shape": tuple(config.data.shape),
        **{f"model.{k}": v for k, v in dataclasses.asdict(config.model).items()},
        **{f"noise.{k}": v for k, v in dataclasses.asdict(config.noise).items()},
        "training.ema": config.training.ema_rate > 0,
    }


def check_same_model(saved: Config, requested: Config, workdir: str) -> None:
    """Raise CheckpointError when `requested` would change the model trained in `workdir`.

    Allowed to differ: everything that does not change the network (steps, logging
    and checkpoint intervals, learning rate, sampling settings, ...).
    """
    before, after = model_defining_fields(saved), model_defining_fields(requested)
    changed = [f"{k}: {before[k]!r} -> {after[k]!r}" for k in before if before[k] != after[k]]
    if changed:
        raise CheckpointError(
            f"the config conflicts with {os.path.join(workdir, CONFIG_FILE)} ({'; '.join(changed)}); "
            "use the same model settings to resume, or a new --workdir"
        )


# ---------------------------------------------------------------------------
# The two entry points other parts use.
# ---------------------------------------------------------------------------


def build_model_with_policy(config: Config, dtype_policy: str) -> keras.Model:
    """`build_score_model(config)` under `dtype_policy` ("float32", "mixed_bfloat16", ...).

    The global policy is restored afterwards. Variables are float32 under every
    policy Keras offers for training, so weights move between copies with
    `set_weights` whatever their compute dtypes.
    """
    from ncsn_tf.models import build_score_model

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(dtype_policy)
    try:
        return build_score_model(config)
    finally:
        keras.config.set_dtype_policy(previous)


def build_float32_model(config: Config) -> keras.Model:
    """`build_score_model(config)` under the float32 dtype policy, whatever the global one is."""
    return build_model_with_policy(config, "float32")


def write_workdir(
    workdir: str | os.PathLike[str],
    config: Config,
    model: keras.Model,
    step: int = 0,
    ema_model: keras.Model | None = None,
) -> str:
    """Write `config.json` and one checkpoint (`ckpt-<step>`) of `model` into `workdir`.

    For tests and tools that need a workdir without training. The model must be
    built (e.g. by `build_score_model`).

    Returns:
        The checkpoint prefix (`WORKDIR/checkpoints/ckpt-<step>`).
    """
    paths = workdir_paths(workdir)
    write_config(paths.root, config)
    os.makedirs(paths.checkpoints, exist_ok=True)
    step_variable = tf.Variable(int(step), dtype=tf.int64, trainable=False)
    checkpoint = make_checkpoint(model, ema_model=ema_model, step=step_variable)
    manager = tf.train.CheckpointManager(
        checkpoint, paths.checkpoints, max_to_keep=config.training.keep_checkpoints, checkpoint_name=CHECKPOINT_PREFIX
    )
    return manager.save(checkpoint_number=int(step))


def load_for_inference(path: str | os.PathLike[str], use_ema: bool = True) -> tuple[Config, keras.Model, int]:
    """The config, the float32 score model with trained weights, and the step.

    Args:
        path: a workdir, its `checkpoints/` folder, or a checkpoint prefix
            (`WORKDIR/checkpoints/ckpt-12`; config.json is read from WORKDIR).
        use_ema: take the EMA weights when the checkpoint has them (else the raw
            weights); ignored when there are none.

    Returns:
        (config, model, step): the model is built before restoring (restoring into an
        unbuilt subclassed model silently creates duplicate variables) in float32 even
        when trained in mixed_bfloat16 (the variables are float32 anyway).

    Raises:
        CheckpointError: missing workdir/config.json/checkpoint, or a checkpoint that
            does not match the model config.json describes.
        UnreadableCheckpointError: corrupt or truncated checkpoint files (a
            CheckpointError; the message names an older checkpoint to pass instead).
    """
    workdir, prefix = resolve_checkpoint(path)
    config = read_config(workdir)
    step = checkpoint_step(prefix)
    key = EMA_KEY if use_ema and checkpoint_has_ema(prefix) else MODEL_KEY
    model = build_float32_model(config)
    restore_model_weights(model, prefix, key=key)
    return config, model, step
