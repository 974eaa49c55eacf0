"""Typed configs: named configs validate, overrides parse and fail loudly, JSON round trip, frozen."""

import dataclasses
import json
import math
import subprocess
import sys
from typing import Any

import pytest

from ncsn_tf import configs
from ncsn_tf.configs import ConfigError


@pytest.mark.parametrize("name", sorted(configs.CONFIGS))
def test_every_named_config_validates(name):
    config = configs.get_config(name)
    assert configs.validate(config) is config
    assert config.name == name
    assert config.noise.sigma_max > config.noise.sigma_min > 0


def test_reference_settings_of_named_configs():
    # Song & Ermon 2019, Section 5 (setup): sigma 1 -> 0.01 over 10 levels, T = 100, eps = 2e-5;
    # the "code" convention is the update of the released code (ermongroup/ncsn).
    cifar = configs.get_config("cifar10")
    assert (cifar.noise.sigma_max, cifar.noise.sigma_min, cifar.noise.num_levels) == (1.0, 0.01, 10)
    assert (cifar.sampling.steps_per_level, cifar.sampling.epsilon, cifar.sampling.convention) == (100, 2e-5, "code")
    assert cifar.data.shape == (32, 32, 3) and cifar.data.random_flip and cifar.model.ngf == 128
    assert configs.get_config("mnist").data.shape == (28, 28, 1)
    assert configs.get_config("celeba").data.center_crop == 140
    toy = configs.get_config("toy")
    assert toy.data.shape == (2,) and toy.model.architecture == "mlp"
    assert (toy.noise.sigma_max, toy.noise.sigma_min, toy.sampling.convention) == (20.0, 1.0, "paper")


def test_unknown_named_config():
    with pytest.raises(ConfigError, match="imagenet"):
        configs.get_config("imagenet")


def test_overrides_parse_ints_floats_bools_and_strings():
    base = configs.get_config("digits")
    config = configs.apply_overrides(
        base,
        [
            "training.steps=1_000",
            "training.batch_size=1e2",  # an integral float is accepted for an int
            "training.learning_rate=3e-4",
            "noise.sigma_max=2",  # an int literal for a float field
            "data.random_flip=yes",
            "data.dequantize=False",
            "sampling.convention=paper",
            "name=my_run",
        ],
    )
    assert config.training.steps == 1000 and isinstance(config.training.steps, int)
    assert config.training.batch_size == 100 and isinstance(config.training.batch_size, int)
    assert config.training.learning_rate == pytest.approx(3e-4)
    assert config.noise.sigma_max == 2.0 and isinstance(config.noise.sigma_max, float)
    assert config.data.random_flip is True and config.data.dequantize is False
    assert config.sampling.convention == "paper"
    assert config.name == "my_run"
    # The original is untouched (overrides build a new frozen object).
    assert base.training.steps == 6000 and base.name == "digits"


@pytest.mark.parametrize("text", ["1", "true", "YES", "on"])
def test_true_spellings(text):
    assert configs.apply_overrides(configs.digits(), [f"data.random_flip={text}"]).data.random_flip is True


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("training.stepz=5", "training.stepz"),  # unknown key
        ("trainer.steps=5", "trainer"),  # unknown section
        ("training.steps=five", "training.steps"),  # not an integer
        ("training.steps=1.5", "training.steps"),  # not an integral number
        ("training.learning_rate=fast", "training.learning_rate"),  # not a number
        ("noise.sigma_max=inf", "noise.sigma_max"),  # not finite
        ("data.random_flip=maybe", "data.random_flip"),  # not a bool
        ("data.channels=2", "data.channels"),  # parses, fails validation
        ("training.steps", "training.steps"),  # malformed: no "="
        ("steps=5", "steps"),  # malformed: no section
        ("sampling.convention=other", "sampling.convention"),
        ("model.architecture=mlp", "model.architecture"),  # mlp is only for the toy data
    ],
)
def test_bad_overrides_raise_config_error_naming_the_key(override, fragment):
    with pytest.raises(ConfigError) as raised:
        configs.apply_overrides(configs.get_config("digits"), [override])
    message = str(raised.value)
    assert fragment in message
    assert "\n" not in message


