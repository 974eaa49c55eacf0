"""Sample-quality metrics: Frechet distance / FID, Inception score, MMD, mode weights.

Everything except the Inception network is plain NumPy (float64), so the formulas
can be checked against closed forms without TensorFlow:

- `frechet_distance` between two Gaussians, the formula behind FID
  (Heusel et al. 2017): ||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1 C2)^{1/2}).
- `inception_score`: exp E_x KL(p(y|x) || p(y)) (Salimans et al. 2016), over splits.
- `mmd_rbf_unbiased`: the unbiased squared maximum mean discrepancy with a Gaussian
  kernel (Gretton et al. 2012, Lemma 6).
- `mode_weights`: share of points nearest to each mode (paper Figure 3).
- `confident_share`, `mean_entropy`, `class_shares`: what a classifier says about samples.

The Inception path (`InceptionNetwork`) uses `keras.applications.InceptionV3`: images
are resized to 299x299 (bilinear), gray is repeated to RGB, pixels are mapped to
[-1, 1]; features are the 2048-d global-average-pool output, and the 1000 logits feed
the Inception score. Note: the paper's numbers use the TF-GAN Inception graph
(2015-12-05), whose weights differ from Keras' ImageNet InceptionV3, so FID/IS from
here are comparable with each other, not digit-for-digit with published tables.

Dataset statistics (mean, covariance of features) are computed once and cached as
`.npz` files keyed by dataset, split, count and feature extractor
(`statistics_cache_path`, `cached_statistics`).

References:
    Heusel et al., GANs Trained by a Two Time-Scale Update Rule Converge to a Local
    Nash Equilibrium, NeurIPS 2017 (FID).
    Salimans et al., Improved Techniques for Training GANs, NeurIPS 2016 (IS).
    Gretton et al., A Kernel Two-Sample Test, JMLR 2012 (MMD).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

INCEPTION_SIZE = 299  # input side of InceptionV3
INCEPTION_FEATURE_DIM = 2048  # global-average-pool features
INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"  # Keras' ImageNet file (with top)


class MetricsError(ValueError):
    """A metric cannot be computed as asked; the message says why and what to do."""


@dataclass(frozen=True)
class GaussianStatistics:
    """Mean [D] and covariance [D, D] (float64) of a set of feature vectors, and its size."""

    mean: np.ndarray
    covariance: np.ndarray
    count: int


# ---------------------------------------------------------------------------
# Frechet distance.
# ---------------------------------------------------------------------------


def _symmetric_psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix by eigendecomposition.

    Eigenvalues below zero (round-off of a singular covariance) are clipped to zero, so
    the result is real and symmetric; no iterative `sqrtm`, no complex parts to discard.
    """
    symmetric = 0.5 * (matrix + matrix.T)  # [D, D]
    eigenvalues, eigenvectors = np.linalg.eigh(symmetric)  # [D], [D, D]
    roots = np.sqrt(np.clip(eigenvalues, 0.0, None))  # [D] >= 0
    return (eigenvectors * roots) @ eigenvectors.T  # [D, D]


