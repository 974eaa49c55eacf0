"""Run the training and sampling benchmarks with small settings and write benchmarks/REPORT.md.

    python -m benchmarks.report              # runs both benchmarks (about 10-20 minutes here)
    python -m benchmarks.report --skip-run   # only rebuild REPORT.md from benchmarks/results/*.json
    python -m benchmarks.report --quick      # smoke run (tiny settings; for tests)

The report holds the machine details, a table per benchmark, a PNG plot of seconds
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

# Small settings: the digits network at three batch sizes in both precisions, and the
# reference MNIST network at one batch (its first step alone takes ~30 s to trace).
TRAIN_ARGS = ["--configs", "digits", "--batches", "16", "64", "128", "--precisions", "float32", "mixed_bfloat16"]
TRAIN_MNIST_ARGS = ["--configs", "mnist", "--batches", "16", "--precisions", "float32"]
SAMPLING_ARGS: list[str] = []  # benchmarks.sampling's own defaults, with --quick when asked
TRAIN_QUICK_ARGS = ["--quick"]
SAMPLING_QUICK_ARGS = ["--quick"]


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
    """Normalised rows of benchmarks/sampling.py: config, batch, series (runtime), s/step, s/image."""
    rows = []
    for row in (report or {}).get("rows", []):
        series = _first(row, "runtime", "backend", "mode")
        batch = _first(row, "batch_size", "batch")
        if "error" in row:
            rows.append({"config": row.get("config"), "batch": batch, "series": series, "error": row["error"]})
            continue
        seconds_per_step = _first(row, "seconds_per_step", "s_per_step", "step_s", "median_step_s")
        rows.append(
            {
                "config": row.get("config"),
                "batch": batch,
                "series": series,
                "seconds_per_step": seconds_per_step,
                "seconds_per_image": _first(row, "seconds_per_image", "s_per_image"),
                "loop_overhead": _first(row, "loop_overhead", "loop_overhead_fraction"),
                "gflops": _first(row, "achieved_gflops", "gflops"),
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
            cells = [_cell(row.get(key)) for key, _ in columns]
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


def write_report(
    train_reports: list[dict[str, Any] | None],
    sampling_report: dict[str, Any] | None,
    path: Path = REPORT,
    peak: float = PEAK_GFLOPS,
) -> str:
    """Write REPORT.md (and REPORT_steps.png beside it); return the markdown."""
    train = [row for report in train_reports for row in training_rows(report)]
    sample = sampling_rows(sampling_report)
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
        f"- nominal fp32 peak: {peak:.0f} GFLOP/s (the ratio columns divide achieved convolution GFLOP/s by it)",
        "",
        "The machine is shared: a load average above the core count means other work ran at the same time "
        "and the times are upper bounds.",
        "",
        f"![seconds per step against batch size]({plot_path.name})",
        "",
        "## Training step",
        "",
    ]
    for report in train_reports:
        if report and "_command" in report:
            lines.append(f"Command: `{report['_command']}` ({report['_seconds']:.0f} s)")
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
        lines += [f"Command: `{sampling_report['_command']}` ({sampling_report['_seconds']:.0f} s)", ""]
    elif sampling_report and "error" in sampling_report:
        lines += [f"Not run: {sampling_report['error']}", ""]
    columns = [
        ("config", "config"),
        ("batch", "batch"),
        ("series", "runtime"),
        ("seconds_per_step", "s/Langevin step"),
        ("seconds_per_image", "s/image"),
        ("loop_overhead", "loop overhead"),
        ("gflops", "conv GFLOP/s"),
    ]
    lines += [markdown_table(sample, columns, peak) if sample else "No sampling results.", ""]
    text = "\n".join(lines)
    path.write_text(text, encoding="utf-8")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.splitlines()[0])
    parser.add_argument("--skip-run", action="store_true", help="only rebuild REPORT.md from existing results")
    parser.add_argument("--quick", action="store_true", help="tiny smoke settings for both benchmarks")
    parser.add_argument("--no-mnist", action="store_true", help="skip the MNIST-network training row")
    parser.add_argument("--results", default=str(RESULTS), help="folder of the JSON results")
    parser.add_argument("--report", default=str(REPORT), help="markdown file to write")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per benchmark run")
    parser.add_argument("--peak-gflops", type=float, default=PEAK_GFLOPS)
    args = parser.parse_args(argv)
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    train_path, mnist_path, sampling_path = (
        results / "train_step.json",
        results / "train_step_mnist.json",
        results / "sampling.json",
    )
    if args.skip_run:
        train_reports = [load_json(train_path), load_json(mnist_path)]
        sampling_report = load_json(sampling_path)
    else:
        train_reports = [
            run_benchmark(
                "benchmarks.train_step", TRAIN_QUICK_ARGS if args.quick else TRAIN_ARGS, train_path, args.timeout
            )
        ]
        if not (args.quick or args.no_mnist):
            train_reports.append(run_benchmark("benchmarks.train_step", TRAIN_MNIST_ARGS, mnist_path, args.timeout))
        sampling_report = run_benchmark(
            "benchmarks.sampling", SAMPLING_QUICK_ARGS if args.quick else SAMPLING_ARGS, sampling_path, args.timeout
        )
    write_report(train_reports, sampling_report, Path(args.report), args.peak_gflops)
    print(f"wrote {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
