"""`ncsn-export` / `python -m export`: export training workdirs or checkpoints in a batch.

    ncsn-export runs/digits 'runs/sweep-*' --out exports --format both
    ncsn-export runs/digits --samplers predictor_corrector --sampler predictor_corrector --snr 0.5

Each input (a workdir, its checkpoints/ folder or a checkpoint prefix; quoted globs
are expanded here) becomes a verified export `OUT/NAME`. A bad input is reported and
skipped, the others are still exported; the exit code is 1 if any failed. A progress
bar runs on stderr and a table (model, format, size, verification, time) ends the run.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from export_format.errors import ExportInputError
from export_format.settings import SAMPLERS, STEPS_PER_LEVEL

SAMPLER_NAMES = tuple(SAMPLERS)

PRECISIONS = ("float32", "bfloat16")  # = export.exporter.PRECISIONS, without importing TensorFlow for --help
# Sampler defaults settable from the command line (validated by export_format.settings, TF-free).
SETTING_FLAGS = {
    "corrector-steps": "default predictor-corrector corrector steps per level C (default: the config's sampling.corrector_steps)",
    "snr": "default predictor-corrector signal-to-noise ratio r > 0 (default: the config's sampling.snr)",
    "resample-steps": "default RePaint resampling repeats per level for predictor-corrector inpainting (default: the config's sampling.resample_steps)",
    "order": "default probability-flow order: 1 = Euler, 2 = Heun (default: the config's sampling.order)",
}

_GLOB_CHARACTERS = set("*?[")


@dataclass
class Outcome:
    """One row of the final table."""

    source: str
    name: str
    formats: str
    size: str
    verification: str
    seconds: float
    ok: bool


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ncsn-export",
        description="Export NCSN training workdirs or checkpoints as SavedModel + ONNX samplers "
        "(annealed Langevin, predictor-corrector and probability-flow sampling and inpainting inside the graph), "
        "verified in onnxruntime.",
    )
    parser.add_argument(
        "inputs", nargs="*", metavar="INPUT",
        help="training workdir, its checkpoints/ folder, or a checkpoint prefix (WORKDIR/checkpoints/ckpt-500); "
        "globs welcome",
    )  # fmt: skip
    parser.add_argument("--out", default="exports", help="parent folder of the exports (default: exports)")
    parser.add_argument(
        "--format", choices=("savedmodel", "onnx", "both"), default=None,
        help="what to write (default: both; savedmodel with --precision bfloat16)",
    )  # fmt: skip
    parser.add_argument(
        "--precision", choices=PRECISIONS, default="float32",
        help="compute dtype of the score network (default float32). bfloat16: SavedModel only, faster on "
        "CPUs with AVX-512 BF16/AMX and on accelerators; export names get a -bf16 suffix",
    )  # fmt: skip
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (default and minimum: 18)")
    parser.add_argument(
        "--steps-per-level", type=int, default=None, metavar="T",
        help="default Langevin steps per level written into the manifest (default: the config's)",
    )  # fmt: skip
    parser.add_argument(
        "--samplers", default=None, metavar="A,B",
        help=f"comma-separated samplers to export (default: all: {','.join(SAMPLER_NAMES)}); each ONNX sampling "
        "graph carries a copy of the network, so a large model may export only what it needs",
    )  # fmt: skip
    parser.add_argument(
        "--sampler", default=None, metavar="NAME",
        help="the manifest's default sampler (default: the config's sampling.sampler, else annealed_langevin)",
    )  # fmt: skip
    for flag, meaning in SETTING_FLAGS.items():
        parser.add_argument(f"--{flag}", default=None, metavar="VALUE", help=meaning)
    parser.add_argument(
        "--fast-conversion", action="store_true",
        help="skip tf2onnx's graph optimizers: ~3x faster conversion, ~5-10%% slower onnxruntime steps",
    )  # fmt: skip
    parser.add_argument("--no-ema", action="store_true", help="export the raw weights even when EMA weights exist")
    parser.add_argument(
        "--toy-mixture", action="store_true",
        help="also export the exact-score model of the paper's 2-D Gaussian mixture (name: toy_mixture)",
    )  # fmt: skip
    return parser


def _number(text: str) -> Any:
    """A command-line value as int, else float, else the text (the registry names what is wrong)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def check_sampler_options(args: argparse.Namespace) -> dict[str, Any]:
    """The exporter's sampler options from the command line, validated by `export_format.settings`.

    Returns:
        {"samplers": (...) or None, "default_sampler": name or None, "sampler_defaults": {setting: value}}.

    Raises:
        ExportInputError: an unknown sampler, a default sampler or a setting for a sampler
            that is not exported, or a value out of its range (one line each).
    """
    samplers = None
    if args.samplers is not None:
        samplers = tuple(name.strip() for name in args.samplers.split(",") if name.strip())
        unknown = [name for name in samplers if name not in SAMPLERS]
        if unknown or not samplers:
            raise ExportInputError(
                f"--samplers: unknown sampler(s) {', '.join(map(repr, unknown)) or 'none given'}; "
                f"choose from {','.join(SAMPLER_NAMES)}"
            )
    held = samplers or SAMPLER_NAMES
    if args.sampler is not None:
        if args.sampler not in SAMPLERS:
            raise ExportInputError(f"--sampler: unknown sampler {args.sampler!r}; choose one of {', '.join(SAMPLER_NAMES)}")
        if args.sampler not in held:
            raise ExportInputError(f"--sampler {args.sampler} is not among --samplers {','.join(held)}; add it there")
    if args.steps_per_level is not None:  # the level bound is checked per model
        STEPS_PER_LEVEL.check(args.steps_per_level, "--steps-per-level")
        if "annealed_langevin" not in held:
            raise ExportInputError(
                f"--steps-per-level is a setting of annealed_langevin, which --samplers {','.join(held)} leaves out"
            )
    owners = {setting.name: (kind.name, setting) for kind in SAMPLERS.values() for setting in kind.settings}
    defaults: dict[str, Any] = {}
    for flag in SETTING_FLAGS:
        text = getattr(args, flag.replace("-", "_"))
        if text is None:
            continue
        owner, setting = owners[flag.replace("-", "_")]
        if owner not in held:
            raise ExportInputError(f"--{flag} is a setting of {owner}, which --samplers {','.join(held)} leaves out")
        defaults[setting.name] = setting.check(_number(text), f"--{flag}")
    return {"samplers": samplers, "default_sampler": args.sampler, "sampler_defaults": defaults or None}


