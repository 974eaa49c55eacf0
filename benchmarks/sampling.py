"""Sampling speed: seconds per Langevin step and per image, and the in-graph loop overhead.

For each config (digits, mnist, cifar10) and batch size (1, 16, 64) this times
- eager TF: a Python loop of `langevin_step` calls (op by op),
- tf.function: `ncsn_tf.sampling.annealed_langevin` (one compiled while loop),
- the loaded SavedModel's `sample` signature, and
- onnxruntime running `sample.onnx`,
each against one score-network call in the same runtime. Loop overhead =
full-loop time / (T * L * one score call) - 1 (goal: < 10%). Weights are random
(speed does not depend on them) unless --workdir gives a trained model.

Reference PyTorch implementation on this CPU (MNIST network, fp32, from the issue):
1.63 s per score evaluation at batch 64, 0.41 s at batch 16, 0.42 s per step at
batch 16 in its own loop; goal: >= 1.2x faster per step.

    python benchmarks/sampling.py --quick          # tiny digits network, seconds
    python benchmarks/sampling.py                  # digits, mnist, cifar10 (exports: minutes each)
    python benchmarks/sampling.py --bf16           # adds mixed_bfloat16 tf.function timings

Writes a table to stdout and JSON to benchmarks/results/sampling.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

REFERENCE_PYTORCH = {  # MNIST network, fp32, this CPU (issue 3)
    "score_seconds": {64: 1.63, 16: 0.41},
    "step_seconds": {16: 0.42},
}
RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")


def _timed(function, repeats: int) -> float:
    """Median wall seconds of `function()` over `repeats` runs after one warm-up."""
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _config(name: str, quick: bool, levels: int | None):
    from ncsn_tf import configs

    overrides = []
    if quick:
        overrides += ["model.ngf=4"]
    if levels is not None:
        overrides += [f"noise.num_levels={levels}"]
    return configs.apply_overrides(configs.get_config(name), overrides)


def _eager_loop(model, images, seeds, sigmas, steps_per_level: int, epsilon: float, convention: str):
    """Annealed Langevin as a Python loop of eager `langevin_step` calls (same noise as the graph)."""
    import tensorflow as tf

    from ncsn_tf import portable_random
    from ncsn_tf.sampling import langevin_step
    from ncsn_tf.schedule import langevin_coefficients, langevin_step_sizes

    drifts, noise_stds = langevin_coefficients(langevin_step_sizes(sigmas, epsilon), convention)
    shape = tuple(images.shape[1:])
    batch = images.shape[0]
    for level in range(len(sigmas)):
        indices = tf.fill([batch], level)
        for step in range(steps_per_level):
            noise = portable_random.normal(
                seeds, shape, level * steps_per_level + step, portable_random.STREAM_LANGEVIN
            )
            images = langevin_step(model, images, indices, noise, float(drifts[level]), float(noise_stds[level]))
    return images


def _bench_batch(
    args: argparse.Namespace,
    name: str,
    batch: int,
    *,
    model,
    score_function,
    bf16_model,
    samplers,
    shape,
    sigmas,
    steps_per_level: int,
    epsilon: float,
    convention: str,
    bf16_score=None,
) -> list[dict[str, Any]]:
    """Rows for one batch size: every runtime's score call and full loop."""
    import tensorflow as tf

    from ncsn_tf.sampling import annealed_langevin, initial_images

    rows = []
    levels = len(sigmas)
    seeds_np = np.arange(batch, dtype=np.int32)
    seeds = tf.constant(seeds_np)
    start = initial_images(seeds, shape)
    indices_np = np.zeros(batch, np.int32)
    indices = tf.constant(indices_np)
    start_np = start.numpy()
    total_steps = steps_per_level * levels
    kwargs = dict(steps_per_level=steps_per_level, epsilon=epsilon, convention=convention)
    measure: dict[str, tuple[Any, Any]] = {}
    if "eager" in args.runtimes:
        measure["eager TF"] = (
            lambda: model(start, indices),
            lambda: _eager_loop(model, start, seeds, sigmas, steps_per_level, epsilon, convention),
        )
    if "function" in args.runtimes:
        measure["tf.function"] = (
            lambda: score_function(start, indices),
            lambda: annealed_langevin(model, start, seeds, sigmas, **kwargs),
        )
    if bf16_model is not None:
        measure["tf.function bf16"] = (
            lambda: bf16_score(start, indices),
            lambda: annealed_langevin(bf16_score, start, seeds, sigmas, **kwargs),
        )
    for label, sampler in samplers.items():
        measure[label] = (
            lambda sampler=sampler: sampler.run("score", {"images": start_np, "sigma_indices": indices_np}),
            lambda sampler=sampler: sampler.run("sample", {
                "seeds": seeds_np, "steps_per_level": np.array(steps_per_level, np.int32),
                "epsilon": np.array(epsilon, np.float32), "denoise": np.array(False),
            }),
        )  # fmt: skip
    for label, (score_call, loop_call) in measure.items():
        score_seconds = _timed(score_call, args.repeats)
        loop_seconds = _timed(loop_call, args.repeats)  # median of as many runs as the score call
        step_seconds = loop_seconds / total_steps
        row = {
            "config": name, "runtime": label, "batch": batch, "steps": total_steps,
            "score_seconds": score_seconds, "step_seconds": step_seconds,
            "step_seconds_per_image": step_seconds / batch, "loop_seconds": loop_seconds,
            "loop_overhead": step_seconds / score_seconds - 1.0,
        }  # fmt: skip
        # PyTorch's own loop step where measured (batch 16), else its score evaluation (batch 64).
        reference = None
        if name == "mnist" and not args.quick:
            reference = REFERENCE_PYTORCH["step_seconds"].get(batch) or REFERENCE_PYTORCH["score_seconds"].get(batch)
        if reference:
            row["speedup_vs_pytorch_step"] = reference / step_seconds
        rows.append(row)
        print(
            f"[{name}] {label:<17} batch {batch:>3}: score {score_seconds * 1e3:8.1f} ms, "
            f"step {step_seconds * 1e3:8.1f} ms, overhead {row['loop_overhead']:+.1%}",
            file=sys.stderr, flush=True,
        )  # fmt: skip
    if bf16_model is not None:
        fp32 = annealed_langevin(model, start, seeds, sigmas, **kwargs).numpy()
        bf16 = annealed_langevin(bf16_score, start, seeds, sigmas, **kwargs).numpy()
        for row in rows:
            if row["runtime"] == "tf.function bf16":
                row["bf16_vs_fp32_sample_max_abs_diff"] = float(np.abs(fp32 - bf16).max())
    return rows


