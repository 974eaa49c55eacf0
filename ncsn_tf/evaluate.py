"""Evaluate trained models: samples, quality metrics, and the held-out objective.

    python -m ncsn_tf.evaluate WORKDIR_OR_EXPORT [MORE ...] [--num-samples N] [--out DIR]
        [--sampler {annealed_langevin,predictor_corrector,probability_flow}]
        [--steps-per-level T] [--epsilon E] [--denoise] [--corrector-steps C] [--snr R] [--order {1,2}]

A model is a training workdir (or one of its checkpoints, `WORKDIR/checkpoints/ckpt-500`)
or an export (its folder, `manifest.json` + SavedModel + ONNX, read and checked by
`export_format`; run with ONNX Runtime by default when it has ONNX files, else
TensorFlow; `--runtime onnxruntime|tensorflow` chooses). An export samples with its
manifest's `sampler` defaults (e.g. `python -m export RUN
--steps-per-level 7` gives 7), a workdir with its config's. For each model this
draws N seeded samples in batches (image b uses seed `--seed + b`, so it does not
depend on the batch size), writes a PNG grid, and reports in `evaluation.json`:

- the sampler and its settings used, where their defaults came from, and the
  network calls per image. A workdir runs every sampler (`--sampler`, docs/samplers.md);
  an export runs the samplers its manifest lists (asking it for another is a one-line
  error naming those it has);
- digits: the digits classifier's Frechet distance (to the "train" split), share
  of samples with confidence > 0.9, entropy, class shares, plus the reference rows
  (held-out real digits = the floor; a Gaussian fitted to the data);
- toy: mode weights (with binomial standard errors) and MMD^2 to true samples
  (with the MMD of a second true sample as the floor);
- other image data: FID and Inception score with Keras InceptionV3 against cached
  dataset statistics (weights from the Keras cache or `--inception-weights`);
- always: the held-out denoising score matching loss, total and per sigma level,
  on held-out data with a FIXED noise seed, so several models are compared on
  identical perturbations (paper: NCSN "provides a learning objective that can be
  used for principled model comparisons"). With several models the numbers are
  printed side by side, with the paired standard error of each difference.

The work is done by `ncsn_tf.evaluation` (one module per job); this is the CLI.

References:
    Song & Ermon 2019 (Section 4.2, the objective; Section 5, FID/IS protocol).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ncsn_tf.configs import SAMPLERS
from ncsn_tf.evaluation import draw, objective
from ncsn_tf.evaluation.generator import EvaluationError
from ncsn_tf.evaluation.loading import RUNTIME_ALIASES, RUNTIMES
from ncsn_tf.evaluation.pipeline import EVALUATION_FILE, EvaluationOptions, evaluate_paths


def add_sampler_arguments(parser: argparse.ArgumentParser, *, inpainting: bool = False) -> None:
    """The sampler and its settings; each defaults to the model's (its config, or an export's manifest).

    Also used by `python -m ncsn_tf.experiments inpaint`, with RePaint's `--resample-steps`
    (`inpainting=True`). `sampler_overrides` reads them back.
    """
    group = parser.add_argument_group(
        "sampler (default: the model's own settings; docs/samplers.md)",
        "a workdir runs every sampler; an export those its manifest lists",
    )
    group.add_argument(
        "--sampler", default=None, metavar="{" + ",".join(SAMPLERS) + "}",
        help="annealed_langevin (the paper's, 1,000 calls by default), predictor_corrector or probability_flow",
    )  # fmt: skip  # checked with the settings (one-line errors), not by argparse
    group.add_argument("--steps-per-level", type=int, default=None, help="annealed Langevin: steps per level T")
    group.add_argument("--epsilon", type=float, default=None, help="annealed Langevin: step size at the smallest sigma")
    denoise = group.add_mutually_exclusive_group()
    denoise.add_argument(
        "--denoise", dest="denoise", action="store_true", default=None, help="annealed Langevin: final denoising step"
    )
    denoise.add_argument("--no-denoise", dest="denoise", action="store_false", help="no final denoising step")
    group.add_argument(
        "--corrector-steps", type=int, default=None, metavar="C", help="predictor-corrector: corrector steps per level"
    )
    group.add_argument(
        "--snr", type=float, default=None, help="predictor-corrector: the correctors' signal-to-noise ratio (> 0)"
    )
    group.add_argument(
        "--order", type=int, default=None, metavar="{1,2}", help="probability flow: 1 = Euler, 2 = Heun"
    )
    if inpainting:
        group.add_argument(
            "--resample-steps", type=int, default=None, metavar="U",
            help="predictor-corrector: RePaint's resampling, U extra passes per level (0 = off)",
        )  # fmt: skip


def sampler_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The parsed `add_sampler_arguments` flags as `SamplingConfig` field overrides (None = the model's)."""
    overrides = {
        "sampler": args.sampler, "steps_per_level": args.steps_per_level, "epsilon": args.epsilon,
        "final_denoise": args.denoise, "corrector_steps": args.corrector_steps, "snr": args.snr, "order": args.order,
    }  # fmt: skip
    if hasattr(args, "resample_steps"):
        overrides["resample_steps"] = args.resample_steps
    return overrides


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m ncsn_tf.evaluate`."""
    parser = argparse.ArgumentParser(
        prog="python -m ncsn_tf.evaluate",
        description="Sample-quality metrics and held-out DSM loss of one or more trained models, side by side.",
    )
    parser.add_argument("paths", nargs="+", help="training workdir, checkpoint prefix (.../ckpt-N) or export folder")
    parser.add_argument(
        "--num-samples", type=int, default=None, help="samples per model (default: digits 1000, toy 1280, else 50000)"
    )
    parser.add_argument("--batch-size", type=int, default=draw.DEFAULT_BATCH_SIZE, help="samples per sampler call")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first sample (sample b uses seed + b)")
    add_sampler_arguments(parser)
    parser.add_argument("--loss-only", action="store_true", help="skip sampling; only the held-out DSM loss")
    parser.add_argument("--held-out", type=int, default=objective.HELD_OUT_COUNT, help="held-out examples for the loss")
    parser.add_argument(
        "--inception-weights", default=None, help="InceptionV3 .h5 (with top) when not in the Keras cache"
    )
    parser.add_argument("--cache-dir", default=None, help="cache of dataset statistics and the digits classifier")
    parser.add_argument(
        "--runtime", choices=(*RUNTIMES, *RUNTIME_ALIASES), default="auto", metavar="{" + ",".join(RUNTIMES) + "}",
        help="how to run an export (default auto: ONNX Runtime when it has ONNX files, else TensorFlow; "
        "onnx and savedmodel are accepted as older names)",
    )  # fmt: skip
    parser.add_argument(
        "--out", default=None, help="output folder (default: WORKDIR/evaluation/step_N or EXPORT_evaluation)"
    )
    parser.add_argument("--save-samples", action="store_true", help="also write samples.npz (raw samples)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def options_from_args(args: argparse.Namespace) -> EvaluationOptions:
    """The parsed command line as EvaluationOptions."""
    return EvaluationOptions(
        num_samples=args.num_samples,
        batch_size=args.batch_size,
        seed=args.seed,
        sampler=args.sampler,
        steps_per_level=args.steps_per_level,
        epsilon=args.epsilon,
        denoise=args.denoise,
        corrector_steps=args.corrector_steps,
        snr=args.snr,
        order=args.order,
        samples=not args.loss_only,
        save_samples=args.save_samples,
        inception_weights=args.inception_weights,
        cache_dir=args.cache_dir,
        held_out_count=args.held_out,
        progress=not args.quiet,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ncsn_tf.evaluate A [B ...]`: see the module docstring.

    Returns:
        0 on success, 2 after a one-line error on stderr.
    """
    args = build_parser().parse_args(argv)
    options = options_from_args(args)
    from ncsn_tf.checkpoints import CheckpointError
    from ncsn_tf.classifier import ClassifierError
    from ncsn_tf.configs import ConfigError
    from ncsn_tf.metrics import MetricsError

    try:
        results, table = evaluate_paths(args.paths, options, args.out, args.runtime)
    except (EvaluationError, MetricsError, CheckpointError, ClassifierError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(table)
    for result in results:
        print(f"wrote {Path(result['out_dir']) / EVALUATION_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
