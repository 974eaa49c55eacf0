"""Reports: the side-by-side text table of several evaluated models, and the JSON files.

With two or more models on the same ladder and held-out set, the table also gives
the difference of each model's held-out loss from the first, with its paired
standard error: the perturbations are identical (`objective.LOSS_NOISE_SEED`), so
the difference is measured far more precisely than either loss.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ncsn_tf import toy


def write_json(values: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write `values` as indented JSON (with a final newline), creating the folder.

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(values, f, indent=2)
        f.write("\n")
    return path


def headline(result: dict[str, Any]) -> dict[str, Any]:
    """The few numbers of one evaluation result that go into the side-by-side table.

    Args:
        result: what `pipeline.evaluate_generator` returns (evaluation.json).

    Returns:
        {row name: value} in table order.
    """
    rows: dict[str, Any] = {"step": result.get("step")}
    found = result.get("metrics", {})
    if "samples" in found:  # digits
        quality = found["samples"]
        rows["classifier FD"] = quality["frechet_distance"]
        if "frechet_distance_matched" in quality:
            rows[f"classifier FD (n={quality['matched_count']})"] = quality["frechet_distance_matched"]
        rows["confident share (>0.9)"] = quality["confident_share"]
        rows["mean entropy"] = quality["mean_entropy"]
        rows["min class share"] = quality["min_class_share"]
        rows["max class share"] = quality["max_class_share"]
    if "mode_weights" in found:  # toy
        rows[f"mode weight {small_mode_name()}"] = found["mode_weights"][0]
        rows["MMD^2"] = found["mmd2"]
    if "fid" in found:
        rows["FID"] = found["fid"]
        rows["Inception score"] = found["inception_score"]
    if "sampler" in result:
        rows["sampling seconds"] = result["sampler"]["seconds"]
    rows["held-out DSM loss"] = result["held_out_loss"]["total"]
    return rows


def small_mode_name() -> str:
    """The toy mixture's first (small, weight 0.2) mode as tables name it: "(-5,-5)"."""
    return "(" + ",".join(f"{coordinate:g}" for coordinate in toy.MEANS[0]) + ")"


def _format(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def comparison_table(results: Sequence[dict[str, Any]], per_level: Sequence[np.ndarray]) -> str:
    """Side-by-side text table of headline metrics and held-out loss per level.

    Several models are named [1], [2], ... with a legend below. With two or more on
    the same ladder and held-out set, every model after the first also gets the row
    "loss diff [k] - [1]": the mean paired difference of the per-example losses and
    its standard error.

    Args:
        results: evaluation results (evaluation.json), one per model.
        per_level: [L, N] per-example held-out losses, one per model.

    Returns:
        The table as text (no final newline).
    """
    labels = [r["model"] for r in results] if len(results) == 1 else [f"[{i + 1}]" for i in range(len(results))]
    headlines = [headline(r) for r in results]
    keys = list(dict.fromkeys(key for h in headlines for key in h))
    same_ladder = all(r["sigmas"] == results[0]["sigmas"] for r in results) and all(
        p.shape == per_level[0].shape for p in per_level
    )
    lines = []
    header = ["", *labels]
    rows = [[key, *(_format(h.get(key)) for h in headlines)] for key in keys]
    if same_ladder:
        for level, sigma in enumerate(results[0]["sigmas"]):
            rows.append([f"loss @ sigma={sigma:.4g}", *(_format(float(p[level].mean())) for p in per_level)])
        if len(results) > 1:
            total_first = per_level[0].mean(axis=0)  # [N]
            for index in range(1, len(results)):
                difference = per_level[index].mean(axis=0) - total_first  # [N] paired
                error = difference.std(ddof=1) / np.sqrt(len(difference)) if len(difference) > 1 else float("nan")
                rows.append(
                    [
                        f"loss diff {labels[index]} - {labels[0]}",
                        *([""] * index),
                        f"{difference.mean():+.4g} +- {error:.2g}",
                    ]
                    + [""] * (len(results) - index - 1)
                )
    else:
        lines.append(
            "note: the models use different sigma ladders or held-out sets; per-level losses are not comparable"
        )
    widths = [max(len(str(row[c])) for row in [header, *rows]) for c in range(len(header))]
    for row in [header, *rows]:
        lines.append("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if len(results) > 1:
        lines += [f"{label} {result['model']}" for label, result in zip(labels, results, strict=True)]
    return "\n".join(lines)
