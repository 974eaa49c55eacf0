"""Evaluate trained models: samples, quality metrics, and the held-out objective.

    python -m ncsn_tf.evaluate WORKDIR_OR_EXPORT [MORE ...] [--num-samples N] [--out DIR]

A model is a training workdir (or one of its checkpoints, `WORKDIR/checkpoints/ckpt-500`)
or an export folder (`manifest.json` + SavedModel + ONNX; run with ONNX Runtime by
default when it has ONNX files, else TensorFlow; `--runtime` chooses). For each model this draws N seeded
samples in batches (image b uses seed `--seed + b`, so it does not depend on the
batch size), writes a PNG grid, and reports in `evaluation.json`:

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

References:
    Song & Ermon 2019 (Section 4.2, the objective; Section 5, FID/IS protocol).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ncsn_tf import metrics

MANIFEST_FILE = "manifest.json"
DEFAULT_NUM_SAMPLES = {"toy": 1280, "digits": 1000}  # anything else: 50,000 (the paper's FID protocol)
PAPER_NUM_SAMPLES = 50_000
HELD_OUT_COUNT = 1000  # held-out examples for the DSM loss (digits: its whole 360-image test split)
LOSS_NOISE_SEED = 20190705  # fixed: every model sees identical perturbations (arXiv:1907.05600)
GRID_IMAGES = 100  # images in the PNG grid


class EvaluationError(RuntimeError):
    """A model cannot be evaluated as asked; the message says why and what to do."""


# ---------------------------------------------------------------------------
# Models: a workdir/checkpoint or an export, behind one small interface.
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Generator:
    """A trained score model ready to sample and score, whatever it was loaded from.

    Attributes:
        label: short name for tables (the path as given).
        source: "checkpoint", "onnx" or "savedmodel".
        config: the training Config (data, noise ladder, sampler defaults).
        step: training step of the weights (None if unknown).
        sigmas: [L] float32 noise ladder, descending.
    """

    label: str
    source: str
    config: Any
    step: int | None
    sigmas: np.ndarray
    _sample: Any = dataclasses.field(repr=False, default=None)
    _score: Any = dataclasses.field(repr=False, default=None)

    @property
    def dataset(self) -> str:
        return self.config.data.dataset

    @property
    def example_shape(self) -> tuple[int, ...]:
        return tuple(self.config.data.shape)

    def sample(self, seeds: np.ndarray, steps_per_level: int, epsilon: float, denoise: bool) -> np.ndarray:
        """Annealed Langevin samples. seeds: [B] int32 -> [B, *shape] float32 (not clipped)."""
        return np.asarray(
            self._sample(np.asarray(seeds, np.int32), int(steps_per_level), float(epsilon), bool(denoise))
        )

    def score(self, noisy: np.ndarray, sigma_indices: np.ndarray) -> np.ndarray:
        """s(x, i). noisy: [B, *shape] float32, sigma_indices: [B] int32 -> [B, *shape] float32."""
        return np.asarray(self._score(np.asarray(noisy, np.float32), np.asarray(sigma_indices, np.int32)))


def generator_from_model(model: Any, config: Any, label: str, step: int | None = None) -> Generator:
    """Wrap an in-memory score model (`model(noisy, sigma_indices)`) and its config."""
    import tensorflow as tf

    from ncsn_tf.sampling import annealed_langevin, initial_images

    sigmas = config.noise.sigmas()  # [L]
    value_range = config.data.value_range
    convention = config.sampling.convention

    def sample(seeds: np.ndarray, steps_per_level: int, epsilon: float, denoise: bool) -> np.ndarray:
        seeds_tensor = tf.constant(seeds, tf.int32)  # [B]
        start = initial_images(seeds_tensor, config.data.shape, value_range=value_range)  # [B, *shape]
        return annealed_langevin(
            model,
            start,
            seeds_tensor,
            sigmas,
            steps_per_level=steps_per_level,
            epsilon=epsilon,
            convention=convention,
            final_denoise=denoise,
        ).numpy()  # [B, *shape]

    def score(noisy: np.ndarray, sigma_indices: np.ndarray) -> np.ndarray:
        return np.asarray(model(tf.constant(noisy), tf.constant(sigma_indices)), np.float32)  # [B, *shape]

    return Generator(label, "checkpoint", config, step, sigmas, _sample=sample, _score=score)


def _export_generator(path: Path, runtime: str, label: str) -> Generator:
    from ncsn_tf import configs

    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise EvaluationError(f"cannot read {path / MANIFEST_FILE} ({error}); re-export the model") from None
    if manifest.get("format") != "ncsn-tf-export":
        raise EvaluationError(
            f"{path / MANIFEST_FILE} is not an ncsn-tf export manifest (format={manifest.get('format')!r})"
        )
    config = configs.from_dict(manifest["config"])
    sigmas = np.asarray(manifest["sigmas"], np.float32)  # [L]
    step = (manifest.get("checkpoint") or {}).get("step")
    if runtime == "auto":  # ONNX Runtime where the export has ONNX files (a bfloat16 export has none)
        runtime = "onnx" if manifest.get("files", {}).get("onnx") else "savedmodel"
    if runtime == "onnx":
        import onnxruntime as ort

        files = manifest.get("files", {}).get("onnx", {})
        sessions = {}
        for endpoint in ("sample", "score"):
            if endpoint not in files:
                raise EvaluationError(
                    f"export {path} has no ONNX {endpoint!r} endpoint; re-export or use --runtime savedmodel"
                )
            sessions[endpoint] = ort.InferenceSession(str(path / files[endpoint]), providers=["CPUExecutionProvider"])

        def sample(seeds: np.ndarray, steps_per_level: int, epsilon: float, denoise: bool) -> np.ndarray:
            feeds = {
                "seeds": seeds.astype(np.int32),
                "steps_per_level": np.asarray(steps_per_level, np.int32),
                "epsilon": np.asarray(epsilon, np.float32),
                "denoise": np.asarray(denoise, np.bool_),
            }
            return sessions["sample"].run(["images"], feeds)[0]  # [B, *shape]

        def score(noisy: np.ndarray, sigma_indices: np.ndarray) -> np.ndarray:
            return sessions["score"].run(["scores"], {"images": noisy, "sigma_indices": sigma_indices})[0]

    elif runtime == "savedmodel":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path / manifest.get("files", {}).get("savedmodel", "savedmodel")))
        signatures = loaded.signatures

        def sample(seeds: np.ndarray, steps_per_level: int, epsilon: float, denoise: bool) -> np.ndarray:
            out = signatures["sample"](
                seeds=tf.constant(seeds, tf.int32),
                steps_per_level=tf.constant(steps_per_level, tf.int32),
                epsilon=tf.constant(epsilon, tf.float32),
                denoise=tf.constant(denoise, tf.bool),
            )
            return out["images"].numpy()

        def score(noisy: np.ndarray, sigma_indices: np.ndarray) -> np.ndarray:
            out = signatures["score"](images=tf.constant(noisy), sigma_indices=tf.constant(sigma_indices))
            return out["scores"].numpy()

    else:
        raise EvaluationError(f"unknown runtime {runtime!r}; use auto, onnx or savedmodel")
    return Generator(label, runtime, config, step, sigmas, _sample=sample, _score=score)


def open_generator(path: str | os.PathLike[str], runtime: str = "auto", use_ema: bool = True) -> Generator:
    """Load a workdir, a checkpoint prefix or an export folder.

    Args:
        path: training workdir, `WORKDIR/checkpoints/ckpt-N`, or export folder (has manifest.json).
        runtime: for exports, "onnx" (ONNX Runtime), "savedmodel" (TensorFlow) or "auto"
            (ONNX Runtime when the export has ONNX files, else TensorFlow).
        use_ema: for checkpoints, use the EMA weights when present.

    Raises:
        EvaluationError / CheckpointError: nothing loadable at `path`.
    """
    label = os.fspath(path)
    folder = Path(path)
    if (folder / MANIFEST_FILE).is_file():
        return _export_generator(folder, runtime, label)
    from ncsn_tf.checkpoints import load_for_inference

    config, model, step = load_for_inference(path, use_ema=use_ema)
    return generator_from_model(model, config, label, step)


# ---------------------------------------------------------------------------
# Samples.
# ---------------------------------------------------------------------------


def draw_samples(
    generator: Generator,
    num_samples: int,
    *,
    batch_size: int = 250,
    seed: int = 0,
    steps_per_level: int | None = None,
    epsilon: float | None = None,
    denoise: bool | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Seeded samples in batches: sample b uses seed `seed + b` (independent of batch_size).

    Args:
        generator: the model.
        num_samples: N.
        batch_size: samples per sampler call.
        seed: seed of the first sample.
        steps_per_level, epsilon, denoise: sampler settings; None = the config's.
        progress: show a tqdm progress bar.

    Returns:
        [N, *shape] float32 samples (not clipped).
    """
    from tqdm import tqdm

    sampling = generator.config.sampling
    steps_per_level = sampling.steps_per_level if steps_per_level is None else steps_per_level
    epsilon = sampling.epsilon if epsilon is None else epsilon
    denoise = sampling.final_denoise if denoise is None else denoise
    if num_samples < 1 or batch_size < 1:
        raise EvaluationError(f"num_samples and batch_size must be positive, got {num_samples} and {batch_size}")
    if seed < 0 or seed + num_samples + batch_size > 2**31:
        raise EvaluationError(f"seeds from {seed} on must fit in int32; lower --seed")
    # Every call gets a full batch (the last one is topped up with the next seeds and cut):
    # one batch shape means one traced sampler. Samples depend only on their seed.
    batch_size = min(batch_size, num_samples)
    batches = []
    with tqdm(total=num_samples, desc=f"sampling {generator.label}", unit="img", disable=not progress) as bar:
        for start in range(0, num_samples, batch_size):
            seeds = np.arange(seed + start, seed + start + batch_size, dtype=np.int32)  # [b]
            wanted = min(batch_size, num_samples - start)
            batches.append(generator.sample(seeds, steps_per_level, epsilon, denoise)[:wanted])  # [wanted, *shape]
            bar.update(wanted)
    return np.concatenate(batches).astype(np.float32)


