"""Every sampler inside an export: the registry against the library, the manifest's sampler block,
each sampler's endpoints in TensorFlow and ONNX Runtime, the Python API's sampler choice, the CLI.

The registry (`export_format.settings`, TensorFlow-free) and the library
(`ncsn_tf.sampling.check_settings` / `network_calls`) must agree on every range and count:
compared here on the edges, since the contract package may not import the library.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import export_format
from export_format import ExportInputError, ManifestError, SamplerSettings
from export_format import manifest as manifest_io
from export_format import settings as registry
from export_format.endpoints import ENDPOINTS, endpoint_table, endpoints_of, table_to_json

RUNTIMES = ("onnxruntime", "tensorflow")
SAMPLERS = tuple(registry.SAMPLERS)
SOURCE = "exports/x/manifest.json"


# ----------------------------------------------------------------------------- registry vs library


def _library_accepts(sampler, num_levels, values, inpainting):
    from ncsn_tf import sampling

    library = dict(values)
    if sampler == "annealed_langevin" and "denoise" in library:
        library["final_denoise"] = library.pop("denoise")
    try:
        sampling.check_settings(sampler, num_levels, library, inpainting=inpainting)
    except ValueError:
        return False
    return True


def _registry_accepts(sampler, num_levels, values, inpainting):
    if not inpainting and values.get("resample_steps") not in (None, 0):
        return False  # the sampling endpoints have no resample_steps input (the library refuses it too)
    complete = {**({"resample_steps": 0} if sampler == "predictor_corrector" else {}), **values}
    try:
        SamplerSettings(sampler=sampler, **complete).validate(num_levels)
    except ExportInputError as error:
        assert "\n" not in str(error)
        return False
    return True


LEVELS = 21_475  # a long ladder: its int32 call budget (max_steps_per_level) is 99,999 calls per level
BUDGET = export_format.limits.max_steps_per_level(LEVELS)
EDGES = {
    "predictor_corrector": [
        *(
            {"corrector_steps": c, "snr": 0.16}
            for c in (-1, 0, 1, 1.0, 1.5, True, "1", np.int64(3), BUDGET - 1, BUDGET)
        ),
        *(
            {"corrector_steps": 1, "snr": r}
            for r in (
                0.0,
                -0.1,
                1e-30,
                0.16,
                5.0,
                True,
                "0.2",
                np.float32(0.3),
                float("nan"),
                float("inf"),
                1e300,
                2 + 0j,
            )
        ),  # fmt: skip
        *(
            {"corrector_steps": c, "snr": 0.16, "resample_steps": u}
            for c, u in (
                (0, -1),
                (0, 0),
                (1, 2),
                (1, 1.5),
                (BUDGET // 2 - 1, 1),
                (BUDGET // 2, 1),
                (0, BUDGET - 1),
                (0, BUDGET),
            )
        ),
    ],
    "probability_flow": [{"order": order} for order in (0, 1, 2, 3, -1, 1.0, 2.5, True, "2", np.int32(1))],
}


@pytest.mark.parametrize("sampler", list(EDGES))
@pytest.mark.parametrize("inpainting", [False, True])
def test_the_registry_accepts_exactly_what_the_library_accepts(sampler, inpainting):
    for values in EDGES[sampler]:
        library = _library_accepts(sampler, LEVELS, values, inpainting)
        assert _registry_accepts(sampler, LEVELS, values, inpainting) == library, (values, inpainting, library)
    assert any(_registry_accepts(sampler, LEVELS, values, inpainting) for values in EDGES[sampler])


def test_annealed_langevin_of_an_export_is_within_the_library_range():
    """The export is stricter on purpose (T <= 100,000, epsilon <= 1: docs/export.md); never looser."""
    cases = [(t, e) for t in (0, 1, 1.5, 100_000, 100_001, True) for e in (0.0, 2e-5, 1.0, 1.5, float("nan"))]
    for steps, epsilon in cases:
        values = {"steps_per_level": steps, "epsilon": epsilon, "denoise": False}
        if _registry_accepts("annealed_langevin", 10, values, False):
            assert _library_accepts("annealed_langevin", 10, values, False), values
    assert _library_accepts("annealed_langevin", 10, {"steps_per_level": 100_001, "epsilon": 1.5}, False)


def test_network_calls_match_the_library_for_every_sampler_chunk_and_inpainting():
    from ncsn_tf import sampling

    grid = {
        "annealed_langevin": [dict(steps_per_level=t, denoise=d) for t in (1, 3) for d in (False, True)],
        "predictor_corrector": [dict(corrector_steps=c, snr=0.2, resample_steps=u) for c in (0, 2) for u in (0, 3)],
        "probability_flow": [dict(order=1), dict(order=2)],
    }
    checked = 0
    for sampler, runs in grid.items():
        for values, num_levels, inpainting in itertools.product(runs, (1, 2, 10), (False, True)):
            if not inpainting and values.get("resample_steps"):
                with pytest.raises(ExportInputError, match="resample_steps is RePaint's resampling"):
                    registry.network_calls(sampler, num_levels, values)
                continue
            for first in range(num_levels + 1):
                for last in range(first, num_levels + 1):
                    library_values = dict(values)
                    if sampler == "annealed_langevin":
                        library_values["final_denoise"] = library_values.pop("denoise")
                    expected = sampling.network_calls(
                        sampler, num_levels, first_level=first, last_level=last, inpainting=inpainting, **library_values
                    )
                    found = registry.network_calls(
                        sampler, num_levels, values, inpainting=inpainting, first_level=first, last_level=last
                    )
                    assert found == expected, (sampler, values, num_levels, first, last, inpainting)
                    checked += 1
    assert checked > 300
    # The closed forms of docs/samplers.md at L = 10.
    assert registry.network_calls("probability_flow", 10, {"order": 2}) == 19
    assert registry.network_calls("predictor_corrector", 10, {"corrector_steps": 2, "snr": 0.6}) == 30
    assert registry.network_calls("predictor_corrector", 10, {"corrector_steps": 2, "snr": 0.6, "resample_steps": 1},
                                  inpainting=True) == 30 + 9 * 3  # fmt: skip
    with pytest.raises(ExportInputError, match="unknown sampler 'euler'"):
        registry.network_calls("euler", 10, {})


# ----------------------------------------------------------------------------- the manifest's sampler block


def manifest_with(samplers, default=None, **changes):
    """A version-2 manifest (8x8x1, 2 levels) holding `samplers` with valid defaults."""
    defaults = {
        "annealed_langevin": {"steps_per_level": 7, "epsilon": 2e-5, "denoise": False},
        "predictor_corrector": {"corrector_steps": 2, "snr": 0.6, "resample_steps": 0},
        "probability_flow": {"order": 2},
    }
    data = {
        "format": "ncsn-tf-export", "format_version": 2, "name": "tiny", "image_shape": [8, 8, 1],
        "sigmas": [1.0, 0.01],
        "sampler": {"default": default or samplers[0], "convention": "code",
                    "settings": {name: dict(defaults[name]) for name in samplers}},
        "endpoints": table_to_json(endpoint_table((8, 8, 1), samplers)),
        "files": {"savedmodel": "savedmodel", "onnx": {name: f"onnx/{name}.onnx" for name in endpoints_of(samplers)}},
    }  # fmt: skip
    data.update(changes)
    return data


def test_a_version_2_manifest_without_the_new_samplers_reads_as_before():
    manifest = manifest_io.parse(manifest_with(["annealed_langevin"]), SOURCE)
    assert manifest.sampler.samplers == ("annealed_langevin",)
    assert list(manifest.endpoints) == [
        "sample",
        "initial_images",
        "sample_levels",
        "inpaint",
        "inpaint_levels",
        "score",
    ]
    assert manifest.sampler.steps_per_level == 7 and manifest.sampler.epsilon == 2e-5  # the version-1 names
    with pytest.raises(
        ExportInputError, match="this export has no 'probability_flow' sampler; it has: annealed_langevin"
    ):
        manifest.sampler_settings(sampler="probability_flow")


def test_a_manifest_with_every_sampler_reads_back_its_defaults():
    manifest = manifest_io.parse(manifest_with(list(SAMPLERS), default="probability_flow"), SOURCE)
    assert manifest.sampler.samplers == ("probability_flow", "annealed_langevin", "predictor_corrector")
    assert set(manifest.endpoints) == set(ENDPOINTS) and len(ENDPOINTS) == 15
    assert manifest.sampler_settings() == SamplerSettings(sampler="probability_flow", order=2)
    assert manifest.sampler_settings(sampler="predictor_corrector", snr=0.3) == SamplerSettings(
        sampler="predictor_corrector", corrector_steps=2, snr=0.3, resample_steps=0
    )
    assert manifest.sampler.steps_per_level == 7  # annealed Langevin's, whatever the default
    again = manifest_io.parse(manifest.to_json(), SOURCE)
    assert again.sampler == manifest.sampler and again.endpoints == manifest.endpoints
    alone = manifest_io.parse(manifest_with(["probability_flow"]), SOURCE)
    assert alone.sampler.steps_per_level is None and alone.sampler.samplers == ("probability_flow",)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d["sampler"].update(default="euler_maruyama"),
         "sampler.default names the sampler 'euler_maruyama', unknown to this reader; update ncsn-tf"),
        (lambda d: d["sampler"].update(default="probability_flow"),
         "sampler.default names the sampler 'probability_flow', missing from sampler.settings"),
        (lambda d: d["sampler"]["settings"]["predictor_corrector"].update(snr=-1),
         "sampler.settings.predictor_corrector.snr (corrector signal-to-noise ratio) must be a finite number > 0, got -1"),
        (lambda d: d["sampler"]["settings"]["predictor_corrector"].update(corrector_steps=1.5),
         "sampler.settings.predictor_corrector.corrector_steps (corrector steps per level) must be an integer >= 0"),
        (lambda d: d["sampler"]["settings"]["predictor_corrector"].pop("resample_steps"),
         "sampler.settings.predictor_corrector.resample_steps is missing"),
        (lambda d: d["sampler"]["settings"]["predictor_corrector"].update(order=2),
         "sampler.settings.predictor_corrector has unknown setting(s) ['order']"),
        (lambda d: d["sampler"]["settings"].update(probability_flow={"order": 3}),
         "sampler.settings.probability_flow.order (1 = Euler, 2 = Heun) must be an integer in [1, 2], got 3"),
        (lambda d: d["sampler"]["settings"].update(probability_flow=[2]),
         "sampler.settings.probability_flow must be a JSON object"),
        (lambda d: d["endpoints"]["predictor_corrector_sample"]["inputs"].pop("snr"),
         "endpoints.predictor_corrector_sample does not match the endpoint contract"),
    ],
)  # fmt: skip
def test_hostile_sampler_blocks_are_one_line_manifest_errors(change, message):
    data = manifest_with(["annealed_langevin", "predictor_corrector"])
    change(data)
    with pytest.raises(ManifestError) as caught:
        manifest_io.parse(data, SOURCE)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert str(caught.value).startswith(SOURCE)


# ----------------------------------------------------------------------------- the exported samplers


@pytest.fixture(scope="module")
def digits(digits_export_dir):
    """The shared tiny digits export (every sampler) in both runtimes."""
    opened = {name: export_format.load(digits_export_dir, name) for name in RUNTIMES}
    yield opened
    for sampler in opened.values():
        sampler.close()


def test_the_export_holds_every_sampler_with_its_defaults_and_verification(digits_export_dir):
    manifest = export_format.read_manifest(digits_export_dir)
    assert manifest.sampler.default == "annealed_langevin" and set(manifest.sampler.samplers) == set(SAMPLERS)
    assert manifest.sampler.defaults("predictor_corrector") == SamplerSettings(
        sampler="predictor_corrector", corrector_steps=2, snr=0.6, resample_steps=0
    )
    assert manifest.sampler.defaults("probability_flow") == SamplerSettings(sampler="probability_flow", order=2)
    assert set(manifest.files.onnx) == set(manifest.endpoints) == set(ENDPOINTS)
    verification = manifest.verification
    assert verification["chunks_chain_exactly"] is True and set(verification["samplers"]) == set(SAMPLERS)
    for name, entry in verification["samplers"].items():
        assert entry["max_abs_diff"] <= 1e-4 * 3.5, name
        assert entry["uint8_pixels_different"] == 0 and entry["uint8_pixels_compared"] > 0, name


@pytest.mark.parametrize("sampler, settings", [
    ("predictor_corrector", {"corrector_steps": 1, "snr": 0.3}),
    ("probability_flow", {"order": 1}),
    ("probability_flow", {}),
])  # fmt: skip
def test_each_sampler_gives_the_same_images_in_both_runtimes_and_chunks_chain(digits, sampler, settings):
    seeds = [3, 0, 2**31 - 1]
    results = {}
    for name, runner in digits.items():
        images = runner.sample(seeds, sampler=sampler, **settings)
        chunks = list(runner.iter_sample(seeds, sampler=sampler, **settings))
        np.testing.assert_array_equal(chunks[-1].images, images)  # chunks chain exactly to the whole run
        alone = runner.sample(seeds[1:2], sampler=sampler, **settings)
        # Image b depends only on seeds[b] (up to float32 ulp: the network's kernels block by batch size).
        np.testing.assert_allclose(alone[0], images[1], rtol=0, atol=1e-5 * max(1.0, float(np.abs(images).max())))
        results[name] = images
    scale = max(1.0, float(np.abs(results["tensorflow"]).max()))
    np.testing.assert_allclose(results["onnxruntime"], results["tensorflow"], rtol=0, atol=1e-4 * scale)
    assert np.all(np.isfinite(results["onnxruntime"]))


def test_each_sampler_starts_from_its_own_start(digits):
    runner = digits["onnxruntime"]
    seeds = np.arange(64, dtype=np.int32)
    uniform = runner.initial_images(seeds)  # the default sampler: annealed Langevin
    assert uniform.min() >= 0.0 and uniform.max() < 1.0
    prior = runner.initial_images(seeds, "predictor_corrector")  # N(0.5, sigma_1^2 I), sigma_1 = 1
    np.testing.assert_array_equal(prior, runner.initial_images(seeds, "probability_flow"))
    assert abs(float(prior.mean()) - 0.5) < 4 / np.sqrt(prior.size) and abs(float(prior.std()) - 1.0) < 0.05
    np.testing.assert_allclose(digits["tensorflow"].initial_images(seeds, "probability_flow"), prior, rtol=0, atol=1e-5)


@pytest.mark.parametrize("sampler, settings", [
    ("predictor_corrector", {"corrector_steps": 1, "resample_steps": 2}),
    ("probability_flow", {"order": 2}),
])  # fmt: skip
def test_inpainting_with_each_sampler_ends_at_the_known_pixels(digits, sampler, settings):
    seeds = [1, 2]
    known = np.tile(np.linspace(0, 1, 64, dtype=np.float32).reshape(1, 8, 8, 1), (2, 1, 1, 1))
    masks = np.zeros_like(known)
    masks[:, :, :4] = 1.0  # left half known
    results = {}
    for name, runner in digits.items():
        filled = runner.inpaint(known, masks, seeds, sampler=sampler, **settings)
        np.testing.assert_array_equal(filled[masks == 1], known[masks == 1])  # exactly y at sigma = 0
        chunks = list(runner.iter_inpaint(known, masks, seeds, sampler=sampler, levels_per_chunk=1, **settings))
        np.testing.assert_array_equal(chunks[-1].images, filled)
        results[name] = filled
    np.testing.assert_allclose(results["onnxruntime"], results["tensorflow"], rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(sampler="probability_flow", order=3), "order (1 = Euler, 2 = Heun) must be an integer in [1, 2], got 3"),
        (dict(sampler="predictor_corrector", snr=0.0), "snr (corrector signal-to-noise ratio) must be a finite number > 0"),
        (dict(sampler="predictor_corrector", corrector_steps=-1), "corrector_steps (corrector steps per level) must be"),
        (dict(sampler="predictor_corrector", resample_steps=2), "resample_steps is RePaint's resampling for inpainting"),
        (dict(sampler="probability_flow", steps_per_level=5), "steps_per_level is not a setting of probability_flow"),
        (dict(sampler="euler_maruyama"), "unknown sampler 'euler_maruyama'; known samplers: annealed_langevin"),
        (dict(order=1), "order is not a setting of annealed_langevin"),
    ],
)  # fmt: skip
def test_bad_sampler_choices_are_one_line_errors_in_both_runtimes(digits, overrides, message):
    for runner in digits.values():
        with pytest.raises(ExportInputError) as caught:
            runner.sample([0], **overrides)
        assert message in str(caught.value) and "\n" not in str(caught.value)


def test_network_calls_per_run_for_each_sampler(digits):
    runner = digits["onnxruntime"]  # L = 2
    assert runner.network_calls() == 2 * 5  # annealed Langevin's defaults: T = 5
    assert runner.network_calls(sampler="probability_flow") == 3  # Heun: 2L - 1
    assert runner.network_calls(sampler="probability_flow", order=1) == 2
    assert runner.network_calls(sampler="predictor_corrector") == 2 * 3  # C = 2
    assert runner.network_calls(sampler="predictor_corrector", resample_steps=1, inpainting=True) == 6 + 3
    assert runner.samplers == ("annealed_langevin", "predictor_corrector", "probability_flow")


@pytest.mark.slow
def test_an_export_of_one_sampler_holds_only_its_endpoints(tmp_path):
    """`samplers=("probability_flow",)`: no annealed Langevin files; every reader offers what is there."""
    from export_fixtures import gaussian_image_model, tiny_digits_config

    from export.exporter import export_model

    config = tiny_digits_config()
    model = gaussian_image_model([float(sigma) for sigma in config.noise.sigmas()])
    result = export_model(config, model, 0, tmp_path, name="flow", samplers=("probability_flow",),
                          sampler_defaults={"order": 1}, optimize_onnx=False)  # fmt: skip
    manifest = export_format.read_manifest(result.path)
    assert manifest.sampler.default == "probability_flow" and manifest.sampler.samplers == ("probability_flow",)
    assert sorted(manifest.files.onnx) == sorted(endpoints_of(["probability_flow"]))
    assert set(result.verification["samplers"]) == {"probability_flow"}
    for name in RUNTIMES:
        runner = export_format.load(result.path, name)
        assert runner.files.runtimes() == list(RUNTIMES) and runner.files.samplers(name) == ["probability_flow"]
        images = runner.sample([0, 1])  # the default: probability flow, Euler
        np.testing.assert_array_equal(images, runner.sample([0, 1], sampler="probability_flow", order=1))
        with pytest.raises(
            ExportInputError, match="this export has no 'annealed_langevin' sampler; it has: probability_flow"
        ):
            runner.sample([0], sampler="annealed_langevin")
        runner.close()


@pytest.mark.slow
def test_cli_sampler_flags_set_the_manifest_defaults(tmp_path, capsys):
    import keras

    from export import cli
    from ncsn_tf import configs
    from ncsn_tf.checkpoints import write_workdir
    from ncsn_tf.models import build_score_model

    keras.utils.set_random_seed(0)
    config = configs.apply_overrides(configs.toy(), ["model.mlp_hidden=8", "model.mlp_layers=1", "noise.num_levels=3"])
    write_workdir(tmp_path / "toy_mlp", config, build_score_model(config), step=1)  # a small network: fast to trace
    out = tmp_path / "exports"
    code = cli.main([str(tmp_path / "toy_mlp"), "--out", str(out), "--fast-conversion", "--format", "savedmodel",
                     "--samplers", "predictor_corrector,probability_flow", "--sampler", "predictor_corrector",
                     "--corrector-steps", "0", "--snr", "0.25", "--order", "1"])  # fmt: skip
    assert code == 0, capsys.readouterr().err[-2000:]
    manifest = export_format.read_manifest(out / "toy_mlp")
    assert manifest.sampler.samplers == ("predictor_corrector", "probability_flow")
    assert manifest.sampler.defaults() == SamplerSettings(
        sampler="predictor_corrector", corrector_steps=0, snr=0.25, resample_steps=0
    )
    assert manifest.sampler.defaults("probability_flow").order == 1


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--samplers", "annealed_langevin,heun"], "--samplers: unknown sampler(s) 'heun'; choose from annealed_langevin"),
        (["--sampler", "probability_flow", "--samplers", "annealed_langevin"], "--sampler probability_flow is not among"),
        (["--snr", "0"], "--snr (corrector signal-to-noise ratio) must be a finite number > 0, got 0"),
        (["--order", "3"], "--order (1 = Euler, 2 = Heun) must be an integer in [1, 2], got 3"),
        (["--corrector-steps", "1.5"], "--corrector-steps (corrector steps per level) must be an integer >= 0, got 1.5"),
        (["--corrector-steps", "two"], "got 'two'"),
        (["--order", "1", "--samplers", "predictor_corrector"], "--order is a setting of probability_flow, which --samplers"),
        (["--steps-per-level", "5", "--samplers", "probability_flow"], "--steps-per-level is a setting of annealed_langevin"),
    ],
)  # fmt: skip
def test_bad_sampler_flags_are_one_line_usage_errors(arguments, message, capsys):
    from export import cli

    with pytest.raises(SystemExit) as exited:
        cli.main(["runs/x", *arguments])
    assert exited.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert message in last, last
