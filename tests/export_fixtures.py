"""Session-wide exports shared by the export tests (conversion is slow: export each model once).

Registered in tests/conftest.py (`toy_export_dir`, `digits_workdir`, `digits_export_dir`,
`gaussian_export_dir`). Other test modules (e.g. the desktop tests) may use
these fixtures or call the same entry points: `export.exporter.export_model(config,
model, step, out_dir)`, `export_checkpoint(workdir, out_dir)`, `export_toy_mixture(out_dir)`.
"""

from __future__ import annotations

import pytest

TINY_DIGITS_OVERRIDES = (
    "name=digits_tiny",
    "model.ngf=4",
    "noise.sigma_max=1.0",  # pinned: the tests state this ladder and step size literally
    "noise.num_levels=2",
    "sampling.steps_per_level=5",
    "sampling.epsilon=2e-5",
)


def tiny_digits_config():
    """Digits (8x8x1) with a 4-channel network and 2 noise levels: the smallest real export."""
    from ncsn_tf import configs

    return configs.apply_overrides(configs.digits(), list(TINY_DIGITS_OVERRIDES))


def write_tiny_digits_workdir(workdir, step: int = 3, seed: int = 0):
    """A workdir (config.json + one checkpoint) of the tiny digits network, freshly initialised."""
    import keras

    from ncsn_tf.checkpoints import write_workdir
    from ncsn_tf.models import build_score_model

    keras.utils.set_random_seed(seed)
    config = tiny_digits_config()
    write_workdir(workdir, config, build_score_model(config), step=step)
    return workdir


@pytest.fixture(scope="session")
def exports_root(tmp_path_factory):
    return tmp_path_factory.mktemp("exports")


@pytest.fixture(scope="session")
def toy_export_dir(exports_root):
    """The exact-score toy mixture, exported with all tf2onnx optimizations (the CLI default)."""
    from export.exporter import export_toy_mixture

    return export_toy_mixture(exports_root).path


@pytest.fixture(scope="session")
def digits_workdir(tmp_path_factory):
    return write_tiny_digits_workdir(tmp_path_factory.mktemp("runs") / "digits_tiny")


@pytest.fixture(scope="session")
def digits_export_dir(digits_workdir, exports_root):
    """The tiny digits workdir exported (fast conversion: the network graph converts ~3x faster)."""
    from export.exporter import export_checkpoint

    return export_checkpoint(digits_workdir, exports_root, optimize_onnx=False).path


def gaussian_image_model(sigmas, std: float = 0.5, broken: bool = False):
    """The exact score of N(0.5, std^2 I) on [B, 8, 8, 1] images, built (no weights).

    A one-component `GaussianMixtureScore` on flattened images: the same ops as the
    exact-score exports the safety gate's allowlist is derived from. `broken=True`
    returns NaN scores (a model whose export must fail verification).
    """
    import keras
    import numpy as np
    from keras import ops

    from ncsn_tf.models.analytic import GaussianMixtureScore

    class GaussianImageScore(keras.Model):
        def __init__(self) -> None:
            super().__init__(name="gaussian_image_score")
            # Two equal components: one Gaussian. (One component, or a zero mean, makes tf2onnx fold a
            # `0 - x` into Neg, an op no real export uses, which the safety gate's allowlist refuses.)
            means = np.full((2, 64), 0.5, np.float32)
            self.mixture = GaussianMixtureScore([1.0, 1.0], means, variance=std**2, sigmas=sigmas)

        def call(self, noisy, sigma_indices):
            scores = ops.reshape(self.mixture(ops.reshape(noisy, (-1, 64)), sigma_indices), (-1, 8, 8, 1))
            return scores * float("nan") if broken else scores  # [B, 8, 8, 1]

    model = GaussianImageScore()
    model(np.zeros((1, 8, 8, 1), np.float32), np.zeros(1, np.int32))  # built
    return model


@pytest.fixture(scope="session")
def gaussian_export_dir(exports_root):
    """The exact score of N(0.5, 0.5^2 I) 8x8x1 "images" on the tiny digits ladder, both formats.

    No weights (closed-form score), so it converts quickly; with epsilon = 1 the chain
    provably diverges (the step at sigma_1 = 1 is 1e4 / (0.25 + 1) times the distance to 0.5).
    """
    from export.exporter import export_model

    config = tiny_digits_config()
    model = gaussian_image_model([float(sigma) for sigma in config.noise.sigmas()])
    return export_model(config, model, 0, exports_root, name="gaussian").path  # optimized, as the CLI default
