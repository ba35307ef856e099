"""Run folders: create a new one, or open an existing one to resume it.

A run folder is a run's record: `config.yaml` (resolved), `metrics.jsonl`, `checkpoints/`,
`summary.json`, `report.md`. Opening one builds everything the loop needs (task, model,
optimizer, schedule, GradScaler, data RNG) and, on resume, restores it from the newest good
checkpoint, after checking that nothing that would make it a different run has changed.
One process writes a run at a time (`runlock.py`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .config import (
    RESUME_SAFE,
    Config,
    ConfigError,
    changed_keys,
    from_dict,
    load_config,
    parse_overrides,
    read_yaml_mapping,
    save_config,
    seed_everything,
)
from .device import Hardware
from .errors import UserError
from .optim import build_optimizer, lr_at


@dataclass
class Run:
    """Everything one training run holds while it trains."""

    cfg: Config
    run_dir: Path
    task: Any
    model: Any  # the plain model (checkpoints save its weights)
    optimizer: Any
    scheduler: Any
    scaler: Any
    data_gen: Any  # the RNG that draws training batches (saved, so resume is exact)
    lock: Any = None
    step: int = 0  # optimizer steps done
    best_eval: float = math.inf
    bad_evals: int = 0  # evaluations in a row without improvement (early stopping)
    elapsed_before: float = 0.0  # seconds trained before this process (resume)
    resumed_from: Path | None = None
    notes: list[str] = field(default_factory=list)  # warnings to show before training
    t0: float = 0.0  # when this process started training (perf_counter)


def _auto_name(config_file: Path | None) -> str:
    stem = config_file.stem if config_file is not None else "run"
    return f"{stem}-{datetime.now():%Y%m%d-%H%M%S}"


def _create_run_dir(runs_dir: Path, name: str, automatic: bool) -> Path:
    """Create a new, empty run folder. mkdir is atomic: two runs can never get the same one."""
    if runs_dir.exists() and not runs_dir.is_dir():
        raise UserError(f"--runs-dir {runs_dir} is a file; give a folder (default: runs)")
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the runs folder {runs_dir}: {exc.strerror}") from None
    for n in range(1, 1000):
        run_dir = runs_dir / (name if n == 1 else f"{name}-{n}")
        try:
            run_dir.mkdir()
            return run_dir
        except FileExistsError:
            if automatic:
                continue  # two runs started in the same second: take the next suffix
            if any(run_dir.iterdir()):
                raise UserError(
                    f"run folder {run_dir} already exists: pick another name "
                    f"(--set name=...) or continue it with --resume {run_dir}"
                ) from None
            return run_dir
    raise UserError(f"too many runs named {name} in {runs_dir}")  # pragma: no cover


def _new_run_config(config: Config | None, config_file: Path | None, overrides: Sequence[str]):
    cfg = load_config(config_file, list(overrides)) if config is None else config
    if config is not None and overrides:
        cfg = from_dict(cfg.to_dict(), overrides)
    return cfg


def _resume_config(run_dir: Path, state: dict[str, Any], overrides: Sequence[str]) -> Config:
    """The run's own config.yaml (+ the allowed overrides), checked against its checkpoint."""
    for key, _ in parse_overrides(overrides):
        if key not in RESUME_SAFE:
            raise ConfigError(
                f"--set {key} cannot change when resuming: it would make a different run. "
                f"Keys that may change: {', '.join(RESUME_SAFE)}. To change {key}, start a new "
                f"run: train --config {run_dir / 'config.yaml'} --set {key}=... --set name=NEW"
            )
    saved = read_yaml_mapping(run_dir / "config.yaml")
    try:
        cfg = from_dict(saved, overrides)
    except ConfigError as exc:
        raise ConfigError(f"{run_dir / 'config.yaml'}: {exc}") from None
    edited = {
        k: v
        for k, v in changed_keys(state["config"], from_dict(saved).to_dict()).items()
        if k not in RESUME_SAFE and k != "name"
    }
    if edited:
        what = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in edited.items())
        raise ConfigError(
            f"{run_dir / 'config.yaml'} no longer matches the run's checkpoint ({what}). "
            "Undo the edit to resume, or start a new run from the edited file with "
            f"train --config {run_dir / 'config.yaml'} --set name=NEW"
        )
    return cfg


