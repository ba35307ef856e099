"""Shared test setup: fully offline, small configs, real training (no mocks of torch)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never touch the network.
os.environ.update(
    HF_HUB_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
    HF_HUB_DISABLE_TELEMETRY="1",
    HF_HUB_DISABLE_PROGRESS_BARS="1",
    GRADIO_ANALYTICS_ENABLED="False",
    TOKENIZERS_PARALLELISM="false",
    WANDB_MODE="offline",
)
os.environ.pop("AI_DEVICE", None)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "{{ cookiecutter.package_name }}"  # for `python -m PACKAGE` in subprocesses
DOCS = PROJECT_ROOT / "docs"


def small_overrides(**extra: object) -> list[str]:
    """--set strings for a model small enough to train in a couple of seconds on 2 cores."""
    values: dict[str, object] = {
        "model.n_layer": 2,
        "model.n_head": 2,
        "model.n_embd": 32,
        "model.block_size": 32,
        "data.path": str(DOCS),
        "train.device": "cpu",
        "train.max_steps": 40,
        "train.batch_size": 8,
        "train.lr": 3e-3,
        "train.warmup_steps": 5,
        "train.eval_interval": 20,
        "train.eval_iters": 2,
        "train.log_interval": 5,
        "train.checkpoint_interval": 10,
        "train.sample_tokens": 20,
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


@pytest.fixture
def small_config():
    from {{ cookiecutter.package_name }}.config import load_config

    def make(**extra: object):
        return load_config(None, small_overrides(**extra))

    return make
