"""Denoising-score-matching training under `tf.distribute`, with EMA, NaN guard and resume.

`train(config, workdir)` runs the whole job: pick a distribution strategy, build
the score model (and its EMA copy) and Adam inside the strategy's scope, feed a
distributed `tf.data` pipeline to a custom training step run through
`strategy.run` in a plain `tf.function` (no XLA: 28-36% slower on CPU, README
"Results", and bf16 training under XLA fails to compile), and write the workdir of
docs/DESIGN.md: `config.json`, checkpoints, TensorBoard scalars and sample grids.
`model.fit` is not used: it fails under MultiWorkerMirroredStrategy with Keras 3
(keras#20585).

What a run does to its workdir, in order:
1. Nothing until the model is built, the newest checkpoint that restores is
   restored and the first step has run with finite loss and finite new weights: a
   run that fails before that (bad data, a mismatched or unreadable checkpoint, a
   NaN at once) leaves the workdir byte for byte as it was.
2. Then (the chief only): leftovers of a save killed earlier are removed (and
   named), the folders are made, `config.json` is written atomically and, when the
   manager's state file disagrees with the checkpoints in the folder, it is rebuilt.
3. Checkpoints every `training.checkpoint_every` steps, each one after the new
   weights passed the NaN/Inf check; the manager deletes the oldest beyond
   `training.keep_checkpoints` only after a newer checkpoint is complete.

Resume: the checkpoints are found by listing `checkpoints/`, and the newest that
restores is used; when that is not what the state file says (a kill between a save
and its state update, a deleted state file or checkpoint, a corrupt newest
checkpoint), one log line says so. Checkpoints that all fail to restore are an
error, never a fresh start.

Noise for the loss travels with the data: every global batch carries its own
noise-level indices (uniform per example) and standard-normal noise, drawn
statelessly from (seed, batch number). Which replica or worker trains on an
example therefore never changes its noise, so one device and N replicas take the
same step on the same global batch, and a resumed run continues the same stream.

The data iterator (with its shuffle buffer and position) is saved in the
checkpoint under the default (one-device) strategy. The iterators of the other
strategies (`DistributedIterator`) are not checkpointable in TF 2.21, so under
Mirrored/MultiWorkerMirrored/TPU strategies a resumed run starts the data stream
afresh (the same order as a fresh run from the same seed, so some batches are
seen again; training is unaffected statistically). `checkpoint_data=False` turns it off everywhere (the
shuffle buffer of a large dataset makes checkpoints big: CIFAR-10's 10k buffer is
~120 MB).

References:
    Song & Ermon, "Generative Modeling by Estimating Gradients of the Data
    Distribution", NeurIPS 2019 (objective, Section 4.2; Adam lr 1e-3).
    Song & Ermon, "Improved Techniques for Training Score-Based Generative
    Models", NeurIPS 2020 (EMA of weights, rate 0.999).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
import math
import operator
import os
import shutil
import sys
import tempfile
import time
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2

from ncsn_tf import checkpoints, configs
from ncsn_tf.checkpoints import CheckpointError
from ncsn_tf.configs import Config, ConfigError
from ncsn_tf.losses import denoising_score_matching

logger = logging.getLogger(__name__)

_NOISE_STREAM = 0x4E015E  # salt of the stateless seeds of the loss noise (differs from data.py's)
PROBE_BATCH = 16  # examples of the loss check run on new weights before each save


_SCALAR_METADATA = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why and what to do."""


class NonFiniteLossError(TrainingError):
    """The loss (or the weights) became NaN/Inf; nothing of the bad state was saved."""


@dataclasses.dataclass(frozen=True)
class TrainResult:
    """What a call to `train` did.

    Attributes:
        workdir: absolute path of the workdir.
        start_step: step the run started from (0, or the checkpoint it resumed).
        step: step reached (== training.steps unless interrupted by an error).
        loss: mean loss of the last logging interval (None if no step ran).
        checkpoint: prefix of the latest checkpoint (None if none was written).
        sample_grid: path of the final sample PNG (None if not written).
        steps_per_second: training speed after the first (traced) step, None if
            fewer than two steps ran.
        model: the trained score model (raw weights).
        ema_model: its EMA copy, or None when EMA is off.
    """

    workdir: str
    start_step: int
    step: int
    loss: float | None
    checkpoint: str | None
    sample_grid: str | None
    steps_per_second: float | None
    model: keras.Model = dataclasses.field(repr=False)
    ema_model: keras.Model | None = dataclasses.field(repr=False, default=None)


