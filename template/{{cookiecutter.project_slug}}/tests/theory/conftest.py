"""Shared by the theory tests: one tiny addition model, trained for real once per session."""

import pytest

from {{ cookiecutter.package_name }}.config import from_dict
from {{ cookiecutter.package_name }}.train import run


@pytest.fixture(scope="session")
def addition_run(tmp_path_factory):
    """A 2-layer, 2-head addition model trained for 20 steps: enough to leave a checkpoint."""
    config = from_dict(
        {
            "model": {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 16},
            "data": {"kind": "addition", "digits": 2},
            "train": {
                "device": "cpu",
                "max_steps": 20,
                "batch_size": 32,
                "lr": 1e-2,
                "warmup_steps": 2,
                "eval_interval": 20,
                "eval_iters": 1,
                "log_interval": 20,
                "checkpoint_interval": 20,
                "sample_tokens": 0,
            },
        }
    )
    return run(config=config, runs_dir=tmp_path_factory.mktemp("runs"))