def save_samples_picture(samples: np.ndarray, dataset: str, path: str | os.PathLike[str]) -> str:
    """A PNG of the samples: an image grid (first 100, clipped), or a scatter plot of toy points."""
    path = os.fspath(path)
    if dataset == "toy":
        save_points_figure({"samples": samples}, path)
        return path
    from ncsn_tf.images import save_grid

    return save_grid(samples[:GRID_IMAGES], path)


def save_points_figure(
    panels: dict[str, np.ndarray],
    path: str | os.PathLike[str],
    extent: float = 10.0,
    titles: dict[str, str] | None = None,
) -> None:
    """Scatter plots of 2-D point sets side by side (one panel per entry), written as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
    for axis, (name, points) in zip(axes[0], panels.items(), strict=True):
        axis.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5, color="tab:blue", rasterized=True)
        axis.set_xlim(-extent, extent)
        axis.set_ylim(-extent, extent)
        axis.set_aspect("equal")
        axis.set_title((titles or {}).get(name, name), fontsize=9)
        axis.tick_params(labelsize=7)
    figure.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


# ---------------------------------------------------------------------------
# The held-out objective.
# ---------------------------------------------------------------------------


def held_out_data(
    config: Any, count: int = HELD_OUT_COUNT, seed: int = LOSS_NOISE_SEED, split: str | None = None
) -> np.ndarray:
    """Held-out examples in file order with the training preprocessing (no flips; fixed dequantisation seed).

    Default split: digits "test" (360 images), toy the data module's "test" stream,
    TFDS data "test"; folders have no split: their first files.

    Returns:
        [N, *shape] float32, N = min(count, available).
    """
    from ncsn_tf.data import make_dataset

    if split is None:
        split = "all" if config.data.dataset == "folder" else "test"
    dataset = make_dataset(
        config, batch_size=min(count, 500), seed=seed, split=split, shuffle=False, repeat=False, augment=False,
        drop_remainder=False,
    )  # fmt: skip
    chunks, total = [], 0
    for batch in dataset:
        chunks.append(batch.numpy())
        total += len(chunks[-1])
        if total >= count:
            break
    if not chunks:
        raise EvaluationError(f"no held-out data for {config.data.dataset!r} (split {split!r})")
    return np.concatenate(chunks)[:count].astype(np.float32)


def held_out_losses(
    generator: Generator, clean: np.ndarray, seed: int = LOSS_NOISE_SEED, batch_size: int = 500
) -> np.ndarray:
    """Per-example DSM losses at every level, on perturbations fixed by `seed`.

    For level i the noise is `default_rng([seed, i]).standard_normal(clean.shape)`,
    the same for every model; the loss is `losses.denoising_score_matching` (paper Eq. 6,
    lambda(sigma) = sigma^2).

    Args:
        generator: the model (its `score`).
        clean: [N, *shape] held-out data.
        seed: noise seed.

    Returns:
        [L, N] float64 per-example losses; the mean over both axes is the training
        objective (levels are drawn uniformly in training).
    """
    from ncsn_tf.losses import denoising_score_matching

    def score_fn(noisy: Any, sigma_indices: Any) -> np.ndarray:
        return generator.score(np.asarray(noisy), np.asarray(sigma_indices))

    num_levels = len(generator.sigmas)
    per_level = np.zeros((num_levels, len(clean)))
    for level in range(num_levels):
        noise = np.random.default_rng([seed, level]).standard_normal(clean.shape).astype(np.float32)  # [N, *shape]
        for start in range(0, len(clean), batch_size):
            stop = min(start + batch_size, len(clean))
            indices = np.full((stop - start,), level, np.int32)  # [b]
            values = denoising_score_matching(score_fn, clean[start:stop], indices, noise[start:stop], generator.sigmas)
            per_level[level, start:stop] = np.asarray(values, np.float64)  # [b]
    return per_level


def loss_summary(per_level: np.ndarray, sigmas: np.ndarray) -> dict[str, Any]:
    """{"total", "total_standard_error", "per_level": [{"sigma", "loss", "standard_error"}]} from [L, N] losses."""
    count = per_level.shape[1]
    per_example_total = per_level.mean(axis=0)  # [N]
    return {
        "count": int(count),
        "noise_seed": LOSS_NOISE_SEED,
        "total": float(per_example_total.mean()),
        "total_standard_error": float(per_example_total.std(ddof=1) / np.sqrt(count)) if count > 1 else None,
        "per_level": [
            {
                "sigma": float(sigma),
                "loss": float(values.mean()),
                "standard_error": float(values.std(ddof=1) / np.sqrt(count)) if count > 1 else None,
            }
            for sigma, values in zip(sigmas, per_level, strict=True)
        ],
    }


# ---------------------------------------------------------------------------
# Quality metrics per kind of data.
# ---------------------------------------------------------------------------


def digits_metrics(samples: np.ndarray, cache_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Classifier-space quality of digit samples and the reference rows (see `classifier`)."""
    from ncsn_tf import classifier as digits_classifier
    from ncsn_tf.data import digits_arrays

    model = digits_classifier.load_digits_classifier(cache_dir)
    reference = digits_classifier.digits_reference_statistics(model, cache_dir)
    held_out_count = len(digits_arrays("test")[0])
    return {
        "classifier": {"test_accuracy": model.test_accuracy, **model.info},
        "samples": digits_classifier.digits_quality(model, samples, reference, matched_count=held_out_count),
        "reference_rows": digits_classifier.digits_reference_rows(model, reference, gaussian_count=len(samples)),
    }


