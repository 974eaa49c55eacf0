"""Workdir layout, save -> reload -> compare, and every way a checkpoint can be wrong."""

from __future__ import annotations

import glob
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from ncsn_tf import checkpoints, configs
from ncsn_tf.checkpoints import CheckpointError
from ncsn_tf.models import build_score_model

TOY = ["model.mlp_hidden=16", "model.mlp_layers=2", "noise.num_levels=2"]
TINY_IMAGES = ["model.ngf=4", "noise.num_levels=2", "training.batch_size=16"]


def _toy_config(*extra: str) -> configs.Config:
    return configs.apply_overrides(configs.get_config("toy"), [*TOY, *extra])


def _randomize(model: keras.Model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])


def _assert_same_weights(a: keras.Model, b: keras.Model) -> None:
    assert len(a.weights) == len(b.weights)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_layout_and_round_trip_from_workdir_checkpoints_dir_and_prefix(tmp_path):
    config = _toy_config()
    model = build_score_model(config)
    _randomize(model, seed=1)  # differ from any fresh initialisation
    prefix = checkpoints.write_workdir(tmp_path / "run", config, model, step=12)

    assert prefix == str(tmp_path / "run" / "checkpoints" / "ckpt-12")
    assert os.path.isfile(tmp_path / "run" / "config.json")
    assert os.path.isfile(prefix + ".index")
    with open(tmp_path / "run" / "config.json") as f:
        assert configs.from_dict(json.load(f)) == config

    points = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)  # [5, 2]
    levels = np.array([0, 1, 0, 1, 1], np.int32)  # [5]
    for path in (tmp_path / "run", tmp_path / "run" / "checkpoints", prefix, prefix + ".index"):
        loaded_config, loaded, step = checkpoints.load_for_inference(path)
        assert loaded_config == config
        assert step == 12
        _assert_same_weights(model, loaded)
        np.testing.assert_array_equal(model(points, levels), loaded(points, levels))


def test_every_variable_of_list_held_layers_is_saved(tmp_path):
    # tf.train.Checkpoint(model=keras_model) would save only the MLP's output layer.
    config = _toy_config("model.mlp_layers=3")
    model = build_score_model(config)
    prefix = checkpoints.write_workdir(tmp_path, config, model, step=0)
    stored = [name for name, _ in tf.train.list_variables(prefix) if name.startswith("model/")]
    assert len(stored) == len(model.weights) == 3 * 2 + 3 + 2  # dense kernel+bias, film, out


def test_latest_checkpoint_is_picked(tmp_path):
    config = _toy_config()
    model = build_score_model(config)
    checkpoints.write_workdir(tmp_path, config, model, step=3)
    _randomize(model, seed=2)
    checkpoints.write_workdir(tmp_path, config, model, step=7)
    _, loaded, step = checkpoints.load_for_inference(tmp_path)
    assert step == 7
    _assert_same_weights(model, loaded)


def test_ema_weights_are_used_when_present_and_asked(tmp_path):
    config = _toy_config("training.ema_rate=0.999")
    model, ema_model = build_score_model(config), build_score_model(config)
    _randomize(model, seed=3)
    _randomize(ema_model, seed=4)
    checkpoints.write_workdir(tmp_path, config, model, step=5, ema_model=ema_model)

    _, with_ema, _ = checkpoints.load_for_inference(tmp_path, use_ema=True)
    _assert_same_weights(ema_model, with_ema)
    _, without_ema, _ = checkpoints.load_for_inference(tmp_path, use_ema=False)
    _assert_same_weights(model, without_ema)


def test_use_ema_falls_back_to_raw_weights_when_there_is_no_ema(tmp_path):
    config = _toy_config()
    model = build_score_model(config)
    _randomize(model, seed=5)
    checkpoints.write_workdir(tmp_path, config, model, step=1)
    _, loaded, _ = checkpoints.load_for_inference(tmp_path, use_ema=True)
    _assert_same_weights(model, loaded)