def frechet_distance(mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray) -> float:
    """Frechet (2-Wasserstein squared) distance between N(mean1, cov1) and N(mean2, cov2).

    d^2 = ||mean1 - mean2||^2 + tr(cov1) + tr(cov2) - 2 tr((cov1 cov2)^{1/2}).
    The trace term is computed stably as sum sqrt(eig(S cov2 S)) with S = cov1^{1/2}:
    S cov2 S is symmetric PSD and similar to cov1 cov2, so its eigenvalues are those of
    cov1 cov2, real and non-negative (up to round-off, clipped at 0).

    Args:
        mean1, mean2: [D] means.
        cov1, cov2: [D, D] symmetric PSD covariances.

    Returns:
        The distance (>= 0; exactly 0 only up to float64 round-off for equal inputs).
    """
    mean1, mean2 = np.asarray(mean1, np.float64), np.asarray(mean2, np.float64)
    cov1, cov2 = np.atleast_2d(np.asarray(cov1, np.float64)), np.atleast_2d(np.asarray(cov2, np.float64))
    dim = mean1.shape[-1] if mean1.ndim else 1
    if mean1.shape != mean2.shape or cov1.shape != (dim, dim) or cov2.shape != (dim, dim):
        raise MetricsError(
            f"frechet_distance needs means [D] and covariances [D, D] of one D; got {mean1.shape}, {cov1.shape}, "
            f"{mean2.shape}, {cov2.shape}"
        )
    if not (np.all(np.isfinite(cov1)) and np.all(np.isfinite(cov2)) and np.all(np.isfinite(mean1 - mean2))):
        raise MetricsError("frechet_distance got non-finite statistics (NaN/inf in the features); check the samples")
    sqrt_cov1 = _symmetric_psd_sqrt(cov1)  # [D, D]
    middle = sqrt_cov1 @ cov2 @ sqrt_cov1  # [D, D] symmetric PSD, similar to cov1 @ cov2
    eigenvalues = np.linalg.eigvalsh(0.5 * (middle + middle.T))  # [D]
    trace_sqrt = float(np.sum(np.sqrt(np.clip(eigenvalues, 0.0, None))))
    mean_term = float(np.sum(np.square(mean1 - mean2)))
    distance = mean_term + float(np.trace(cov1) + np.trace(cov2)) - 2.0 * trace_sqrt
    return max(distance, 0.0)


def gaussian_statistics(features: np.ndarray) -> GaussianStatistics:
    """Mean and (unbiased, N - 1) covariance of feature vectors.

    Args:
        features: [N, D] with N >= 2.

    Returns:
        GaussianStatistics with mean [D], covariance [D, D] in float64.
    """
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise MetricsError(f"statistics need features [N, D] with N >= 2, got shape {features.shape}")
    if not np.all(np.isfinite(features)):
        raise MetricsError("features contain NaN or inf; the samples probably diverged (check the sampler step size)")
    mean = features.mean(axis=0)  # [D]
    covariance = np.cov(features, rowvar=False)  # [D, D]
    return GaussianStatistics(mean=mean, covariance=np.atleast_2d(covariance), count=int(features.shape[0]))


def frechet_distance_between(first: GaussianStatistics | np.ndarray, second: GaussianStatistics | np.ndarray) -> float:
    """Frechet distance between two feature sets or their statistics (FID when features are Inception's)."""
    first = first if isinstance(first, GaussianStatistics) else gaussian_statistics(first)
    second = second if isinstance(second, GaussianStatistics) else gaussian_statistics(second)
    return frechet_distance(first.mean, first.covariance, second.mean, second.covariance)


# ---------------------------------------------------------------------------
# Class-probability metrics: Inception score, confidence, entropy, class shares.
# ---------------------------------------------------------------------------


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64. logits: [N, K] -> [N, K], rows sum to 1."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)  # [N, K] <= 0
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _check_probabilities(probabilities: np.ndarray) -> np.ndarray:
    probabilities = np.asarray(probabilities, np.float64)
    if probabilities.ndim != 2 or probabilities.shape[0] < 1:
        raise MetricsError(f"probabilities must be [N, K] with N >= 1, got shape {probabilities.shape}")
    if np.any(probabilities < -1e-9) or np.any(probabilities.sum(axis=1) > 1.0 + 1e-6):
        raise MetricsError("probabilities must be non-negative with rows summing to at most 1; pass softmax outputs")
    return np.clip(probabilities, 0.0, 1.0)


