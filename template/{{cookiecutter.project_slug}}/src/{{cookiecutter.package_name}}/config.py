"""Experiment configuration: dataclasses, YAML files, `--set section.key=value` overrides, seeds.

One `Config` describes a whole run. It is loaded from YAML, overridden from the command line,
and saved *resolved* (every default filled in) into the run folder, so any run can be repeated
from its own `config.yaml`.
"""

from __future__ import annotations

import dataclasses
import os
import random
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError


class ConfigError(UserError):
    """A config file or override is wrong (unknown key, bad type, bad value)."""


@dataclass
class ModelConfig:
    """Mirrors `models.gpt.GPTConfig`; vocab_size 0 means 'take it from the data'."""

    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64
    vocab_size: int = 0
    dropout: float = 0.0
    bias: bool = False


@dataclass
class DataConfig:
    # text: a file or folder of text files; addition: the synthetic 2-digit addition task;
    # datasets: Hugging Face `datasets.load_dataset("text", data_files=path)` (optional extra).
    kind: str = "text"
    path: str = "docs"  # relative paths are resolved from the current directory
    tokenizer: str = "char"  # char (vocabulary = characters seen) or byte (256 symbols)
    extensions: list[str] = field(default_factory=lambda: [".md", ".txt", ".rst"])
    val_fraction: float = 0.1
    digits: int = 2  # addition task: operand width


@dataclass
class TrainConfig:
    max_steps: int = 300
    seed: int = 1337
    batch_size: int = 12
    grad_accum: int = 1  # micro-batches per optimizer step (effective batch = product)
    lr: float = 1e-3
    min_lr: float = 1e-4  # cosine decay ends here
    warmup_steps: int = 20
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0  # 0 disables clipping
    eval_interval: int = 100  # steps between evaluations (and at the end)
    eval_iters: int = 10  # batches averaged per evaluation
    early_stopping_patience: int = 0  # stop after N evals without improvement; 0 = off
    log_interval: int = 10  # steps between metrics.jsonl lines (the last step is always logged)
    checkpoint_interval: int = 100  # steps between checkpoints (and at the end)
    keep_last: int = 3  # checkpoints kept on disk
    compile: bool = False  # torch.compile the model (slow start, faster steps on GPU)
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps (env AI_DEVICE when auto)
    dtype: str = "auto"  # auto | float32 | bfloat16 | float16
    threads: int = 0  # CPU threads for torch; 0 = torch's default
    deterministic: bool = False  # slower, bit-reproducible kernels where PyTorch has them
    sample_tokens: int = 200  # length of the text sample written into the report; 0 = none


@dataclass
class TrackingConfig:
    backend: str = "jsonl"  # jsonl (always written) | tensorboard | wandb
    project: str = "ai-map"  # W&B project name (offline unless WANDB_API_KEY is set)


@dataclass
class Config:
    name: str = ""  # run folder name; empty = <config-stem>-<timestamp>
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_CHOICES = {
    "data.kind": ("text", "addition", "datasets"),
    "data.tokenizer": ("char", "byte"),
    "train.dtype": ("auto", "float32", "bfloat16", "float16"),
    "tracking.backend": ("jsonl", "tensorboard", "wandb"),
}


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML or command-line value to the field's declared type, or explain why not."""
    origin = typing.get_origin(tp)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_coerce(v, item_tp, key) for v in value]
    if tp is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "on", "1"):
            return True
        if text in ("false", "no", "off", "0"):
            return False
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        try:
            number = float(value) if isinstance(value, str) else value
            if not isinstance(number, (int, float)) or number != int(number):
                raise ValueError
            return int(number)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if tp is float:
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            # float() also accepts '1e-3', which YAML 1.1 (PyYAML) reads as a string.
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{key}: expected text, got {value!r}")
        return "" if value is None else str(value)
    raise ConfigError(f"{key}: unsupported field type {tp!r}")  # pragma: no cover


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _set(obj: Any, dotted: str, value: Any) -> None:
    """Set `section.key` (or a top-level key) on a Config, with type checking."""
    parts = dotted.split(".")
    target = obj
    for i, part in enumerate(parts):
        types_ = _field_types(type(target))
        if part not in types_:
            where = ".".join(parts[:i]) or "the top level"
            raise ConfigError(
                f"unknown config key {dotted!r}: {where} has {', '.join(sorted(types_))}"
            )
        tp = types_[part]
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(tp):
                if not isinstance(value, dict):
                    raise ConfigError(f"{dotted}: expected a mapping of keys, got {value!r}")
                for k, v in value.items():
                    _set(obj, f"{dotted}.{k}", v)
                return
            coerced = _coerce(value, tp, dotted)
            choices = _CHOICES.get(dotted)
            if choices and coerced not in choices:
                raise ConfigError(f"{dotted}: {coerced!r} is not one of {', '.join(choices)}")
            setattr(target, part, coerced)
        else:
            if not dataclasses.is_dataclass(tp):
                raise ConfigError(f"unknown config key {dotted!r}: {part!r} is not a section")
            target = getattr(target, part)


def from_dict(data: dict[str, Any] | None) -> Config:
    cfg = Config()
    for key, value in (data or {}).items():
        _set(cfg, str(key), value)
    validate(cfg)
    return cfg


def load_config(path: str | os.PathLike[str] | None = None, overrides: list[str] = ()) -> Config:
    """Defaults <- YAML file (optional) <- `key=value` overrides, then validation."""
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{p} must be a mapping of sections (model, data, train, tracking)")
    cfg = from_dict(data)
    apply_overrides(cfg, overrides)
    return cfg


def apply_overrides(cfg: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """Apply `section.key=value` strings (from `--set`), typed by the dataclass fields."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value (e.g. train.max_steps=100), got {item!r}")
        key, value = item.split("=", 1)
        _set(cfg, key.strip(), value.strip())
    validate(cfg)
    return cfg


def validate(cfg: Config) -> None:
    """Value checks that types alone cannot express."""
    t, m = cfg.train, cfg.model
    positive = {
        "train.max_steps": t.max_steps,
        "train.batch_size": t.batch_size,
        "train.grad_accum": t.grad_accum,
        "train.eval_interval": t.eval_interval,
        "train.eval_iters": t.eval_iters,
        "train.log_interval": t.log_interval,
        "train.checkpoint_interval": t.checkpoint_interval,
        "train.keep_last": t.keep_last,
        "model.n_layer": m.n_layer,
        "model.n_head": m.n_head,
        "model.n_embd": m.n_embd,
        "model.block_size": m.block_size,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"{key} must be >= 1, got {value}")
    if m.n_embd % m.n_head:
        raise ConfigError(
            f"model.n_embd ({m.n_embd}) must be divisible by model.n_head ({m.n_head})"
        )
    if not 0 <= m.dropout < 1:
        raise ConfigError(f"model.dropout must be in [0, 1), got {m.dropout}")
    if not 0 < cfg.data.val_fraction < 1:
        raise ConfigError(f"data.val_fraction must be in (0, 1), got {cfg.data.val_fraction}")
    if t.lr <= 0:
        raise ConfigError(f"train.lr must be > 0, got {t.lr}")


def save_config(cfg: Config, path: Path) -> None:
    """Write the resolved config as YAML, atomically (temp file + rename)."""
    import yaml

    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
    os.replace(tmp, path)


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch in one place; optionally ask for deterministic kernels."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        # cuBLAS needs this workspace setting to be deterministic on CUDA >= 10.2.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
