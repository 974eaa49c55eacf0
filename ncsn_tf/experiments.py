"""The paper's experiments that fit on a CPU, as figures and JSON.

    python -m ncsn_tf.experiments toy [--out DIR] [--learned-steps N | --no-learned]
    python -m ncsn_tf.experiments inpaint WORKDIR [--out DIR] [--sampler S ...] [--resample-steps U]
    python -m ncsn_tf.experiments samplers [WORKDIR] [--out DIR] [--num-samples N] [--no-toy]
    python -m ncsn_tf.experiments denoise WORKDIR [--out DIR] [--num-samples N]

- `toy`: paper Figure 3 on 0.2 N((-5,-5), I) + 0.8 N((5,5), I) with EXACT scores:
  i.i.d. samples, plain Langevin (step 0.1, 1000 steps, x += 0.05 s + sqrt(0.1) z)
  and annealed Langevin (sigma geometric 20 -> 1, 10 levels x 100 steps,
  alpha_i = 0.1 sigma_i^2 / sigma_L^2), 1280 chains started uniformly on [-8, 8]^2;
  plus the same annealed sampler with a score learned by the trainer (toy config).
  Plain Langevin cannot move mass between the separated modes, so it keeps the
  initial split (about 1 : 1); annealed Langevin recovers 1 : 4.
- `inpaint`: held-out digits with several mask shapes (masks: 1 = known pixel),
  inpainted by any sampler (default the config's, annealed Langevin; `--sampler` and
  its settings as in `evaluate`, plus RePaint's `--resample-steps` for
  predictor-corrector); the digits classifier's accuracy on the results measures
  whether the completed digit is the right one.
- `samplers`: sample quality against network calls per image of every sampler
  (`ncsn_tf.sampler_comparison`): a digits model's rows (Frechet distance, confident
  share, class shares, seconds per 1,000 samples) and the toy mixture's with exact
  scores (weight of the small mode, MMD^2); a JSON, a Markdown table and a plot.
- `denoise`: the same seeds sampled without and with the final denoising step
  x <- x + sigma_L^2 s(x, L) (NCSNv2), with the quality metrics of each.

References:
    Song & Ermon 2019, Section 3.2 and Figure 3 (toy), Section 5.3 (inpainting);
    Song & Ermon 2020 (final denoising).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ncsn_tf import configs, sampler_comparison, toy
from ncsn_tf.evaluate import add_sampler_arguments, sampler_overrides
from ncsn_tf.evaluation.dataset_metrics import default_num_samples, digits_metrics, toy_metrics
from ncsn_tf.evaluation.draw import DEFAULT_BATCH_SIZE, draw_samples
from ncsn_tf.evaluation.generator import EvaluationError, Generator, generator_from_model
from ncsn_tf.evaluation.loading import open_generator
from ncsn_tf.evaluation.report import small_mode_name, write_json
from ncsn_tf.figures import save_inpainting_figure, save_samples_picture, save_toy_figure

# Paper Section 3.2 settings: ncsn_tf.toy.
TOY_CHAINS = toy.NUM_CHAINS
# Plain Langevin uses the score of the data itself (sigma = 0); the exact-score model needs a
# positive sigma, and sigma = 1e-3 changes the component variance by 1e-6 (immaterial).
DATA_SCORE_SIGMA = 1e-3
INPAINT_FIGURE_DIGITS = 8  # columns in the inpainting figure
INPAINT_EVAL_DIGITS = 100  # held-out digits per mask for the accuracy


# ---------------------------------------------------------------------------
# Toy (Figure 3).
# ---------------------------------------------------------------------------


def toy_exact_samples(num_chains: int = TOY_CHAINS, seed: int = 0) -> dict[str, np.ndarray]:
    """i.i.d., plain Langevin and annealed Langevin samples of the toy mixture with exact scores.

    Args:
        num_chains: chains (and i.i.d. samples); paper 1280.
        seed: chain c uses seed `seed + c` (its start and its noise).

    Returns:
        {"iid", "langevin", "annealed"} -> [num_chains, 2] float32 points.
    """
    import tensorflow as tf

    from ncsn_tf.data import sample_toy_mixture
    from ncsn_tf.models.analytic import paper_toy_mixture
    from ncsn_tf.sampling import annealed_langevin, initial_images

    seeds = tf.range(seed, seed + num_chains, dtype=tf.int32)  # [N]
    start = initial_images(seeds, (2,), value_range=toy.START_RANGE)  # [N, 2] uniform on [-8, 8]^2
    data_score = paper_toy_mixture([DATA_SCORE_SIGMA])
    langevin = annealed_langevin(
        data_score, start, seeds, [DATA_SCORE_SIGMA], steps_per_level=toy.LANGEVIN_STEPS, epsilon=toy.LANGEVIN_STEP,
        convention=toy.CONVENTION,
    )  # fmt: skip
    sigmas = configs.toy().noise.sigmas()  # [10]
    annealed = annealed_langevin(
        paper_toy_mixture(sigmas), start, seeds, sigmas, steps_per_level=toy.STEPS_PER_LEVEL, epsilon=toy.EPSILON,
        convention=toy.CONVENTION,
    )  # fmt: skip
    return {
        "iid": sample_toy_mixture(num_chains, seed=seed),
        "langevin": langevin.numpy(),
        "annealed": annealed.numpy(),
    }


def toy_mixing_check(num_chains: int = 10 * TOY_CHAINS, seed: int = 0) -> dict[str, Any]:
    """Annealed Langevin with exact scores at 10x the chains, with 100 and 1000 steps per level.

    Separates sampling noise from the sampler's own bias: with the paper's 100 steps
    per level the chains do not fully re-equilibrate between levels, and the weight
    of the small mode comes out a little above 0.2 (an independent NumPy
    implementation gives the same); 1000 steps per level remove most of it.

    Returns:
        {"chains", "steps_100": toy metrics, "steps_1000": toy metrics}.
    """
    import tensorflow as tf

    from ncsn_tf.models.analytic import paper_toy_mixture
    from ncsn_tf.sampling import annealed_langevin, initial_images

    seeds = tf.range(seed, seed + num_chains, dtype=tf.int32)  # [N]
    start = initial_images(seeds, (2,), value_range=toy.START_RANGE)  # [N, 2]
    sigmas = configs.toy().noise.sigmas()
    model = paper_toy_mixture(sigmas)
    report: dict[str, Any] = {"chains": num_chains}
    for steps in (toy.STEPS_PER_LEVEL, 10 * toy.STEPS_PER_LEVEL):
        points = annealed_langevin(
            model, start, seeds, sigmas, steps_per_level=steps, epsilon=toy.EPSILON, convention=toy.CONVENTION
        ).numpy()  # [N, 2]
        report[f"steps_{steps}"] = toy_metrics(points, seed=seed)
    return report


def toy_learned_samples(
    workdir: str | os.PathLike[str], steps: int, num_chains: int = TOY_CHAINS, seed: int = 0, progress: bool = True
) -> tuple[np.ndarray, dict[str, Any]]:
    """Train the toy config for `steps` steps in `workdir` (resuming), then sample like the exact run.

    Returns:
        (points [num_chains, 2], {"workdir", "steps", "train_seconds", "final_loss"}).
    """
    from ncsn_tf.trainer import train

    config = configs.get_config("toy")
    started = time.perf_counter()
    result = train(config, workdir, steps=steps, progress=progress, write_final_samples=False)
    train_seconds = time.perf_counter() - started
    model = result.ema_model if result.ema_model is not None else result.model
    generator = generator_from_model(model, config, label=os.fspath(workdir), step=result.step)
    points = draw_samples(generator, num_chains, batch_size=num_chains, seed=seed, progress=False)
    return points, {
        "workdir": os.fspath(workdir),
        "steps": result.step,
        "train_seconds": train_seconds,
        "final_loss": result.loss,
        "sampler": {"steps_per_level": config.sampling.steps_per_level, "epsilon": config.sampling.epsilon},
    }


def run_toy(
    out_dir: str | os.PathLike[str],
    *,
    learned_steps: int | None = None,
    learned_workdir: str | os.PathLike[str] | None = None,
    num_chains: int = TOY_CHAINS,
    seed: int = 0,
    mixing_check: bool = True,
    progress: bool = True,
) -> dict[str, Any]:
    """Figure 3 (exact scores, optionally also a learned score): writes toy.png and toy.json.

    Args:
        out_dir: output folder.
        learned_steps: train the toy config this many steps for the learned-score
            panel; None = no learned panel.
        learned_workdir: the toy training workdir (default OUT/toy_workdir).
        num_chains: chains per sampler.
        seed: chain seeds start here.
        mixing_check: also run `toy_mixing_check` (10x the chains; about a minute).

    Returns:
        The JSON written: per method mode weights, binomial standard error, MMD^2.
    """
    out_dir = Path(out_dir)
    started = time.perf_counter()
    panels = toy_exact_samples(num_chains, seed)
    report: dict[str, Any] = {
        "settings": {
            "chains": num_chains,
            "init": "uniform on [{:g}, {:g}]^2".format(*toy.START_RANGE),
            "langevin": {"step": toy.LANGEVIN_STEP, "steps": toy.LANGEVIN_STEPS, "update": "x += (a/2) s + sqrt(a) z"},
            "annealed": {
                "sigmas": f"geometric {toy.SIGMA_MAX} -> {toy.SIGMA_MIN}, {toy.NUM_LEVELS} levels",
                "steps_per_level": toy.STEPS_PER_LEVEL,
                "epsilon": toy.EPSILON,
                "update": "x += (a_i/2) s + sqrt(a_i) z, a_i = eps sigma_i^2 / sigma_L^2",
            },
            "seed": seed,
        },
        "exact_seconds": time.perf_counter() - started,
    }
    if mixing_check:
        report["mixing_check"] = toy_mixing_check(10 * num_chains, seed)
    if learned_steps is not None:
        workdir = Path(learned_workdir) if learned_workdir is not None else out_dir / "toy_workdir"
        panels["learned"], report["learned"] = toy_learned_samples(workdir, learned_steps, num_chains, seed, progress)
    report["methods"] = {name: toy_metrics(points, seed=seed) for name, points in panels.items()}
    report["figure"] = save_toy_figure(
        panels, {name: report["methods"][name]["mode_weights"][0] for name in panels}, out_dir / "toy.png",
        mode_name=small_mode_name(), learned_steps=report.get("learned", {}).get("steps"),
    )  # fmt: skip
    write_json(report, out_dir / "toy.json")
    return report


# ---------------------------------------------------------------------------
# Inpainting.
# ---------------------------------------------------------------------------


def inpainting_masks(height: int, width: int, channels: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Masks of several shapes, 1 = known pixel.

    Returns:
        {"right half missing", "bottom half missing", "centre missing",
         "random 60% missing"} -> [H, W, C] float32 in {0, 1}.
    """
    known = np.ones((height, width, channels), np.float32)
    right = known.copy()
    right[:, width // 2 :] = 0.0
    bottom = known.copy()
    bottom[height // 2 :] = 0.0
    centre = known.copy()
    centre[height // 4 : height - height // 4, width // 4 : width - width // 4] = 0.0
    rng = np.random.default_rng(seed)
    scattered = (rng.uniform(size=(height, width, 1)) >= 0.6).astype(np.float32) * known  # same pixels in every channel
    return {
        "right half missing": right,
        "bottom half missing": bottom,
        "centre missing": centre,
        "random 60% missing": scattered,
    }


def run_inpainting(
    path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    count: int = INPAINT_EVAL_DIGITS,
    seed: int = 0,
    cache_dir: str | None = None,
    **sampler: Any,
) -> dict[str, Any]:
    """Inpaint held-out digits under each mask; figure inpainting.png and inpainting.json.

    Args:
        path: a digits training workdir or checkpoint prefix.
        out_dir: output folder.
        count: held-out digits inpainted per mask (the first `count` of the test split).
        seed: image b of a mask uses seed `seed + b`.
        cache_dir: cache of the digits classifier.
        **sampler: the sampler and its settings (`SamplingConfig` field names, None = the
            config's), e.g. sampler="predictor_corrector", corrector_steps=1,
            resample_steps=2 (RePaint).

    Returns:
        The JSON written: the sampler and its network calls per image, and per mask the
        classifier accuracy of the inpainted digits (against the true labels) and of the
        masked inputs with unknown pixels at 0.

    Raises:
        EvaluationError: not a digits model.
        ConfigError: a bad sampler setting (one line).
    """
    import tensorflow as tf

    from ncsn_tf import classifier as digits_classifier
    from ncsn_tf.checkpoints import load_for_inference
    from ncsn_tf.data import digits_arrays
    from ncsn_tf.sampling import run_sampler, start_images

    config, model, step = load_for_inference(path)
    if config.data.dataset != "digits":
        raise EvaluationError(f"the inpainting experiment is for digits models; {path} is {config.data.dataset!r}")
    sigmas = config.noise.sigmas()
    sampling = configs.override_sampling(config.sampling, len(sigmas), inpainting=True, **sampler)
    test_images, test_labels = digits_arrays("test")  # [360, 8, 8, 1] in [0, 1], [360]
    if not 1 <= count <= len(test_images):
        raise EvaluationError(f"--count must be in [1, {len(test_images)}] (the held-out digits), got {count}")
    # Stratified split: the first `count` images hold every digit.
    known_images, labels = test_images[:count], test_labels[:count]
    classifier = digits_classifier.load_digits_classifier(cache_dir)
    seeds = tf.range(seed, seed + count, dtype=tf.int32)  # [N]
    start = start_images(sampling.sampler, seeds, config.data.shape, sigmas, value_range=config.data.value_range)
    arguments = sampling.sampler_arguments(inpainting=True)
    report: dict[str, Any] = {
        "model": os.fspath(path), "step": step, "count": count,
        "sampler": {**arguments, "network_calls": sampling.network_calls(len(sigmas), inpainting=True)},
        "masks": {},
    }  # fmt: skip
    rows = []
    for name, mask in inpainting_masks(*config.data.shape, seed=seed).items():
        masks = np.broadcast_to(mask, known_images.shape).astype(np.float32)  # [N, 8, 8, 1], 1 = known
        started = time.perf_counter()
        completed = run_sampler(
            model, start, seeds, sigmas, known_images=known_images, masks=masks, **arguments
        ).numpy()  # [N, 8, 8, 1], not clipped
        masked_input = known_images * masks  # unknown pixels 0
        report["masks"][name] = {
            "known_pixels": int(mask.sum()),
            "accuracy_inpainted": float(np.mean(classifier.predict(completed) == labels)),
            "accuracy_masked_input": float(np.mean(classifier.predict(masked_input) == labels)),
            "mean_abs_error_unknown": float(
                np.sum(np.abs(np.clip(completed, 0, 1) - known_images) * (1 - masks)) / max(np.sum(1 - masks), 1)
            ),
            "seconds": time.perf_counter() - started,
        }
        shown = slice(0, INPAINT_FIGURE_DIGITS)
        display_input = known_images[shown] * masks[shown] + 0.5 * (1 - masks[shown])  # unknown shown grey
        accuracy = report["masks"][name]["accuracy_inpainted"]
        rows.append(
            (
                f"{name}: input / inpainted / original (accuracy {accuracy:.0%})",
                np.concatenate([display_input, completed[shown], known_images[shown]]),  # [3 * 8, 8, 8, 1]
            )
        )
    out_dir = Path(out_dir)
    report["figure"] = save_inpainting_figure(rows, out_dir / "inpainting.png", columns=INPAINT_FIGURE_DIGITS)
    write_json(report, out_dir / "inpainting.json")
    return report


# ---------------------------------------------------------------------------
# Final denoising ablation.
# ---------------------------------------------------------------------------


def run_denoising_ablation(
    path: str | os.PathLike[str] | Generator,
    out_dir: str | os.PathLike[str],
    *,
    num_samples: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    seed: int = 0,
    cache_dir: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Sample the same seeds without and with final denoising; metrics of each (denoising.json).

    Args:
        path: a training workdir, checkpoint prefix or export (digits or toy), or a Generator.
        out_dir: output folder (samples_plain.png, samples_denoised.png, denoising.json).
        num_samples: per variant; None = evaluate's default for the dataset
            (`dataset_metrics.default_num_samples`).

    Returns:
        {"plain": metrics, "denoised": metrics, ...}.
    """
    generator = path if isinstance(path, Generator) else open_generator(path)
    if generator.dataset not in ("digits", "toy"):
        raise EvaluationError("the denoising ablation runs on digits or toy models (image data: use evaluate)")
    num_samples = num_samples or default_num_samples(generator.dataset)
    out_dir = Path(out_dir)
    report: dict[str, Any] = {"model": generator.label, "step": generator.step, "num_samples": num_samples}
    for variant, denoise in (("plain", False), ("denoised", True)):
        started = time.perf_counter()
        samples = draw_samples(
            generator, num_samples, batch_size=batch_size, seed=seed, sampler="annealed_langevin",
            final_denoise=denoise, progress=progress,
        )  # fmt: skip  # [N, *shape]
        if generator.dataset == "digits":
            found = digits_metrics(samples, cache_dir)["samples"]
        else:
            found = toy_metrics(samples, seed=seed)
        found["seconds"] = time.perf_counter() - started
        found["picture"] = save_samples_picture(samples, generator.dataset, out_dir / f"samples_{variant}.png")
        report[variant] = found
    write_json(report, out_dir / "denoising.json")
    return report


# ---------------------------------------------------------------------------
# CLI.
# ---------------------------------------------------------------------------


def _print_toy(report: dict[str, Any]) -> None:
    mode, weight = f"w{small_mode_name()}", f"{toy.WEIGHTS[0]:g}"
    print(f"{'method':<10} {mode:>9} {f'|w-{weight}|/SE':>11} {'MMD^2':>9}")
    for name, found in report["methods"].items():
        print(
            f"{name:<10} {found['mode_weights'][0]:>9.4f} {found['weight_error_in_standard_errors']:>11.2f} "
            f"{found['mmd2']:>9.4f}"
        )
    standard_error = report["methods"]["iid"]["binomial_standard_error"]
    print(f"binomial SE of {weight} at {report['settings']['chains']} chains: {standard_error:.4f}")
    check = report.get("mixing_check")
    if check:
        for key in (key for key in check if key.startswith("steps_")):
            found = check[key]
            print(
                f"exact annealed, {check['chains']} chains, {key.split('_')[1]} steps/level: {mode} = "
                f"{found['mode_weights'][0]:.4f} +- {found['binomial_standard_error']:.4f}"
            )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m ncsn_tf.experiments {toy,inpaint,samplers,denoise}`: see the module docstring."""
    parser = argparse.ArgumentParser(prog="python -m ncsn_tf.experiments", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    toy_command = commands.add_parser("toy", help="paper Figure 3: exact and learned scores on the 2-D mixture")
    toy_command.add_argument("--out", default="experiments/toy", help="output folder")
    toy_command.add_argument(
        "--learned-steps", type=int, default=None, help="toy training steps (default: the toy config's)"
    )
    toy_command.add_argument("--no-learned", action="store_true", help="exact scores only (no training)")
    toy_command.add_argument("--workdir", default=None, help="toy training workdir (default OUT/toy_workdir; resumed)")
    toy_command.add_argument("--seed", type=int, default=0)
    toy_command.add_argument("--no-mixing-check", action="store_true", help="skip the 10x-chains exact-score check")
    inpainting = commands.add_parser("inpaint", help="inpainting figure on held-out digits")
    inpainting.add_argument("path", help="digits training workdir or checkpoint prefix")
    inpainting.add_argument("--out", default="experiments/inpainting")
    inpainting.add_argument("--count", type=int, default=INPAINT_EVAL_DIGITS, help="held-out digits per mask")
    inpainting.add_argument("--seed", type=int, default=0)
    inpainting.add_argument("--cache-dir", default=None)
    add_sampler_arguments(inpainting, inpainting=True)
    comparison = commands.add_parser(
        "samplers", help="quality against network calls of every sampler: a digits model and the exact-score toy"
    )
    comparison.add_argument("path", nargs="?", default=None, help="digits training workdir or checkpoint prefix")
    comparison.add_argument("--out", default="experiments/samplers")
    comparison.add_argument(
        "--num-samples", type=int, default=sampler_comparison.DIGITS_NUM_SAMPLES, help="samples per digits row"
    )
    comparison.add_argument("--toy-chains", type=int, default=sampler_comparison.TOY_NUM_CHAINS, help="chains per toy row")
    comparison.add_argument("--no-toy", action="store_true", help="skip the exact-score toy rows")
    comparison.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    comparison.add_argument("--seed", type=int, default=0)
    comparison.add_argument("--cache-dir", default=None)
    denoising = commands.add_parser("denoise", help="final denoising ablation")
    denoising.add_argument("path", help="digits/toy training workdir, checkpoint prefix or export")
    denoising.add_argument("--out", default="experiments/denoising")
    denoising.add_argument("--num-samples", type=int, default=None)
    denoising.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    denoising.add_argument("--seed", type=int, default=0)
    denoising.add_argument("--cache-dir", default=None)
    args = parser.parse_args(argv)

    from ncsn_tf.checkpoints import CheckpointError
    from ncsn_tf.configs import ConfigError

    try:
        if args.command == "toy":
            steps = None if args.no_learned else (args.learned_steps or configs.get_config("toy").training.steps)
            report = run_toy(
                args.out, learned_steps=steps, learned_workdir=args.workdir, seed=args.seed,
                mixing_check=not args.no_mixing_check,
            )  # fmt: skip
            _print_toy(report)
            print(f"wrote {report['figure']} and {Path(args.out) / 'toy.json'}")
        elif args.command == "inpaint":
            report = run_inpainting(
                args.path, args.out, count=args.count, seed=args.seed, cache_dir=args.cache_dir,
                **sampler_overrides(args),
            )  # fmt: skip
            print(f"{report['sampler']['sampler']}: {report['sampler']['network_calls']:,} network calls per image")
            for name, found in report["masks"].items():
                print(
                    f"{name:<22} accuracy inpainted {found['accuracy_inpainted']:.1%}  "
                    f"masked input {found['accuracy_masked_input']:.1%}"
                )
            print(f"wrote {report['figure']}")
        elif args.command == "samplers":
            if args.path is None and args.no_toy:
                raise EvaluationError("nothing to compare: give a digits workdir, or leave out --no-toy")
            report = sampler_comparison.run_sampler_comparison(
                args.path, args.out, digits_rows=sampler_comparison.DIGITS_ROWS,
                toy_rows=None if args.no_toy else sampler_comparison.TOY_ROWS,
                num_samples=args.num_samples, toy_chains=args.toy_chains, batch_size=args.batch_size, seed=args.seed,
                cache_dir=args.cache_dir,
            )  # fmt: skip
            print(Path(report["files"]["markdown"]).read_text(encoding="utf-8"))
            print("wrote " + ", ".join(report["files"].values()))
        else:
            report = run_denoising_ablation(
                args.path, args.out, num_samples=args.num_samples, batch_size=args.batch_size, seed=args.seed,
                cache_dir=args.cache_dir,
            )  # fmt: skip
            for variant in ("plain", "denoised"):
                found = report[variant]
                keys = ("frechet_distance", "confident_share", "min_class_share", "mode_weights", "mmd2")
                print(variant, {key: found[key] for key in keys if key in found})
            print(f"wrote {Path(args.out) / 'denoising.json'}")
    except (EvaluationError, CheckpointError, ConfigError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