def test_model_is_float32_even_under_a_mixed_global_policy(tmp_path):
    config = _toy_config()
    checkpoints.write_workdir(tmp_path, config, build_score_model(config), step=0)
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        _, loaded, _ = checkpoints.load_for_inference(tmp_path)
    finally:
        keras.config.set_dtype_policy("float32")
    assert loaded.dtype_policy.compute_dtype == "float32"


def test_missing_things_are_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no workdir"):
        checkpoints.load_for_inference(tmp_path / "does-not-exist")

    config = _toy_config()
    checkpoints.write_config(tmp_path / "empty", config)
    os.makedirs(tmp_path / "empty" / "checkpoints")
    with pytest.raises(CheckpointError, match="no checkpoint"):
        checkpoints.load_for_inference(tmp_path / "empty")

    checkpoints.write_workdir(tmp_path / "noconfig", config, build_score_model(config), step=0)
    os.remove(tmp_path / "noconfig" / "config.json")
    with pytest.raises(CheckpointError, match="no config.json"):
        checkpoints.load_for_inference(tmp_path / "noconfig")


def test_broken_config_json_is_a_checkpoint_error(tmp_path):
    config = _toy_config()
    checkpoints.write_workdir(tmp_path, config, build_score_model(config), step=0)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not a valid config"):
        checkpoints.load_for_inference(tmp_path)