# ---------------------------------------------------------------------------
# Strategies.
# ---------------------------------------------------------------------------


def _tf_config_worker_count() -> int:
    """Number of chief + worker tasks in TF_CONFIG (0 when unset), without touching TF."""
    text = os.environ.get("TF_CONFIG", "")
    if not text.strip():
        return 0
    try:
        cluster = json.loads(text).get("cluster", {})
    except (json.JSONDecodeError, AttributeError):
        raise TrainingError("TF_CONFIG is not valid JSON; fix or unset it") from None
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


def select_strategy(name: str) -> tf.distribute.Strategy:
    """The `tf.distribute` strategy for `training.strategy`.

    - "auto": MultiWorkerMirroredStrategy when TF_CONFIG names more than one worker,
      MirroredStrategy when there is more than one GPU, else the default strategy.
    - "default": one device (the default strategy).
    - "mirrored": MirroredStrategy over all local GPUs, or over all logical CPU
      devices when there is no GPU.
    - "multi_worker": MultiWorkerMirroredStrategy from TF_CONFIG.
    - "tpu": TPUStrategy on the TPU the environment names (TPU_NAME / Cloud TPU VM).

    Create the strategy before any other TensorFlow work in the process:
    MultiWorkerMirroredStrategy must configure the runtime before it starts.
    """
    if name == "auto":
        if _tf_config_worker_count() > 1:
            return tf.distribute.MultiWorkerMirroredStrategy()
        if len(tf.config.list_logical_devices("GPU")) > 1:
            return tf.distribute.MirroredStrategy()
        return tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy(devices=[d.name for d in devices])
    if name == "multi_worker":
        if _tf_config_worker_count() == 0:
            raise TrainingError("training.strategy=multi_worker needs TF_CONFIG describing the cluster and this task")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", ""))
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, tf.errors.OpError) as error:
            raise TrainingError(f"training.strategy=tpu but no TPU was found ({error}); set TPU_NAME or pick another strategy") from None
        return tf.distribute.TPUStrategy(resolver)
    raise TrainingError(f"unknown training.strategy {name!r}; use auto, default, mirrored, multi_worker or tpu")


def _task(strategy: tf.distribute.Strategy) -> tuple[str | None, int, bool]:
    """(task type, task id, is chief) of this process in a multi-worker cluster."""
    resolver = getattr(strategy, "cluster_resolver", None)
    task_type = getattr(resolver, "task_type", None) if resolver is not None else None
    task_id = int(getattr(resolver, "task_id", 0) or 0) if resolver is not None else 0
    if task_type is None or task_type == "chief":
        return task_type, task_id, True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type, task_id, task_type == "worker" and task_id == 0 and not has_chief


def _is_trackable(iterator: Any) -> bool:
    """Whether `tf.train.Checkpoint` can save the iterator: a plain `tf.data.Iterator`, not a DistributedIterator."""
    return isinstance(iterator, tf.data.Iterator) and not isinstance(iterator, tf.distribute.DistributedIterator)


# ---------------------------------------------------------------------------
# Data with its loss noise.
# ---------------------------------------------------------------------------