def test_folder_dataset_needs_a_path():
    with pytest.raises(ConfigError, match="data.path"):
        configs.apply_overrides(configs.digits(), ["data.dataset=folder"])
    config = configs.apply_overrides(configs.digits(), ["data.dataset=folder", "data.path=/some/images"])
    assert config.data.path == "/some/images"
    assert (
        configs.apply_overrides(configs.digits(), ["data.dataset=tfds:fashion_mnist"]).data.dataset
        == "tfds:fashion_mnist"
    )


@pytest.mark.parametrize("name", sorted(configs.CONFIGS))
def test_dict_and_json_round_trip(name, tmp_path):
    config = configs.apply_overrides(configs.get_config(name), ["training.steps=7", "name=round_trip"])
    as_dict = configs.to_dict(config)
    assert configs.from_dict(as_dict) == config
    # Through real JSON text too (floats like 2e-5 and bools survive).
    assert configs.from_dict(json.loads(json.dumps(as_dict))) == config
    path = tmp_path / "config.json"
    configs.save_json(config, path)
    assert configs.load_json(path) == config


def test_from_dict_rejects_unknown_keys_sections_and_bad_types():
    values = configs.to_dict(configs.digits())
    values["training"]["warmup"] = 10
    with pytest.raises(ConfigError, match="training.warmup"):
        configs.from_dict(values)

    values = configs.to_dict(configs.digits())
    values["optimizer"] = {}
    with pytest.raises(ConfigError, match="optimizer"):
        configs.from_dict(values)

    values = configs.to_dict(configs.digits())
    values["training"]["steps"] = "100"
    with pytest.raises(ConfigError, match="training.steps"):
        configs.from_dict(values)

    values = configs.to_dict(configs.digits())
    values["training"]["steps"] = True  # bool is an int subclass; still wrong
    with pytest.raises(ConfigError, match="training.steps"):
        configs.from_dict(values)

    values = configs.to_dict(configs.digits())
    values["noise"] = [1.0, 0.01]
    with pytest.raises(ConfigError, match="noise"):
        configs.from_dict(values)


def test_from_dict_fills_missing_keys_with_defaults_and_accepts_int_for_float():
    config = configs.from_dict({"name": "partial", "noise": {"sigma_max": 2}, "data": {"dataset": "digits"}})
    assert config.noise.sigma_max == 2.0 and isinstance(config.noise.sigma_max, float)
    assert config.training == configs.TrainingConfig()


def test_load_json_errors(tmp_path):
    with pytest.raises(ConfigError, match="no config file"):
        configs.load_json(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        configs.load_json(broken)


def test_configs_are_frozen():
    config = configs.get_config("digits")
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.name = "changed"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.training.steps = 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.data.image_size = 16


# ---------------------------------------------------------------------------
# Strict inputs: ranges, exact integers, no coercion, bounded JSON.
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("training.seed=-1", "training.seed must be an integer in [0, 4294967295], got -1"),
        ("training.seed=1e10", "training.seed must be an integer in [0, 4294967295], got 10000000000"),
        ("training.seed=4294967296", "got 4294967296"),
        ("data.image_size=1", "data.image_size must be an even number >= 2"),
        ("data.image_size=3", "data.image_size must be an even number >= 2"),
        ("data.image_size=0", "data.image_size must be an even number >= 2"),
        ("training.batch_size=2147483648", "training.batch_size must be an integer in [-2147483648, 2147483647]"),
        # Exact integers: a float would round these to a neighbouring integer and accept them.
        ("training.steps=2147483646.0000000001", "training.steps: expected an integer"),
        ("training.steps=12345678901234567", "must be an integer in"),
        ("training.steps=1e999999999", "not an integer that fits in 32 bits"),
        ("training.steps=nan", "expected an integer"),
        ("training.steps=true", "expected an integer"),
        ("training.steps=0x10", "expected an integer"),
        ("data.random_flip=2", "expected true/false"),
        ("data.dequantize=", "expected true/false"),
        ("noise.sigma_min=1e-50", "float32 numbers"),  # 0 in float32: the ladder would divide by zero
        ("noise.sigma_max=1e39", "float32 numbers"),  # inf in float32
        ("noise.sigma_max=1e400", "expected a finite number"),
        ("training.learning_rate=nan", "expected a finite number"),
        ("training.adam_epsilon=0", "training.adam_epsilon must be positive"),
    ],
)
def test_out_of_range_and_coerced_values_are_one_line_errors(override, fragment):
    with pytest.raises(ConfigError) as raised:
        configs.apply_overrides(configs.get_config("digits"), [override])
    assert fragment in str(raised.value) and "\n" not in str(raised.value)


