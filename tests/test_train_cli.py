"""`python -m ncsn_tf.train` as a user runs it: bad input, SIGKILL and resume, NaN exit."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from bomb_images import write_bomb_png
from PIL import Image

from ncsn_tf import checkpoints, configs
from ncsn_tf.train import _parser, resolve_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_FOLDER = ["model.ngf=4", "noise.num_levels=2", "training.batch_size=16"]
TOY = [
    "model.mlp_hidden=32",
    "model.mlp_layers=2",
    "training.batch_size=32",
    "sampling.steps_per_level=2",
    "sampling.num_samples=16",
]


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ncsn_tf.train", "--no-progress", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    return env


def _run(*args: str, cwd: str | os.PathLike[str] = REPO, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(_command(*args), cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)


# TensorFlow's C++ start-up lines (absl format, or its notice before absl is set up).
TF_NATIVE_LOG = re.compile(r"^([IWEF]\d{4} |WARNING: All log messages before absl::InitializeLog)")


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ncsn-train: error:")]


@pytest.mark.parametrize(
    "override, words",
    [
        ("training.bogus=1", "unknown config key 'training.bogus'"),
        ("training.steps=many", "training.steps: expected an integer"),
        ("nosection=3", "needs a section"),
        ("model.ngf", "not of the form section.key=value"),
        ("training.seed=-1", "training.seed must be an integer in [0, 4294967295], got -1"),
        ("training.seed=1e10", "training.seed must be an integer in [0, 4294967295], got 10000000000"),
        ("data.image_size=1", "data.image_size must be an even number >= 2"),
        ("training.steps=2.5", "training.steps: expected an integer"),
        ("data.random_flip=2", "data.random_flip: expected true/false"),
        ("sampling.snr=0", "sampling.snr must be a finite number > 0, got 0.0"),
        ("sampling.order=3", "sampling.order must be 1 (Euler) or 2 (Heun), got 3"),
        ("--sampler=heun", "sampling.sampler: unknown sampler 'heun'; use one of annealed_langevin,"),
    ],
)
def test_bad_override_is_one_line_and_exit_2(tmp_path, override, words):
    completed = _run("--workdir", str(tmp_path / "w"), override, timeout=60)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == _error_lines(completed.stderr)  # nothing else, no traceback
    assert len(_error_lines(completed.stderr)) == 1 and words in completed.stderr
    assert not os.path.exists(tmp_path / "w")


def _assert_one_line_exit_2(completed: subprocess.CompletedProcess, *words: str) -> None:
    assert completed.returncode == 2, completed.stderr[-3000:]
    assert "Traceback" not in completed.stderr
    errors = _error_lines(completed.stderr)
    assert len(errors) == 1 and all(word in errors[0] for word in words), completed.stderr[-3000:]


def test_config_json_nested_thousands_deep_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "config.json").write_text("[" * 5000 + "]" * 5000)  # json.load: RecursionError
    completed = _run("--workdir", str(tmp_path / "w"), timeout=60)
    _assert_one_line_exit_2(completed, "nests 5000 levels deep")
    assert completed.stderr.strip().splitlines() == _error_lines(completed.stderr)


def test_workdir_that_is_a_file_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "afile").write_text("x")
    completed = _run("--workdir", str(tmp_path / "afile"), "--config", "toy", *TOY, "--steps", "1")
    _assert_one_line_exit_2(completed, "is a file, not a folder")
    assert (tmp_path / "afile").read_text() == "x"


def test_defaults_and_flags_resolve_to_the_right_config(tmp_path):
    config, workdir = resolve_config(_parser().parse_args([]))
    assert config == configs.get_config("digits") and workdir == os.path.join("runs", "digits")

    args = _parser().parse_args(
        ["--config", "mnist", "--steps", "7", "--data-dir", "/data/tfds", "--data-path", "/pics", "data.image_size=16"]
    )
    config, workdir = resolve_config(args)
    assert workdir == os.path.join("runs", "mnist")
    assert (config.training.steps, config.data.data_dir, config.data.dataset, config.data.path, config.data.image_size) == (
        7, "/data/tfds", "folder", "/pics", 16)  # fmt: skip

    # Without --config, a workdir's config.json is the base (so --workdir W --steps N resumes any run).
    saved = configs.apply_overrides(configs.get_config("toy"), TOY)
    checkpoints.write_config(tmp_path, saved)
    config, _ = resolve_config(_parser().parse_args(["--workdir", str(tmp_path), "--steps", "9"]))
    assert config == configs.apply_overrides(saved, ["training.steps=9"])

    # --sampler is sampling.sampler; its settings are overrides, and a later override wins.
    args = _parser().parse_args(["--sampler", "probability_flow", "sampling.order=1"])
    config, _ = resolve_config(args)
    assert (config.sampling.sampler, config.sampling.order) == ("probability_flow", 1)
    args = _parser().parse_args(["--sampler", "probability_flow", "sampling.sampler=predictor_corrector"])
    assert resolve_config(args)[0].sampling.sampler == "predictor_corrector"


def test_empty_image_folder_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    completed = _run("--workdir", str(tmp_path / "w"), "--data-path", str(tmp_path / "empty"), *TINY_FOLDER)
    assert completed.returncode == 2, completed.stderr[-2000:]
    assert len(_error_lines(completed.stderr)) == 1 and str(tmp_path / "empty") in completed.stderr
    assert "Traceback" not in completed.stderr
    assert not os.path.exists(tmp_path / "w" / "config.json")  # nothing written for a run that cannot start


def _latest_step(workdir: str) -> int | None:
    prefix = checkpoints.latest_checkpoint(os.path.join(workdir, "checkpoints"))
    return None if prefix is None else int(prefix.rsplit("-", 1)[1])


def test_sigkill_then_rerun_resumes_and_finishes_then_nan_and_conflicts_are_one_line_errors(tmp_path):
    workdir = str(tmp_path / "run")
    args = ["--config", "toy", "--workdir", workdir, "--steps", "600", *TOY, "training.checkpoint_every=50"]
    process = subprocess.Popen(
        _command(*args), cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 240
        while (_latest_step(workdir) or 0) < 100:  # let it write a couple of checkpoints
            assert process.poll() is None, process.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "no checkpoint within 240 s"
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == -signal.SIGKILL
    killed_at = _latest_step(workdir)
    assert killed_at is not None and killed_at % 50 == 0 and killed_at < 600

    completed = _run(*args)  # the same command
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert f"resuming from {workdir}/checkpoints/ckpt-{killed_at} (step {killed_at})" in completed.stderr
    assert _latest_step(workdir) == 600
    assert checkpoints.load_for_inference(workdir)[2] == 600
    assert os.path.isfile(os.path.join(workdir, "samples", "final.png"))

    # A NaN exits 1 with one line and leaves the workdir as it was, config.json included
    # (a rerun of the plain command must not pick up the poisoned learning rate).
    with open(os.path.join(workdir, "config.json"), "rb") as f:
        config_before = f.read()
    exploding = _run(
        "--workdir", workdir, "--steps", "700", "training.learning_rate=1e6", "training.checkpoint_every=1"
    )
    assert exploding.returncode == 1
    errors = _error_lines(exploding.stderr)
    assert (
        len(errors) == 1
        and "NaN/Inf" in errors[0]
        and "the workdir is unchanged" in errors[0]
        and "ckpt-600 is the last good state" in errors[0]
    )
    assert "Traceback" not in exploding.stderr
    assert _latest_step(workdir) == 600
    with open(os.path.join(workdir, "config.json"), "rb") as f:
        assert f.read() == config_before

    # Resuming with a different model: exit 2, one line saying what differs.
    conflicting = _run(*args, "model.mlp_hidden=64")
    assert conflicting.returncode == 2
    errors = _error_lines(conflicting.stderr)
    assert len(errors) == 1 and "model.mlp_hidden: 32 -> 64" in errors[0] and "new --workdir" in errors[0]


# A real kill -9 at the worst moment of the first save: the checkpoint files are complete,
# the manager's state file is not written yet. The write callback (public TF API) runs
# exactly there, before the manager's own callback records the state.
KILL_DURING_FIRST_SAVE = textwrap.dedent(
    """
    import os, signal, sys
    import tensorflow as tf

    original = tf.train.CheckpointManager.save

    def save(self, checkpoint_number=None, check_interval=True, options=None):
        die = tf.train.CheckpointOptions(experimental_write_callbacks=[lambda path: os.kill(os.getpid(), signal.SIGKILL)])
        return original(self, checkpoint_number=checkpoint_number, check_interval=check_interval, options=die)

    tf.train.CheckpointManager.save = save
    from ncsn_tf.train import main
    sys.exit(main(sys.argv[1:]))
    """
)


def test_kill_during_the_first_save_then_rerun_resumes_from_it(tmp_path):
    workdir = str(tmp_path / "run")
    args = ["--no-progress", "--config", "toy", "--workdir", workdir, *TOY, "training.checkpoint_every=2"]
    killed = subprocess.run(
        [sys.executable, "-c", KILL_DURING_FIRST_SAVE, *args, "--steps", "6"],
        cwd=REPO, env=_env(), capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    folder = os.path.join(workdir, "checkpoints")
    assert sorted(os.listdir(folder)) == ["ckpt-2.data-00000-of-00001", "ckpt-2.index"]  # no state file
    saved = {}
    for name in os.listdir(folder):
        with open(os.path.join(folder, name), "rb") as f:
            saved[name] = f.read()

    completed = _run(*args[1:], "--steps", "4")
    assert completed.returncode == 0, completed.stderr[-3000:]
    resumed = [line for line in completed.stderr.splitlines() if "resuming from" in line]
    assert resumed == [
        f"ncsn-train: resuming from {folder}/ckpt-2 (step 2), the newest checkpoint that restores: checkpoints/checkpoint is missing"
    ]
    for name, data in saved.items():
        with open(os.path.join(folder, name), "rb") as f:
            assert f.read() == data, name
    assert _latest_step(workdir) == 4 and checkpoints.load_for_inference(workdir)[2] == 4

    # Then a corrupt newest checkpoint and a save's staging folder: each said once, on one
    # line, and nothing else (no TF warnings about the failed restore, no duplicate records).
    data_file = os.path.join(folder, "ckpt-4.data-00000-of-00001")
    size = os.path.getsize(data_file)
    with open(data_file, "r+b") as f:  # a third of the file: model weights included
        f.seek(size // 3)
        f.write(b"\xa5" * (size // 3))
    os.mkdir(os.path.join(folder, "ckpt-6_temp"))
    completed = _run(*args[1:], "--steps", "6")
    assert completed.returncode == 0, completed.stderr[-3000:]
    lines = [line for line in completed.stderr.splitlines() if line.strip() and not TF_NATIVE_LOG.match(line)]
    resumed = [line for line in lines if "resuming from" in line]
    assert len(resumed) == 1 and resumed[0].startswith(
        f"ncsn-train: resuming from {folder}/ckpt-2 (step 2), the newest checkpoint that restores: ckpt-4 does not restore ("
    ), resumed
    assert [line for line in lines if "removed" in line] == [
        f"ncsn-train: removed what an interrupted save left in {workdir}: checkpoints/ckpt-6_temp/"
    ]
    assert all(line.startswith("ncsn-train: ") for line in lines), lines
    assert _latest_step(workdir) == 6


@pytest.mark.slow  # a CondRefineNetDilated run (minutes on 2 loaded cores); test_data covers the stream in-process
def test_bomb_image_in_a_training_folder_is_skipped_by_name(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(8):
        pixels = np.random.default_rng(index).integers(0, 256, (8, 8), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"image_{index}.png")
    write_bomb_png(folder / "z_bomb.png", 13_500, 13_500)  # sorted last: read from the stream, not the first check
    completed = _run(
        "--workdir", str(tmp_path / "w"), "--data-path", str(folder), *TINY_FOLDER,
        "sampling.num_samples=4", "sampling.steps_per_level=1", "--steps", "2",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "Traceback" not in completed.stderr
    skipped = [line for line in completed.stderr.splitlines() if "skipping unreadable image" in line]
    assert len(skipped) == 1 and str(folder / "z_bomb.png") in skipped[0] and "too large to decode safely" in skipped[0]
