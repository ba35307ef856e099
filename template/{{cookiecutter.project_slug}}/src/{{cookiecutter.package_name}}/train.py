"""The training loop, for every task: `run(...) -> run folder`.

Read it in four parts, top to bottom:
1. `setup_hardware`: device, precision policy and, under `torchrun`, the process group;
2. `open_run`: a new run folder, or an existing one to resume (its config, checkpoint and lock);
3. `train_loop`: the optimisation loop itself (nanoGPT-sized);
4. `finish`: summary.json and report.md.

Per optimizer step: `grad_accum` micro-batches (forward under autocast when the precision
policy says so, backward through the GradScaler), gradient clipping, AdamW step, LR schedule
(linear warmup then cosine decay). Every `eval_interval` steps: loss on held-out batches plus the
task's metrics, early stopping if asked. Every `checkpoint_interval` steps: an atomic checkpoint.
Under `torchrun` every rank trains on its own batches, gradients are averaged (DDP), and only
rank 0 writes files.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .config import (
    RESUME_SAFE,
    Config,
    ConfigError,
    TrainConfig,
    changed_keys,
    from_dict,
    load_config,
    parse_overrides,
    read_yaml_mapping,
    save_config,
    seed_everything,
)
from .errors import UserError

SUMMARY_FILE = "summary.json"

# Peak dense bf16/fp16 tensor-core FLOP/s used for MFU (model FLOPs utilisation); add yours.
_PEAK_FLOPS = {
    "H200": 989e12,
    "H100": 989e12,
    "A100": 312e12,
    "L40": 181e12,
    "L4": 121e12,
    "A10": 125e12,
    "4090": 165e12,
    "3090": 71e12,
    "V100": 125e12,
    "T4": 65e12,
}


class TrainingDiverged(UserError):
    """The loss became NaN or infinite."""


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup, then cosine to min_lr."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / (cfg.warmup_steps + 1)
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def build_optimizer(model: Any, cfg: TrainConfig) -> Any:
    """AdamW with weight decay on matrices (linear weights, embeddings) only.

    Biases and LayerNorm gains are 1-D: decaying them towards zero only hurts. The fused
    implementation (one kernel for all parameters) is used where this torch has it.
    """
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    kwargs = {"lr": cfg.lr, "betas": (cfg.beta1, cfg.beta2)}
    try:
        return torch.optim.AdamW(groups, fused=True, **kwargs)
    except (RuntimeError, TypeError):  # no fused kernel for this device / torch version
        return torch.optim.AdamW(groups, **kwargs)


def peak_flops(device_name: str) -> float | None:
    return next((v for k, v in _PEAK_FLOPS.items() if k in device_name), None)


# ----------------------------------------------------------------------------- 1. hardware


@dataclass
class Hardware:
    device: str
    precision: Any  # device.Precision: dtype, autocast, GradScaler or not
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    accelerator: str = ""  # GPU name, for MFU against its peak FLOP/s

    @property
    def ddp(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0  # only rank 0 writes files and prints


def setup_hardware(t: TrainConfig) -> Hardware:
    """Pick the device and precision; join the process group when started by torchrun."""
    import torch

    from .device import configure_tf32, configure_threads, pick_device, pick_precision

    # torchrun sets these; a plain `python -m` run is rank 0 of 1.
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = pick_device(t.device)
    if world_size > 1 and device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    if world_size > 1:
        import torch.distributed as dist

        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    if device.startswith("cuda"):
        configure_tf32(True)
    configure_threads(t.threads)
    return Hardware(device, pick_precision(device, t.dtype), rank, local_rank, world_size)


# ----------------------------------------------------------------------------- 2. the run


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
        optimizer = build_optimizer(model, t)
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


def evaluate(run: Run, hw: Hardware) -> dict[str, float]:
    """Mean loss over `eval_iters` batches of each split, plus the task's own metrics.

    Uses its own RNG so evaluating never changes the training batches (exact resume).
    """
    import torch

    model, task, t = run.model, run.task, run.cfg.train
    model.eval()
    out: dict[str, float] = {}
    gen = torch.Generator().manual_seed(t.seed + 1)
    with torch.no_grad():
        for split, key in (("val", "eval/loss"), ("train", "eval/train_loss")):
            losses = []
            for _ in range(t.eval_iters):
                batch = task.get_batch(split, t.batch_size, gen, hw.device)
                with hw.precision.autocast_context():
                    losses.append(task.loss(model, batch).item())
            out[key] = sum(losses) / len(losses)
        out.update({f"eval/{k}": v for k, v in task.eval_metrics(model, hw.device).items()})
    model.train()
    return out


# ----------------------------------------------------------------------------- 3. the loop


@dataclass
class LoopResult:
    last: dict[str, Any] = field(default_factory=dict)  # the last metrics line
    last_eval: dict[str, float] = field(default_factory=dict)
    train_time: float = 0.0  # seconds spent in training steps (not eval, not checkpoints)
    train_units: int = 0  # tokens (or samples) trained on in train_time
    stopped_early: bool = False


def train_loop(run: Run, hw: Hardware, tracker: Any) -> LoopResult:
    import torch

    model, task, t = run.model, run.task, run.cfg.train
    train_model = torch.compile(model) if t.compile else model
    if hw.ddp:
        import torch.distributed as dist
        from torch.nn.parallel import DistributedDataParallel

        ids = [hw.local_rank] if hw.device != "cpu" else None
        train_model = DistributedDataParallel(train_model, device_ids=ids)
    quiet = not hw.is_main or not sys.stderr.isatty() or bool(os.environ.get("CI"))
    bar = _progress(t.max_steps, run.step, quiet)
    peak = peak_flops(hw.accelerator) if hw.accelerator else None
    flops_per_unit = task.flops_per_unit(model)

    res = LoopResult()
    diverged = torch.zeros((), dtype=torch.bool, device=hw.device)  # any non-finite loss yet?
    good_step = run.step  # the last step known to have a finite loss
    units = 0  # units trained since the last log line
    run.t0 = t_mark = time.perf_counter()
    paused = 0.0  # eval and checkpoint time since the last log line: not training time
    try:
        while run.step < t.max_steps:
            lr = run.optimizer.param_groups[0]["lr"]
            loss_sum = torch.zeros((), device=hw.device)
            for micro in range(t.grad_accum):
                batch = task.get_batch("train", t.batch_size, run.data_gen, hw.device)
                # With DDP, only the last micro-batch all-reduces gradients (the others add up).
                skip_grad_sync = hw.ddp and micro < t.grad_accum - 1
                with train_model.no_sync() if skip_grad_sync else nullcontext():
                    with hw.precision.autocast_context():
                        loss = task.loss(train_model, batch)
                    run.scaler.scale(loss / t.grad_accum).backward()
                loss_sum += loss.detach()
                units += task.units(batch) * hw.world_size
            if t.grad_clip > 0:
                run.scaler.unscale_(run.optimizer)  # clip the true gradients, not the scaled ones
                torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
            run.scaler.step(run.optimizer)
            run.scaler.update()
            run.optimizer.zero_grad(set_to_none=True)
            run.scheduler.step()
            run.step += 1
            diverged |= ~torch.isfinite(loss_sum)  # checked (one sync) before logging or saving
            bar.update(1)

            step, final = run.step, run.step == t.max_steps
            log_now = step % t.log_interval == 0 or step == 1 or final
            eval_now = step % t.eval_interval == 0 or final
            save_now = step % t.checkpoint_interval == 0 or final
            if log_now or eval_now or save_now:
                if diverged.item():
                    raise TrainingDiverged(
                        f"the loss became NaN or infinite between step {good_step} and step "
                        f"{step} (lr {lr:.3g}). Checkpoints up to step {good_step} are good. "
                        f"Lower train.lr (now {t.lr}) or raise train.warmup_steps, then start "
                        "a new run"
                    )
                good_step = step

            if log_now:
                loss_value = loss_sum / t.grad_accum
                if hw.ddp:
                    dist.all_reduce(loss_value, op=dist.ReduceOp.AVG)
                if hw.device.startswith("cuda"):
                    torch.cuda.synchronize()
                now = time.perf_counter()
                dt = max(now - t_mark - paused, 1e-9)
                res.train_time += dt
                res.train_units += units
                res.last = {
                    "step": step,
                    "loss": loss_value.item(),
                    "lr": lr,
                    f"{task.unit}_per_s": round(units / dt, 1),
                    "elapsed_s": round(run.elapsed_before + now - run.t0, 3),
                }
                if peak and flops_per_unit:
                    res.last["mfu"] = round(flops_per_unit * units / dt / peak, 4)
                tracker.log(res.last)
                bar.set_postfix(loss=f"{res.last['loss']:.4f}")
                t_mark, units, paused = time.perf_counter(), 0, 0.0

            t_pause = time.perf_counter()
            if eval_now:
                res.last_eval = evaluate(run, hw)
                tracker.log({"step": step, **res.last_eval})
                if quiet and hw.is_main:
                    shown = " ".join(f"{k} {v:.4f}" for k, v in res.last_eval.items())
                    loss_shown = res.last.get("loss", 0)
                    print(
                        f"step {step}/{t.max_steps} loss {loss_shown:.4f} {shown}", file=sys.stderr
                    )
                if res.last_eval["eval/loss"] < run.best_eval:
                    run.best_eval, run.bad_evals = res.last_eval["eval/loss"], 0
                else:
                    run.bad_evals += 1
                res.stopped_early = 0 < t.early_stopping_patience <= run.bad_evals
            if save_now or res.stopped_early:
                save(run, hw, finished=final, stopped_early=res.stopped_early)
            paused += time.perf_counter() - t_pause
            if res.stopped_early:
                if hw.is_main:
                    print(
                        f"early stopping at step {step}: eval/loss has not improved for "
                        f"{run.bad_evals} evaluations",
                        file=sys.stderr,
                    )
                break
    finally:
        bar.close()
    return res


# ----------------------------------------------------------------------------- 4. the summary


def finish(run: Run, hw: Hardware, res: LoopResult, env: dict[str, Any]) -> None:
    """summary.json and report.md (rank 0 only)."""
    import json

    from .files import atomic_write_text
    from .report import write_report

    extras = run.task.report(run.model, hw.device)
    summary = {
        "run": run.run_dir.name,
        "task": run.task.name,
        "steps": run.step,
        "max_steps": run.cfg.train.max_steps,
        "seed": run.cfg.train.seed,
        "stopped_early": res.stopped_early,
        "params": sum(p.numel() for p in run.model.parameters()),
        "world_size": hw.world_size,
        "final": res.last,
        "eval": res.last_eval,
        "best_eval_loss": run.best_eval if math.isfinite(run.best_eval) else None,
        f"train_{run.task.unit}_per_s": round(res.train_units / res.train_time, 1)
        if res.train_time
        else None,
        "train_time_s": round(res.train_time, 3),
        "wall_time_s": round(run.elapsed_before + time.perf_counter() - run.t0, 3),
        "resumed_from_step": run.resumed_from and int(run.resumed_from.stem.split("_")[1]),
        "environment": env,
        **extras,
    }
    atomic_write_text(run.run_dir / SUMMARY_FILE, json.dumps(summary, indent=2, allow_nan=False))
    write_report(run.run_dir)


def run(
    config: Config | None = None,
    runs_dir: str | Path = "runs",
    resume: str | Path | None = None,
    *,
    config_file: str | Path | None = None,
    overrides: Sequence[str] = (),
) -> Path:
    """Train; returns the run folder (config, metrics, checkpoints, summary, report).

    New run: from `config` (a Config) or `config_file` (YAML), plus `overrides` ("key=value").
    Resume: `resume` is a run folder; its own config.yaml is used, and `overrides` may change
    only the keys in `config.RESUME_SAFE`.
    """
    from .device import doctor_info
    from .tracking import Tracker, truncate_metrics

    resume = Path(resume) if resume is not None else None
    config_file = Path(config_file) if config_file is not None else None
    if resume is not None and (config is not None or config_file is not None):
        raise UserError("use either --config or --resume (a run keeps its own config.yaml)")
    # The hardware policy depends on train.device/threads, which a config or --set gives.
    pre = _peek_train_config(config, config_file, overrides, resume)
    hw = setup_hardware(pre)
    try:
        job = open_run(hw, Path(runs_dir), config, config_file, overrides, resume)
        try:
            env = doctor_info(hw.device, hw.precision.dtype) if hw.is_main else {}
            if hw.device.startswith("cuda"):
                hw.accelerator = env.get("accelerator") or ""
            if hw.is_main:
                if job.resumed_from is not None:
                    print(
                        f"resuming {job.run_dir} from {job.resumed_from.name} (step {job.step})",
                        file=sys.stderr,
                    )
                    truncate_metrics(job.run_dir, job.step)
                for note in job.notes:
                    print(f"warning: {note}", file=sys.stderr)
            tracker = Tracker(job.run_dir, job.cfg, enabled=hw.is_main, resume_step=job.step)
            try:
                res = train_loop(job, hw, tracker)
            finally:
                tracker.close()
            if hw.is_main:
                finish(job, hw, res, env)
        finally:
            if job.lock:
                job.lock.release()
    finally:
        if hw.ddp:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.barrier()
                dist.destroy_process_group()
    return job.run_dir


def _peek_train_config(config, config_file, overrides, resume) -> TrainConfig:
    """The train section, read early: it decides the device before anything is built."""
    if config is not None:
        return config.train
    if resume is not None:
        data = (
            read_yaml_mapping(Path(resume) / "config.yaml")
            if (Path(resume) / "config.yaml").is_file()
            else {}
        )
        safe = [o for o in overrides if o.split("=", 1)[0].strip() in RESUME_SAFE]
        try:
            return from_dict(data, safe).train
        except ConfigError:
            return TrainConfig()  # open_run reports the problem with the full context
    return load_config(config_file, list(overrides)).train


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, **kwargs: Any) -> None: ...
    def close(self) -> None: ...


def _progress(total: int, initial: int, quiet: bool) -> Any:
    """tqdm on a terminal; nothing in CI logs or files (eval lines are printed instead)."""
    if quiet:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)
