"""Evaluate one model or several side by side, composed from the evaluation modules.

For each model: N seeded samples (`draw`), their metrics (`dataset_metrics`), a
picture (`ncsn_tf.figures`), and the held-out DSM loss (`objective`), written to
`evaluation.json` (`report`). Several models share the first model's held-out data
and noise seed, so their losses are paired.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ncsn_tf import metrics
from ncsn_tf.evaluation import dataset_metrics, draw, objective, report
from ncsn_tf.evaluation.generator import EvaluationError, Generator
from ncsn_tf.evaluation.loading import open_generator

EVALUATION_FILE = "evaluation.json"


@dataclasses.dataclass
class EvaluationOptions:
    """What to compute (the CLI flags)."""

    num_samples: int | None = None  # None = per dataset (`dataset_metrics.default_num_samples`)
    batch_size: int = draw.DEFAULT_BATCH_SIZE
    seed: int = 0
    # The sampler and its settings; None = the model's defaults (`draw.sampler_settings`).
    sampler: str | None = None
    steps_per_level: int | None = None
    epsilon: float | None = None
    denoise: bool | None = None
    corrector_steps: int | None = None
    snr: float | None = None
    order: int | None = None
    samples: bool = True  # False: only the held-out loss
    save_samples: bool = False  # also write samples.npz (the raw, unclipped samples)
    inception_weights: str | None = None  # a file; None = the Keras cache
    cache_dir: str | None = None
    held_out_count: int = objective.HELD_OUT_COUNT
    progress: bool = True

    def sampler_overrides(self) -> dict[str, Any]:
        """The sampler fields as `draw.sampler_settings` keyword arguments (None = the model's default)."""
        return {
            "sampler": self.sampler, "steps_per_level": self.steps_per_level, "epsilon": self.epsilon,
            "final_denoise": self.denoise, "corrector_steps": self.corrector_steps, "snr": self.snr, "order": self.order,
        }  # fmt: skip


def evaluate_generator(
    generator: Generator, options: EvaluationOptions, out_dir: str | os.PathLike[str] | None
) -> tuple[dict[str, Any], np.ndarray]:
    """Samples, metrics and held-out loss of one model; writes JSON + PNG into `out_dir` if given.

    Args:
        generator: the model.
        options: what to compute.
        out_dir: where evaluation.json, samples.png (and samples.npz) go; None = write nothing.

    Returns:
        (result dict, as in evaluation.json; per-example held-out losses [L, N]).

    Raises:
        EvaluationError: samples are NaN/inf, no held-out data, or a sampler the model
            does not have (an export: those its manifest lists).
        ConfigError: a bad sampler setting (checked before sampling).
        MetricsError: Inception weights are needed and missing (checked before sampling).
    """
    from ncsn_tf.figures import save_samples_picture

    config = generator.config
    result: dict[str, Any] = {
        "model": generator.label,
        "source": generator.source,
        "config_name": config.name,
        "dataset": generator.dataset,
        "step": generator.step,
        "sigmas": [float(s) for s in generator.sigmas],
    }
    if options.samples:
        if dataset_metrics.uses_inception(generator.dataset):
            # Fail before hours of sampling when Inception is not available offline.
            metrics.resolve_inception_weights(options.inception_weights)
        num_samples = options.num_samples or dataset_metrics.default_num_samples(generator.dataset)
        settings = draw.sampler_settings(generator, **options.sampler_overrides())
        started = time.perf_counter()
        samples = draw.draw_samples(
            generator, num_samples, batch_size=options.batch_size, seed=options.seed, settings=settings,
            progress=options.progress,
        )  # fmt: skip  # [N, *shape]
        result["sampler"] = {"num_samples": num_samples, "seed": options.seed, **draw.sampler_record(generator, settings)}
        result["sampler"]["seconds"] = time.perf_counter() - started
        finite = np.all(np.isfinite(samples.reshape(len(samples), -1)), axis=1)  # [N]
        result["non_finite_samples"] = int(np.sum(~finite))
        if not np.all(finite):
            raise EvaluationError(
                f"{int(np.sum(~finite))} of {len(samples)} samples are NaN/inf; lower --epsilon or check the model"
            )
        result["metrics"] = dataset_metrics.dataset_metrics(
            samples, config, seed=options.seed, cache_dir=options.cache_dir,
            inception_weights=options.inception_weights,
        )  # fmt: skip
        if out_dir is not None:
            result["picture"] = save_samples_picture(samples, generator.dataset, Path(out_dir) / "samples.png")
            if options.save_samples:
                Path(out_dir).mkdir(parents=True, exist_ok=True)
                np.savez_compressed(Path(out_dir) / "samples.npz", samples=samples, first_seed=options.seed)
                result["samples_file"] = os.fspath(Path(out_dir) / "samples.npz")
    clean = objective.held_out_data(config, options.held_out_count)  # [N, *shape]
    per_level = objective.held_out_losses(generator, clean)  # [L, N]
    result["held_out_loss"] = objective.loss_summary(per_level, generator.sigmas)
    if out_dir is not None:
        report.write_json(result, Path(out_dir) / EVALUATION_FILE)
    return result, per_level


def default_out_dir(path: str | os.PathLike[str], generator: Generator) -> Path:
    """WORKDIR/evaluation/step_N for checkpoints; EXPORT_evaluation beside an export."""
    path = Path(path)
    if generator.source == "checkpoint":
        from ncsn_tf.checkpoints import resolve_checkpoint

        workdir, _ = resolve_checkpoint(path)
        return Path(workdir) / "evaluation" / f"step_{generator.step}"
    return path.parent / f"{path.name}_evaluation"


def evaluate_paths(
    paths: Sequence[str], options: EvaluationOptions, out_dir: str | None = None, runtime: str = "auto"
) -> tuple[list[dict[str, Any]], str]:
    """Evaluate each model; return the results and the side-by-side table.

    Every model's held-out loss uses the same held-out data and noise seed, so the
    losses are paired.

    Args:
        paths: workdirs, checkpoint prefixes or export folders, all of one data set.
        options: what to compute.
        out_dir: output folder (several models: OUT/model_K); None = `default_out_dir`.
        runtime: how to run exports ("auto", "onnx", "savedmodel").

    Returns:
        (results, each with "out_dir"; the comparison table text).

    Raises:
        EvaluationError: the models were trained on different data sets, or as `evaluate_generator`.
    """
    results, losses = [], []
    for index, path in enumerate(paths):
        generator = open_generator(path, runtime=runtime)
        if index and generator.dataset != results[0]["dataset"]:
            raise EvaluationError(
                f"{path} was trained on {generator.dataset!r} but {paths[0]} on {results[0]['dataset']!r}; "
                "compare models of one dataset"
            )
        if out_dir is None:
            target = default_out_dir(path, generator)
        else:
            target = Path(out_dir) / (f"model_{index}" if len(paths) > 1 else "")
        result, per_level = evaluate_generator(generator, options, target)
        result["out_dir"] = os.fspath(target)
        results.append(result)
        losses.append(per_level)
    return results, report.comparison_table(results, losses)
