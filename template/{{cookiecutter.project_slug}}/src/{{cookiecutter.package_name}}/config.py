"""Experiment configuration: dataclasses, YAML files, `--set section.key=value` overrides, seeds.

One `Config` describes a whole run. It is loaded from YAML, overridden from the command line,
checked, and saved *resolved* (every default filled in) into the run folder, so any run can be
repeated from its own `config.yaml`.

The loader is generic: `load_into(obj, mapping)` fills any dataclass from plain data, converting
each value to the field's declared type and refusing unknown keys, wrong types and non-finite
numbers with a message that names the key. A section adds its own value rules in a `check()`
method and its choices in `CHOICES`. The RAG settings use the same loader. The comment beside
each field is its documentation: `config show` prints it.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import os
import random
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .errors import UserError
from .models.gpt import GPTConfig


class ConfigError(UserError):
    """A config file or override is wrong (unknown key, bad type, bad value)."""


def require(ok: bool, message: str) -> None:
    """Raise a ConfigError with `message` unless `ok`: the one-liner every `check()` uses."""
    if not ok:
        raise ConfigError(message)


@dataclass
class DataConfig:
    kind: str = "text"  # the task: text, addition, datasets (a track adds its own)
    path: str = "docs"  # text file or folder; relative paths start at the current directory
    tokenizer: str = "char"  # char (vocabulary = characters seen) or byte (256 symbols)
    extensions: list[str] = field(default_factory=lambda: [".md", ".txt", ".rst"])  # text files
    val_fraction: float = 0.1  # share of the data held out for evaluation
    digits: int = 2  # addition task: operand width

    CHOICES: ClassVar = {"tokenizer": ("char", "byte")}

    def check(self) -> None:
        require(
            0 < self.val_fraction < 1,
            f"data.val_fraction must be in (0, 1), got {self.val_fraction}",
        )
        require(1 <= self.digits <= 6, f"data.digits must be 1 to 6, got {self.digits}")


@dataclass
class TrainConfig:
    max_steps: int = 300  # optimizer steps in the whole run
    seed: int = 1337  # seeds python, numpy and torch: same seed, same numbers
    batch_size: int = 12  # sequences per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step (effective batch = product)
    lr: float = 1e-3  # peak learning rate, reached after warmup
    min_lr: float = 1e-4  # the cosine decay ends here (0 <= min_lr <= lr)
    warmup_steps: int = 20  # linear warmup from ~0 to lr
    weight_decay: float = 0.1  # AdamW decay on matrices (not on biases and norms)
    beta1: float = 0.9  # AdamW momentum, in [0, 1)
    beta2: float = 0.99  # AdamW second-moment decay, in [0, 1)
    grad_clip: float = 1.0  # clip the gradient norm to this; 0 disables clipping
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
    parallel: str = "ddp"  # under torchrun: ddp (a model copy per process) | fsdp (sharded)

    CHOICES: ClassVar = {
        "dtype": ("auto", "float32", "bfloat16", "float16"),
        "parallel": ("ddp", "fsdp"),
    }

    def check(self) -> None:
        for name in (
            "max_steps",
            "batch_size",
            "grad_accum",
            "eval_interval",
            "eval_iters",
            "log_interval",
            "checkpoint_interval",
            "keep_last",
        ):
            value = getattr(self, name)
            require(value >= 1, f"train.{name} must be >= 1, got {value}")
        for name in ("warmup_steps", "early_stopping_patience", "threads", "sample_tokens"):
            value = getattr(self, name)
            require(value >= 0, f"train.{name} must be >= 0, got {value}")
        require(0 <= self.seed < 2**63, f"train.seed must be in [0, 2**63), got {self.seed}")
        require(self.lr > 0, f"train.lr must be > 0, got {self.lr}")
        require(
            0 <= self.min_lr <= self.lr,
            f"train.min_lr must be in [0, train.lr = {self.lr}], got {self.min_lr}",
        )
        require(self.weight_decay >= 0, f"train.weight_decay must be >= 0, got {self.weight_decay}")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            require(0 <= value < 1, f"train.{name} must be in [0, 1), got {value}")
        require(
            self.grad_clip >= 0, f"train.grad_clip must be >= 0 (0 = off), got {self.grad_clip}"
        )


@dataclass
class TrackingConfig:
    backend: str = "jsonl"  # jsonl (always written) | tensorboard | wandb
    project: str = "ai-map"  # W&B project name (offline unless WANDB_API_KEY is set)

    CHOICES: ClassVar = {"backend": ("jsonl", "tensorboard", "wandb")}


@dataclass
class Config:
    name: str = ""  # run folder name; empty = <config-stem>-<time>
    model: GPTConfig = field(default_factory=lambda: GPTConfig(vocab_size=0))  # models/gpt.py
    data: DataConfig = field(default_factory=DataConfig)  # what to train on (the task)
    train: TrainConfig = field(default_factory=TrainConfig)  # optimisation and bookkeeping
    tracking: TrackingConfig = field(default_factory=TrackingConfig)  # where metrics go

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> None:
        from .tasks import task_class

        task_class(self.data.kind)  # an unknown task is a ConfigError listing the known ones
        require(
            "/" not in self.name and "\\" not in self.name and self.name not in (".", ".."),
            f"name must be a plain folder name, got {self.name!r}",
        )
        self.check_model()

    def check_model(self) -> None:
        """The GPT's rules; a task with another model (a CNN...) overrides this."""
        m = self.model
        for name in ("n_layer", "n_head", "n_embd", "block_size"):
            value = getattr(m, name)
            require(value >= 1, f"model.{name} must be >= 1, got {value}")
        require(
            m.vocab_size >= 0,
            f"model.vocab_size must be >= 0 (0 = from the data), got {m.vocab_size}",
        )
        require(
            m.n_embd % m.n_head == 0,
            f"model.n_embd ({m.n_embd}) must be divisible by model.n_head ({m.n_head})",
        )
        require(0 <= m.dropout < 1, f"model.dropout must be in [0, 1), got {m.dropout}")