def expand_inputs(patterns: Sequence[str]) -> tuple[list[str], list[str]]:
    """(paths, patterns that matched nothing); globs are expanded and sorted, plain paths kept."""
    paths: list[str] = []
    unmatched: list[str] = []
    for pattern in patterns:
        if _GLOB_CHARACTERS & set(pattern):
            matches = sorted(glob.glob(pattern))
            if not matches:
                unmatched.append(pattern)
            paths.extend(matches)
        else:
            paths.append(pattern)
    return paths, unmatched


def _size(num_bytes: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if num_bytes < 1024 or unit == "GB":
            return f"{num_bytes:.0f} {unit}" if unit == "B" else f"{num_bytes:.1f} {unit}"
        num_bytes /= 1024
    return ""


def format_table(outcomes: Sequence[Outcome]) -> str:
    """The final table, one row per input."""
    header = ("model", "format", "size", "verification", "time")
    rows = [(o.name, o.formats, o.size, o.verification, f"{o.seconds:.1f} s") for o in outcomes]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in (header, *rows)]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the batch export; returns the exit code (0 = all exported, 1 = any failed, 2 = usage)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.inputs and not args.toy_mixture:
        parser.error("give at least one INPUT (workdir or checkpoint) or --toy-mixture")
    if args.format is None:
        args.format = "savedmodel" if args.precision == "bfloat16" else "both"
    if args.precision == "bfloat16" and args.format != "savedmodel":
        parser.error("--precision bfloat16 writes a SavedModel only (onnxruntime's CPU provider has no bfloat16 "
                     "convolution); use --format savedmodel")
    try:
        sampler_options = check_sampler_options(args)
    except ExportInputError as error:
        parser.error(str(error))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from export import onnx_convert

    try:
        if args.format != "savedmodel":
            onnx_convert.check_opset(args.opset)
    except ValueError as error:
        parser.error(str(error))

    from tqdm import tqdm

    from export.exporter import ExportError, export_checkpoint, export_toy_mixture

    paths, unmatched = expand_inputs(args.inputs)
    jobs: list[str | None] = [*paths, *([None] if args.toy_mixture else [])]  # None = the toy mixture
    outcomes = [Outcome(pattern, pattern, args.format, "-", "FAILED: no such file (glob matched nothing)", 0.0, False) for pattern in unmatched]
    options = dict(
        formats=args.format, opset=args.opset, steps_per_level=args.steps_per_level,
        optimize_onnx=not args.fast_conversion, precision=args.precision, **sampler_options,
    )  # fmt: skip
    suffix = "-bf16" if args.precision == "bfloat16" else ""
    used_names: set[str] = set()
    bar = tqdm(jobs, desc="exporting", unit="model", file=sys.stderr, dynamic_ncols=True)
    for job in bar:
        source = "toy mixture" if job is None else job
        started = time.perf_counter()

        def progress(stage: str, source: str = source) -> None:
            bar.set_postfix_str(f"{os.path.basename(os.path.normpath(source))}: {stage}")

        try:
            if job is None:
                if args.precision != "float32":
                    raise ExportError("the toy mixture's exact score is exported in float32 only; drop --precision")
                result = export_toy_mixture(args.out, progress=progress, **options)
            else:
                from export.exporter import default_name

                try:
                    name = default_name(job) + suffix
                except Exception:  # reported by export_checkpoint below with the full reason
                    name = None
                if name in used_names:  # two inputs with the same folder name: keep both
                    name = f"{name}-{len(used_names) + 1}"
                result = export_checkpoint(job, args.out, use_ema=not args.no_ema, name=name, progress=progress, **options)
            used_names.add(result.name)
            for note in result.notes:
                bar.write(f"ncsn-export: {note}", file=sys.stderr)
            difference = result.verification.get("onnx_vs_savedmodel_max_abs_diff")
            verdict = "passed" + (f" (max diff {difference:.1e})" if difference is not None else " (SavedModel run)")
            outcomes.append(Outcome(source, result.name, args.format, _size(result.total_bytes), verdict, result.seconds, True))
        except ExportError as error:
            bar.write(f"ncsn-export: {source}: {error}", file=sys.stderr)
            reason = str(error) if len(str(error)) <= 70 else str(error)[:67] + "..."
            name = os.path.basename(os.path.normpath(source))
            outcomes.append(Outcome(source, name, args.format, "-", f"FAILED: {reason}", time.perf_counter() - started, False))
    bar.close()
    print(format_table(outcomes))
    failed = sum(not outcome.ok for outcome in outcomes)
    written = len(outcomes) - failed
    print(f"{written} exported to {os.path.abspath(args.out)}, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
