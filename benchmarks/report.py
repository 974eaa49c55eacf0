"""Run the issues' training and sampling benchmarks and write benchmarks/REPORT.md.

    python -m benchmarks.report              # runs both benchmarks (about 40 minutes here; run it alone)
    python -m benchmarks.report --skip-run   # only rebuild REPORT.md from benchmarks/results/*.json
    python -m benchmarks.report --quick      # smoke run (tiny settings; for tests)

The report holds the machine details, the speed goals of issues 2 and 3 against the
PyTorch reference (met or not), a table per benchmark, a PNG plot of seconds
per step against batch size (one line per precision / runtime) and the achieved
convolution GFLOP/s as a share of the nominal fp32 peak of this CPU (~200 GFLOP/s,
the figure the project uses: about 2 cores x 32 fp32 FLOP per cycle (two 256-bit FMA
pipes; Zen 4 runs AVX-512 on them) x ~3.1 GHz; nominal, not measured).

The benchmarks themselves are `benchmarks/train_step.py` (DSM loss + Adam step) and
`benchmarks/sampling.py` (one Langevin step in eager TF, tf.function, SavedModel and
ONNX Runtime); this script only calls them and formats their JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
REPORT = ROOT / "benchmarks" / "REPORT.md"
PEAK_GFLOPS = 200.0  # nominal fp32 peak of this CPU (see the module docstring)

# The benchmark rows: the reference networks (mnist: ngf 64, 28x28; cifar10: ngf 128,
# 32x32x3) at the batches the PyTorch reference was measured at, in fp32, mixed_bfloat16 and
# fp32 under XLA, plus the digits network of the default run. Sampling: digits and mnist at
# batch 1/16/64 in every runtime, with the bfloat16 paths; L = 3 levels of T = 2 steps is
# enough to time a step and the loop overhead (the full ladder only repeats them).
TRAIN_RUNS = {
    "train_step_mnist.json": ["--configs", "mnist", "--batches", "128", "32", "--steps", "3", "--warmup", "1"],
    "train_step_cifar10.json": ["--configs", "cifar10", "--batches", "32", "--steps", "3", "--warmup", "1"],
    "train_step_digits.json": [
        "--configs", "digits", "--batches", "128", "--precisions", "float32", "mixed_bfloat16", "float32_xla",
        "--steps", "30", "--warmup", "3",
    ],
}  # fmt: skip
SAMPLING_ARGS = [
    "--configs",
    "digits,mnist",
    "--batches",
    "1,16,64",
    "--steps-per-level",
    "2",
    "--levels",
    "3",
    "--bf16",
]
TRAIN_QUICK_RUNS = {"train_step_quick.json": ["--quick"]}
SAMPLING_QUICK_ARGS = ["--quick"]
# Reference PyTorch implementation (ermongroup/ncsn) on this CPU, fp32, 2 threads (issues 2 and 3).
PYTORCH_TRAIN_IMAGES_PER_S = {("mnist", 128): 13.7, ("mnist", 32): 13.5, ("cifar10", 32): 3.2}
PYTORCH_STEP_SECONDS = {16: 0.42, 64: 1.63}  # mnist network: own loop step at 16, score evaluation at 64


def machine_details() -> dict[str, Any]:
    """CPU model, cores, memory, OS and library versions."""
    details: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
    }
    try:
        cpu_info = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
        for line in cpu_info.splitlines():
            if line.startswith("model name"):
                details["cpu"] = line.split(":", 1)[1].strip()
                break
        flags = next((line for line in cpu_info.splitlines() if line.startswith("flags")), "")
        details["avx512_bf16"] = "avx512_bf16" in flags
    except OSError:
        pass
    try:
        meminfo = Path("/proc/meminfo").read_text(encoding="ascii")
        total_kb = int(next(line for line in meminfo.splitlines() if line.startswith("MemTotal")).split()[1])
        details["memory_gb"] = round(total_kb / 1024**2, 1)
    except (OSError, StopIteration, ValueError):
        pass
    try:
        load = os.getloadavg()
        details["load_average_1_5_15"] = [round(value, 2) for value in load]
    except OSError:
        pass
    from importlib import metadata

    for package in ("tensorflow", "keras", "onnxruntime", "tf2onnx", "numpy"):
        try:
            details[package] = metadata.version(package)  # without importing TensorFlow
        except metadata.PackageNotFoundError:
            continue
    return details


def run_benchmark(module: str, arguments: list[str], output: Path, timeout: float) -> dict[str, Any]:
    """Run `python -m module arguments --output output`; return its JSON (or an error dict)."""
    command = [sys.executable, "-m", module, *arguments, "--output", str(output)]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    started = time.perf_counter()
    print("running:", " ".join(command[1:]), flush=True)
    try:
        completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"{module} did not finish in {timeout:.0f} s", "command": command[1:]}
    seconds = time.perf_counter() - started
    if completed.returncode != 0 or not output.exists():
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"{module} exit code {completed.returncode}: {last}", "command": command[1:]}
    report = json.loads(output.read_text(encoding="utf-8"))
    report["_command"] = "python -m " + " ".join(command[2:])
    report["_seconds"] = seconds
    return report


def load_json(path: Path) -> dict[str, Any] | None:
    """A results file, or None when it does not exist."""
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------
# Rows.
# ---------------------------------------------------------------------------


def _first(row: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if row.get(key) is not None:
            return row[key]
    return None


def training_rows(report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Normalised rows of benchmarks/train_step.py: config, batch, series (precision), s/step, GFLOP/s."""
    rows = []
    for row in (report or {}).get("rows", []):
        if "error" in row:
            rows.append(
                {
                    "config": row.get("config"),
                    "batch": row.get("batch_size"),
                    "series": row.get("precision"),
                    "error": row["error"],
                }
            )
            continue
        rows.append(
            {
                "config": row["config"],
                "batch": row["batch_size"],
                "series": row["precision"],
                "seconds_per_step": row["median_step_s"],
                "images_per_second": row["images_per_s"],
                "gflops": row.get("achieved_gflops"),
                "first_step_seconds": (row.get("trace_s") or 0) + (row.get("warmup_s") or 0),
            }
        )
    return rows