# Keys that may change when a run is resumed: they decide how long to train and what to log,
# not what the model learns from. Anything else would make the resumed run a different run.
RESUME_SAFE = (
    "train.max_steps",
    "train.eval_interval",
    "train.eval_iters",
    "train.log_interval",
    "train.checkpoint_interval",
    "train.keep_last",
    "train.early_stopping_patience",
    "train.sample_tokens",
    "train.threads",
    "train.device",
    "train.parallel",  # checkpoints hold the full state either way
    "tracking.backend",
    "tracking.project",
)


# ----------------------------------------------------------------------------- the typed loader


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert a YAML or command-line value to the field's declared type, or explain why not."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):  # `str | None`
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")):
            return None
        return _coerce(value, options[0], key)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str):  # from --set: "a,b" or "[a, b]"
            text = value.strip()
            if text.startswith("[") and text.endswith("]"):
                text = text[1:-1]
            value = [v.strip() for v in text.split(",") if v.strip()]
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
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value) if isinstance(value, str) else value
            if not isinstance(number, (int, float)) or number != int(number):
                raise ValueError
            return int(number)
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{key}: expected an integer, got {value!r}") from None
    if tp is float:
        try:
            if isinstance(value, bool):
                raise ValueError
            # float() also accepts '1e-3', which YAML 1.1 (PyYAML) reads as a string.
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{key}: expected a finite number, got {value!r}")
        return number
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{key}: expected text, got {value!r}")
        return "" if value is None else str(value)
    raise ConfigError(f"{key}: unsupported field type {tp!r}")  # pragma: no cover


def field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def set_key(obj: Any, dotted: str, value: Any, prefix: str = "") -> None:
    """Set `section.key` (or a top-level key) on a config dataclass, with type checking."""
    parts = dotted.split(".")
    target = obj
    for i, part in enumerate(parts):
        types_ = field_types(type(target))
        if part not in types_:
            where = _join(prefix, ".".join(parts[:i])) or "the top level"
            raise ConfigError(
                f"unknown config key {_join(prefix, dotted)!r}: {where} has "
                f"{', '.join(sorted(types_))}"
            )
        tp = types_[part]
        key = _join(prefix, ".".join(parts[: i + 1]))
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(tp):
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{key}: expected a mapping of keys, got {value!r}")
                load_into(getattr(target, part), value, key)
                return
            coerced = _coerce(value, tp, key)
            choices = getattr(type(target), "CHOICES", {}).get(part)
            if choices and coerced not in choices:
                raise ConfigError(f"{key}: {coerced!r} is not one of {', '.join(choices)}")
            setattr(target, part, coerced)
        else:
            if not dataclasses.is_dataclass(tp):
                raise ConfigError(
                    f"unknown config key {_join(prefix, dotted)!r}: {part!r} is not a section"
                )
            target = getattr(target, part)


def load_into(obj: Any, data: Mapping[str, Any] | None, prefix: str = "") -> Any:
    """Fill the dataclass `obj` from a mapping (typed, unknown keys refused); returns obj."""
    for key, value in (data or {}).items():
        set_key(obj, str(key), value, prefix)
    return obj


def check_all(obj: Any) -> None:
    """Run every section's `check()` (value rules that types alone cannot express)."""
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            check_all(value)
    if hasattr(obj, "check"):
        obj.check()