def test_the_ends_of_every_range_are_accepted():
    config = configs.apply_overrides(
        configs.get_config("digits"),
        ["training.seed=0", "data.image_size=2", "training.steps=2147483647", "training.batch_size=1e3"],
    )
    assert (config.training.seed, config.data.image_size, config.training.steps, config.training.batch_size) == (
        0,
        2,
        2**31 - 1,
        1000,
    )
    assert configs.apply_overrides(config, ["training.seed=4294967295"]).training.seed == 2**32 - 1
    # The toy data have no image size: it is not checked there.
    assert configs.apply_overrides(configs.get_config("toy"), ["data.image_size=3"]).data.image_size == 3


def test_image_size_bound_is_the_networks_real_bound():
    # Build CondRefineNetDilated on sides 1..12: validate must accept exactly the sides that build.
    from ncsn_tf.models import build_score_model

    base = configs.apply_overrides(configs.get_config("digits"), ["model.ngf=2", "noise.num_levels=2"])
    builds, accepted = set(), set()
    for side in range(1, 13):
        unchecked = configs._replace(base, data=dict(image_size=side))  # not validated
        try:
            build_score_model(unchecked)
            builds.add(side)
        except ValueError:  # Keras: "ConvMeanPool got spatial size 3x3 ..., which is odd"
            pass
        try:
            configs.validate(unchecked)
            accepted.add(side)
        except ConfigError:
            pass
    assert builds == accepted == {2, 4, 6, 8, 10, 12}


@pytest.mark.parametrize(
    ("section", "key", "value", "fragment"),
    [
        ("noise", "sigma_max", math.inf, "noise.sigma_max: expected a finite number"),
        ("training", "learning_rate", math.nan, "training.learning_rate: expected a finite number"),
        ("noise", "sigma_max", 10**400, "too large for a number"),  # float(10**400) is an OverflowError
        ("training", "steps", 10.0, "training.steps: expected int"),
        ("training", "seed", -1, "training.seed must be an integer in [0, 4294967295]"),
        ("training", "seed", 2**40, "training.seed must be an integer in [0, 4294967295]"),
        ("data", "random_flip", 1, "data.random_flip: expected bool"),
        ("data", "random_flip", "no", "data.random_flip: expected bool"),
        ("data", "image_size", 1, "data.image_size must be an even number >= 2"),
        ("data", "path", 5, "data.path: expected str"),
    ],
)
def test_from_dict_rejects_non_finite_out_of_range_and_wrong_typed_values(section, key, value, fragment):
    values = configs.to_dict(configs.get_config("digits"))
    values[section][key] = value
    with pytest.raises(ConfigError) as raised:
        configs.from_dict(values)
    assert fragment in str(raised.value) and "\n" not in str(raised.value)


def test_from_dict_rejects_a_name_that_is_not_a_string():
    values = configs.to_dict(configs.get_config("digits"))
    values["name"] = 5
    with pytest.raises(ConfigError, match="name must be a string"):
        configs.from_dict(values)