def training_dataset(config: Config, global_batch_size: int, seed: int) -> tf.data.Dataset:
    """Global batches `(clean, sigma_indices, noise)` for the DSM loss.

    Returns:
        Dataset of (clean [B, *shape] float32 (images in [0, 1]), sigma_indices [B]
        int32 uniform in [0, L), noise [B, *shape] float32 standard normal), with the
        auto-shard policy DATA (every worker reads the same stream and keeps its share).
    """
    from ncsn_tf.data import make_dataset

    num_levels = config.noise.num_levels
    clean_batches = make_dataset(config, batch_size=global_batch_size, seed=seed)  # [B, *shape]
    key = tf.constant([seed, _NOISE_STREAM], dtype=tf.int64)  # [2] stateless seed

    def attach_noise(batch_number: tf.Tensor, clean: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        batch_key = tf.random.experimental.stateless_fold_in(key, batch_number)  # [2]
        level_key = tf.random.experimental.stateless_fold_in(batch_key, 0)
        noise_key = tf.random.experimental.stateless_fold_in(batch_key, 1)
        sigma_indices = tf.random.stateless_uniform(
            [global_batch_size], seed=level_key, minval=0, maxval=num_levels, dtype=tf.int32
        )  # [B] in [0, L)
        noise = tf.random.stateless_normal(tf.shape(clean), seed=noise_key)  # [B, *shape] ~ N(0, 1)
        return clean, sigma_indices, noise

    batches = clean_batches.enumerate().map(attach_noise, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return batches.prefetch(tf.data.AUTOTUNE).with_options(options)


# ---------------------------------------------------------------------------
# Models, optimizer, EMA.
# ---------------------------------------------------------------------------


def _build_model(config: Config) -> keras.Model:
    """The score model under `training.precision` (the global policy is restored after)."""
    return checkpoints.build_model_with_policy(config, config.training.precision)


def make_optimizer(config: Config) -> keras.optimizers.Optimizer:
    """Adam with the config's lr, betas and epsilon.

    Keras adds epsilon to sqrt(v) before the bias correction of v, PyTorch after;
    the PyTorch eps = 1e-8 thus acts as 1e-8 / sqrt(1 - beta2^t) here, a difference
    that only matters for gradients near 1e-8 and vanishes as t grows.
    """
    training = config.training
    return keras.optimizers.Adam(
        learning_rate=training.learning_rate,
        beta_1=training.beta1,
        beta_2=training.beta2,
        epsilon=training.adam_epsilon,
    )


def _all_finite(variables: list[Any]) -> bool:
    return all(bool(tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(v)))) for v in variables)


# ---------------------------------------------------------------------------
# Samples.
# ---------------------------------------------------------------------------


def write_samples(config: Config, score_model: keras.Model, path: str) -> str:
    """Draw `sampling.num_samples` samples with the config's sampler (`sampling.sampler`) and save a PNG.

    Images: a grid of the samples (clipped to [0, 1] for display). Toy: a density
    picture of the 2-D samples over [-10, 10]^2. Seeds 0..N-1, so grids written at
    different steps show the same chains.

    Returns:
        `path`.

    Raises:
        ValueError: a bad sampler setting (one line; a validated config has none).
    """
    from ncsn_tf.figures import toy_density_picture
    from ncsn_tf.images import save_grid
    from ncsn_tf.sampling import run_sampler, start_images

    sampling = config.sampling
    seeds = tf.range(sampling.num_samples, dtype=tf.int32)  # [N]
    sigmas = config.noise.sigmas()  # [L]
    start = start_images(sampling.sampler, seeds, config.data.shape, sigmas, value_range=config.data.value_range)
    samples = run_sampler(score_model, start, seeds, sigmas, **sampling.sampler_arguments()).numpy()  # [N, *shape], not clipped
    if config.data.dataset == "toy":
        return save_grid(toy_density_picture(samples), path, padding=0)
    return save_grid(samples, path)


# ---------------------------------------------------------------------------
# Training.
# ---------------------------------------------------------------------------


