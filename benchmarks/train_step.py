"""Throughput of one NCSN training step (DSM loss + Adam) on this machine.

Every row (config x batch x precision) runs in a fresh subprocess, so peak RSS is
per row and the global mixed-precision policy cannot leak between rows. The step
is a plain `tf.function` (jit_compile=False) around `denoising_score_matching` and
Keras' Adam, as a custom training loop would run it; "float32_xla" is the same step
with jit_compile=True. Warm-up steps (the first one traces the graph, 24-37 s for
the reference network: Python tracing, then graph optimisation and, for XLA,
compilation in the first call) are excluded from the timing; inputs are generated once,
so data loading is not measured.

Achieved FLOP/s counts the convolutions of the traced training step analytically
(2 * output elements * kh * kw * C_in for every Conv2D, Conv2DBackpropInput and
Conv2DBackpropFilter op of the graph), divided by the median step time and
compared with a nominal fp32 peak (default 200 GFLOP/s for this CPU).

Usage:
    python -m benchmarks.train_step                      # full run (many minutes)
    python -m benchmarks.train_step --quick              # tiny smoke run
    python -m benchmarks.train_step --configs mnist --batches 32 --precisions float32 --steps 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

RESULT_PREFIX = "TRAIN_STEP_RESULT "
PRECISIONS = ("float32", "mixed_bfloat16", "float32_xla")
DEFAULT_OUTPUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "train_step.json")
# Overrides of the quick smoke run: the digits config shrunk to 2 levels and ngf 8.
QUICK_OVERRIDES = ("noise.num_levels=2", "model.ngf=8")

# Reference PyTorch implementation (ermongroup/ncsn) on this CPU, images/s.
PYTORCH_REFERENCE = {
    ("mnist", 128): {"images_per_s": 13.7, "s_per_step": 9.36, "peak_rss_gb": 7.0},
    ("mnist", 32): {"images_per_s": 13.5},
    ("cifar10", 32): {"images_per_s": 3.2},
}


def conv_flops(graph: Any) -> int:
    """Convolution FLOPs (multiply + add) of every conv op in a traced graph.

    Forward `Conv2D` and the two gradient convs each cost 2 * prod(output-side
    tensor) * kh * kw * C_in, with the output-side tensor the forward output
    (Conv2D), the incoming gradient (both backprop ops). Ops whose result nothing
    uses are skipped: TF prunes them before running.

    Args:
        graph: a `tf.Graph` with fully static conv shapes.

    Returns:
        Total FLOPs of one execution of the graph.
    """
    total = 0
    for op in graph.get_operations():
        if not any(output.consumers() for output in op.outputs):
            continue  # dead (e.g. the gradient w.r.t. the input images): pruned before running
        if op.type == "Conv2D":
            kh, kw, cin, _ = op.inputs[1].shape.as_list()  # filter [kh, kw, C_in, C_out]
            out_elements = op.outputs[0].shape.num_elements()  # [B, H, W, C_out]
        elif op.type == "Conv2DBackpropInput":
            kh, kw, cin, _ = op.inputs[1].shape.as_list()
            out_elements = op.inputs[2].shape.num_elements()  # out_backprop [B, H, W, C_out]
        elif op.type == "Conv2DBackpropFilter":
            kh, kw, cin, _ = op.outputs[0].shape.as_list()  # filter gradient [kh, kw, C_in, C_out]
            out_elements = op.inputs[2].shape.num_elements()
        else:
            continue
        if out_elements is None:
            raise ValueError(f"conv op {op.name} has a dynamic shape; trace with a fixed batch size")
        total += 2 * out_elements * kh * kw * cin
    return total


def run_row(config_name: str, batch_size: int, precision: str, steps: int, warmup: int, quick: bool) -> dict[str, Any]:
    """Time one (config, batch, precision) row in this process (call it in a fresh one).

    Returns:
        A JSON-ready dict: images/s, s/step (median and all), warm-up seconds, conv
        GFLOP per step, achieved GFLOP/s, peak RSS.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    import tensorflow as tf

    from ncsn_tf.configs import apply_overrides, get_config
    from ncsn_tf.losses import denoising_score_matching
    from ncsn_tf.models import build_score_model

    config = get_config(config_name)
    if quick:
        config = apply_overrides(config, list(QUICK_OVERRIDES))
    keras.utils.set_random_seed(0)
    keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "mixed_bfloat16" else "float32")
    jit_compile = precision == "float32_xla"

    model = build_score_model(config)
    training = config.training
    optimizer = keras.optimizers.Adam(
        learning_rate=training.learning_rate,
        beta_1=training.beta1,
        beta_2=training.beta2,
        epsilon=training.adam_epsilon,
    )
    optimizer.build(model.trainable_variables)
    sigmas = tf.constant(config.noise.sigmas())

    rng = np.random.default_rng(0)
    shape = (batch_size, *config.data.shape)
    images = tf.constant(rng.uniform(0.0, 1.0, size=shape).astype(np.float32))  # [B, H, W, C] in [0, 1]
    sigma_indices = tf.constant(rng.integers(0, config.noise.num_levels, size=batch_size).astype(np.int32))  # [B]
    noise = tf.constant(rng.normal(size=shape).astype(np.float32))  # [B, H, W, C] ~ N(0, 1)

    @tf.function(jit_compile=jit_compile)
    def train_step(images: tf.Tensor, sigma_indices: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
        with tf.GradientTape() as tape:
            per_example = denoising_score_matching(model, images, sigma_indices, noise, sigmas)  # [B]
            loss = tf.reduce_mean(per_example)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    trace_start = time.perf_counter()
    flops_per_step = conv_flops(train_step.get_concrete_function(images, sigma_indices, noise).graph)
    trace_seconds = time.perf_counter() - trace_start

    warmup_start = time.perf_counter()
    for _ in range(warmup):
        loss = float(train_step(images, sigma_indices, noise))
    warmup_seconds = time.perf_counter() - warmup_start

    step_seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        loss = float(train_step(images, sigma_indices, noise))  # float() waits for the step
        step_seconds.append(time.perf_counter() - start)
    median = statistics.median(step_seconds)
    return {
        "config": config_name + (" (quick)" if quick else ""),
        "image_shape": list(config.data.shape),
        "ngf": config.model.ngf,
        "num_levels": config.noise.num_levels,
        "parameters": int(model.count_params()),
        "batch_size": batch_size,
        "precision": precision,
        "jit_compile": jit_compile,
        "steps": steps,
        "warmup_steps": warmup,
        "trace_s": trace_seconds,
        "warmup_s": warmup_seconds,
        "step_s": step_seconds,
        "median_step_s": median,
        "images_per_s": batch_size / median,
        "best_step_s": min(step_seconds),  # least disturbed by other work on a shared machine
        "images_per_s_best": batch_size / min(step_seconds),
        "conv_gflop_per_step": flops_per_step / 1e9,
        "achieved_gflops": flops_per_step / median / 1e9,
        "final_loss": loss,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,  # Linux: KiB
    }


def available_memory_gb() -> float:
    """MemAvailable from /proc/meminfo in GB (0 where unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return 0.0


def _rss_gb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    return 0.0


def run_row_in_subprocess(
    config_name: str,
    batch_size: int,
    precision: str,
    steps: int,
    warmup: int,
    quick: bool,
    max_rss_gb: float = 0.0,
) -> dict[str, Any]:
    """Run `run_row` in a fresh Python process; return its result or an error row.

    The child is killed (and the row reported as an error) when its resident memory
    passes `max_rss_gb` (0 = no limit), so a row that does not fit cannot push the
    shared machine into the OOM killer.
    """
    command = [
        sys.executable,
        "-m",
        "benchmarks.train_step",
        "--_row",
        f"{config_name},{batch_size},{precision}",
        "--steps",
        str(steps),
        "--warmup",
        str(warmup),
    ] + (["--quick"] if quick else [])
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    error_row = {"config": config_name, "batch_size": batch_size, "precision": precision}
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        child = subprocess.Popen(command, cwd=root, env=env, stdout=stdout, stderr=stderr, text=True)
        peak_seen = 0.0
        while child.poll() is None:
            peak_seen = max(peak_seen, _rss_gb(child.pid))
            if max_rss_gb and peak_seen > max_rss_gb:
                child.kill()
                child.wait()
                return {**error_row, "error": f"killed at {peak_seen:.1f} GB RSS (limit --max-rss-gb {max_rss_gb:.1f})"}
            time.sleep(0.5)
        stdout.seek(0)
        stderr.seek(0)
        for line in stdout.read().splitlines():
            if line.startswith(RESULT_PREFIX):
                return json.loads(line[len(RESULT_PREFIX) :])
        last_error = (stderr.read().strip().splitlines() or ["no output"])[-1]
    return {**error_row, "error": f"exit code {child.returncode}: {last_error}"}


def format_table(rows: list[dict[str, Any]], peak_gflops: float) -> str:
    """A fixed-width table of the rows (errors shown in place of numbers)."""
    header = (
        f"{'config':<16} {'batch':>5} {'precision':<15} {'img/s':>8} {'best':>7} {'s/step':>8} {'trace+warm-up s':>15} "
        f"{'GFLOP/step':>10} {'GFLOP/s':>8} {'% peak':>6} {'RSS GB':>6} {'PyTorch img/s':>13}"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        reference = PYTORCH_REFERENCE.get((row["config"], row["batch_size"]), {}).get("images_per_s")
        reference_text = f"{reference:.1f}" if reference else "-"
        if "error" in row:
            lines.append(f"{row['config']:<16} {row['batch_size']:>5} {row['precision']:<15} ERROR {row['error']}")
            continue
        lines.append(
            f"{row['config']:<16} {row['batch_size']:>5} {row['precision']:<15} {row['images_per_s']:>8.2f} "
            f"{row['batch_size'] / row['best_step_s']:>7.2f} "
            f"{row['median_step_s']:>8.3f} {row['trace_s'] + row['warmup_s']:>15.1f} {row['conv_gflop_per_step']:>10.2f} "
            f"{row['achieved_gflops']:>8.1f} {100 * row['achieved_gflops'] / peak_gflops:>6.1f} "
            f"{row['peak_rss_mb'] / 1024:>6.2f} {reference_text:>13}"
        )
    return "\n".join(lines)


def write_report(args: argparse.Namespace, rows: list[dict[str, Any]], max_rss_gb: float) -> None:
    """Write the JSON report of the rows measured so far to `args.output`."""
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    report = {
        "benchmark": "train_step",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpu_count": os.cpu_count(),
            "load_average_1m": os.getloadavg()[0],  # other work on the machine depresses the numbers
        },
        "peak_gflops_fp32": args.peak_gflops,
        "max_rss_gb": max_rss_gb,
        "arguments": {k: v for k, v in vars(args).items() if not k.startswith("_")},
        "pytorch_reference": [{"config": c, "batch_size": b, **values} for (c, b), values in PYTORCH_REFERENCE.items()],
        "rows": rows,
    }
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=2)
        f.write("\n")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", nargs="+", default=["mnist", "cifar10"], help="config names (ncsn_tf.configs)")
    parser.add_argument("--batches", nargs="+", type=int, default=[128, 32], help="batch sizes")
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS), choices=PRECISIONS)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per row (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (the first one traces)")
    parser.add_argument("--peak-gflops", type=float, default=200.0, help="nominal fp32 peak of this CPU, GFLOP/s")
    parser.add_argument("--output", default=DEFAULT_OUTPUT, help="JSON results file")
    parser.add_argument(
        "--max-rss-gb",
        type=float,
        default=None,
        help="kill a row whose memory passes this (default: 80%% of the memory available at start; 0 = no limit)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: digits config with 2 levels and ngf 8, batch 2, float32, 1 step",
    )
    parser.add_argument("--_row", help=argparse.SUPPRESS)  # internal: run one row, print its JSON
    args = parser.parse_args(argv)
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be >= 1 and --warmup >= 0")
    if args.quick:
        args.configs, args.batches, args.precisions, args.steps = ["digits"], [2], ["float32"], 1
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args._row:
        config_name, batch_size, precision = args._row.split(",")
        result = run_row(config_name, int(batch_size), precision, args.steps, args.warmup, args.quick)
        print(RESULT_PREFIX + json.dumps(result), flush=True)
        return 0

    max_rss_gb = args.max_rss_gb if args.max_rss_gb is not None else 0.8 * available_memory_gb()
    rows: list[dict[str, Any]] = []
    for config_name in args.configs:
        for batch_size in args.batches:
            for precision in args.precisions:
                print(f"running {config_name} batch {batch_size} {precision} ...", file=sys.stderr, flush=True)
                rows.append(
                    run_row_in_subprocess(
                        config_name, batch_size, precision, args.steps, args.warmup, args.quick, max_rss_gb
                    )
                )
                write_report(args, rows, max_rss_gb)  # after every row: a stopped run keeps what it measured
    print(format_table(rows, args.peak_gflops))
    print(f"wrote {args.output}", file=sys.stderr)
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