@pytest.mark.parametrize("part", ["data", "index"])
def test_corrupt_checkpoint_files_are_checkpoint_errors(tmp_path, part):
    config = _toy_config()
    prefix = checkpoints.write_workdir(tmp_path, config, build_score_model(config), step=4)
    target = prefix + ".index" if part == "index" else glob.glob(prefix + ".data-*")[0]
    size = os.path.getsize(target)
    with open(target, "r+b") as f:  # same size, different bytes
        f.seek(size // 3)
        f.write(b"\xa5" * max(1, size // 3))
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoints.load_for_inference(tmp_path)


def test_truncated_data_file_is_a_checkpoint_error(tmp_path):
    config = _toy_config()
    prefix = checkpoints.write_workdir(tmp_path, config, build_score_model(config), step=4)
    target = glob.glob(prefix + ".data-*")[0]
    with open(target, "r+b") as f:
        f.truncate(os.path.getsize(target) // 2)
    with pytest.raises(CheckpointError, match="corrupt"):
        checkpoints.load_for_inference(tmp_path)


def test_mismatched_width_is_a_checkpoint_error_not_random_weights(tmp_path):
    trained = _toy_config("model.mlp_hidden=16")
    checkpoints.write_workdir(tmp_path, trained, build_score_model(trained), step=2)
    checkpoints.write_config(tmp_path, _toy_config("model.mlp_hidden=32"))
    with pytest.raises(CheckpointError, match="different model configuration"):
        checkpoints.load_for_inference(tmp_path)


def test_mismatched_depth_is_a_checkpoint_error(tmp_path):
    trained = _toy_config("model.mlp_layers=2")
    checkpoints.write_workdir(tmp_path, trained, build_score_model(trained), step=2)
    checkpoints.write_config(tmp_path, _toy_config("model.mlp_layers=3"))
    with pytest.raises(CheckpointError, match="different model configuration"):
        checkpoints.load_for_inference(tmp_path)


def test_refinenet_checkpoint_of_another_ngf_is_a_checkpoint_error(tmp_path):
    digits = configs.get_config("digits")
    trained = configs.apply_overrides(digits, TINY_IMAGES)
    model = build_score_model(trained)
    checkpoints.write_workdir(tmp_path, trained, model, step=1)
    _, loaded, _ = checkpoints.load_for_inference(tmp_path)
    _assert_same_weights(model, loaded)

    checkpoints.write_config(tmp_path, configs.apply_overrides(digits, [*TINY_IMAGES, "model.ngf=8"]))
    with pytest.raises(CheckpointError, match="different model configuration"):
        checkpoints.load_for_inference(tmp_path)


def test_check_same_model_allows_run_settings_and_rejects_model_changes():
    saved = _toy_config()
    checkpoints.check_same_model(
        saved, configs.apply_overrides(saved, ["training.steps=9", "training.log_every=3"]), "w"
    )
    checkpoints.check_same_model(saved, configs.apply_overrides(saved, ["training.learning_rate=1e-4"]), "w")
    for change in ("model.mlp_hidden=32", "noise.num_levels=3", "noise.sigma_min=0.5", "training.ema_rate=0.9"):
        with pytest.raises(CheckpointError, match="conflicts"):
            checkpoints.check_same_model(saved, configs.apply_overrides(saved, [change]), "w")
    images = configs.apply_overrides(configs.get_config("digits"), TINY_IMAGES)
    with pytest.raises(CheckpointError, match="data.shape"):
        checkpoints.check_same_model(images, configs.apply_overrides(images, ["data.image_size=16"]), "w")


# ---------------------------------------------------------------------------
# Finding checkpoints by listing the folder; the state file; leftovers.
# ---------------------------------------------------------------------------


def _workdir_with_steps(path, steps, keep=10) -> list[str]:
    """A workdir with one checkpoint per step (the manager's normal state file), prefixes oldest first."""
    config = _toy_config(f"training.keep_checkpoints={keep}")
    model = build_score_model(config)
    return [checkpoints.write_workdir(path, config, model, step=step) for step in steps]


def test_checkpoints_are_found_by_listing_the_folder_not_only_the_state_file(tmp_path):
    prefixes = _workdir_with_steps(tmp_path, [2, 10, 4])  # numbered by step, not by age
    folder = tmp_path / "checkpoints"
    assert checkpoints.list_checkpoints(folder) == [str(folder / f"ckpt-{n}") for n in (2, 4, 10)]
    assert checkpoints.latest_checkpoint(folder) == prefixes[1]
    os.remove(folder / "checkpoint")  # tf.train.latest_checkpoint now says None
    assert tf.train.latest_checkpoint(str(folder)) is None
    assert checkpoints.latest_checkpoint(folder) == prefixes[1]
    assert checkpoints.load_for_inference(tmp_path)[2] == 10
    assert (
        checkpoints.list_checkpoints(tmp_path / "absent") == []
        and checkpoints.latest_checkpoint(tmp_path / "absent") is None
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [(None, "is missing"), ("", "is unreadable"), ("this is { not a proto", "is unreadable")],
)
def test_read_state_never_raises_for_a_bad_state_file(tmp_path, content, problem):
    _workdir_with_steps(tmp_path, [1])
    state_file = tmp_path / "checkpoints" / "checkpoint"
    os.remove(state_file)
    if content is not None:
        state_file.write_text(content)
    state = checkpoints.read_state(tmp_path / "checkpoints")
    assert (state.latest, state.listed, state.problem) == (None, (), problem)


def test_read_state_of_a_good_state_file(tmp_path):
    prefixes = _workdir_with_steps(tmp_path, [1, 2])
    state = checkpoints.read_state(tmp_path / "checkpoints")
    assert state.problem is None and state.latest == prefixes[-1] and state.listed == tuple(prefixes)


def test_repaired_state_lets_the_manager_rotate_every_checkpoint_and_only_after_a_new_save(tmp_path):
    _workdir_with_steps(tmp_path, [2, 4, 6, 8])
    folder = tmp_path / "checkpoints"
    os.remove(folder / "checkpoint")
    # ckpt-8 did not restore; resuming from ckpt-6. Newer-but-bad checkpoints go first in the
    # manager's deletion order, then the others by step, the resumed one last (= latest).
    checkpoints.repair_state(folder, str(folder / "ckpt-6"))
    state = checkpoints.read_state(folder)
    assert state.latest == str(folder / "ckpt-6")
    assert state.listed == tuple(str(folder / f"ckpt-{n}") for n in (8, 2, 4, 6))
    assert tf.train.latest_checkpoint(str(folder)) == str(folder / "ckpt-6")
    assert not glob.glob(str(folder / "checkpoint.tmp*"))

    config = _toy_config()
    model = build_score_model(config)
    step = tf.Variable(10, dtype=tf.int64)
    manager = tf.train.CheckpointManager(
        checkpoints.make_checkpoint(model, step=step), str(folder), max_to_keep=3, checkpoint_name="ckpt"
    )
    assert manager.checkpoints == [str(folder / f"ckpt-{n}") for n in (8, 2, 4, 6)]  # nothing deleted on construction
    assert len(glob.glob(str(folder / "ckpt-*.index"))) == 4
    manager.save(checkpoint_number=10)
    assert sorted(os.path.basename(p) for p in glob.glob(str(folder / "ckpt-*.index"))) == [
        "ckpt-10.index",
        "ckpt-4.index",
        "ckpt-6.index",
    ]


def test_remove_save_leftovers_removes_only_what_a_killed_save_leaves(tmp_path):
    prefixes = _workdir_with_steps(tmp_path, [2, 4])
    folder = tmp_path / "checkpoints"
    staging = folder / "ckpt-6_temp"  # a sharded save killed before its merge
    staging.mkdir()
    for path in glob.glob(prefixes[-1] + ".*"):
        suffix = os.path.basename(path)[len("ckpt-4") :]
        with open(path, "rb") as source, open(staging / f"part-00000-of-00001{suffix}", "wb") as target:
            target.write(source.read())
    (folder / "checkpoint.tmp0123456789abcdef0123456789abcdef").write_text('model_checkpoint_path: "ckpt-6"\n')
    (folder / "ckpt-8.data-00000-of-00001").write_bytes(b"\0" * 64)  # merge killed before its index
    (tmp_path / "config.json.tmp").write_text("{")
    keep = {
        folder / "notes_temp": "a folder we did not make",
        folder / "checkpoint.tmp-mine": "not a TF temp name",
        folder / "ckpt-9_temp": "a file, not a staging folder",
    }
    for path, text in keep.items():
        path.write_text(text)
    before = {
        p: open(p, "rb").read()
        for p in glob.glob(str(folder / "ckpt-[24].*")) + [str(folder / "checkpoint"), str(tmp_path / "config.json")]
    }

    removed = checkpoints.remove_save_leftovers(tmp_path)

    assert sorted(removed) == sorted([
        "config.json.tmp", "checkpoints/ckpt-6_temp/", "checkpoints/checkpoint.tmp0123456789abcdef0123456789abcdef",
        "checkpoints/ckpt-8.data-00000-of-00001",
    ])  # fmt: skip
    assert not staging.exists() and not (folder / "ckpt-8.data-00000-of-00001").exists()
    for path, text in keep.items():
        assert path.read_text() == text
    for path, data in before.items():
        assert open(path, "rb").read() == data
    assert checkpoints.remove_save_leftovers(tmp_path) == []


def test_unreadable_checkpoint_message_names_an_older_checkpoint_instead_of_deleting(tmp_path):
    prefixes = _workdir_with_steps(tmp_path, [2, 4])
    target = glob.glob(prefixes[-1] + ".data-*")[0]
    with open(target, "r+b") as f:
        f.truncate(os.path.getsize(target) // 2)
    with pytest.raises(checkpoints.UnreadableCheckpointError) as raised:
        checkpoints.load_for_inference(tmp_path)
    message = str(raised.value)
    assert f"pass an older checkpoint such as {prefixes[0]}" in message and "delete" not in message
    assert "resumes from the newest checkpoint that restores" in message and "\n" not in message
    assert checkpoints.load_for_inference(prefixes[0])[2] == 2  # the advice works


def test_check_workdir_path(tmp_path):
    assert checkpoints.check_workdir_path(tmp_path / "new" / "deeper").root == str(tmp_path / "new" / "deeper")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(CheckpointError, match="is a file, not a folder"):
        checkpoints.check_workdir_path(tmp_path / "afile")
    with pytest.raises(CheckpointError, match="afile is a file, not a folder"):
        checkpoints.check_workdir_path(tmp_path / "afile" / "run")
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "checkpoints").write_text("x")
    with pytest.raises(CheckpointError, match="needs a folder there"):
        checkpoints.check_workdir_path(tmp_path / "w")
    (tmp_path / "v" / "config.json").mkdir(parents=True)
    with pytest.raises(CheckpointError, match="config.json is not a file"):
        checkpoints.check_workdir_path(tmp_path / "v")