class _CheckpointWriter:
    """CheckpointManager on the real directory (chief) or on a temp dir that is deleted after each save."""

    def __init__(self, checkpoint: tf.train.Checkpoint, directory: str, keep: int, is_chief: bool, task_id: int):
        self.is_chief = is_chief
        self.directory = directory if is_chief else tempfile.mkdtemp(prefix=f"ncsn_worker{task_id}_checkpoint_")
        self.manager = tf.train.CheckpointManager(
            checkpoint, self.directory, max_to_keep=keep, checkpoint_name=checkpoints.CHECKPOINT_PREFIX
        )

    def save(self, step: int, previous: str | None) -> str | None:
        try:
            path = self.manager.save(checkpoint_number=step)  # every worker saves (collective ops)
        except tf.errors.OpError as error:  # disk full, folder removed, ...
            keep = f"{previous} is the last complete checkpoint" if previous else "no checkpoint was completed"
            raise CheckpointError(
                f"saving the checkpoint of step {step} into {self.directory} failed ({checkpoints.error_summary(error)}); "
                f"{keep}; free space or fix the folder and rerun to resume"
            ) from None
        if not self.is_chief:
            shutil.rmtree(self.directory, ignore_errors=True)
            return None
        return path

    def close(self) -> None:
        if not self.is_chief:
            shutil.rmtree(self.directory, ignore_errors=True)


def _check_workdir(config: Config, paths: checkpoints.WorkdirPaths) -> None:
    """A resumed config must describe the same model as the workdir's config.json."""
    if os.path.isfile(paths.config):
        checkpoints.check_same_model(checkpoints.read_config(paths.root), config, paths.root)
    elif checkpoints.latest_checkpoint(paths.checkpoints) is not None:
        raise CheckpointError(f"{paths.checkpoints} has checkpoints but {paths.config} is missing; restore it or use a new --workdir")


def _resume(paths: checkpoints.WorkdirPaths, restore: Any) -> tuple[str | None, str | None]:
    """Restore the newest checkpoint in the folder that restores.

    Args:
        paths: the workdir.
        restore: `restore(prefix)` restores the training state, raising
            UnreadableCheckpointError for unreadable files (the next older one is
            tried) or CheckpointError for a checkpoint of another model (raised).

    Returns:
        (prefix restored or None for a fresh start, the note to log when the state
        file or a newer checkpoint disagreed with what was restored, else None).

    Raises:
        CheckpointError: there are checkpoints but none restores, or the state file
            names checkpoints none of which is left (never a silent fresh start).
    """
    found = checkpoints.list_checkpoints(paths.checkpoints)  # oldest first
    state = checkpoints.read_state(paths.checkpoints)
    state_name = f"{checkpoints.CHECKPOINTS_DIR}/{checkpoints.STATE_FILE}"
    failures = []
    for prefix in reversed(found):
        try:
            restore(prefix)
        except checkpoints.UnreadableCheckpointError as error:
            failures.append(f"{os.path.basename(prefix)} does not restore ({error.reason})")
            continue
        notes = []
        if state.problem is not None:
            notes.append(f"{state_name} {state.problem}")
        elif state.latest != prefix and not os.path.exists(state.latest + ".index"):
            notes.append(f"{state_name} names {os.path.basename(state.latest)}, whose files are gone")
        elif state.latest != prefix and state.latest not in found[found.index(prefix) :]:
            notes.append(f"{state_name} names {os.path.basename(state.latest)}, but {os.path.basename(prefix)} is newer")
        notes.extend(failures)  # a newer checkpoint the state file names is among these
        return prefix, "; ".join(notes) if notes else None
    if found:
        raise CheckpointError(
            f"none of the {len(found)} checkpoints in {paths.checkpoints} restores ({'; '.join(failures)}); "
            "restore a good copy of one, or move the folder away to start training afresh (nothing was changed)"
        )
    if state.latest is not None:
        raise CheckpointError(
            f"{os.path.join(paths.checkpoints, checkpoints.STATE_FILE)} names {os.path.basename(state.latest)} "
            f"but no checkpoint files are left in {paths.checkpoints}; restore them, or delete that state file "
            "to start training afresh"
        )
    return None, None