def open_run(
    hw: Hardware,
    runs_dir: Path,
    config: Config | None = None,
    config_file: Path | None = None,
    overrides: Sequence[str] = (),
    resume: Path | None = None,
) -> Run:
    """Build the task, model and optimizer; create the run folder or restore a checkpoint."""
    import torch

    from .checkpoint import load_latest, set_rng_state
    from .runlock import RunLock
    from .tasks import task_class

    state: dict[str, Any] | None = None
    lock = None
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "config.yaml").is_file():
            raise UserError(f"{run_dir} is not a run folder (no config.yaml)")
        if hw.is_main:
            lock = RunLock(run_dir).acquire()
        try:
            state, path = load_latest(run_dir, map_location=hw.device)
            cfg = _resume_config(run_dir, state, overrides)
            if state["step"] >= cfg.train.max_steps or state.get("stopped_early"):
                how = "stopped early" if state.get("stopped_early") else "finished"
                raise UserError(
                    f"{run_dir} already {how} at step {state['step']} (train.max_steps "
                    f"{cfg.train.max_steps}); to train it further: --resume {run_dir} "
                    f"--set train.max_steps={state['step'] + cfg.train.max_steps}"
                )
        except BaseException:
            if lock:
                lock.release()
            raise
    else:
        cfg = _new_run_config(config, config_file, overrides)
        if hw.is_main:
            name = cfg.name or _auto_name(config_file)
            run_dir = _create_run_dir(Path(runs_dir), name, automatic=not cfg.name)
            lock = RunLock(run_dir).acquire()
        else:
            run_dir = Path()
        if hw.ddp:  # every rank must agree on the folder rank 0 chose
            import torch.distributed as dist

            box = [str(run_dir)]
            dist.broadcast_object_list(box, src=0)
            run_dir = Path(box[0])
        cfg.name = run_dir.name

    try:
        t = cfg.train
        seed_everything(t.seed, t.deterministic)
        task = task_class(cfg.data.kind)(cfg, state["task"] if state else None)
        model = task.build_model().to(hw.device)
        optimizer = build_optimizer(model, t, task.lr_scale)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_at(s, t) / t.lr)
        scaler = torch.amp.GradScaler(hw.precision.device_type, enabled=hw.precision.use_scaler)
        data_gen = torch.Generator().manual_seed(t.seed + hw.rank)  # each rank: other batches
        run = Run(cfg, run_dir, task, model, optimizer, scheduler, scaler, data_gen, lock)
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            scaler.load_state_dict(state["scaler"])
            set_rng_state(state["rng"], data_gen if not hw.ddp else None)
            run.step, run.best_eval = state["step"], state["best_eval"]
            run.bad_evals, run.elapsed_before = state["bad_evals"], state["elapsed_s"]
            run.resumed_from = path
            if state.get("data_fingerprint") != task.fingerprint():
                run.notes.append(
                    "the training data changed since this run started (fingerprint "
                    f"{state.get('data_fingerprint')} -> {task.fingerprint()}); it continues "
                    "with the vocabulary saved in the checkpoint, on the changed data"
                )
        if hw.is_main:
            save_config(cfg, run_dir / "config.yaml")  # resolved: vocab_size from the data
        return run
    except BaseException:
        if lock:
            lock.release()
        if resume is None and hw.is_main:  # bad data, an unloadable model: leave no empty folder
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # only if empty
        raise


def save(run: Run, hw: Hardware, *, finished: bool = False, stopped_early: bool = False) -> None:
    from .checkpoint import rng_state, save_checkpoint

    if not hw.is_main:
        return
    state = {
        "step": run.step,
        "model": run.model.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict(),
        "rng": rng_state(run.data_gen),
        "config": run.cfg.to_dict(),
        "task": run.task.state_dict(),
        "data_fingerprint": run.task.fingerprint(),
        "best_eval": run.best_eval,
        "bad_evals": run.bad_evals,
        "elapsed_s": run.elapsed_before + time.perf_counter() - run.t0,
        "finished": finished,
        "stopped_early": stopped_early,
    }
    save_checkpoint(run.run_dir, run.step, state, run.cfg.train.keep_last)
