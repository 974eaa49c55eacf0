"""The trainer in-process: workdir outputs, learning, EMA, resume, NaN guard, config conflicts."""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from ncsn_tf import checkpoints, configs, trainer
from ncsn_tf.checkpoints import CheckpointError
from ncsn_tf.losses import denoising_score_matching
from ncsn_tf.models import analytic

TINY_DIGITS = [
    "model.ngf=4",
    "noise.sigma_max=1.0",  # pinned: the tests name the per-level loss tags literally
    "noise.num_levels=2",
    "training.batch_size=16",
    "sampling.steps_per_level=2",
    "sampling.num_samples=4",
]
SMALL_TOY = [
    "model.mlp_hidden=32",
    "model.mlp_layers=2",
    "training.batch_size=32",
    "sampling.steps_per_level=2",
    "sampling.num_samples=16",
]


def _toy(*extra: str) -> configs.Config:
    return configs.apply_overrides(configs.get_config("toy"), [*SMALL_TOY, *extra])


def _weights(model) -> list[np.ndarray]:
    return [w.numpy() for w in model.weights]


def _files(workdir) -> dict[str, bytes]:
    """Every file under `workdir` (relative path -> bytes)."""
    root = str(workdir)
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            with open(os.path.join(folder, name), "rb") as f:
                found[os.path.relpath(os.path.join(folder, name), root)] = f.read()
    return found