def train(
    config: Config,
    workdir: str | os.PathLike[str],
    *,
    steps: int | None = None,
    strategy: tf.distribute.Strategy | None = None,
    progress: bool = True,
    checkpoint_data: bool = True,
    write_final_samples: bool = True,
) -> TrainResult:
    """Train (or resume training) the score model of `config` in `workdir`.

    The workdir is left untouched until the first step succeeded (see the module
    docstring for the order of its changes).

    Args:
        config: a validated Config.
        workdir: output folder (docs/DESIGN.md layout); the newest checkpoint in it
            that restores is resumed.
        steps: total optimizer steps to reach (overrides `training.steps`).
        strategy: a ready `tf.distribute.Strategy`; None = `select_strategy(training.strategy)`.
        progress: show a tqdm progress bar (chief only).
        checkpoint_data: save the data iterator in checkpoints where the strategy allows.
        write_final_samples: write `samples/final.png` at the end.

    Returns:
        A TrainResult.

    Raises:
        NonFiniteLossError: the loss or weights became NaN/Inf (nothing bad is saved;
            the latest checkpoint is the last good state; before the first good step
            nothing at all is written).
        CheckpointError: the workdir's config.json or checkpoints conflict with
            `config`, no checkpoint in it restores, or the workdir cannot be written.
        TrainingError: a batch size that does not split across replicas, no TPU, ...
        DataError: from the data pipeline.
    """
    if steps is not None:
        try:
            steps = operator.index(steps)  # an int or a NumPy integer, never a float
        except TypeError:
            raise ConfigError(f"steps must be an integer, got {steps!r}") from None
        config = dataclasses.replace(config, training=dataclasses.replace(config.training, steps=steps))
    configs.validate(config)  # the Python API is as strict as the command line
    training = config.training
    paths = checkpoints.check_workdir_path(workdir)
    strategy = strategy if strategy is not None else select_strategy(training.strategy)  # first TF work
    _, task_id, is_chief = _task(strategy)
    _check_workdir(config, paths)

    replicas = strategy.num_replicas_in_sync
    global_batch = training.batch_size
    if global_batch % replicas:
        raise TrainingError(f"training.batch_size={global_batch} does not split evenly over {replicas} replicas; use a multiple of {replicas}")
    sigmas = tf.constant(config.noise.sigmas())  # [L]
    num_levels = config.noise.num_levels
    ema_rate = training.ema_rate

    dataset = training_dataset(config, global_batch, training.seed)  # before anything else: bad data fails fast
    keras.utils.set_random_seed(training.seed)  # same initial weights on every worker / rerun
    with strategy.scope():
        model = _build_model(config)
        ema_model = None
        if ema_rate > 0:
            ema_model = _build_model(config)
            ema_model.set_weights(model.get_weights())
        optimizer = make_optimizer(config)
        # Built inside the scope before the first step: under MirroredStrategy a lazily
        # built optimizer fails the first step ("You must feed a value for placeholder tensor").
        optimizer.build(model.trainable_variables)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")

    distributed = strategy.experimental_distribute_dataset(dataset)
    iterator = iter(distributed)
    save_iterator = checkpoint_data and _is_trackable(iterator)
    checkpoint = checkpoints.make_checkpoint(
        model, ema_model=ema_model, optimizer=optimizer, step=step, iterator=iterator if save_iterator else None
    )

    # -- resume (reads only) ---------------------------------------------------------
    def restore(prefix: str) -> None:
        _restore_training_state(model, ema_model, optimizer, step, iterator if save_iterator else None, prefix)

    resumed, disagreement = _resume(paths, restore)
    if resumed is not None:
        optimizer.learning_rate = training.learning_rate  # the checkpoint restored the old one; the config wins
        if disagreement:
            logger.warning("resuming from %s (step %d), the newest checkpoint that restores: %s", resumed, int(step.numpy()), disagreement)
        else:
            logger.info("resuming from %s (step %d)", resumed, int(step.numpy()))
    start_step = int(step.numpy())
    if start_step >= training.steps:
        logger.info("%s is at step %d >= training.steps=%d; nothing to train (raise --steps to go on)", paths.root, start_step, training.steps)

    # -- the step --------------------------------------------------------------
    trainable = model.trainable_variables
    ema_pairs = list(zip(ema_model.weights, model.weights, strict=True)) if ema_model is not None else []

    def replica_loss(batch: tuple[tf.Tensor, tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor]:
        clean, sigma_indices, noise = batch  # [b, *shape], [b] int32, [b, *shape]; b = per-replica batch
        per_example = denoising_score_matching(model, clean, sigma_indices, noise, sigmas)  # [b]
        return per_example, tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)  # [b], []

    def replica_step(batch: tuple[tf.Tensor, tf.Tensor, tf.Tensor]) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            per_example, loss = replica_loss(batch)
        gradients = tape.gradient(loss, trainable)
        optimizer.apply_gradients(zip(gradients, trainable, strict=True))  # sums gradients over replicas
        sigma_indices = batch[1]
        level_sums = tf.math.unsorted_segment_sum(per_example, sigma_indices, num_levels)  # [L]
        level_counts = tf.math.unsorted_segment_sum(tf.ones_like(per_example), sigma_indices, num_levels)  # [L]
        return loss, level_sums, level_counts

    def reduce_sum(value: Any) -> tf.Tensor:
        return strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)

    @tf.function(jit_compile=False)
    def train_step(iterator: Any) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        loss, level_sums, level_counts = strategy.run(replica_step, args=(next(iterator),))
        for ema_variable, variable in ema_pairs:  # cross-replica context: same update on every copy
            ema_variable.assign(ema_rate * ema_variable + (1.0 - ema_rate) * variable)
        step.assign_add(1)
        return reduce_sum(loss), reduce_sum(level_sums), reduce_sum(level_counts)  # [], [L], [L]

    # A small fixed batch (from the same stream, its own iterator) to check new weights
    # before they are saved: eagerly, so it costs no extra tracing.
    probe_clean, probe_indices, probe_noise = (t[:PROBE_BATCH] for t in next(iter(dataset)))  # [P, *shape], [P], [P, *shape]

    def probe_loss() -> float:
        """Mean loss of the current weights on the probe batch, no update."""
        per_example = denoising_score_matching(model, probe_clean, probe_indices, probe_noise, sigmas)  # [P]
        return float(tf.reduce_mean(per_example))

    checked_step = None

    def check_new_weights(at_step: int) -> None:
        """Raise NonFiniteLossError unless the weights after `at_step` are finite with a finite probe loss."""
        nonlocal checked_step
        if checked_step == at_step:
            return
        probe = probe_loss()
        if not math.isfinite(probe) or not _all_finite(model.weights):
            raise NonFiniteLossError(_non_finite_message(probe, at_step, latest, after_update=True, committed=writer is not None))
        checked_step = at_step

    # -- the loop --------------------------------------------------------------
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    writer: _CheckpointWriter | None = None  # made (with the folders and config.json) after the first good step
    summaries = tf.summary.create_noop_writer()
    sampling_model = None  # float32 copy outside the strategy, made on first use
    latest = resumed
    final_grid = None
    current = start_step
    last_loss = None
    interval_loss, interval_steps = 0.0, 0
    level_sums_total, level_counts_total = np.zeros(num_levels), np.zeros(num_levels)
    interval_start = time.perf_counter()
    timed_since, timed_steps = None, 0  # speed after the first (traced) step
    bar = tqdm(
        total=training.steps, initial=current, unit="step", dynamic_ncols=True,
        disable=not (progress and is_chief), desc=f"train {config.name}",
    )  # fmt: skip

    def sample(name: str) -> str | None:
        nonlocal sampling_model
        if not is_chief:
            return None
        if sampling_model is None:
            sampling_model = checkpoints.build_float32_model(config)
        sampling_model.set_weights((ema_model if ema_model is not None else model).get_weights())
        path = write_samples(config, sampling_model, os.path.join(paths.samples, name))
        logger.info("wrote samples %s", path)
        return path

    try:
        with logging_redirect_tqdm(loggers=_console_loggers()):
            while current < training.steps:
                loss, level_sums, level_counts = train_step(iterator)
                loss_value = float(loss)  # waits for the step
                if not math.isfinite(loss_value):
                    raise NonFiniteLossError(_non_finite_message(loss_value, current + 1, latest, committed=writer is not None))
                current += 1
                if writer is None:  # the first good step: now the workdir may change
                    check_new_weights(current)
                    if is_chief:
                        _commit_workdir(config, paths, resumed)
                        summaries = tf.summary.create_file_writer(paths.logs)
                    writer = _CheckpointWriter(checkpoint, paths.checkpoints, training.keep_checkpoints, is_chief, task_id)
                if timed_since is None:
                    timed_since = time.perf_counter()
                else:
                    timed_steps += 1
                interval_loss += loss_value
                interval_steps += 1
                level_sums_total += level_sums.numpy()
                level_counts_total += level_counts.numpy()
                bar.update(1)

                if current % training.log_every == 0 or current == training.steps:
                    elapsed = max(time.perf_counter() - interval_start, 1e-9)
                    last_loss = interval_loss / interval_steps
                    steps_per_second = interval_steps / elapsed
                    with summaries.as_default():
                        _write_scalars(current, last_loss, level_sums_total, level_counts_total, sigmas.numpy(), steps_per_second, global_batch)
                    bar.set_postfix(loss=f"{last_loss:.4g}", img_s=f"{steps_per_second * global_batch:.0f}")
                    interval_loss, interval_steps = 0.0, 0
                    level_sums_total[:], level_counts_total[:] = 0.0, 0.0
                    interval_start = time.perf_counter()

                if current % training.checkpoint_every == 0 or current == training.steps:
                    check_new_weights(current)
                    saved = writer.save(current, latest)
                    latest = saved if saved is not None else latest
                    summaries.flush()

                if training.sample_every and current % training.sample_every == 0 and current < training.steps:
                    sample(f"step_{current:06d}.png")
    finally:
        loop_end = time.perf_counter()
        bar.close()
        summaries.flush()
        if writer is not None:
            writer.close()

    final_path = os.path.join(paths.samples, "final.png")
    if write_final_samples and (current > start_step or not os.path.isfile(final_path)):
        final_grid = sample("final.png")
    _wait_for_all_workers(strategy)  # the chief samples last; others must not exit mid-collective
    speed = timed_steps / (loop_end - timed_since) if timed_since is not None and timed_steps > 0 else None
    if is_chief and current > start_step:
        logger.info("finished at step %d; checkpoint %s", current, latest)
    return TrainResult(
        workdir=paths.root,
        start_step=start_step,
        step=current,
        loss=last_loss,
        checkpoint=latest if is_chief else checkpoints.latest_checkpoint(paths.checkpoints),
        sample_grid=final_grid,
        steps_per_second=speed,
        model=model,
        ema_model=ema_model,
    )