def inception_score(probabilities: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """Inception score exp(E_x KL(p(y|x) || p(y))), mean and std over `splits` chunks.

    As in Salimans et al. (2016) and the NCSN protocol: the N samples are cut into
    `splits` consecutive chunks, p(y) is the mean prediction within a chunk.
    It is 1 when every prediction equals p(y) and K (number of classes) when
    predictions are one-hot and spread evenly over the K classes.

    Args:
        probabilities: [N, K] class probabilities, rows sum to 1.
        splits: number of chunks (N >= splits).

    Returns:
        (mean, standard deviation) over the chunks.
    """
    probabilities = _check_probabilities(probabilities)
    if splits < 1 or probabilities.shape[0] < splits:
        raise MetricsError(f"inception_score needs at least `splits` ({splits}) samples, got {probabilities.shape[0]}")
    scores = []
    for chunk in np.array_split(probabilities, splits, axis=0):
        marginal = chunk.mean(axis=0, keepdims=True)  # [1, K]
        # 0 * log(0 / q) = 0: only terms with p > 0 contribute.
        ratio = np.where(chunk > 0, chunk / np.maximum(marginal, 1e-300), 1.0)  # [n, K]
        kl = np.sum(chunk * np.log(ratio), axis=1)  # [n] >= 0
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))


def confident_share(probabilities: np.ndarray, threshold: float = 0.9) -> float:
    """Share of rows whose largest probability exceeds `threshold`. probabilities: [N, K]."""
    probabilities = _check_probabilities(probabilities)
    return float(np.mean(probabilities.max(axis=1) > threshold))


def mean_entropy(probabilities: np.ndarray) -> float:
    """Mean Shannon entropy (nats) of the rows; a row summing to s < 1 gets a rest class 1 - s.

    Args:
        probabilities: [N, K], rows sum to at most 1 (the remainder is treated as
            one more outcome, e.g. the digits classifier's "not a digit").

    Returns:
        Mean entropy in nats, in [0, log(K + 1)].
    """
    probabilities = _check_probabilities(probabilities)
    rest = np.clip(1.0 - probabilities.sum(axis=1, keepdims=True), 0.0, 1.0)  # [N, 1]
    full = np.concatenate([probabilities, rest], axis=1)  # [N, K + 1]
    terms = np.where(full > 0, -full * np.log(np.where(full > 0, full, 1.0)), 0.0)
    return float(terms.sum(axis=1).mean())


def class_shares(probabilities: np.ndarray) -> np.ndarray:
    """Share of rows whose argmax is each class. probabilities: [N, K] -> [K], sums to 1."""
    probabilities = _check_probabilities(probabilities)
    counts = np.bincount(probabilities.argmax(axis=1), minlength=probabilities.shape[1])  # [K]
    return counts / probabilities.shape[0]


# ---------------------------------------------------------------------------
# MMD and mode weights (2-D toy data).
# ---------------------------------------------------------------------------


def median_bandwidth(x: np.ndarray, y: np.ndarray, max_points: int = 2_000, seed: int = 0) -> float:
    """Median pairwise Euclidean distance of the pooled points (the median heuristic)."""
    pooled = np.concatenate([np.asarray(x, np.float64), np.asarray(y, np.float64)], axis=0)  # [N + M, D]
    if len(pooled) > max_points:
        pooled = pooled[np.random.default_rng(seed).choice(len(pooled), max_points, replace=False)]
    squared = np.sum(np.square(pooled[:, None, :] - pooled[None, :, :]), axis=-1)  # [P, P]
    upper = squared[np.triu_indices(len(pooled), k=1)]
    return float(np.sqrt(np.median(upper)))


