"""Sample quality against network calls for every sampler: the table and plot of `experiments samplers`.

Each row is one sampler with its settings (`SamplingConfig` fields), run through the
library like `evaluate` runs it (`draw.sampler_settings`, `draw.draw_samples`):

- on a trained digits model: the digits classifier's Frechet distance, confident share
  and class shares (`dataset_metrics.digits_metrics`), and whether the row meets the
  sampler goal (`DIGITS_GOAL`);
- on the paper's toy mixture with EXACT scores (`models.analytic.paper_toy_mixture`):
  the weight of the small mode with its binomial standard error, and MMD^2 to true
  samples (`dataset_metrics.toy_metrics`).

Every row records its network calls per image and seconds per 1,000 samples; the seconds
leave out the first batch of each row, which traces the sampler's graph. They are
wall-clock seconds of whatever else the machine is doing (the reports say under what load).

References:
    Song & Ermon 2019, Algorithm 1; Song et al. 2021, Algorithms 2-3; Karras et al. 2022,
    Algorithm 1 (docs/samplers.md).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ncsn_tf import configs, toy
from ncsn_tf.evaluation.dataset_metrics import digits_metrics, toy_metrics
from ncsn_tf.evaluation.draw import draw_samples, sampler_record, sampler_settings
from ncsn_tf.evaluation.generator import EvaluationError, Generator, generator_from_model
from ncsn_tf.evaluation.report import small_mode_name, write_json

Row = Mapping[str, Any]  # sampler overrides: {"sampler": name, setting: value, ...}

# The goal for a fast sampler on the default digits model (docs/samplers.md, "Measured"):
# at most 50 network calls per image, Frechet distance <= 2.0, >= 80% confident, every class 5-15%.
DIGITS_GOAL = {
    "max_calls": 50,
    "max_frechet_distance": 2.0,
    "min_confident_share": 0.80,
    "class_share_range": (0.05, 0.15),
}
DIGITS_NUM_SAMPLES = 1000
TOY_NUM_CHAINS = 10_000  # binomial standard error 0.004 at weight 0.2
PREVIEW_SAMPLES = 32  # samples of each digits row in samplers_samples.png (seeds seed .. seed + 31)
PREVIEW_COLUMNS = 16
TOY_BATCH_SIZE = 2_000  # exact scores are cheap; five batches leave four to time

# The rows of the digits table: annealed Langevin T in {1, 2, 5, 10, 50} (the config's epsilon),
# predictor-corrector C in {0, 1, 2, 3, 4} around each C's best snr (measured: too small an snr
# leaves the chains noisy, too large overshoots), and the probability flow, Euler and Heun.
DIGITS_ROWS: tuple[Row, ...] = (
    *({"sampler": "annealed_langevin", "steps_per_level": steps} for steps in (1, 2, 5, 10, 50)),
    {"sampler": "predictor_corrector", "corrector_steps": 0},
    *({"sampler": "predictor_corrector", "corrector_steps": 1, "snr": snr} for snr in (0.16, 0.5, 0.7)),
    *({"sampler": "predictor_corrector", "corrector_steps": 2, "snr": snr} for snr in (0.16, 0.4, 0.6)),
    *({"sampler": "predictor_corrector", "corrector_steps": 3, "snr": snr} for snr in (0.5, 0.6)),
    *({"sampler": "predictor_corrector", "corrector_steps": 4, "snr": snr} for snr in (0.16, 0.4, 0.6)),
    {"sampler": "probability_flow", "order": 1},
    {"sampler": "probability_flow", "order": 2},
)
# The toy's rows (its config: 10 levels sigma 20 -> 1, the paper's epsilon 0.1 and step convention).
TOY_ROWS: tuple[Row, ...] = (
    *({"sampler": "annealed_langevin", "steps_per_level": steps} for steps in (1, 10, 100)),
    {"sampler": "predictor_corrector", "corrector_steps": 0},
    {"sampler": "predictor_corrector", "corrector_steps": 1, "snr": 0.16},
    {"sampler": "probability_flow", "order": 1},
    {"sampler": "probability_flow", "order": 2},
)

SAMPLER_NAMES = {
    "annealed_langevin": "annealed Langevin",
    "predictor_corrector": "predictor-corrector",
    "probability_flow": "probability flow",
}


def row_label(settings: configs.SamplingConfig) -> str:
    """A row's name in tables and plots, e.g. "predictor-corrector, C = 2, snr 0.6"."""
    name = SAMPLER_NAMES[settings.sampler]
    if settings.sampler == "annealed_langevin":
        return f"{name}, T = {settings.steps_per_level}" + (" + denoise" if settings.final_denoise else "")
    if settings.sampler == "predictor_corrector":
        if settings.corrector_steps == 0:
            return f"{name}, C = 0"
        return f"{name}, C = {settings.corrector_steps}, snr {settings.snr:g}"
    return f"{name}, {'Heun' if settings.order == 2 else 'Euler'}"