@pytest.mark.parametrize(
    ("section", "changes", "fragment"),
    [
        ("training", {"steps": 1.5}, "training.steps: expected an integer, got 1.5"),
        ("training", {"seed": True}, "training.seed: expected an integer, got True"),
        ("training", {"learning_rate": "1e-3"}, "training.learning_rate: expected a number"),
        ("training", {"seed": -1}, "training.seed must be an integer in [0, 4294967295], got -1"),
        ("data", {"random_flip": "no"}, "data.random_flip: expected true or false"),
        ("noise", {"sigma_max": math.inf}, "noise.sigma_max: expected a finite number"),
        ("noise", {"sigma_max": 10**400}, "noise.sigma_max: expected a finite number"),
        ("data", {"image_size": 7}, "data.image_size must be an even number >= 2"),
    ],
)
def test_validate_is_as_strict_for_the_python_api(section, changes, fragment):
    config = configs.get_config("digits")
    changed = dataclasses.replace(config, **{section: dataclasses.replace(getattr(config, section), **changes)})
    with pytest.raises(ConfigError) as raised:
        configs.validate(changed)
    assert fragment in str(raised.value)
    # An int is a fine float, and the one it equals.
    relaxed = dataclasses.replace(config, noise=dataclasses.replace(config.noise, sigma_max=5))
    assert configs.validate(relaxed) is relaxed


def test_load_json_is_bounded_in_depth_and_size(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 5000 + "]" * 5000, encoding="utf-8")  # json.load: RecursionError
    with pytest.raises(ConfigError) as raised:
        configs.load_json(deep)
    assert "nests 5000 levels deep" in str(raised.value) and "\n" not in str(raised.value)

    huge = tmp_path / "huge.json"
    huge.write_bytes(b" " * (configs.CONFIG_MAX_BYTES + 1) + b"{}")
    with pytest.raises(ConfigError, match="bytes, more than"):
        configs.load_json(huge)

    with pytest.raises(ConfigError, match="is a folder"):
        configs.load_json(tmp_path)

    nan = tmp_path / "nan.json"  # Python's json reads NaN / Infinity literals; validate refuses them
    values = configs.to_dict(configs.get_config("digits"))
    nan.write_text(json.dumps(values).replace('"sigma_max": 5.0', '"sigma_max": Infinity'), encoding="utf-8")
    with pytest.raises(ConfigError, match="noise.sigma_max: expected a finite number"):
        configs.load_json(nan)


# ---------------------------------------------------------------------------
# The sampler choice and its settings (docs/samplers.md).
# ---------------------------------------------------------------------------


def test_sampler_names_and_settings_are_those_of_the_library():
    from ncsn_tf import sampling

    assert configs.SAMPLERS == sampling.SAMPLERS
    assert configs.SamplingConfig().sampler == "annealed_langevin"  # the paper's sampler stays the default
    assert configs.CONVENTIONS == sampling.CONVENTIONS and configs.ORDERS == sampling.ORDERS
    # Every config field of a sampler is one of its run_sampler settings; noise_scale is the
    # only setting a config does not hold (plain Langevin in the toy experiment sets it).
    for name, settings in sampling.SAMPLER_SETTINGS.items():
        assert set(configs.SAMPLER_FIELDS[name]) == set(settings) - {"noise_scale"}, name


# Edge values of every setting; configs.check_sampling (no TensorFlow) and ncsn_tf.sampling's
# check (at run time) must accept and refuse exactly the same ones.
_EDGES = {
    "steps_per_level": (0, 1, 2, 107_374_181, 107_374_182),  # L = 20: the int32 bound is 107374181
    "epsilon": (-1e-9, 0.0, 1e-12, 2e-5, 3.0),
    "convention": ("code", "paper", "Code", ""),
    "corrector_steps": (-1, 0, 1, 107_374_180, 107_374_181),  # (C + 1) per level
    "snr": (-0.1, 0.0, 1e-9, 0.16, 50.0),
    "order": (0, 1, 2, 3),
}