def read_yaml_mapping(path: str | os.PathLike[str], what: str = "a mapping of sections") -> dict:
    """A YAML file that must hold a mapping; every way it can be wrong is a ConfigError."""
    import yaml

    from .files import NotText, read_text_file

    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{p} is a folder; give the path of a YAML file")
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    try:
        text = read_text_file(p) if p.stat().st_size else ""
        data = yaml.safe_load(text) or {}
    except NotText as exc:
        if "empty" in str(exc):
            return {}
        raise ConfigError(f"{p} is not a YAML file: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p} must be {what}")
    return data


def parse_overrides(overrides: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    pairs = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value (e.g. train.max_steps=100), got {item!r}")
        key, value = item.split("=", 1)
        pairs.append((key.strip(), value.strip()))
    return pairs


def config_class(data: Mapping[str, Any], overrides: list[tuple[str, str]]) -> type[Config]:
    """The Config class of the task the data asks for (a track's task may add sections)."""
    from .tasks import task_class

    kind = (
        (data.get("data") or {}).get("kind", "text")
        if isinstance(data.get("data"), Mapping)
        else "text"
    )
    for key, value in overrides:
        if key == "data.kind":
            kind = value
    return task_class(str(kind)).config_class


def from_dict(
    data: Mapping[str, Any] | None, overrides: list[str] | tuple[str, ...] = ()
) -> Config:
    """Defaults <- mapping <- `key=value` overrides, then every check."""
    data = dict(data or {})
    pairs = parse_overrides(overrides)
    cfg = config_class(data, pairs)()
    load_into(cfg, data)
    for key, value in pairs:
        set_key(cfg, key, value)
    check_all(cfg)
    return cfg


def load_config(path: str | os.PathLike[str] | None = None, overrides: list[str] = ()) -> Config:
    """Defaults <- YAML file (optional) <- `key=value` overrides, then validation."""
    data = (
        read_yaml_mapping(path, "a mapping of sections (model, data, train, tracking)")
        if path
        else {}
    )
    return from_dict(data, overrides)


def apply_overrides(cfg: Config, overrides: list[str] | tuple[str, ...]) -> Config:
    """Apply `section.key=value` strings (from `--set`) to a loaded config, then check it."""
    for key, value in parse_overrides(overrides):
        set_key(cfg, key, value)
    check_all(cfg)
    return cfg


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'train': {'lr': 1}} -> {'train.lr': 1}."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, _join(prefix, key)))
        else:
            out[_join(prefix, key)] = value
    return out


def changed_keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Keys whose value differs between two config dicts, as {key: (old, new)}."""
    a, b = flatten(old), flatten(new)
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def save_config(cfg: Config, path: Path) -> None:
    """Write the resolved config as YAML, atomically."""
    import yaml

    from .files import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


# ----------------------------------------------------------------------------- documentation


def _class_lines(cls: type) -> list[str]:
    """The source lines of a class body, read as plain text (no parsing: it stays cheap)."""
    try:
        lines = Path(inspect.getsourcefile(cls) or "").read_text(encoding="utf-8").splitlines()
    except (OSError, TypeError):
        return []
    header = re.compile(rf"class {cls.__name__}\b[(:]")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None:
        return []
    body = []
    for line in lines[start + 1 :]:
        if line.strip() and not line.startswith((" ", "\t")):
            break  # the next top-level statement
        body.append(line)
    return body


def _comments(cls: type) -> dict[str, str]:
    """The comment beside (or just above) each field in the class's source: its description."""
    found: dict[str, str] = {}
    above: list[str] = []
    for line in _class_lines(cls):
        stripped = line.strip()
        if stripped.startswith("#"):
            above.append(stripped.lstrip("# "))
            continue
        m = re.match(r"(\w+): [^=]+=.*?(?:#\s*(.*))?$", stripped)
        if m and not stripped.startswith(("def ", "CHOICES")):
            found[m.group(1)] = m.group(2) or " ".join(above)
        above = []
    return found


def describe(cls: type, prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """(key, type, default, description) for every field of a config dataclass, sections inlined."""
    rows = []
    notes = _comments(cls)
    defaults = cls()
    for name, tp in field_types(cls).items():
        key = _join(prefix, name)
        if dataclasses.is_dataclass(tp):
            rows += describe(tp, key)
            continue
        type_name = getattr(tp, "__name__", str(tp).replace("typing.", ""))
        if typing.get_origin(tp) in (typing.Union, types.UnionType, list):
            type_name = str(tp).replace("typing.", "")
        choices = getattr(cls, "CHOICES", {}).get(name)
        note = notes.get(name, "")
        if choices:
            note = (
                f"{note} (one of: {', '.join(choices)})"
                if note
                else f"one of: {', '.join(choices)}"
            )
        rows.append((key, type_name, getattr(defaults, name), note))
    return rows


# ----------------------------------------------------------------------------- seeds


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