def digits_meets_goal(found: Mapping[str, Any], calls: int, goal: Mapping[str, Any] = DIGITS_GOAL) -> bool:
    """Whether a digits row meets `goal` (calls, Frechet distance, confident share, class shares)."""
    low, high = goal["class_share_range"]
    return bool(
        calls <= goal["max_calls"]
        and found["frechet_distance"] <= goal["max_frechet_distance"]
        and found["confident_share"] >= goal["min_confident_share"]
        and low <= found["min_class_share"]
        and found["max_class_share"] <= high
    )


def _timed_draw(
    generator: Generator, settings: configs.SamplingConfig, count: int, batch_size: int, seed: int
) -> tuple[np.ndarray, float | None]:
    """`count` samples (seeds seed..seed+count-1) and the seconds per 1,000 of all but the first batch.

    The first batch traces the sampler's graph (once per sampler and batch shape), so it is
    drawn apart and left out of the time; the samples are those of one `draw_samples` call
    (each depends only on its seed). With a single batch nothing is left to time: None.
    """
    batch_size = min(batch_size, count)
    first = draw_samples(generator, batch_size, batch_size=batch_size, seed=seed, settings=settings, progress=False)
    if count == batch_size:
        return first, None
    started = time.perf_counter()
    rest = draw_samples(
        generator, count - batch_size, batch_size=batch_size, seed=seed + batch_size, settings=settings, progress=False
    )
    seconds = time.perf_counter() - started
    return np.concatenate([first, rest]), 1000.0 * seconds / (count - batch_size)


def compare_samplers(
    generator: Generator,
    rows: Sequence[Row],
    *,
    num_samples: int,
    batch_size: int,
    seed: int = 0,
    cache_dir: str | None = None,
    progress: bool = True,
    previews: int = 0,
) -> list[dict[str, Any]]:
    """Run each row's sampler on `generator` and measure it (digits or toy models).

    Args:
        generator: the model (digits: classifier metrics; toy: mode weights and MMD^2).
        rows: sampler overrides per row (`draw.sampler_settings` keyword arguments).
        num_samples: samples per row (sample b has seed `seed + b` in every row).
        batch_size: samples per sampler call.
        seed: seed of the first sample.
        cache_dir: cache of the digits classifier.
        progress: print one line per row.
        previews: keep the first this many samples of each row under "preview" (an array,
            not JSON: `run_sampler_comparison` draws them and leaves them out of the file).

    Returns:
        One dict per row: {"label", "sampler" (name and settings), "network_calls",
        "seconds_per_1000", the metrics; digits: "meets_goal"}.

    Raises:
        EvaluationError: a model of another data set, or non-finite samples.
        ConfigError: a bad row.
    """
    if generator.dataset not in ("digits", "toy"):
        raise EvaluationError(f"the sampler comparison runs on digits or toy models, not {generator.dataset!r}")
    results = []
    for row in rows:
        settings = sampler_settings(generator, **row)
        record = sampler_record(generator, settings)
        samples, seconds = _timed_draw(generator, settings, num_samples, batch_size, seed)  # [N, *shape]
        if not np.all(np.isfinite(samples)):
            raise EvaluationError(f"{row_label(settings)} gave NaN/inf samples; this setting diverges")
        if generator.dataset == "digits":
            found = digits_metrics(samples, cache_dir)["samples"]
            metrics = {key: found[key] for key in ("frechet_distance", "confident_share", "not_a_digit_share",
                                                   "min_class_share", "max_class_share", "class_shares")}  # fmt: skip
            metrics["meets_goal"] = digits_meets_goal(found, record["network_calls"])
        else:
            metrics = toy_metrics(samples, seed=seed)
        result = {
            "label": row_label(settings),
            "sampler": {key: value for key, value in record.items() if key != "defaults_from"},
            "network_calls": record["network_calls"],
            "seconds_per_1000": seconds,
            **metrics,
        }
        if previews:
            result["preview"] = samples[:previews]  # [previews, *shape], not clipped
        results.append(result)
        if progress:
            print(_progress_line(result), flush=True)
    return results


