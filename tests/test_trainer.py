"""The trainer in-process: workdir outputs, learning, EMA, resume, NaN guard, config conflicts."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from ncsn_tf import checkpoints, configs, trainer
from ncsn_tf.checkpoints import CheckpointError
from ncsn_tf.losses import denoising_score_matching
from ncsn_tf.models import analytic

TINY_DIGITS = [
    "model.ngf=4",
    "noise.sigma_max=1.0",  # pinned: the tests name the per-level loss tags literally
    "noise.num_levels=2",
    "training.batch_size=16",
    "sampling.steps_per_level=2",
    "sampling.num_samples=4",
]
SMALL_TOY = ["model.mlp_hidden=32", "model.mlp_layers=2", "training.batch_size=32", "sampling.steps_per_level=2", "sampling.num_samples=16"]


def _toy(*extra: str) -> configs.Config:
    return configs.apply_overrides(configs.get_config("toy"), [*SMALL_TOY, *extra])


def _weights(model) -> list[np.ndarray]:
    return [w.numpy() for w in model.weights]


def _event_tags(logs_dir: str) -> set[str]:
    tags = set()
    for path in glob.glob(os.path.join(logs_dir, "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_digits_few_steps_write_checkpoint_config_samples_and_logs(tmp_path):
    config = configs.apply_overrides(
        configs.get_config("digits"),
        [*TINY_DIGITS, "training.steps=2", "training.checkpoint_every=2", "training.log_every=1", "training.sample_every=1"],
    )
    result = trainer.train(config, tmp_path, progress=False)

    assert result.step == 2 and result.start_step == 0
    assert np.isfinite(result.loss)
    assert result.checkpoint == str(tmp_path / "checkpoints" / "ckpt-2")
    assert configs.load_json(tmp_path / "config.json") == config
    for name in ("final.png", "step_000001.png"):
        picture = np.asarray(Image.open(tmp_path / "samples" / name))
        assert picture.ndim == 2 and picture.shape[0] >= 2 * 8 and picture.std() > 0  # a 2x2 grid of 8x8 digits
    assert result.sample_grid == str(tmp_path / "samples" / "final.png")
    tags = _event_tags(str(tmp_path / "logs"))
    assert {"loss", "speed/steps_per_second", "speed/images_per_second"} <= tags
    assert {t for t in tags if t.startswith("loss_per_level/")} == {"loss_per_level/00_sigma_1", "loss_per_level/01_sigma_0.01"}

    # The raw weights (the digits config keeps an EMA copy too, which inference prefers).
    loaded_config, model, step = checkpoints.load_for_inference(tmp_path, use_ema=False)
    assert loaded_config == config and step == 2
    for saved, trained in zip(_weights(model), _weights(result.model), strict=True):
        np.testing.assert_array_equal(saved, trained)


def _toy_eval(model, config, batch) -> tuple[float, float]:
    """(mean DSM loss, relative L2 error of the scores against the exact mixture scores)."""
    sigmas = config.noise.sigmas()
    clean, sigma_indices, noise = batch
    loss = float(tf.reduce_mean(denoising_score_matching(model, clean, sigma_indices, noise, sigmas)))
    noisy = clean + tf.gather(sigmas, sigma_indices)[:, None] * noise  # [B, 2]
    exact = analytic.paper_toy_mixture(sigmas)(noisy, sigma_indices).numpy()  # [B, 2]
    error = np.sqrt(np.mean((model(noisy, sigma_indices).numpy() - exact) ** 2) / np.mean(exact**2))
    return loss, float(error)


def test_toy_loss_and_score_error_go_down(tmp_path):
    config = configs.apply_overrides(configs.get_config("toy"), ["training.checkpoint_every=1000", "sampling.steps_per_level=2"])
    batch = next(iter(trainer.training_dataset(config, 4096, seed=123)))  # held-out stream (another seed)
    trainer.train(config, tmp_path, steps=1, progress=False, write_final_samples=False)
    loss_start, error_start = _toy_eval(checkpoints.load_for_inference(tmp_path)[1], config, batch)
    result = trainer.train(config, tmp_path, steps=400, progress=False, write_final_samples=False)
    assert result.start_step == 1 and result.step == 400
    loss_end, error_end = _toy_eval(checkpoints.load_for_inference(tmp_path)[1], config, batch)
    # Measured: loss 164 -> 0.58 (the exact scores get 0.195), relative score error 4.1 -> 0.95
    # (dominated by the small-sigma levels, where scores are largest and learned last).
    assert loss_end < loss_start / 50
    assert error_end < error_start / 3


def test_resume_equals_an_uninterrupted_run(tmp_path):
    config = _toy("training.checkpoint_every=3", "training.ema_rate=0.9")
    straight = trainer.train(config, tmp_path / "straight", steps=6, progress=False, write_final_samples=False)
    first = trainer.train(config, tmp_path / "resumed", steps=3, progress=False, write_final_samples=False)
    assert first.step == 3
    resumed = trainer.train(config, tmp_path / "resumed", steps=6, progress=False, write_final_samples=False)
    assert resumed.start_step == 3 and resumed.step == 6
    # Same weights, EMA, optimizer moments and data/noise stream: the same numbers.
    for a, b in zip(_weights(straight.model), _weights(resumed.model), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    for a, b in zip(_weights(straight.ema_model), _weights(resumed.ema_model), strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


def test_ema_follows_its_closed_form(tmp_path):
    rate = 0.75
    config = _toy(f"training.ema_rate={rate}", "training.checkpoint_every=1")
    trainer.train(config, tmp_path, steps=2, progress=False, write_final_samples=False)
    one = tmp_path / "checkpoints" / "ckpt-1"
    two = tmp_path / "checkpoints" / "ckpt-2"
    ema_1 = _weights(checkpoints.load_for_inference(one, use_ema=True)[1])
    ema_2 = _weights(checkpoints.load_for_inference(two, use_ema=True)[1])
    raw_2 = _weights(checkpoints.load_for_inference(two, use_ema=False)[1])
    for e1, e2, w2 in zip(ema_1, ema_2, raw_2, strict=True):
        np.testing.assert_allclose(e2, rate * e1 + (1 - rate) * w2, rtol=1e-6, atol=1e-7)
    assert any(not np.allclose(e2, w2) for e2, w2 in zip(ema_2, raw_2, strict=True))


def test_nan_guard_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    config = _toy("training.checkpoint_every=2")
    good = trainer.train(config, tmp_path, steps=4, progress=False, write_final_samples=False)
    good_weights = _weights(good.model)

    # Adam moves every weight by ~1e30 in one step: the next forward pass overflows.
    # Checkpoints are due every step, so the garbage (but finite) weights after step 5
    # would be saved if they were not checked before saving.
    exploding = configs.apply_overrides(config, ["training.learning_rate=1e30", "training.checkpoint_every=1"])
    with pytest.raises(trainer.NonFiniteLossError, match=r"new weights after step 5 is nan.*ckpt-4 is the last good state"):
        trainer.train(exploding, tmp_path, steps=50, progress=False, write_final_samples=False)
    # Without a checkpoint due, the NaN shows in the next training loss.
    exploding = configs.apply_overrides(exploding, ["training.checkpoint_every=10"])
    with pytest.raises(trainer.NonFiniteLossError, match=r"loss at step 6 is nan.*ckpt-4 is the last good state"):
        trainer.train(exploding, tmp_path, steps=50, progress=False, write_final_samples=False)

    assert checkpoints.latest_checkpoint(tmp_path / "checkpoints") == str(tmp_path / "checkpoints" / "ckpt-4")
    _, model, step = checkpoints.load_for_inference(tmp_path)
    assert step == 4
    for saved, before in zip(_weights(model), good_weights, strict=True):
        np.testing.assert_array_equal(saved, before)


def test_resuming_with_a_different_model_is_an_error(tmp_path):
    config = _toy("training.checkpoint_every=1")
    trainer.train(config, tmp_path, steps=1, progress=False, write_final_samples=False)
    for change in ("model.mlp_hidden=64", "noise.num_levels=3", "training.ema_rate=0.99"):
        with pytest.raises(CheckpointError, match="conflicts with"):
            trainer.train(configs.apply_overrides(config, [change]), tmp_path, steps=2, progress=False)
    # More steps, other intervals and learning rate are fine.
    allowed = configs.apply_overrides(config, ["training.log_every=7", "training.learning_rate=1e-4"])
    assert trainer.train(allowed, tmp_path, steps=2, progress=False, write_final_samples=False).step == 2


def test_checkpoints_without_config_json_are_an_error(tmp_path):
    config = _toy("training.checkpoint_every=1")
    trainer.train(config, tmp_path, steps=1, progress=False, write_final_samples=False)
    os.remove(tmp_path / "config.json")
    with pytest.raises(CheckpointError, match="config.json is missing"):
        trainer.train(config, tmp_path, steps=2, progress=False)


def test_mixed_bfloat16_trains_and_checkpoints_float32_weights(tmp_path):
    config = _toy("training.precision=mixed_bfloat16", "training.checkpoint_every=2")
    result = trainer.train(config, tmp_path, steps=2, progress=False, write_final_samples=False)
    assert result.model.dtype_policy.compute_dtype == "bfloat16"
    assert np.isfinite(result.loss)
    _, model, step = checkpoints.load_for_inference(tmp_path)
    assert step == 2 and model.dtype_policy.compute_dtype == "float32"
    for saved, trained in zip(_weights(model), _weights(result.model), strict=True):
        assert saved.dtype == np.float32
        np.testing.assert_array_equal(saved, trained)