def sampling_rows(report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Normalised rows of benchmarks/sampling.py: config, batch, series (runtime), s/score, s/step, s/image."""
    rows = []
    for row in (report or {}).get("rows", []):
        series = _first(row, "runtime", "backend", "mode")
        batch = _first(row, "batch_size", "batch")
        if "error" in row:
            rows.append({"config": row.get("config"), "batch": batch, "series": series, "error": row["error"]})
            continue
        seconds_per_step = _first(row, "step_seconds", "seconds_per_step")
        rows.append(
            {
                "config": row.get("config"),
                "batch": batch,
                "series": series,
                "seconds_per_step": seconds_per_step,
                "score_seconds": row.get("score_seconds"),
                "seconds_per_image": _first(row, "step_seconds_per_image", "seconds_per_image"),
                "loop_overhead": row.get("loop_overhead"),
            }
        )
    return rows


def _cell(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def markdown_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]], peak: float) -> str:
    """A markdown table of the rows; a "% of peak" column follows "gflops" when present."""
    header = [title for _, title in columns]
    with_peak = any(key == "gflops" for key, _ in columns)
    if with_peak:
        header.append(f"% of {peak:.0f} GFLOP/s")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if "error" in row:
            cells = [_cell(row.get(key)) for key, _ in columns[:3]] + [f"error: {row['error']}"]
            cells += [""] * (len(header) - len(cells))
        else:
            cells = [
                f"{100 * row[key]:+.1f}%"
                if key == "loop_overhead" and row.get(key) is not None
                else _cell(row.get(key))
                for key, _ in columns
            ]
            if with_peak:
                cells.append(f"{100 * row['gflops'] / peak:.1f}%" if row.get("gflops") else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(train: list[dict[str, Any]], sample: list[dict[str, Any]], path: Path) -> None:
    """Seconds per step against batch size, log-log: training (per precision) and sampling (per runtime)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("training step (DSM loss + Adam)", train), ("one Langevin step (score evaluation)", sample)]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, (title, rows) in zip(axes, panels, strict=True):
        series: dict[str, list[tuple[int, float]]] = {}
        for row in rows:
            if "error" in row or row.get("seconds_per_step") is None or row.get("batch") is None:
                continue
            series.setdefault(f"{row['config']} {row['series']}", []).append((row["batch"], row["seconds_per_step"]))
        for name, points in sorted(series.items()):
            points.sort()
            axis.plot([b for b, _ in points], [s for _, s in points], marker="o", label=name)
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("batch size")
        axis.set_ylabel("seconds per step")
        axis.set_title(title, fontsize=10)
        axis.grid(True, which="both", alpha=0.3)
        if series:
            axis.legend(fontsize=7)
        else:
            axis.text(0.5, 0.5, "no results", ha="center", va="center", transform=axis.transAxes)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def goal_rows(train: list[dict[str, Any]], sample: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The issues' speed goals, each with the measured value and whether it is met.

    Training (issue 2): fp32 images/s >= the PyTorch reference at each measured
    (config, batch); mixed_bfloat16 >= 1.5x it at mnist batch 128. Sampling (issue 3),
    mnist network: seconds per Langevin step >= 1.2x faster than PyTorch in fp32 and
    1.6x in bfloat16; in-graph loop overhead < 10% for every graph runtime.
    """
    goals: list[dict[str, Any]] = []
    for row in train:
        reference = PYTORCH_TRAIN_IMAGES_PER_S.get((row.get("config"), row.get("batch")))
        if reference is None or "error" in row:
            continue
        factor = {"float32": 1.0, "mixed_bfloat16": 1.5}.get(row["series"])
        if factor is None:
            continue
        ratio = row["images_per_second"] / reference
        goals.append({
            "goal": f"training {row['series']} >= {factor:g}x PyTorch",
            "case": f"{row['config']} batch {row['batch']}",
            "measured": f"{row['images_per_second']:.3g} img/s ({ratio:.2f}x)",
            "target": f">= {factor * reference:.3g} img/s",
            "met": ratio >= factor,
        })  # fmt: skip
    for row in sample:
        if "error" in row or row.get("series") == "eager TF" or row.get("seconds_per_step") is None:
            continue
        case = f"{row['config']} {row['series']} batch {row['batch']}"
        if row.get("loop_overhead") is not None:
            goals.append({
                "goal": "in-graph loop overhead < 10%", "case": case,
                "measured": f"{100 * row['loop_overhead']:+.1f}%", "target": "< +10%", "met": row["loop_overhead"] < 0.10,
            })  # fmt: skip
        reference = PYTORCH_STEP_SECONDS.get(row["batch"]) if row["config"] == "mnist" else None
        if reference is not None:
            factor = 1.6 if "bf16" in row["series"] else 1.2
            ratio = reference / row["seconds_per_step"]
            goals.append({
                "goal": f"Langevin step >= {factor:g}x faster than PyTorch", "case": case,
                "measured": f"{row['seconds_per_step']:.3g} s ({ratio:.2f}x)",
                "target": f"<= {reference / factor:.3g} s", "met": ratio >= factor,
            })  # fmt: skip
    return goals


def goals_table(goals: list[dict[str, Any]]) -> str:
    lines = ["| goal | case | measured | target | met |", "|---|---|---|---|---|"]
    for goal in goals:
        lines.append(
            f"| {goal['goal']} | {goal['case']} | {goal['measured']} | {goal['target']} | {'yes' if goal['met'] else '**no**'} |"
        )
    return "\n".join(lines)


def write_report(
    train_reports: list[dict[str, Any] | None],
    sampling_report: dict[str, Any] | None,
    path: Path = REPORT,
    peak: float = PEAK_GFLOPS,
) -> str:
    """Write REPORT.md (and REPORT_steps.png beside it); return the markdown."""
    train = [row for report in train_reports for row in training_rows(report)]
    sample = sampling_rows(sampling_report)
    goals = goal_rows(train, sample)
    plot_path = path.with_name(path.stem + "_steps.png")
    plot(train, sample, plot_path)
    machine = machine_details()
    lines = [
        "# Benchmark report",
        "",
        f"Written by `python -m benchmarks.report` on {time.strftime('%Y-%m-%d %H:%M')}.",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in machine.items()],
        f"- nominal fp32 peak: {peak:.0f} GFLOP/s (the ratio columns divide achieved convolution GFLOP/s by it; "
        "it is an estimate from the core count and vector width, so a ratio above 100% means this CPU peaks "
        "higher, e.g. a higher clock under AVX-512, and bf16 rows count bf16 FLOPs against the fp32 figure)",
        "",
        "The machine is shared: a load average above the core count means other work ran at the same time "
        "and the times are upper bounds.",
        "",
        f"![seconds per step against batch size]({plot_path.name})",
        "",
        "## Goals",
        "",
        "Against the reference PyTorch implementation measured on this CPU (issues 2 and 3).",
        "",
        goals_table(goals) if goals else "No results to compare.",
        "",
        "## Training step",
        "",
    ]
    for report in train_reports:
        if report and "_command" in report:
            took = f" ({report['_seconds']:.0f} s)" if "_seconds" in report else ""
            lines.append(f"Command: `{report['_command']}`{took}")
            lines.append("")
        elif report and "error" in report:
            lines.append(f"Not run: {report['error']}")
            lines.append("")
    columns = [
        ("config", "config"),
        ("batch", "batch"),
        ("series", "precision"),
        ("seconds_per_step", "s/step"),
        ("images_per_second", "images/s"),
        ("first_step_seconds", "first step s (trace)"),
        ("gflops", "conv GFLOP/s"),
    ]
    lines += [markdown_table(train, columns, peak) if train else "No training results.", "", "## Sampling", ""]
    if sampling_report and "_command" in sampling_report:
        took = f" ({sampling_report['_seconds']:.0f} s)" if "_seconds" in sampling_report else ""
        lines += [f"Command: `{sampling_report['_command']}`{took}", ""]
    elif sampling_report and "error" in sampling_report:
        lines += [f"Not run: {sampling_report['error']}", ""]
    columns = [
        ("config", "config"),
        ("batch", "batch"),
        ("series", "runtime"),
        ("score_seconds", "s/score call"),
        ("seconds_per_step", "s/Langevin step"),
        ("seconds_per_image", "s/image/step"),
        ("loop_overhead", "loop overhead"),
    ]
    lines += [
        "Loop overhead = (loop time / (T * L)) / (one score call) - 1. A lone score call pays a fixed dispatch",
        "cost (the runtime's function call, input conversion) that the in-graph loop pays once per run, so",
        "the overhead is often negative: a step inside the loop is cheaper than a score call from Python.",
        "",
        markdown_table(sample, columns, peak) if sample else "No sampling results.",
        "",
    ]
    text = "\n".join(lines)
    path.write_text(text, encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.splitlines()[0])
    parser.add_argument("--skip-run", action="store_true", help="only rebuild REPORT.md from existing results")
    parser.add_argument("--quick", action="store_true", help="tiny smoke settings for both benchmarks")
    parser.add_argument("--results", default=str(RESULTS), help="folder of the JSON results")
    parser.add_argument("--report", default=str(REPORT), help="markdown file to write")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per benchmark run")
    parser.add_argument("--peak-gflops", type=float, default=PEAK_GFLOPS)
    args = parser.parse_args(argv)
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    train_runs = TRAIN_QUICK_RUNS if args.quick else TRAIN_RUNS
    sampling_path = results / ("sampling_quick.json" if args.quick else "sampling.json")
    if args.skip_run:  # the commands that write these files, for the report
        train_reports = [load_json(results / name) for name in train_runs]
        for report, (name, arguments) in zip(train_reports, train_runs.items(), strict=True):
            if report is not None:
                report["_command"] = " ".join(
                    ["python -m benchmarks.train_step", *arguments, "--output", f"benchmarks/results/{name}"]
                )
        sampling_report = load_json(sampling_path)
        if sampling_report is not None:
            sampling_args = SAMPLING_QUICK_ARGS if args.quick else SAMPLING_ARGS
            sampling_report["_command"] = " ".join(["python -m benchmarks.sampling", *sampling_args])
    else:
        train_reports = [
            run_benchmark("benchmarks.train_step", arguments, results / name, args.timeout)
            for name, arguments in train_runs.items()
        ]
        sampling_report = run_benchmark(
            "benchmarks.sampling", SAMPLING_QUICK_ARGS if args.quick else SAMPLING_ARGS, sampling_path, args.timeout
        )
    write_report(train_reports, sampling_report, Path(args.report), args.peak_gflops)
    print(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