def _console_loggers() -> list[logging.Logger]:
    """The loggers (root, ncsn_tf) that print to the console, for tqdm's redirect.

    `logging_redirect_tqdm` adds a handler to every logger it is given; given the root
    logger without a console handler, every ncsn_tf record would print twice (once by
    the CLI's handler, once by the root's new one).
    """
    def prints(logger: logging.Logger) -> bool:
        return any(isinstance(h, logging.StreamHandler) and h.stream in (sys.stdout, sys.stderr) for h in logger.handlers)

    return [logger for logger in (logging.root, logging.getLogger("ncsn_tf")) if prints(logger)]


def _commit_workdir(config: Config, paths: checkpoints.WorkdirPaths, resumed: str | None) -> None:
    """(Chief, after the first good step) remove save leftovers, make the folders, write config.json, fix the state file.

    Raises:
        CheckpointError: the workdir cannot be written.
    """
    try:
        removed = checkpoints.remove_save_leftovers(paths.root)
        if removed:
            logger.warning("removed what an interrupted save left in %s: %s", paths.root, ", ".join(removed))
        for folder in (paths.checkpoints, paths.samples, paths.logs):
            os.makedirs(folder, exist_ok=True)
        checkpoints.write_config(paths.root, config)
        state = checkpoints.read_state(paths.checkpoints)
        if resumed is not None and (state.problem is not None or state.latest != resumed):
            checkpoints.repair_state(paths.checkpoints, resumed)  # the manager must see what is in the folder
        elif resumed is None and state.problem == "is unreadable":  # names no checkpoint; the manager would fail on it
            os.remove(os.path.join(paths.checkpoints, checkpoints.STATE_FILE))
            logger.warning("removed the unreadable %s (no checkpoint is in the folder)", os.path.join(paths.checkpoints, checkpoints.STATE_FILE))
    except OSError as error:
        raise CheckpointError(f"cannot write the workdir {paths.root} ({error.strerror or error}); free space or fix its permissions, then rerun") from None