def bench_config(args: argparse.Namespace, name: str) -> list[dict[str, Any]]:
    import tensorflow as tf

    from export.exporter import export_model
    from export.runtime import load
    from ncsn_tf.checkpoints import load_for_inference
    from ncsn_tf.models import build_score_model

    if args.workdir:
        config, model, _ = load_for_inference(args.workdir)
    else:
        config = _config(name, args.quick, args.levels)
        model = build_score_model(config)
    shape = tuple(config.data.shape)
    sigmas = config.noise.sigmas()
    steps_per_level = args.steps_per_level
    epsilon, convention = config.sampling.epsilon, config.sampling.convention
    export_dir = args.export_dir
    if export_dir is None and {"savedmodel", "onnx"} & set(args.runtimes):
        started = time.perf_counter()
        export_dir = export_model(
            config, model, 0, tempfile.mkdtemp(prefix="ncsn-bench-"), name=name, optimize_onnx=not args.quick
        ).path
        print(f"[{name}] exported in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    score_function = tf.function(lambda x, i: model(x, i), reduce_retracing=True)
    bf16_model = None
    if args.bf16:
        from ncsn_tf.checkpoints import build_model_with_policy

        bf16_model = build_model_with_policy(config, "mixed_bfloat16")
        bf16_model.set_weights(model.get_weights())
        bf16_score = tf.function(lambda x, i: tf.cast(bf16_model(x, i), tf.float32), reduce_retracing=True)
    wanted = {"SavedModel": ("savedmodel", "tensorflow"), "onnxruntime": ("onnx", "onnxruntime")}
    samplers = {
        label: load(export_dir, runtime) for label, (option, runtime) in wanted.items() if option in args.runtimes
    }
    if args.bf16 and "savedmodel" in args.runtimes:  # the bfloat16 export path (SavedModel only)
        started = time.perf_counter()
        bf16_dir = export_model(
            config, model, 0, tempfile.mkdtemp(prefix="ncsn-bench-"), name=f"{name}-bf16", formats="savedmodel",
            precision="bfloat16",
        ).path  # fmt: skip
        print(f"[{name}] exported bfloat16 in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        samplers["SavedModel bf16"] = load(bf16_dir, "tensorflow")
    rows = []
    context = dict(
        model=model, score_function=score_function, bf16_model=bf16_model, samplers=samplers, shape=shape,
        sigmas=sigmas, steps_per_level=steps_per_level, epsilon=epsilon, convention=convention,
    )  # fmt: skip
    if bf16_model is not None:
        context["bf16_score"] = bf16_score
    for batch in args.batches:
        rows.extend(_bench_batch(args, name, batch, **context))
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    header = f"{'config':<8} {'runtime':<17} {'batch':>5} {'score ms':>9} {'step ms':>9} {'ms/img/step':>11} {'overhead':>9} {'vs torch':>8}"
    lines = [header, "-" * len(header)]
    for row in rows:
        speedup = row.get("speedup_vs_pytorch_step")
        lines.append(
            f"{row['config']:<8} {row['runtime']:<17} {row['batch']:>5} {row['score_seconds'] * 1e3:>9.1f} "
            f"{row['step_seconds'] * 1e3:>9.1f} {row['step_seconds_per_image'] * 1e3:>11.2f} "
            f"{row['loop_overhead']:>+9.1%} {f'{speedup:.2f}x' if speedup else '-':>8}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default="digits,mnist,cifar10", help="comma-separated config names")
    parser.add_argument("--batches", default="1,16,64", help="comma-separated batch sizes")
    parser.add_argument(
        "--runtimes", default="eager,function,savedmodel,onnx", help="subset of eager,function,savedmodel,onnx"
    )
    parser.add_argument("--steps-per-level", type=int, default=2, help="T (small: the networks are slow on CPU)")
    parser.add_argument("--levels", type=int, default=None, help="override the number of noise levels L")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median)")
    parser.add_argument(
        "--bf16", action="store_true",
        help="also time a mixed_bfloat16 copy of the network (tf.function, and a bfloat16 SavedModel export)",
    )  # fmt: skip
    parser.add_argument(
        "--quick", action="store_true", help="tiny digits network (ngf 4), 2 levels, batch 2, T = 1: a smoke run"
    )
    parser.add_argument("--workdir", help="benchmark this trained workdir's model instead of random weights")
    parser.add_argument("--export-dir", help="use this existing export for the SavedModel/onnxruntime timings")
    parser.add_argument(
        "--out", "--output", dest="out", default=os.path.join(RESULTS_DIR, "sampling.json"), help="JSON results file"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.configs, args.batches, args.levels = "digits", "2", args.levels or 2
        args.steps_per_level, args.repeats = 1, 1
    args.batches = [int(b) for b in args.batches.split(",")]
    args.runtimes = [r.strip() for r in args.runtimes.split(",")]
    rows: list[dict[str, Any]] = []
    for name in [c.strip() for c in args.configs.split(",")]:
        rows.extend(bench_config(args, name))
    print(format_table(rows))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    import tensorflow as tf

    meta = {
        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
        "load_average": os.getloadavg(), "tensorflow": tf.__version__, "quick": args.quick,
        "steps_per_level": args.steps_per_level, "reference_pytorch": REFERENCE_PYTORCH,
    }  # fmt: skip
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"meta": meta, "rows": rows}, f, indent=2)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