def _progress_line(result: Mapping[str, Any]) -> str:
    seconds = "-" if result["seconds_per_1000"] is None else f"{result['seconds_per_1000']:.1f} s/1000"
    if "frechet_distance" in result:
        quality = f"FD {result['frechet_distance']:.3g}, confident {result['confident_share']:.1%}"
    else:
        quality = f"weight {result['mode_weights'][0]:.4f}, MMD^2 {result['mmd2']:.4f}"
    return f"{result['label']:<42} {result['network_calls']:>5} calls  {quality}  {seconds}"


def exact_toy_generator() -> Generator:
    """The paper's toy mixture with its exact scores on the toy config's ladder, as a Generator."""
    from ncsn_tf.models.analytic import paper_toy_mixture

    config = configs.get_config("toy")
    return generator_from_model(paper_toy_mixture(config.noise.sigmas()), config, label="toy mixture, exact scores")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def digits_table(results: Sequence[Mapping[str, Any]]) -> str:
    """The digits rows as a Markdown table (goal rows in bold)."""
    lines = [
        "| sampler | network calls | Fréchet distance | confident (> 0.9) | class shares (min–max) | s / 1,000 samples |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        cells = [
            result["label"],
            f"{result['network_calls']:,}",
            f"{result['frechet_distance']:.2f}",
            f"{result['confident_share']:.1%}",
            f"{result['min_class_share']:.1%}–{result['max_class_share']:.1%}",
            _seconds(result["seconds_per_1000"]),
        ]
        if result.get("meets_goal"):
            cells = [f"**{cell}**" for cell in cells]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def toy_table(results: Sequence[Mapping[str, Any]]) -> str:
    """The toy rows as a Markdown table: weight of the small mode +- its binomial standard error, MMD^2."""
    weight = f"{toy.WEIGHTS[0]:g}"
    lines = [
        f"| sampler | network calls | weight of {small_mode_name()} (true {weight}) | MMD² (true vs true) | "
        "s / 1,000 samples |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        lines.append(
            f"| {result['label']} | {result['network_calls']:,} | {result['mode_weights'][0]:.4f} ± "
            f"{result['binomial_standard_error']:.4f} | {result['mmd2']:.4f} ({result['mmd2_true_vs_true']:.4f}) | "
            f"{_seconds(result['seconds_per_1000'])} |"
        )
    return "\n".join(lines)


