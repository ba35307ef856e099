from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.config import (
    Config,
    ConfigError,
    apply_overrides,
    from_dict,
    load_config,
    save_config,
    seed_everything,
)


def test_defaults_have_contract_keys():
    cfg = Config()
    assert cfg.train.max_steps > 0
    assert isinstance(cfg.train.seed, int)


def test_set_overrides_are_typed():
    cfg = apply_overrides(
        Config(),
        [
            "train.max_steps=7",
            "train.lr=1e-3",
            "model.bias=true",
            "data.extensions=.md,.txt",
            "name=x",
        ],
    )
    assert cfg.train.max_steps == 7
    assert cfg.train.lr == pytest.approx(1e-3)
    assert cfg.model.bias is True
    assert cfg.data.extensions == [".md", ".txt"]
    assert cfg.name == "x"


def test_yaml_string_numbers_are_coerced(tmp_path: Path):
    # PyYAML reads 1e-3 (no dot) as a string; the typed loader still gets a float.
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  lr: 1e-3\n  max_steps: 5\n")
    cfg = load_config(path)
    assert cfg.train.lr == pytest.approx(1e-3)
    assert cfg.train.max_steps == 5


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.max_step=5", "unknown config key 'train.max_step'"),
        ("nope.x=1", "unknown config key 'nope.x'"),
        ("train.max_steps=abc", "expected an integer"),
        ("train.max_steps=1.5", "expected an integer"),
        ("train.lr=fast", "expected a number"),
        ("model.bias=maybe", "expected true or false"),
        ("train.max_steps", "expects key=value"),
        ("data.kind=images", "not one of"),
        ("train.max_steps=0", "must be >= 1"),
        ("model.n_head=3", "divisible"),
    ],
)
def test_bad_overrides_give_clear_errors(override: str, message: str):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(Config(), [override])


def test_bad_yaml_files(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("train:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match=r"train\.epochs"):
        load_config(unknown)


def test_save_round_trip(tmp_path: Path):
    cfg = apply_overrides(Config(), ["train.seed=7", "model.n_layer=2"])
    save_config(cfg, tmp_path / "config.yaml")
    data = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert data["train"]["seed"] == 7
    assert from_dict(data) == cfg


def test_seed_everything_repeats():
    import random

    import numpy as np
    import torch

    seed_everything(3)
    first = (random.random(), np.random.rand(), torch.rand(1).item())
    seed_everything(3)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first