def toy_metrics(samples: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Mode weights (+ binomial standard error), spread, and MMD^2 to true samples (with a true-vs-true floor).

    Args:
        samples: [N, 2] toy points.
        seed: seeds the true samples MMD compares with.
    """
    from ncsn_tf.data import TOY_MEANS, TOY_WEIGHTS, sample_toy_mixture

    count = len(samples)
    weights = metrics.mode_weights(samples, TOY_MEANS)  # [2]
    true = sample_toy_mixture(count, seed=seed + 1)  # [N, 2]
    second_true = sample_toy_mixture(count, seed=seed + 2)  # [N, 2]
    bandwidth = metrics.median_bandwidth(true, second_true)
    squared_distances = np.sum(np.square(samples[:, None, :] - TOY_MEANS[None, :, :]), axis=-1)  # [N, 2]
    return {
        "mode_weights": [float(w) for w in weights],
        # per-coordinate variance around the nearest mode: 1 for the data, 1 + sigma^2 for the
        # data perturbed by sigma (what annealed Langevin ends on), less after denoising
        "within_mode_variance": float(np.mean(squared_distances.min(axis=1)) / samples.shape[1]),
        "true_weights": [float(w) for w in TOY_WEIGHTS],
        "binomial_standard_error": metrics.binomial_standard_error(float(TOY_WEIGHTS[0]), count),
        "weight_error_in_standard_errors": float(
            abs(weights[0] - TOY_WEIGHTS[0]) / metrics.binomial_standard_error(float(TOY_WEIGHTS[0]), count)
        ),
        "mmd2": metrics.mmd_rbf_unbiased(samples, true, bandwidth),
        "mmd2_true_vs_true": metrics.mmd_rbf_unbiased(second_true, true, bandwidth),
        "mmd_bandwidth": bandwidth,
    }


def inception_metrics(
    samples: np.ndarray,
    config: Any,
    *,
    weights: str | os.PathLike[str] | None = "imagenet",
    reference_count: int = PAPER_NUM_SAMPLES,
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 50,
) -> dict[str, Any]:
    """FID (to cached training-data statistics) and Inception score of image samples."""
    network = metrics.InceptionNetwork(weights=weights, batch_size=batch_size)
    features, logits = network(samples)
    inception_mean, inception_std = metrics.inception_score(metrics.softmax(logits), splits=min(10, len(samples)))
    split = config.data.split
    path = metrics.statistics_cache_path(
        cache_dir if cache_dir is not None else metrics.default_cache_dir(),
        config.data.dataset if config.data.dataset != "folder" else f"folder-{config.data.path}",
        split,
        reference_count,
        f"{network.feature_name}-{config.data.image_size}px",
    )

    def real_features() -> np.ndarray:
        plain = dataclasses.replace(config, data=dataclasses.replace(config.data, dequantize=False))
        real = held_out_data(plain, reference_count, seed=0, split=split)
        return network(real)[0]

    reference = metrics.cached_statistics(path, real_features)
    return {
        "fid": metrics.frechet_distance_between(features, reference),
        "inception_score": inception_mean,
        "inception_score_std": inception_std,
        "reference": {"statistics": os.fspath(path), "count": reference.count},
        "note": "Keras ImageNet InceptionV3, not the TF-GAN graph of the paper: compare with each other",
    }


# ---------------------------------------------------------------------------
# One model, several models.
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class EvaluationOptions:
    """What to compute (the CLI flags)."""

    num_samples: int | None = None  # None = per dataset (digits 1,000; toy 1,280; else 50,000)
    batch_size: int = 250
    seed: int = 0
    steps_per_level: int | None = None
    epsilon: float | None = None
    denoise: bool | None = None
    samples: bool = True  # False: only the held-out loss
    save_samples: bool = False  # also write samples.npz (the raw, unclipped samples)
    inception_weights: str | None = None  # a file; None = the Keras cache
    cache_dir: str | None = None
    held_out_count: int = HELD_OUT_COUNT
    progress: bool = True


def evaluate_generator(
    generator: Generator, options: EvaluationOptions, out_dir: str | os.PathLike[str] | None
) -> tuple[dict[str, Any], np.ndarray]:
    """Samples, metrics and held-out loss of one model; writes JSON + PNG into `out_dir` if given.

    Returns:
        (result dict, per-example held-out losses [L, N]).
    """
    config = generator.config
    sampling = config.sampling
    result: dict[str, Any] = {
        "model": generator.label,
        "source": generator.source,
        "config_name": config.name,
        "dataset": generator.dataset,
        "step": generator.step,
        "sigmas": [float(s) for s in generator.sigmas],
    }
    if options.samples:
        if generator.dataset not in ("toy", "digits"):
            # Fail before hours of sampling when Inception is not available offline.
            metrics.resolve_inception_weights(options.inception_weights)
        num_samples = options.num_samples or DEFAULT_NUM_SAMPLES.get(generator.dataset, PAPER_NUM_SAMPLES)
        settings = {
            "num_samples": num_samples,
            "seed": options.seed,
            "steps_per_level": sampling.steps_per_level if options.steps_per_level is None else options.steps_per_level,
            "epsilon": sampling.epsilon if options.epsilon is None else options.epsilon,
            "denoise": sampling.final_denoise if options.denoise is None else options.denoise,
            "convention": sampling.convention,
        }
        started = time.perf_counter()
        samples = draw_samples(
            generator,
            num_samples,
            batch_size=options.batch_size,
            seed=options.seed,
            steps_per_level=settings["steps_per_level"],
            epsilon=settings["epsilon"],
            denoise=settings["denoise"],
            progress=options.progress,
        )
        settings["seconds"] = time.perf_counter() - started
        result["sampler"] = settings
        finite = np.all(np.isfinite(samples.reshape(len(samples), -1)), axis=1)  # [N]
        result["non_finite_samples"] = int(np.sum(~finite))
        if not np.all(finite):
            raise EvaluationError(
                f"{int(np.sum(~finite))} of {len(samples)} samples are NaN/inf; lower --epsilon or check the model"
            )
        if generator.dataset == "digits":
            result["metrics"] = digits_metrics(samples, options.cache_dir)
        elif generator.dataset == "toy":
            result["metrics"] = toy_metrics(samples, seed=options.seed)
        else:
            result["metrics"] = inception_metrics(
                samples, config, weights=options.inception_weights or "imagenet", cache_dir=options.cache_dir
            )
        if out_dir is not None:
            result["picture"] = save_samples_picture(samples, generator.dataset, Path(out_dir) / "samples.png")
            if options.save_samples:
                np.savez_compressed(Path(out_dir) / "samples.npz", samples=samples, first_seed=options.seed)
                result["samples_file"] = os.fspath(Path(out_dir) / "samples.npz")
    clean = held_out_data(config, options.held_out_count)
    per_level = held_out_losses(generator, clean)
    result["held_out_loss"] = loss_summary(per_level, generator.sigmas)
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(out_dir) / "evaluation.json", "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
            f.write("\n")
    return result, per_level


def default_out_dir(path: str | os.PathLike[str], generator: Generator) -> Path:
    """WORKDIR/evaluation/step_N for checkpoints; EXPORT_evaluation beside an export."""
    path = Path(path)
    if generator.source == "checkpoint":
        from ncsn_tf.checkpoints import resolve_checkpoint

        workdir, _ = resolve_checkpoint(path)
        return Path(workdir) / "evaluation" / f"step_{generator.step}"
    return path.parent / f"{path.name}_evaluation"


def _headline(result: dict[str, Any]) -> dict[str, Any]:
    """The few numbers of a result that go into the side-by-side table."""
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
        rows["mode weight (-5,-5)"] = found["mode_weights"][0]
        rows["MMD^2"] = found["mmd2"]
    if "fid" in found:
        rows["FID"] = found["fid"]
        rows["Inception score"] = found["inception_score"]
    if "sampler" in result:
        rows["sampling seconds"] = result["sampler"]["seconds"]
    rows["held-out DSM loss"] = result["held_out_loss"]["total"]
    return rows


def _format(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def comparison_table(results: Sequence[dict[str, Any]], per_level: Sequence[np.ndarray]) -> str:
    """Side-by-side text table of headline metrics and held-out loss per level.

    With two or more models on the same ladder and held-out set, every column after
    the first also gets "diff vs first (paired standard error)" for the losses: the
    perturbations are identical, so the difference's error is much smaller than
    either loss's. Several models are named [1], [2], ... with a legend below.
    """
    labels = [r["model"] for r in results] if len(results) == 1 else [f"[{i + 1}]" for i in range(len(results))]
    headlines = [_headline(r) for r in results]
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


def evaluate_paths(
    paths: Sequence[str], options: EvaluationOptions, out_dir: str | None = None, runtime: str = "auto"
) -> tuple[list[dict[str, Any]], str]:
    """Evaluate each model; return the results and the side-by-side table.

    Every model's held-out loss uses the first model's held-out data and the same
    noise seed, so the losses are paired.
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
    return results, comparison_table(results, losses)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ncsn_tf.evaluate A [B ...]`: see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m ncsn_tf.evaluate",
        description="Sample-quality metrics and held-out DSM loss of one or more trained models, side by side.",
    )
    parser.add_argument("paths", nargs="+", help="training workdir, checkpoint prefix (.../ckpt-N) or export folder")
    parser.add_argument(
        "--num-samples", type=int, default=None, help="samples per model (default: digits 1000, toy 1280, else 50000)"
    )
    parser.add_argument("--batch-size", type=int, default=250, help="samples per sampler call")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first sample (sample b uses seed + b)")
    parser.add_argument("--steps-per-level", type=int, default=None, help="Langevin steps per level (default: config)")
    parser.add_argument("--epsilon", type=float, default=None, help="step size at the smallest sigma (default: config)")
    denoise = parser.add_mutually_exclusive_group()
    denoise.add_argument("--denoise", dest="denoise", action="store_true", default=None, help="final denoising step")
    denoise.add_argument("--no-denoise", dest="denoise", action="store_false", help="no final denoising step")
    parser.add_argument("--loss-only", action="store_true", help="skip sampling; only the held-out DSM loss")
    parser.add_argument("--held-out", type=int, default=HELD_OUT_COUNT, help="held-out examples for the loss")
    parser.add_argument(
        "--inception-weights", default=None, help="InceptionV3 .h5 (with top) when not in the Keras cache"
    )
    parser.add_argument("--cache-dir", default=None, help="cache of dataset statistics and the digits classifier")
    parser.add_argument(
        "--runtime", choices=("auto", "onnx", "savedmodel"), default="auto",
        help="how to run an export (default auto: ONNX Runtime when it has ONNX files, else TensorFlow)",
    )  # fmt: skip
    parser.add_argument(
        "--out", default=None, help="output folder (default: WORKDIR/evaluation/step_N or EXPORT_evaluation)"
    )
    parser.add_argument("--save-samples", action="store_true", help="also write samples.npz (raw samples)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    options = EvaluationOptions(
        num_samples=args.num_samples,
        batch_size=args.batch_size,
        seed=args.seed,
        steps_per_level=args.steps_per_level,
        epsilon=args.epsilon,
        denoise=args.denoise,
        samples=not args.loss_only,
        save_samples=args.save_samples,
        inception_weights=args.inception_weights,
        cache_dir=args.cache_dir,
        held_out_count=args.held_out,
        progress=not args.quiet,
    )
    from ncsn_tf.checkpoints import CheckpointError
    from ncsn_tf.classifier import ClassifierError
    from ncsn_tf.configs import ConfigError

    try:
        results, table = evaluate_paths(args.paths, options, args.out, args.runtime)
    except (EvaluationError, metrics.MetricsError, CheckpointError, ClassifierError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(table)
    for result in results:
        print(f"wrote {Path(result['out_dir']) / 'evaluation.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