def mmd_rbf_unbiased(x: np.ndarray, y: np.ndarray, bandwidth: float | None = None) -> float:
    """Unbiased estimate of MMD^2 with the kernel k(a, b) = exp(-||a - b||^2 / (2 h^2)).

    MMD^2_u = mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j)
    (Gretton et al. 2012, Lemma 6). It can be slightly negative when the two
    distributions are equal.

    Args:
        x: [N, D] samples, N >= 2.
        y: [M, D] samples, M >= 2.
        bandwidth: kernel width h; None = the median heuristic on the pooled points.

    Returns:
        The MMD^2 estimate.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1] or len(x) < 2 or len(y) < 2:
        raise MetricsError(f"mmd needs x [N, D] and y [M, D] with N, M >= 2, got {x.shape} and {y.shape}")
    if bandwidth is None:
        bandwidth = median_bandwidth(x, y)
    if not bandwidth > 0:
        raise MetricsError(f"mmd bandwidth must be positive, got {bandwidth}")
    scale = 1.0 / (2.0 * bandwidth**2)

    def kernel_sum(a: np.ndarray, b: np.ndarray) -> float:
        total = 0.0
        for start in range(0, len(a), 1024):  # chunks keep memory at 1024 x M
            block = a[start : start + 1024]  # [n, D]
            squared = np.sum(block**2, 1)[:, None] + np.sum(b**2, 1)[None, :] - 2.0 * block @ b.T  # [n, M]
            total += float(np.exp(-scale * np.clip(squared, 0.0, None)).sum())
        return total

    n, m = len(x), len(y)
    within_x = (kernel_sum(x, x) - n) / (n * (n - 1))  # diagonal terms k(x_i, x_i) = 1 removed
    within_y = (kernel_sum(y, y) - m) / (m * (m - 1))
    across = kernel_sum(x, y) / (n * m)
    return float(within_x + within_y - 2.0 * across)


def mode_weights(points: np.ndarray, modes: np.ndarray) -> np.ndarray:
    """Share of points whose nearest mode (Euclidean) is each mode.

    Args:
        points: [N, D].
        modes: [K, D] mode centres (toy: (-5, -5) and (5, 5)).

    Returns:
        [K] shares, summing to 1 (points with NaN are assigned nowhere and counted
        in none; the shares then sum to less than 1).
    """
    points, modes = np.asarray(points, np.float64), np.asarray(modes, np.float64)
    if points.ndim != 2 or modes.ndim != 2 or points.shape[1] != modes.shape[1] or len(points) == 0:
        raise MetricsError(f"mode_weights needs points [N, D] and modes [K, D], got {points.shape} and {modes.shape}")
    distances = np.sum(np.square(points[:, None, :] - modes[None, :, :]), axis=-1)  # [N, K]
    finite = np.all(np.isfinite(points), axis=1)  # [N]
    nearest = np.argmin(np.where(np.isfinite(distances), distances, np.inf), axis=1)[finite]
    return np.bincount(nearest, minlength=len(modes)) / len(points)


def binomial_standard_error(share: float, count: int) -> float:
    """Standard error sqrt(p (1 - p) / n) of a share estimated from `count` draws."""
    if count <= 0:
        raise MetricsError(f"count must be positive, got {count}")
    return float(np.sqrt(share * (1.0 - share) / count))


# ---------------------------------------------------------------------------
# Cache of dataset statistics.
# ---------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """`$NCSN_TF_CACHE` or `~/.cache/ncsn_tf`: cached dataset statistics and the digits classifier."""
    return Path(os.environ.get("NCSN_TF_CACHE") or Path.home() / ".cache" / "ncsn_tf")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-") or "x"


def statistics_cache_path(
    cache_dir: str | os.PathLike[str], dataset: str, split: str, count: int, feature: str
) -> Path:
    """Where the statistics of `count` images of `dataset`/`split` in `feature` space are cached."""
    name = f"stats_{_safe(dataset)}_{_safe(split)}_{int(count)}_{_safe(feature)}.npz"
    return Path(cache_dir) / name


def save_statistics(path: str | os.PathLike[str], statistics: GaussianStatistics) -> None:
    """Write statistics as .npz (mean, covariance, count), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp.npz")
    np.savez(temporary, mean=statistics.mean, covariance=statistics.covariance, count=statistics.count)
    os.replace(temporary, path)  # atomic: a killed run never leaves half a file


def load_statistics(path: str | os.PathLike[str]) -> GaussianStatistics:
    """Read statistics written by `save_statistics`."""
    try:
        with np.load(path) as stored:
            return GaussianStatistics(mean=stored["mean"], covariance=stored["covariance"], count=int(stored["count"]))
    except (OSError, KeyError, ValueError) as error:
        raise MetricsError(
            f"cannot read cached statistics {os.fspath(path)} ({error}); delete the file to recompute"
        ) from None