def _wait_for_all_workers(strategy: tf.distribute.Strategy) -> None:
    """A barrier across the workers of a MultiWorkerMirroredStrategy (no-op otherwise).

    Without it a worker that finishes first exits while the chief still samples, and
    the chief's coordination service reports the worker as crashed.
    """
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return

    @tf.function
    def all_reduce_one() -> tf.Tensor:
        return strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.ones([])), axis=None)

    all_reduce_one()


def _non_finite_message(value: float, at_step: int, latest: str | None, after_update: bool = False, committed: bool = True) -> str:
    where = "the loss of the new weights after step" if after_update else "the loss at step"
    keep = f"the latest checkpoint {latest} is the last good state" if latest else "no checkpoint was written"
    if not committed:
        keep = f"the workdir is unchanged ({keep})"
    return f"training stopped: {where} {at_step} is {value} (NaN/Inf); {keep}; lower training.learning_rate or check the data"


def _restore_training_state(
    model: keras.Model,
    ema_model: keras.Model | None,
    optimizer: keras.optimizers.Optimizer,
    step: tf.Variable,
    iterator: Any,
    prefix: str,
) -> None:
    """Restore weights, EMA, optimizer and step (checked), then the data iterator if it fits.

    Raises:
        UnreadableCheckpointError: the checkpoint's files cannot be read (the caller
            tries an older one; every variable is assigned again by that restore).
        CheckpointError: the checkpoint belongs to another model.
    """
    state = checkpoints.make_checkpoint(model, ema_model=ema_model, optimizer=optimizer, step=step)
    unreadable = None
    try:
        status = state.restore(prefix)
        status.assert_existing_objects_matched()
        status.expect_partial()
    except (ValueError, AssertionError) as error:
        raise CheckpointError(
            f"checkpoint {prefix} does not match the model being trained ({checkpoints.error_summary(error)}); "
            "resume with the config in its config.json or use a new --workdir"
        ) from None
    except Exception as error:  # OpError, IndexError: unreadable files
        unreadable = checkpoints.unreadable_error(prefix, error)
    if unreadable is not None:
        # The half-done restore has no status to mark partial: dropping it would log three
        # TF warnings about unrestored values (the iterator, save_counter) beside our one line.
        tf_logger = tf.get_logger()
        level = tf_logger.level
        tf_logger.setLevel(logging.ERROR)
        try:
            del state
            gc.collect()
        finally:
            tf_logger.setLevel(level)
        raise unreadable
    if iterator is None:
        return
    try:
        tf.train.Checkpoint(**{checkpoints.ITERATOR_KEY: iterator}).restore(prefix).expect_partial()
    except Exception as error:  # a different pipeline (batch size, data) or none saved
        logger.warning("data iterator not restored from %s (%s); the data stream starts afresh", prefix, checkpoints.error_summary(error))


def _write_scalars(
    step: int,
    loss: float,
    level_sums: np.ndarray,
    level_counts: np.ndarray,
    sigmas: np.ndarray,
    steps_per_second: float,
    global_batch: int,
) -> None:
    _scalar("loss", loss, step)
    for level, (total, count) in enumerate(zip(level_sums, level_counts, strict=True)):
        if count > 0:
            _scalar(f"loss_per_level/{level:02d}_sigma_{sigmas[level]:.4g}", total / count, step)
    _scalar("speed/steps_per_second", steps_per_second, step)
    _scalar("speed/images_per_second", steps_per_second * global_batch, step)


def _scalar(tag: str, value: float, step: int) -> None:
    """A TensorBoard scalar without the `tensorboard` package (tf.summary.scalar needs it).

    Writes what tf.summary.scalar writes: a float32 scalar tagged with the "scalars"
    plugin (empty plugin content = ScalarPluginData version 0).
    """
    tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=_SCALAR_METADATA)
