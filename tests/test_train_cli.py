"""`python -m ncsn_tf.train` as a user runs it: bad input, SIGKILL and resume, NaN exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from ncsn_tf import checkpoints, configs
from ncsn_tf.train import _parser, resolve_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY_FOLDER = ["model.ngf=4", "noise.num_levels=2", "training.batch_size=16"]
TOY = ["model.mlp_hidden=32", "model.mlp_layers=2", "training.batch_size=32", "sampling.steps_per_level=2", "sampling.num_samples=16"]


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "ncsn_tf.train", "--no-progress", *args]


def _env() -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    env.pop("TF_CONFIG", None)
    return env


def _run(*args: str, cwd: str | os.PathLike[str] = REPO, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(_command(*args), cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("ncsn-train: error:")]


@pytest.mark.parametrize(
    "override, words",
    [
        ("training.bogus=1", "unknown config key 'training.bogus'"),
        ("training.steps=many", "training.steps: expected an integer"),
        ("nosection=3", "needs a section"),
        ("model.ngf", "not of the form section.key=value"),
    ],
)
def test_bad_override_is_one_line_and_exit_2(tmp_path, override, words):
    completed = _run("--workdir", str(tmp_path / "w"), override, timeout=60)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == _error_lines(completed.stderr)  # nothing else, no traceback
    assert len(_error_lines(completed.stderr)) == 1 and words in completed.stderr
    assert not os.path.exists(tmp_path / "w")


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
    process = subprocess.Popen(_command(*args), cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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

    # A NaN exits 1 with one line and leaves the finished run's checkpoint the latest.
    exploding = _run("--workdir", workdir, "--steps", "700", "training.learning_rate=1e30", "training.checkpoint_every=1")
    assert exploding.returncode == 1
    errors = _error_lines(exploding.stderr)
    assert len(errors) == 1 and "NaN/Inf" in errors[0] and "ckpt-600 is the last good state" in errors[0]
    assert "Traceback" not in exploding.stderr
    assert _latest_step(workdir) == 600

    # Resuming with a different model: exit 2, one line saying what differs.
    conflicting = _run(*args, "model.mlp_hidden=64")
    assert conflicting.returncode == 2
    errors = _error_lines(conflicting.stderr)
    assert len(errors) == 1 and "model.mlp_hidden: 32 -> 64" in errors[0] and "new --workdir" in errors[0]
