"""Typed configs: named configs validate, overrides parse and fail loudly, JSON round trip, frozen."""

import dataclasses
import json

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
    # PAPER.md: sigma 1 -> 0.01 over 10 levels, T = 100, eps = 2e-5, code convention.
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
    assert configs.apply_overrides(configs.digits(), ["data.dataset=tfds:fashion_mnist"]).data.dataset == "tfds:fashion_mnist"


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