def save_comparison_figure(
    digits: Sequence[Mapping[str, Any]] | None,
    toy_results: Sequence[Mapping[str, Any]] | None,
    path: str | os.PathLike[str],
) -> str:
    """Quality against network calls per image (log x), one marker and line per sampler family.

    Digits: Frechet distance (log y) and confident share; toy: |weight - 0.2| and MMD^2.
    Within a family the points are joined in order of calls; predictor-corrector rows are
    joined per snr (the C = 0 row belongs to every snr's line: it has no correctors).

    Args:
        digits: the digits rows (`compare_samplers`), or None.
        toy_results: the toy rows, or None.
        path: the PNG file.

    Returns:
        The path written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels: list[tuple[str, str, Sequence[Mapping[str, Any]], Any]] = []
    if digits:
        panels.append(("digits: Fréchet distance (floor 1.20)", "log", digits, lambda r: r["frechet_distance"]))
        panels.append(("digits: confident share (> 0.9)", "linear", digits, lambda r: r["confident_share"]))
    if toy_results:
        target = float(toy.WEIGHTS[0])
        panels.append(
            (f"toy: |weight − {target:g}|", "linear", toy_results, lambda r: abs(r["mode_weights"][0] - target))
        )
        panels.append(("toy: MMD²", "linear", toy_results, lambda r: r["mmd2"]))
    if not panels:
        raise ValueError("nothing to plot: pass digits or toy results")
    columns = 2
    rows = (len(panels) + 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(9.0, 3.3 * rows), squeeze=False)
    styles = {"annealed_langevin": ("o", "tab:blue"), "predictor_corrector": ("s", "tab:orange"),
              "probability_flow": ("^", "tab:green")}  # fmt: skip
    for axis, (title, yscale, results, value) in zip(axes.flat, panels, strict=False):
        for family, lines in _family_lines(results).items():
            marker, colour = styles[family]
            for index, (line_label, members) in enumerate(lines):
                calls = [member["network_calls"] for member in members]
                values = [value(member) for member in members]
                axis.plot(calls, values, marker=marker, color=colour, alpha=1.0 - 0.25 * min(index, 3),
                          label=line_label, markersize=5, linewidth=1.2)  # fmt: skip
        if digits is not None and results is digits and "confident" in title:
            axis.axhline(DIGITS_GOAL["min_confident_share"], color="grey", linestyle=":", linewidth=1)
        if digits is not None and results is digits and "Fréchet" in title:
            axis.axhline(DIGITS_GOAL["max_frechet_distance"], color="grey", linestyle=":", linewidth=1)
        if digits is not None and results is digits:
            axis.axvline(DIGITS_GOAL["max_calls"], color="grey", linestyle=":", linewidth=1)
        axis.set_xscale("log")
        axis.set_yscale(yscale)
        axis.set_xlabel("network calls per image", fontsize=8)
        axis.set_title(title, fontsize=9)
        axis.tick_params(labelsize=7)
        axis.grid(True, which="both", alpha=0.2)
        axis.legend(fontsize=6, loc="best")
    for axis in list(axes.flat)[len(panels) :]:
        axis.axis("off")
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return os.fspath(path)


def _family_lines(results: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[str, list[Mapping[str, Any]]]]]:
    """Rows grouped into plot lines: family -> [(legend label, rows in order of calls)]."""
    families: dict[str, list[tuple[str, list[Mapping[str, Any]]]]] = {}
    by_family: dict[str, list[Mapping[str, Any]]] = {}
    for result in results:
        by_family.setdefault(result["sampler"]["sampler"], []).append(result)
    for family, members in by_family.items():
        name = SAMPLER_NAMES[family]
        if family == "predictor_corrector":
            without = [m for m in members if m["sampler"]["corrector_steps"] == 0]
            snrs = sorted({m["sampler"]["snr"] for m in members if m["sampler"]["corrector_steps"] > 0})
            lines = [
                (f"{name}, snr {snr:g}", without + [m for m in members
                                                    if m["sampler"]["corrector_steps"] > 0 and m["sampler"]["snr"] == snr])
                for snr in snrs
            ] or [(f"{name}, C = 0", without)]  # fmt: skip
        elif family == "probability_flow":
            lines = [(f"{name} (Euler, Heun)", list(members))]
        else:
            lines = [(f"{name} (T)", list(members))]
        families[family] = [(label, sorted(line, key=lambda m: m["network_calls"])) for label, line in lines]
    return families


def run_sampler_comparison(
    path: str | os.PathLike[str] | Generator | None,
    out_dir: str | os.PathLike[str],
    *,
    digits_rows: Sequence[Row] = DIGITS_ROWS,
    toy_rows: Sequence[Row] | None = TOY_ROWS,
    num_samples: int = DIGITS_NUM_SAMPLES,
    toy_chains: int = TOY_NUM_CHAINS,
    batch_size: int = 250,
    seed: int = 0,
    cache_dir: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """The comparison: a digits model's rows and the exact-score toy's rows; samplers.json, .md and .png.

    Besides the table (samplers.md), the plot (samplers.png) and the JSON, a digits model
    gets samplers_samples.png: the first `PREVIEW_SAMPLES` samples of every row (the same
    seeds in each row), one titled grid per sampler.

    Args:
        path: a digits training workdir or checkpoint prefix (or a Generator); None = toy only.
        out_dir: output folder.
        digits_rows: the digits model's rows.
        toy_rows: the exact-score toy rows; None = none.
        num_samples: samples per digits row.
        toy_chains: chains per toy row.
        batch_size: samples per sampler call on the digits model (the toy: `TOY_BATCH_SIZE`).
        seed: seed of the first sample of every row.
        cache_dir: cache of the digits classifier.
        progress: one line per row.

    Returns:
        The JSON written: {"digits": {"model", "step", "rows"}, "toy": {"rows"}, "goal",
        "load_average" (before / after), "files"}.

    Raises:
        EvaluationError: the model is not a digits model, or a row diverges.
    """
    from ncsn_tf.evaluation.loading import open_generator

    out_dir = Path(out_dir)
    report: dict[str, Any] = {"goal": {**DIGITS_GOAL, "class_share_range": list(DIGITS_GOAL["class_share_range"])}}
    report["load_average_before"] = _load_average()
    started = time.perf_counter()
    digits_results = None
    if path is not None:
        generator = path if isinstance(path, Generator) else open_generator(path)
        if generator.dataset != "digits":
            raise EvaluationError(f"{generator.label} is a {generator.dataset!r} model; the comparison needs digits")
        digits_results = compare_samplers(
            generator, digits_rows, num_samples=num_samples, batch_size=batch_size, seed=seed, cache_dir=cache_dir,
            progress=progress, previews=min(PREVIEW_SAMPLES, num_samples),
        )  # fmt: skip
        previews = [(f"{row['label']} ({row['network_calls']:,} calls)", row.pop("preview")) for row in digits_results]
        report["digits"] = {"model": generator.label, "step": generator.step, "num_samples": num_samples,
                            "rows": digits_results}  # fmt: skip
    toy_results = None
    if toy_rows:
        toy_results = compare_samplers(
            exact_toy_generator(), toy_rows, num_samples=toy_chains, batch_size=min(TOY_BATCH_SIZE, toy_chains), seed=seed,
            progress=progress,
        )  # fmt: skip
        report["toy"] = {"model": "toy mixture, exact scores", "num_chains": toy_chains, "rows": toy_results}
    report["seconds"] = time.perf_counter() - started
    report["load_average_after"] = _load_average()
    markdown = []
    if digits_results is not None:
        markdown += [f"Digits ({report['digits']['model']}, {num_samples:,} samples per row):", "",
                     digits_table(digits_results), ""]  # fmt: skip
    if toy_results is not None:
        markdown += [f"Toy mixture, exact scores ({toy_chains:,} chains per row):", "", toy_table(toy_results), ""]
    load = report["load_average_before"], report["load_average_after"]
    if load[0] is not None:
        markdown.append(f"1-minute load average: {load[0]:.2f} before, {load[1]:.2f} after ({os.cpu_count()} cores).")
    report["files"] = {
        "markdown": os.fspath(out_dir / "samplers.md"),
        "figure": save_comparison_figure(digits_results, toy_results, out_dir / "samplers.png"),
        "json": os.fspath(out_dir / "samplers.json"),
    }
    if digits_results is not None:
        from ncsn_tf.figures import save_inpainting_figure  # titled rows of image grids

        columns = min(PREVIEW_COLUMNS, len(previews[0][1]))
        report["files"]["samples"] = save_inpainting_figure(previews, out_dir / "samplers_samples.png", columns)
    (out_dir / "samplers.md").write_text("\n".join(markdown) + "\n", encoding="utf-8")
    write_json(report, out_dir / "samplers.json")
    return report


def _load_average() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return float(os.getloadavg()[0])
    except OSError:
        return None