def cached_statistics(path: str | os.PathLike[str], compute_features: Callable[[], np.ndarray]) -> GaussianStatistics:
    """Statistics from the cache file at `path`, or computed from `compute_features()` and cached."""
    path = Path(path)
    if path.exists():
        return load_statistics(path)
    statistics = gaussian_statistics(compute_features())
    save_statistics(path, statistics)
    return statistics


# ---------------------------------------------------------------------------
# InceptionV3 features (FID / IS).
# ---------------------------------------------------------------------------


def keras_cached_inception_weights() -> Path:
    """Where Keras keeps the ImageNet InceptionV3 weights once downloaded ($KERAS_HOME/models/...)."""
    keras_home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    return keras_home / "models" / INCEPTION_WEIGHTS_FILE


def resolve_inception_weights(weights_file: str | os.PathLike[str] | None) -> str:
    """The weights file to load: `weights_file` if given, else the Keras cache.

    Raises:
        MetricsError: when neither exists (no download is attempted).
    """
    if weights_file:
        path = Path(weights_file)
        if not path.is_file():
            raise MetricsError(
                f"--inception-weights {os.fspath(path)} does not exist; pass the InceptionV3 .h5 (with top)"
            )
        return os.fspath(path)
    cached = keras_cached_inception_weights()
    if cached.is_file():
        return os.fspath(cached)
    raise MetricsError(
        f"InceptionV3 ImageNet weights are not in the Keras cache ({cached}) and cannot be downloaded offline; "
        f"copy {INCEPTION_WEIGHTS_FILE} there or pass --inception-weights FILE"
    )


class InceptionNetwork:
    """Keras InceptionV3 returning (pool features [N, 2048], logits [N, 1000]) for images.

    Args:
        weights: "imagenet" (the Keras-cached file, never downloaded), a path to an .h5
            weights file with the classification top, or None for random weights
            (tests: shapes only, the numbers are meaningless).
        batch_size: images per forward pass.

    Call arguments:
        images: [N, H, W, C] float in [0, 1], C = 1 or 3 (any H, W; resized to 299).

    Returns:
        (features [N, 2048] float64, logits [N, 1000] float64).
    """

    def __init__(self, weights: str | os.PathLike[str] | None = "imagenet", batch_size: int = 50) -> None:
        import keras

        if weights is None:
            self.weights_name = "random"
            weights_path = None
        else:
            weights_path = resolve_inception_weights(None if weights == "imagenet" else weights)
            self.weights_name = "imagenet" if weights == "imagenet" else Path(weights_path).stem
        base = keras.applications.InceptionV3(include_top=True, weights=weights_path, classifier_activation=None)
        pool = base.get_layer("avg_pool").output  # [N, 2048]
        self.model = keras.Model(base.input, [pool, base.output], name="inception_features")
        self.batch_size = int(batch_size)

    @property
    def feature_name(self) -> str:
        """Names the feature space in cache keys ("inception_v3-imagenet-pool")."""
        return f"inception_v3-{self.weights_name}-pool"

    def _prepare(self, images: np.ndarray) -> Any:
        import tensorflow as tf

        images = tf.convert_to_tensor(images, tf.float32)  # [n, H, W, C] in [0, 1]
        if images.shape[-1] == 1:
            images = tf.repeat(images, 3, axis=-1)  # [n, H, W, 3]
        images = tf.image.resize(tf.clip_by_value(images, 0.0, 1.0), (INCEPTION_SIZE, INCEPTION_SIZE), "bilinear")
        return images * 2.0 - 1.0  # [n, 299, 299, 3] in [-1, 1] (InceptionV3 preprocessing)

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise MetricsError(f"Inception needs images [N, H, W, 1 or 3] in [0, 1], got shape {images.shape}")
        features, logits = [], []
        for start in range(0, len(images), self.batch_size):
            pool, logit = self.model(self._prepare(images[start : start + self.batch_size]), training=False)
            features.append(np.asarray(pool, np.float64))  # [n, 2048]
            logits.append(np.asarray(logit, np.float64))  # [n, 1000]
        if not features:
            return np.zeros((0, INCEPTION_FEATURE_DIM)), np.zeros((0, 1000))
        return np.concatenate(features), np.concatenate(logits)