@pytest.mark.parametrize("name", sorted(_EDGES))
def test_the_config_check_agrees_with_the_samplers_check_on_every_edge(name):
    from ncsn_tf import sampling

    num_levels = 20
    for value in _EDGES[name]:
        changed = dataclasses.replace(configs.SamplingConfig(), **{name: value})
        try:
            configs.check_sampling(changed, num_levels)
            config_accepts = True
        except ConfigError:
            config_accepts = False
        owner = next(sampler for sampler, names in configs.SAMPLER_FIELDS.items() if name in names)
        settings = {field: getattr(changed, field) for field in configs.SAMPLER_FIELDS[owner]}
        try:
            sampling.check_settings(owner, num_levels, settings, inpainting=True)
            library_accepts = True
        except ValueError:
            library_accepts = False
        assert config_accepts == library_accepts, (name, value)
    assert len({_accepted(name, value) for value in _EDGES[name]}) == 2, name  # each list holds both kinds


def _accepted(name: str, value: Any) -> bool:
    try:
        configs.check_sampling(dataclasses.replace(configs.SamplingConfig(), **{name: value}), 20)
    except ConfigError:
        return False
    return True


def test_a_bad_sampler_setting_is_refused_without_importing_tensorflow():
    code = (
        "import sys\n"
        "from ncsn_tf import configs\n"
        "try:\n"
        "    configs.apply_overrides(configs.get_config('digits'), ['sampling.snr=0'])\n"
        "except configs.ConfigError as error:\n"
        "    print(error)\n"
        "print('tensorflow' in sys.modules)\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert completed.stdout.splitlines() == ["sampling.snr must be a finite number > 0, got 0.0", "False"]


def test_sampler_overrides_parse_and_become_run_sampler_arguments():
    config = configs.apply_overrides(
        configs.get_config("digits"),
        ["sampling.sampler=predictor_corrector", "sampling.corrector_steps=3", "sampling.snr=0.5"],
    )
    sampling = config.sampling
    assert (sampling.sampler, sampling.corrector_steps, sampling.snr) == ("predictor_corrector", 3, 0.5)
    # Only the chosen sampler's settings; RePaint's resample_steps only when inpainting.
    assert sampling.sampler_arguments() == {"sampler": "predictor_corrector", "corrector_steps": 3, "snr": 0.5}
    with_resampling = dataclasses.replace(sampling, resample_steps=2).sampler_arguments(inpainting=True)
    assert with_resampling == {"sampler": "predictor_corrector", "corrector_steps": 3, "snr": 0.5, "resample_steps": 2}
    assert sampling.network_calls(config.noise.num_levels) == 20 * 4  # L (C + 1)
    assert dataclasses.replace(sampling, resample_steps=2).network_calls(20, inpainting=True) == 4 * (20 + 2 * 19)

    flow = configs.apply_overrides(config, ["sampling.sampler=probability_flow", "sampling.order=1"]).sampling
    assert flow.sampler_arguments() == {"sampler": "probability_flow", "order": 1}
    assert flow.network_calls(20) == 20 and dataclasses.replace(flow, order=2).network_calls(20) == 39
    annealed = configs.get_config("digits").sampling.sampler_arguments()
    assert annealed == {
        "sampler": "annealed_langevin", "steps_per_level": 50, "epsilon": 2e-5, "convention": "code",
        "final_denoise": False,
    }  # fmt: skip


def test_an_old_config_json_without_the_sampler_keys_loads_with_the_defaults(tmp_path):
    values = configs.to_dict(configs.get_config("digits"))
    for key in ("sampler", "corrector_steps", "snr", "order", "resample_steps"):
        del values["sampling"][key]
    path = tmp_path / "config.json"
    path.write_text(json.dumps(values), encoding="utf-8")
    config = configs.load_json(path)
    defaults = configs.SamplingConfig()
    assert config.sampling.sampler == "annealed_langevin"
    assert (config.sampling.corrector_steps, config.sampling.snr, config.sampling.order) == (
        defaults.corrector_steps, defaults.snr, defaults.order)  # fmt: skip
    assert config.sampling.steps_per_level == 50  # what the file says stays


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("sampling.sampler=langevin", "sampling.sampler: unknown sampler 'langevin'; use one of annealed_langevin,"),
        ("sampling.corrector_steps=-1", "sampling.corrector_steps must be an integer >= 0, got -1"),
        ("sampling.snr=0", "sampling.snr must be a finite number > 0, got 0.0"),
        ("sampling.snr=-0.5", "sampling.snr must be a finite number > 0, got -0.5"),
        ("sampling.order=3", "sampling.order must be 1 (Euler) or 2 (Heun), got 3"),
        ("sampling.order=0", "sampling.order must be 1 (Euler) or 2 (Heun), got 0"),
        ("sampling.resample_steps=-1", "sampling.resample_steps must be an integer >= 0, got -1"),
        ("sampling.steps_per_level=0", "sampling.steps_per_level must be an integer >= 1, got 0"),
        ("sampling.epsilon=0", "sampling.epsilon must be a finite number > 0, got 0.0"),
        ("sampling.convention=other", "sampling.convention: unknown Langevin convention 'other'"),
        ("sampling.corrector_steps=2147483647", "past the int32 loop counters"),  # L (C + 1) > 2^31 - 1
        ("sampling.order=1.5", "sampling.order: expected an integer"),
    ],
)
def test_bad_sampler_settings_are_one_line_errors(override, fragment):
    # Every sampler's settings are checked, not only the chosen one's (the default is annealed Langevin).
    with pytest.raises(ConfigError) as raised:
        configs.apply_overrides(configs.get_config("digits"), [override])
    assert fragment in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"snr": -1.0}, "sampling.snr must be a finite number > 0"),
        ({"order": 3}, "sampling.order must be 1 (Euler) or 2 (Heun)"),
        ({"corrector_steps": -2}, "sampling.corrector_steps must be an integer >= 0"),
        ({"sampler": "euler"}, "unknown sampler 'euler'"),
        ({"order": True}, "sampling.order: expected an integer, got True"),
        ({"snr": "0.5"}, "sampling.snr: expected a number"),
    ],
)
def test_the_python_api_checks_sampler_settings_the_same_way(changes, fragment):
    config = configs.get_config("digits")
    changed = dataclasses.replace(config, sampling=dataclasses.replace(config.sampling, **changes))
    with pytest.raises(ConfigError) as raised:
        configs.validate(changed)
    assert fragment in str(raised.value) and "\n" not in str(raised.value)


