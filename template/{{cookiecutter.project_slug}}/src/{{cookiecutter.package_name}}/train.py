"""The training loop, for every task: `run(...) -> run folder`.

`run` reads in four steps, each a function you can read on its own:
1. `device.setup_hardware`: device, precision policy and, under `torchrun`, the process group;
2. `runs.open_run`: a new run folder, or an existing one to resume (config, checkpoint, lock);
3. `train_loop` (below): the optimisation loop itself, nanoGPT-sized;
4. `finish` (below): summary.json and report.md.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import distributed
from .config import (
    RESUME_SAFE,
    Config,
    ConfigError,
    TrainConfig,
    from_dict,
    load_config,
    read_yaml_mapping,
)
from .device import Hardware, peak_flops, setup_hardware
from .errors import UserError
from .optim import lr_at
from .runs import Run, open_run, save

SUMMARY_FILE = "summary.json"


class TrainingDiverged(UserError):
    """The loss became NaN or infinite."""


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


# ----------------------------------------------------------------------------- the loop


@dataclass
class LoopResult:
    last: dict[str, Any] = field(default_factory=dict)  # the last metrics line
    last_eval: dict[str, float] = field(default_factory=dict)
    train_time: float = 0.0  # seconds spent in training steps (not eval, not checkpoints)
    train_units: int = 0  # tokens (or samples) trained on in train_time
    stopped_early: bool = False


def train_loop(run: Run, hw: Hardware, tracker: Any) -> LoopResult:
    import torch

    # One process: the model (compiled if asked). Under torchrun: wrapped in DDP, or sharded
    # with FSDP (train.parallel); see distributed.py.
    train_model = distributed.prepare(run, hw)
    model, task, t = run.model, run.task, run.cfg.train
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
            task.before_step(model, run.step)
            lr = lr_at(run.step, t)  # the schedule's rate (a task may scale some groups)
            loss_sum = torch.zeros((), device=hw.device)
            for micro in range(t.grad_accum):
                batch = task.get_batch("train", t.batch_size, run.data_gen, hw.device)
                # Under torchrun, only the last micro-batch shares gradients (the others add up).
                with distributed.grad_sync(train_model, hw, micro == t.grad_accum - 1):
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
                loss_value = distributed.mean_over_ranks(loss_sum / t.grad_accum, hw)
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
                # FSDP: every rank helps gather the full state; rank 0 writes it.
                view = distributed.for_saving(run, hw)
                save(view, hw, finished=final, stopped_early=res.stopped_early)
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


# ----------------------------------------------------------------------------- the summary


def finish(run: Run, hw: Hardware, res: LoopResult, env: dict[str, Any]) -> None:
    """summary.json and report.md (rank 0 only)."""
    import json

    from .files import atomic_write_text
    from .report import write_report

    extras = run.task.report(run.model, hw.device)
    figures = run.task.figures(run.model, hw.device, run.run_dir)
    if figures:
        extras["figures"] = figures
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
            distributed.for_report(job, hw)  # FSDP: rank 0 gets an unsharded copy
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
