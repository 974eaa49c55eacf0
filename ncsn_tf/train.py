"""`python -m ncsn_tf.train` / `ncsn-train`: train a score network (thin CLI over `trainer.train`).

With no arguments it trains the embedded default (`digits`) into `runs/digits`.
Rerunning the same command resumes from the newest checkpoint that restores; the
workdir is not changed until the first step succeeded. Examples::

    python -m ncsn_tf.train
    python -m ncsn_tf.train --config toy --steps 2000
    python -m ncsn_tf.train --data-path ~/my_faces data.image_size=32 data.channels=3 model.ngf=64
    python -m ncsn_tf.train training.ema_rate=0.999 training.precision=mixed_bfloat16
    python -m ncsn_tf.train --sampler predictor_corrector sampling.corrector_steps=3 sampling.snr=0.6

Exit codes: 0 done, 1 training failed (NaN/Inf loss), 2 bad input (config, data,
workdir), 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from ncsn_tf import configs
from ncsn_tf.configs import Config, ConfigError

PROGRAM = "ncsn-train"
DEFAULT_CONFIG = "digits"
DEFAULT_RUNS_DIR = "runs"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Train a Noise Conditional Score Network (Song & Ermon, 2019). "
        "Rerun the same command to resume from the latest checkpoint.",
    )
    parser.add_argument(
        "--config",
        choices=sorted(configs.CONFIGS),
        default=None,
        help=f"dataset configuration (default: the workdir's config.json if it exists, else {DEFAULT_CONFIG})",
    )
    parser.add_argument("--workdir", default=None, help=f"output folder (default: {DEFAULT_RUNS_DIR}/<config name>)")
    parser.add_argument("--steps", type=int, default=None, help="total training steps to reach (training.steps)")
    parser.add_argument("--data-dir", default=None, help="TensorFlow Datasets data_dir with prepared data (data.data_dir)")
    parser.add_argument("--data-path", default=None, help="train on a folder of PNG/JPEG images (data.dataset=folder, data.path)")
    parser.add_argument(
        "--sampler", default=None, metavar="{" + ",".join(configs.SAMPLERS) + "}",
        help="sampler of the sample grids (sampling.sampler; default: the config's, annealed_langevin); its "
        "settings are overrides: sampling.corrector_steps=C sampling.snr=R, sampling.order=1|2 (docs/samplers.md)",
    )  # fmt: skip  # checked with the config (a one-line error), not by argparse
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="section.key=value",
        help="config overrides, e.g. training.batch_size=64 model.ngf=32 noise.num_levels=10",
    )
    return parser


def resolve_config(args: argparse.Namespace) -> tuple[Config, str]:
    """The config to train and the workdir, from the parsed arguments.

    Base config: `--config` if given; otherwise the workdir's `config.json` when it
    exists (so `--workdir W --steps N` resumes any run); otherwise `digits`. Then
    `--data-path`, `--data-dir`, `--steps`, `--sampler` and the free overrides, in that
    order (`--sampler X` is `sampling.sampler=X`; a later override wins).

    Raises:
        ConfigError: unknown config, bad override, invalid config.json.
    """
    name = args.config or DEFAULT_CONFIG
    workdir = args.workdir or os.path.join(DEFAULT_RUNS_DIR, name)
    saved = os.path.join(workdir, "config.json")
    if args.config is None and os.path.isfile(saved):
        config = configs.load_json(saved)
    else:
        config = configs.get_config(name)
    overrides: list[str] = []
    if args.data_path is not None:
        overrides += ["data.dataset=folder", f"data.path={args.data_path}"]
    if args.data_dir is not None:
        overrides.append(f"data.data_dir={args.data_dir}")
    if args.steps is not None:
        overrides.append(f"training.steps={args.steps}")
    if args.sampler is not None:
        overrides.append(f"sampling.sampler={args.sampler}")
    config = configs.apply_overrides(config, [*overrides, *args.overrides])
    return config, workdir


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, train, and return the exit code (see the module docstring)."""
    args = _parser().parse_args(argv)

    def fail(message: str, code: int) -> int:
        print(f"{PROGRAM}: error: {message}", file=sys.stderr)
        return code

    try:
        config, workdir = resolve_config(args)
    except ConfigError as error:
        return fail(str(error), 2)

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"{PROGRAM}: %(message)s"))
    package_logger = logging.getLogger("ncsn_tf")
    package_logger.addHandler(handler)
    package_logger.setLevel(logging.INFO)
    # This handler prints ncsn_tf's records; the root logger must not print them again
    # (libraries call logging.info() at module level, which gives the root a handler).
    package_logger.propagate = False

    # TensorFlow is imported only now, so argument errors come back instantly.
    from ncsn_tf.checkpoints import CheckpointError, check_workdir_path
    from ncsn_tf.data import DataError
    from ncsn_tf.trainer import NonFiniteLossError, TrainingError, train

    try:
        check_workdir_path(workdir)  # (train checks again) before the first log line: a bad --workdir is one line
    except CheckpointError as error:
        return fail(str(error), 2)
    package_logger.info("training %s into %s (%d steps)", config.name, os.path.abspath(workdir), config.training.steps)
    try:
        result = train(config, workdir, progress=not args.no_progress)
    except NonFiniteLossError as error:
        return fail(str(error), 1)
    except (CheckpointError, DataError, ConfigError, TrainingError) as error:
        return fail(str(error), 2)
    except KeyboardInterrupt:
        return fail("interrupted; rerun the same command to resume from the latest checkpoint", 130)
    speed = f", {result.steps_per_second:.2f} steps/s" if result.steps_per_second else ""
    samples = f"; samples {result.sample_grid}" if result.sample_grid else ""
    package_logger.info("done: step %d, loss %s%s; checkpoint %s%s", result.step, _fmt(result.loss), speed, result.checkpoint, samples)
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


if __name__ == "__main__":
    sys.exit(main())