def test_override_sampling_replaces_checks_and_refuses_settings_of_another_sampler():
    defaults = configs.get_config("digits").sampling
    changed = configs.override_sampling(defaults, 20, sampler="predictor_corrector", snr=0.4, order=None)
    assert (changed.sampler, changed.snr, changed.corrector_steps) == ("predictor_corrector", 0.4, defaults.corrector_steps)
    assert configs.override_sampling(defaults, 20) == defaults  # nothing given: the defaults
    with pytest.raises(ConfigError, match="snr is a setting of predictor_corrector, not of annealed_langevin"):
        configs.override_sampling(defaults, 20, snr=0.4)  # the default sampler has no snr
    with pytest.raises(ConfigError, match="order is a setting of probability_flow"):
        configs.override_sampling(defaults, 20, sampler="predictor_corrector", order=1)
    with pytest.raises(ConfigError, match="resample_steps is RePaint's resampling for inpainting"):
        configs.override_sampling(defaults, 20, sampler="predictor_corrector", resample_steps=1)
    repaint = configs.override_sampling(defaults, 20, inpainting=True, sampler="predictor_corrector", resample_steps=1)
    assert repaint.resample_steps == 1
    with pytest.raises(ConfigError, match="sampling.order must be 1 \\(Euler\\) or 2 \\(Heun\\), got 3"):
        configs.override_sampling(defaults, 20, sampler="probability_flow", order=3)
    with pytest.raises(ConfigError, match="unknown sampler setting 'num_samples'"):
        configs.override_sampling(defaults, 20, num_samples=5)
