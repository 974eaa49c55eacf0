"""Sample quality per kind of data: digits (the digits classifier), the toy mixture, Inception (images).

- digits: the digits classifier's Frechet distance (to the "train" split), share of
  samples with confidence > 0.9, entropy, class shares, and the reference rows
  (held-out real digits = the floor; a Gaussian fitted to the data);
- toy: mode weights (with binomial standard errors) and MMD^2 to true samples
  (with the MMD of a second true sample as the floor);
- other image data: FID and Inception score with Keras InceptionV3 against cached
  dataset statistics (paper Section 5, 50,000 samples).

References:
    Song & Ermon 2019, Section 3.2 and Figure 3 (toy), Section 5 (FID / IS protocol).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

import numpy as np

from ncsn_tf import metrics, toy
from ncsn_tf.configs import Config
from ncsn_tf.evaluation.objective import held_out_data

DIGITS_NUM_SAMPLES = 1000  # per model; the distance is also reported at n = 360, the held-out floor's size
PAPER_NUM_SAMPLES = 50_000  # the paper's FID protocol (Section 5)
INCEPTION_BATCH_SIZE = 50  # images per InceptionV3 call


def default_num_samples(dataset: str) -> int:
    """Samples to evaluate a model of `dataset` on: toy 1,280 (the paper's chains), digits 1,000, else 50,000."""
    return {"toy": toy.NUM_CHAINS, "digits": DIGITS_NUM_SAMPLES}.get(dataset, PAPER_NUM_SAMPLES)


def uses_inception(dataset: str) -> bool:
    """Whether a data set's metrics need the InceptionV3 weights (every data set but toy and digits)."""
    return dataset not in ("toy", "digits")


def digits_metrics(samples: np.ndarray, cache_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Classifier-space quality of digit samples and the reference rows (see `ncsn_tf.classifier`).

    Args:
        samples: [N, 8, 8, 1] digits samples (clipped to [0, 1] by the classifier).
        cache_dir: cache of the classifier and the reference statistics.

    Returns:
        {"classifier": its accuracy and recipe, "samples": `digits_quality`, "reference_rows"}.
    """
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

    Returns:
        {"mode_weights" [2], "within_mode_variance", "true_weights", "binomial_standard_error",
         "weight_error_in_standard_errors", "mmd2", "mmd2_true_vs_true", "mmd_bandwidth"}.
    """
    from ncsn_tf.data import sample_toy_mixture

    count = len(samples)
    weights = metrics.mode_weights(samples, toy.MEANS)  # [2]
    true = sample_toy_mixture(count, seed=seed + 1)  # [N, 2]
    second_true = sample_toy_mixture(count, seed=seed + 2)  # [N, 2]
    bandwidth = metrics.median_bandwidth(true, second_true)
    squared_distances = np.sum(np.square(samples[:, None, :] - toy.MEANS[None, :, :]), axis=-1)  # [N, 2]
    standard_error = metrics.binomial_standard_error(float(toy.WEIGHTS[0]), count)
    return {
        "mode_weights": [float(w) for w in weights],
        # per-coordinate variance around the nearest mode: STD^2 = 1 for the data, 1 + sigma^2
        # for the data perturbed by sigma (what annealed Langevin ends on), less after denoising
        "within_mode_variance": float(np.mean(squared_distances.min(axis=1)) / samples.shape[1]),
        "true_weights": [float(w) for w in toy.WEIGHTS],
        "binomial_standard_error": standard_error,
        "weight_error_in_standard_errors": float(abs(weights[0] - toy.WEIGHTS[0]) / standard_error),
        "mmd2": metrics.mmd_rbf_unbiased(samples, true, bandwidth),
        "mmd2_true_vs_true": metrics.mmd_rbf_unbiased(second_true, true, bandwidth),
        "mmd_bandwidth": bandwidth,
    }


def inception_metrics(
    samples: np.ndarray,
    config: Config,
    *,
    weights: str | os.PathLike[str] | None = "imagenet",
    reference_count: int = PAPER_NUM_SAMPLES,
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = INCEPTION_BATCH_SIZE,
) -> dict[str, Any]:
    """FID (to cached training-data statistics) and Inception score of image samples.

    Args:
        samples: [N, H, W, C] images (clipped to [0, 1] by the network).
        config: the training config (data set and split of the reference statistics).
        weights: "imagenet" (the Keras cache), an .h5 file, or None (random; tests only).
        reference_count: real images the reference statistics are computed from.
        cache_dir: cache of the reference statistics.
        batch_size: images per InceptionV3 call.

    Returns:
        {"fid", "inception_score", "inception_score_std", "reference", "note"}.
    """
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


def dataset_metrics(
    samples: np.ndarray,
    config: Config,
    *,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] | None = None,
    inception_weights: str | None = None,
) -> dict[str, Any]:
    """The metrics of `samples` for the config's data set: `digits_metrics`, `toy_metrics` or `inception_metrics`.

    Args:
        samples: [N, *shape] samples (not clipped).
        config: the training config.
        seed: seed of the first sample (seeds the toy's true samples).
        cache_dir: cache of classifier and statistics.
        inception_weights: InceptionV3 .h5 file; None = the Keras cache.
    """
    if config.data.dataset == "digits":
        return digits_metrics(samples, cache_dir)
    if config.data.dataset == "toy":
        return toy_metrics(samples, seed=seed)
    return inception_metrics(samples, config, weights=inception_weights or "imagenet", cache_dir=cache_dir)