def _event_tags(logs_dir: str) -> set[str]:
    tags = set()
    for path in glob.glob(os.path.join(logs_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_digits_few_steps_write_checkpoint_config_samples_and_logs(tmp_path):
    config = configs.apply_overrides(
        configs.get_config("digits"),
        [
            *TINY_DIGITS,
            "training.steps=2",
            "training.checkpoint_every=2",
            "training.log_every=1",
            "training.sample_every=1",
        ],
    )
    result = trainer.train(config, tmp_path, progress=False)

    assert result.step == 2 and result.start_step == 0
    assert np.isfinite(result.loss)
    assert result.checkpoint == str(tmp_path / "checkpoints" / "ckpt-2")
    assert configs.load_json(tmp_path / "config.json") == config
    for name in ("final.png", "step_000001.png"):
        picture = np.asarray(Image.open(tmp_path / "samples" / name))
        assert picture.ndim == 2 and picture.shape[0] >= 2 * 8 and picture.std() > 0  # a 2x2 grid of 8x8 digits
    assert result.sample_grid == str(tmp_path / "samples" / "final.png")
    tags = _event_tags(str(tmp_path / "logs"))
    assert {"loss", "speed/steps_per_second", "speed/images_per_second"} <= tags
    assert {t for t in tags if t.startswith("loss_per_level/")} == {
        "loss_per_level/00_sigma_1",
        "loss_per_level/01_sigma_0.01",
    }

    # The raw weights (the digits config keeps an EMA copy too, which inference prefers).
    loaded_config, model, step = checkpoints.load_for_inference(tmp_path, use_ema=False)
    assert loaded_config == config and step == 2
    for saved, trained in zip(_weights(model), _weights(result.model), strict=True):
        np.testing.assert_array_equal(saved, trained)


def _toy_eval(model, config, batch) -> tuple[float, float]:
    """(mean DSM loss, relative L2 error of the scores against the exact mixture scores)."""
    sigmas = config.noise.sigmas()
    clean, sigma_indices, noise = batch
    loss = float(tf.reduce_mean(denoising_score_matching(model, clean, sigma_indices, noise, sigmas)))
    noisy = clean + tf.gather(sigmas, sigma_indices)[:, None] * noise  # [B, 2]
    exact = analytic.paper_toy_mixture(sigmas)(noisy, sigma_indices).numpy()  # [B, 2]
    error = np.sqrt(np.mean((model(noisy, sigma_indices).numpy() - exact) ** 2) / np.mean(exact**2))
    return loss, float(error)


def test_toy_loss_and_score_error_go_down(tmp_path):
    config = configs.apply_overrides(
        configs.get_config("toy"), ["training.checkpoint_every=1000", "sampling.steps_per_level=2"]
    )
    batch = next(iter(trainer.training_dataset(config, 4096, seed=123)))  # held-out stream (another seed)
    trainer.train(config, tmp_path, steps=1, progress=False, write_final_samples=False)
    loss_start, error_start = _toy_eval(checkpoints.load_for_inference(tmp_path)[1], config, batch)
    result = trainer.train(config, tmp_path, steps=400, progress=False, write_final_samples=False)
    assert result.start_step == 1 and result.step == 400
    loss_end, error_end = _toy_eval(checkpoints.load_for_inference(tmp_path)[1], config, batch)
    # Measured: loss 164 -> 0.58 (the exact scores get 0.195), relative score error 4.1 -> 0.95
    # (dominated by the small-sigma levels, where scores are largest and learned last).
    assert loss_end < loss_start / 50
    assert error_end < error_start / 3


def test_resume_equals_an_uninterrupted_run(tmp_path):
    config = _toy("training.checkpoint_every=3", "training.ema_rate=0.9")
    straight = trainer.train(config, tmp_path / "straight", steps=6, progress=False, write_final_samples=False)
    first = trainer.train(config, tmp_path / "resumed", steps=3, progress=False, write_final_samples=False)
    assert first.step == 3
    resumed = trainer.train(config, tmp_path / "resumed", steps=6, progress=False, write_final_samples=False)
    assert resumed.start_step == 3 and resumed.step == 6
    # Same weights, EMA, optimizer moments and data/noise stream: the same numbers.
    for a, b in zip(_weights(straight.model), _weights(resumed.model), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    for a, b in zip(_weights(straight.ema_model), _weights(resumed.ema_model), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_ema_follows_its_closed_form(tmp_path):
    rate = 0.75
    config = _toy(f"training.ema_rate={rate}", "training.checkpoint_every=1")
    trainer.train(config, tmp_path, steps=2, progress=False, write_final_samples=False)
    one = tmp_path / "checkpoints" / "ckpt-1"
    two = tmp_path / "checkpoints" / "ckpt-2"
    ema_1 = _weights(checkpoints.load_for_inference(one, use_ema=True)[1])
    ema_2 = _weights(checkpoints.load_for_inference(two, use_ema=True)[1])
    raw_2 = _weights(checkpoints.load_for_inference(two, use_ema=False)[1])
    for e1, e2, w2 in zip(ema_1, ema_2, raw_2, strict=True):
        np.testing.assert_allclose(e2, rate * e1 + (1 - rate) * w2, rtol=1e-6, atol=1e-7)
    assert any(not np.allclose(e2, w2) for e2, w2 in zip(ema_2, raw_2, strict=True))


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    config = _toy("training.checkpoint_every=2")
    good = trainer.train(config, tmp_path, steps=4, progress=False, write_final_samples=False)
    good_weights = _weights(good.model)
    before = _files(tmp_path)

    # Adam moves every weight by ~1e30 in one step: the next forward pass overflows.
    # Checkpoints are due every step, so the garbage (but finite) weights after step 5
    # would be saved if they were not checked before saving. The first step of a run is
    # checked before the workdir changes, whatever the checkpoint interval.
    for every in (1, 10):
        exploding = configs.apply_overrides(
            config, ["training.learning_rate=1e30", f"training.checkpoint_every={every}"]
        )
        with pytest.raises(
            trainer.NonFiniteLossError,
            match=r"new weights after step 5 is nan \(NaN/Inf\); the workdir is unchanged .*ckpt-4 is the last good state",
        ):
            trainer.train(exploding, tmp_path, steps=50, progress=False, write_final_samples=False)
        assert _files(tmp_path) == before  # config.json (learning rate 1e-3) included

    assert checkpoints.latest_checkpoint(tmp_path / "checkpoints") == str(tmp_path / "checkpoints" / "ckpt-4")
    _, model, step = checkpoints.load_for_inference(tmp_path)
    assert step == 4
    for saved, before_weights in zip(_weights(model), good_weights, strict=True):
        np.testing.assert_array_equal(saved, before_weights)


def test_nan_loss_after_the_first_step_stops_without_saving_it(tmp_path, monkeypatch):
    real = trainer.training_dataset

    def poisoned(config, global_batch_size, seed):  # batch 2 (step 3) has NaN noise; the probe batch is batch 0
        def poison(position, batch):
            clean, sigma_indices, noise = batch
            return clean, sigma_indices, tf.where(position == 2, noise * np.nan, noise)

        return real(config, global_batch_size, seed).enumerate().map(poison)

    monkeypatch.setattr(trainer, "training_dataset", poisoned)
    config = _toy("training.checkpoint_every=2")
    with pytest.raises(
        trainer.NonFiniteLossError,
        match=r"the loss at step 3 is nan \(NaN/Inf\); the latest checkpoint .*ckpt-2 is the last good state",
    ):
        trainer.train(config, tmp_path, steps=10, progress=False, write_final_samples=False)
    assert checkpoints.list_checkpoints(tmp_path / "checkpoints") == [str(tmp_path / "checkpoints" / "ckpt-2")]
    assert configs.load_json(tmp_path / "config.json") == configs.apply_overrides(config, ["training.steps=10"])


def test_resuming_with_a_different_model_is_an_error(tmp_path):
    config = _toy("training.checkpoint_every=1")
    trainer.train(config, tmp_path, steps=1, progress=False, write_final_samples=False)
    for change in ("model.mlp_hidden=64", "noise.num_levels=3", "training.ema_rate=0.99"):
        with pytest.raises(CheckpointError, match="conflicts with"):
            trainer.train(configs.apply_overrides(config, [change]), tmp_path, steps=2, progress=False)
    # More steps, other intervals and learning rate are fine.
    allowed = configs.apply_overrides(config, ["training.log_every=7", "training.learning_rate=1e-4"])
    assert trainer.train(allowed, tmp_path, steps=2, progress=False, write_final_samples=False).step == 2


def test_checkpoints_without_config_json_are_an_error(tmp_path):
    config = _toy("training.checkpoint_every=1")
    trainer.train(config, tmp_path, steps=1, progress=False, write_final_samples=False)
    os.remove(tmp_path / "config.json")
    with pytest.raises(CheckpointError, match="config.json is missing"):
        trainer.train(config, tmp_path, steps=2, progress=False)


def test_mixed_bfloat16_trains_and_checkpoints_float32_weights(tmp_path):
    config = _toy("training.precision=mixed_bfloat16", "training.checkpoint_every=2")
    result = trainer.train(config, tmp_path, steps=2, progress=False, write_final_samples=False)
    assert result.model.dtype_policy.compute_dtype == "bfloat16"
    assert np.isfinite(result.loss)
    _, model, step = checkpoints.load_for_inference(tmp_path)
    assert step == 2 and model.dtype_policy.compute_dtype == "float32"
    for saved, trained in zip(_weights(model), _weights(result.model), strict=True):
        assert saved.dtype == np.float32
        np.testing.assert_array_equal(saved, trained)


# ---------------------------------------------------------------------------
# Resume never loses work: the four ways a state file and the folder disagree.
# ---------------------------------------------------------------------------

RESUME = ["training.checkpoint_every=2", "training.keep_checkpoints=10"]


@pytest.fixture(scope="module")
def six_steps(tmp_path_factory):
    """A workdir trained to step 6 with checkpoints ckpt-2, ckpt-4, ckpt-6 (copy it before changing it)."""
    workdir = tmp_path_factory.mktemp("six_steps") / "run"
    trainer.train(_toy(*RESUME), workdir, steps=6, progress=False, write_final_samples=False)
    return workdir


def _corrupt(prefix: str) -> None:
    target = glob.glob(prefix + ".data-*")[0]
    size = os.path.getsize(target)
    with open(target, "r+b") as f:  # same size, other bytes: the checksums no longer match
        f.seek(size // 3)
        f.write(b"\xa5" * max(1, size // 3))


def _remove(prefix: str) -> None:
    for path in glob.glob(prefix + ".*"):
        os.remove(path)


def _missing_state_file(folder):
    os.remove(folder / "checkpoint")


def _state_names_a_deleted_checkpoint(folder):
    _remove(str(folder / "ckpt-6"))


def _corrupt_newest(folder):
    _corrupt(str(folder / "ckpt-6"))


def _followed_the_old_corrupt_checkpoint_advice(folder):
    _corrupt(str(folder / "ckpt-6"))
    with pytest.raises(checkpoints.UnreadableCheckpointError, match="ckpt-6 is unreadable"):
        checkpoints.load_for_inference(folder.parent)
    _remove(str(folder / "ckpt-6"))  # "delete it to resume from an older one"


@pytest.mark.parametrize(
    ("damage", "resumed_step", "note"),
    [
        (_missing_state_file, 6, "checkpoints/checkpoint is missing"),
        (_state_names_a_deleted_checkpoint, 4, "checkpoints/checkpoint names ckpt-6, whose files are gone"),
        (_corrupt_newest, 4, "ckpt-6 does not restore (TensorBundle at "),
        (_followed_the_old_corrupt_checkpoint_advice, 4, "checkpoints/checkpoint names ckpt-6, whose files are gone"),
    ],
)
def test_resume_uses_the_newest_checkpoint_that_restores_and_keeps_older_files(
    six_steps, tmp_path, caplog, damage, resumed_step, note
):
    workdir = tmp_path / "run"
    shutil.copytree(six_steps, workdir)
    folder = workdir / "checkpoints"
    damage(folder)
    older = {name: data for name, data in _files(workdir).items() if name.startswith("checkpoints/ckpt-")}
    older = {name: data for name, data in older.items() if int(name.split("-")[1].split(".")[0]) <= resumed_step}

    with caplog.at_level(logging.INFO, logger="ncsn_tf"):
        result = trainer.train(_toy(*RESUME), workdir, steps=8, progress=False, write_final_samples=False)

    assert result.start_step == resumed_step and result.step == 8
    lines = [r.getMessage() for r in caplog.records if "resuming from" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert lines[0].startswith(
        f"resuming from {folder / f'ckpt-{resumed_step}'} (step {resumed_step}), the newest checkpoint that restores: "
    )
    assert note in lines[0]
    after = _files(workdir)
    for name, data in older.items():
        assert after[name] == data, f"{name} changed"
    state = checkpoints.read_state(folder)
    assert state.latest == str(folder / "ckpt-8")  # the manager knows every checkpoint again
    assert {str(folder / f"ckpt-{n}") for n in range(2, 9, 2)} <= set(state.listed)
    assert checkpoints.load_for_inference(workdir)[2] == 8


def test_a_failed_restore_is_overwritten_by_the_older_checkpoint(six_steps, tmp_path):
    # ckpt-6 fails half-way through its restore; every variable must then hold ckpt-4's value.
    workdir = tmp_path / "run"
    shutil.copytree(six_steps, workdir)
    _corrupt(str(workdir / "checkpoints" / "ckpt-6"))
    before = _files(workdir)
    result = trainer.train(
        _toy(*RESUME), workdir, steps=4, progress=False, write_final_samples=False
    )  # nothing to train
    assert result.start_step == result.step == 4
    _, raw, _ = checkpoints.load_for_inference(workdir / "checkpoints" / "ckpt-4", use_ema=False)
    for restored, stored in zip(_weights(result.model), _weights(raw), strict=True):
        np.testing.assert_array_equal(restored, stored)
    assert _files(workdir) == before  # no step ran: nothing was written


def test_resume_after_a_kill_between_save_and_state_update(six_steps, tmp_path, caplog):
    workdir = tmp_path / "run"
    shutil.copytree(six_steps, workdir)
    folder = workdir / "checkpoints"
    checkpoints.repair_state(folder, str(folder / "ckpt-4"))  # ckpt-6 written, the state file not updated yet
    assert tf.train.latest_checkpoint(str(folder)) == str(folder / "ckpt-4")
    with caplog.at_level(logging.INFO, logger="ncsn_tf"):
        result = trainer.train(_toy(*RESUME), workdir, steps=8, progress=False, write_final_samples=False)
    assert result.start_step == 6
    assert any("checkpoints/checkpoint names ckpt-4, but ckpt-6 is newer" in r.getMessage() for r in caplog.records)


def test_checkpoints_none_of_which_restores_are_an_error_not_a_fresh_start(six_steps, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(six_steps, workdir)
    for prefix in checkpoints.list_checkpoints(workdir / "checkpoints"):
        _corrupt(prefix)
    before = _files(workdir)
    with pytest.raises(CheckpointError) as raised:
        trainer.train(_toy(*RESUME), workdir, steps=8, progress=False, write_final_samples=False)
    message = str(raised.value)
    assert message.startswith(
        f"none of the 3 checkpoints in {workdir / 'checkpoints'} restores (ckpt-6 does not restore"
    )
    assert "ckpt-2 does not restore" in message and "nothing was changed" in message and "\n" not in message
    assert _files(workdir) == before


def test_a_state_file_whose_checkpoints_are_all_gone_is_an_error(six_steps, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(six_steps, workdir)
    for prefix in checkpoints.list_checkpoints(workdir / "checkpoints"):
        _remove(prefix)
    before = _files(workdir)
    with pytest.raises(CheckpointError, match="names ckpt-6 but no checkpoint files are left"):
        trainer.train(_toy(*RESUME), workdir, steps=8, progress=False, write_final_samples=False)
    assert _files(workdir) == before


# ---------------------------------------------------------------------------
# Atomic workdir changes and leftovers.
# ---------------------------------------------------------------------------


def test_nan_stop_leaves_the_workdir_exactly_as_before(six_steps, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(six_steps, workdir)
    before = _files(workdir)
    poisoned = configs.apply_overrides(_toy(*RESUME), ["training.learning_rate=1e6"])
    with pytest.raises(trainer.NonFiniteLossError, match="after step 7 .* the workdir is unchanged"):
        trainer.train(poisoned, workdir, steps=20, progress=False, write_final_samples=False)
    after = _files(workdir)
    assert after["config.json"] == before["config.json"]  # the poisoned learning rate is not kept
    assert after == before  # no config, checkpoint, state file, event file or sample written


def test_a_fresh_run_that_fails_at_once_writes_nothing(tmp_path):
    exploding = configs.apply_overrides(_toy(), ["training.learning_rate=1e30"])
    with pytest.raises(trainer.NonFiniteLossError, match="no checkpoint was written"):
        trainer.train(exploding, tmp_path / "run", steps=5, progress=False)
    assert not os.path.exists(tmp_path / "run")


def test_save_leftovers_are_removed_by_the_next_run_and_kept_by_a_failed_one(six_steps, tmp_path, caplog):
    workdir = tmp_path / "run"
    shutil.copytree(six_steps, workdir)
    folder = workdir / "checkpoints"
    (folder / "ckpt-8_temp").mkdir()
    shutil.copy(folder / "ckpt-6.index", folder / "ckpt-8_temp" / "part-00000-of-00001.index")
    (folder / "checkpoint.tmp0123456789abcdef0123456789abcdef").write_text('model_checkpoint_path: "ckpt-8"\n')
    before = _files(workdir)

    poisoned = configs.apply_overrides(_toy(*RESUME), ["training.learning_rate=1e6"])
    with pytest.raises(trainer.NonFiniteLossError):
        trainer.train(poisoned, workdir, steps=20, progress=False, write_final_samples=False)
    assert _files(workdir) == before  # a failed run changes nothing, leftovers included

    with caplog.at_level(logging.INFO, logger="ncsn_tf"):
        trainer.train(
            _toy(*RESUME, "training.checkpoint_every=100"), workdir, steps=7, progress=False, write_final_samples=False
        )
    lines = [
        r.getMessage() for r in caplog.records if r.getMessage().startswith("removed what an interrupted save left")
    ]
    assert len(lines) == 1
    assert (
        "checkpoints/ckpt-8_temp/" in lines[0]
        and "checkpoints/checkpoint.tmp0123456789abcdef0123456789abcdef" in lines[0]
    )
    assert not (folder / "ckpt-8_temp").exists() and not glob.glob(str(folder / "checkpoint.tmp*"))
    for name, data in before.items():
        if name.startswith("checkpoints/ckpt-") and "_temp" not in name:
            assert _files(workdir)[name] == data


def test_config_json_is_written_after_the_first_step_with_the_new_settings(six_steps, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(six_steps, workdir)
    more = _toy(*RESUME, "training.learning_rate=5e-4")
    trainer.train(more, workdir, steps=7, progress=False, write_final_samples=False)
    assert configs.load_json(workdir / "config.json") == configs.apply_overrides(more, ["training.steps=7"])
    assert not os.path.exists(workdir / "config.json.tmp")


def test_workdir_that_is_a_file_is_an_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(CheckpointError, match="is a file, not a folder"):
        trainer.train(_toy(), tmp_path / "afile", steps=1, progress=False)


def test_steps_must_be_an_integer():
    with pytest.raises(configs.ConfigError, match="steps must be an integer"):
        trainer.train(_toy(), "unused", steps=2.5, progress=False)


def test_largest_seed_trains(tmp_path):
    config = _toy(f"training.seed={configs.SEED_RANGE[1]}")
    assert np.isfinite(trainer.train(config, tmp_path, steps=1, progress=False, write_final_samples=False).loss)


def test_only_plain_tf_data_iterators_are_checkpointed():
    dataset = tf.data.Dataset.range(4).batch(2)
    assert trainer._is_trackable(iter(dataset))
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0"])
    assert not trainer._is_trackable(iter(mirrored.experimental_distribute_dataset(dataset)))
    assert not trainer._is_trackable(iter([1, 2]))


@pytest.mark.parametrize(
    "sampler", [["sampling.sampler=predictor_corrector", "sampling.corrector_steps=1", "sampling.snr=0.16"],
                ["sampling.sampler=probability_flow", "sampling.order=2"]],  # fmt: skip
)
def test_sample_grids_run_the_configs_sampler(tmp_path, sampler):
    """A toy run of two steps with the chosen sampler writes the grid that sampler draws."""
    from ncsn_tf.figures import toy_density_picture
    from ncsn_tf.images import save_grid
    from ncsn_tf.sampling import run_sampler, start_images

    config = _toy(*sampler, "training.steps=2", "training.sample_every=0")
    result = trainer.train(config, tmp_path / "run", progress=False)
    grid = tmp_path / "run" / "samples" / "final.png"
    assert result.sample_grid == str(grid)
    # The same samples drawn here with that sampler (seeds 0..N-1) give the same picture.
    seeds = tf.range(config.sampling.num_samples, dtype=tf.int32)  # [N]
    sigmas = config.noise.sigmas()
    start = start_images(config.sampling.sampler, seeds, config.data.shape, sigmas, value_range=config.data.value_range)
    samples = run_sampler(result.model, start, seeds, sigmas, **config.sampling.sampler_arguments()).numpy()  # [N, 2]
    expected = save_grid(toy_density_picture(samples), tmp_path / "expected.png", padding=0)
    np.testing.assert_array_equal(np.asarray(Image.open(grid)), np.asarray(Image.open(expected)))


def test_write_samples_draws_with_the_configs_sampler_on_exact_scores(tmp_path):
    """Exact toy scores put the samples on the modes, so each sampler's picture is its own."""
    config = _toy("sampling.num_samples=400")
    model = analytic.paper_toy_mixture(config.noise.sigmas())
    pictures = {}
    for overrides in (["sampling.sampler=annealed_langevin"], ["sampling.sampler=probability_flow", "sampling.order=1"],
                      ["sampling.sampler=predictor_corrector", "sampling.corrector_steps=0"]):  # fmt: skip
        chosen = configs.apply_overrides(config, overrides)
        path = trainer.write_samples(chosen, model, str(tmp_path / f"{chosen.sampling.sampler}.png"))
        pictures[chosen.sampling.sampler] = np.asarray(Image.open(path))
        assert pictures[chosen.sampling.sampler].min() < 128  # dense spots: samples inside the picture
    names = list(pictures)
    for first in range(len(names)):
        for second in range(first + 1, len(names)):
            assert not np.array_equal(pictures[names[first]], pictures[names[second]]), (names[first], names[second])


def test_a_bad_sampler_setting_fails_before_anything_is_written(tmp_path):
    config = _toy("training.steps=2")
    bad = dataclasses.replace(config, sampling=dataclasses.replace(config.sampling, sampler="probability_flow", order=3))
    with pytest.raises(configs.ConfigError, match=r"sampling.order must be 1 \(Euler\) or 2 \(Heun\), got 3"):
        trainer.train(bad, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
