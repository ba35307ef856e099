"""The training loop: one readable function, `run(config, runs_dir, resume=None) -> run folder`.

Per optimizer step: `grad_accum` micro-batches (forward under autocast when the precision
policy says so, backward through the GradScaler), gradient clipping, AdamW step, LR schedule
(linear warmup then cosine decay). Every `eval_interval` steps: loss on held-out batches (+ task
metrics), early stopping if asked. Every `checkpoint_interval` steps: an atomic checkpoint.
Metrics go to metrics.jsonl (and TensorBoard / W&B when chosen); at the end summary.json and
report.md. Under `torchrun` the same loop runs with DistributedDataParallel: every rank
trains on its own batches, gradients are averaged, and only rank 0 writes files.
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from .config import Config, TrainConfig, save_config, seed_everything
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


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warmup, then cosine to min_lr."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / (cfg.warmup_steps + 1)
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def build_optimizer(model: Any, cfg: TrainConfig, device_type: str) -> Any:
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


def estimate_mfu(n_params: int, cfg: Any, tokens_per_s: float, device_name: str) -> float | None:
    """Achieved / peak FLOP/s, with 6N + 12*L*T*C FLOPs per token (PaLM paper, appendix B)."""
    peak = next((v for k, v in _PEAK_FLOPS.items() if k in device_name), None)
    if peak is None:
        return None
    flops_per_token = 6 * n_params + 12 * cfg.n_layer * cfg.block_size * cfg.n_embd
    return flops_per_token * tokens_per_s / peak


def _distributed() -> tuple[int, int, int]:
    """(rank, local_rank, world_size) from the variables torchrun sets; (0, 0, 1) otherwise."""
    return (
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("LOCAL_RANK", "0")),
        int(os.environ.get("WORLD_SIZE", "1")),
    )


def _new_run_dir(runs_dir: Path, name: str) -> Path:
    if name:
        run_dir = runs_dir / name
        if run_dir.exists() and any(run_dir.iterdir()):
            raise UserError(
                f"run folder {run_dir} already exists: pick another name or --resume {run_dir}"
            )
        return run_dir
    base = runs_dir / f"run-{datetime.now():%Y%m%d-%H%M%S}"
    run_dir, n = base, 1
    while run_dir.exists():
        n += 1
        run_dir = base.with_name(f"{base.name}-{n}")
    return run_dir


def evaluate(model: Any, task: Any, cfg: Config, precision: Any, device: str) -> dict[str, float]:
    """Mean loss over `eval_iters` batches of each split, plus the task's own metrics.

    Uses its own RNG so evaluating never changes the training batches (exact resume).
    """
    import torch

    model.eval()
    out: dict[str, float] = {}
    gen = torch.Generator().manual_seed(cfg.train.seed + 1)
    with torch.no_grad():
        for split in ("val", "train"):
            losses = []
            for _ in range(cfg.train.eval_iters):
                x, y = task.get_batch(split, cfg.train.batch_size, gen, device)
                with precision.autocast_context():
                    _, loss = model(x, y)
                losses.append(loss.item())
            out["eval/loss" if split == "val" else "eval/train_loss"] = sum(losses) / len(losses)
        out.update({f"eval/{k}": v for k, v in task.extra_eval(model, device).items()})
    model.train()
    return out


def run(config: Config, runs_dir: Path, resume: Path | None = None) -> Path:
    """Train as `config` says; returns the run folder (config, metrics, checkpoints, report)."""
    import torch

    from .checkpoint import load_latest, rng_state, save_checkpoint, set_rng_state
    from .data import build_task
    from .device import configure_tf32, configure_threads, doctor_info, pick_device, pick_precision
    from .models.gpt import GPT, GPTConfig
    from .report import write_report
    from .tracking import Tracker, truncate_metrics

    cfg = copy.deepcopy(config)
    t = cfg.train
    rank, local_rank, world_size = _distributed()
    ddp = world_size > 1
    is_main = rank == 0
    device = pick_device(t.device)
    if ddp and device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    if ddp:
        import torch.distributed as dist

        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    precision = pick_precision(device, t.dtype)
    if device.startswith("cuda"):
        configure_tf32(True)
    configure_threads(t.threads)
    seed_everything(t.seed, t.deterministic)

    task = build_task(cfg.data, cfg.model.block_size)
    if cfg.model.vocab_size == 0:
        cfg.model.vocab_size = task.vocab_size
    elif cfg.model.vocab_size < task.vocab_size:
        raise UserError(
            f"model.vocab_size {cfg.model.vocab_size} < data vocabulary {task.vocab_size}"
        )
    raw_model = GPT(GPTConfig(**asdict(cfg.model))).to(device)
    optimizer = build_optimizer(raw_model, t, precision.device_type)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_at(s, t) / t.lr)
    scaler = torch.amp.GradScaler(precision.device_type, enabled=precision.use_scaler)
    data_gen = torch.Generator().manual_seed(t.seed + rank)  # each rank sees different batches

    runs_dir = Path(runs_dir)
    if resume is not None:
        run_dir = Path(resume)
        if not (run_dir / "config.yaml").is_file():
            raise UserError(f"{run_dir} is not a run folder (no config.yaml)")
    else:
        run_dir = _new_run_dir(runs_dir, cfg.name) if is_main else Path()
        if ddp:  # every rank must agree on the folder rank 0 chose
            box = [str(run_dir)]
            dist.broadcast_object_list(box, src=0)
            run_dir = Path(box[0])
    cfg.name = run_dir.name

    start_step, best_eval, bad_evals, elapsed_before = 0, math.inf, 0, 0.0
    if resume is not None:
        state, path = load_latest(run_dir, map_location=device)
        raw_model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        set_rng_state(state["rng"], data_gen if not ddp else None)
        start_step, best_eval = state["step"], state["best_eval"]
        bad_evals, elapsed_before = state["bad_evals"], state["elapsed_s"]
        if is_main:
            print(f"resuming {run_dir} from {path.name} (step {start_step})", file=sys.stderr)
            truncate_metrics(run_dir, start_step)
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")

    model = raw_model
    if t.compile:
        model = torch.compile(model)
    if ddp:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=[local_rank] if device != "cpu" else None)

    tracker = Tracker(run_dir, cfg, enabled=is_main)
    env = doctor_info(device, precision.dtype) if is_main else {}
    n_params = raw_model.num_params()
    tokens_per_step = t.batch_size * t.grad_accum * cfg.model.block_size * world_size
    quiet = not is_main or not sys.stderr.isatty() or bool(os.environ.get("CI"))
    bar = _progress(t.max_steps, start_step, quiet)

    def save(step: int) -> None:
        if is_main:
            save_checkpoint(
                run_dir,
                step,
                {
                    "step": step,
                    "model": raw_model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "scaler": scaler.state_dict(),
                    "rng": rng_state(data_gen),
                    "config": cfg.to_dict(),
                    "codec": task.codec.to_dict(),
                    "best_eval": best_eval,
                    "bad_evals": bad_evals,
                    "elapsed_s": elapsed_before + time.perf_counter() - t_loop,
                },
                t.keep_last,
            )

    last: dict[str, Any] = {}
    last_eval: dict[str, float] = {}
    train_time, train_steps, stopped_early = 0.0, 0, False
    t_loop = t_mark = time.perf_counter()
    steps_since_mark, paused = 0, 0.0  # paused: eval/checkpoint time, not counted as training
    step = start_step
    try:
        for step in range(start_step + 1, t.max_steps + 1):  # `step` = optimizer steps done
            lr = optimizer.param_groups[0]["lr"]
            loss_sum = torch.zeros((), device=device)
            for micro in range(t.grad_accum):
                x, y = task.get_batch("train", t.batch_size, data_gen, device)
                # With DDP, only the last micro-batch all-reduces gradients (the others add up).
                sync = ddp and micro < t.grad_accum - 1
                with model.no_sync() if sync else nullcontext():
                    with precision.autocast_context():
                        _, loss = model(x, y)
                    scaler.scale(loss / t.grad_accum).backward()
                loss_sum += loss.detach()
            if t.grad_clip > 0:
                scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
                torch.nn.utils.clip_grad_norm_(raw_model.parameters(), t.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            bar.update(1)
            steps_since_mark += 1

            final = step == t.max_steps
            if step % t.log_interval == 0 or step == 1 or final:
                loss_value = loss_sum / t.grad_accum
                if ddp:
                    dist.all_reduce(loss_value, op=dist.ReduceOp.AVG)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                now = time.perf_counter()
                dt = max(now - t_mark - paused, 1e-9)
                train_time += dt
                train_steps += steps_since_mark
                tok_s = tokens_per_step * steps_since_mark / dt
                last = {
                    "step": step,
                    "loss": loss_value.item(),
                    "lr": lr,
                    "tokens_per_s": round(tok_s, 1),
                    "samples_per_s": round(tok_s / cfg.model.block_size, 2),
                    "elapsed_s": round(elapsed_before + now - t_loop, 3),
                }
                if device.startswith("cuda"):
                    mfu = estimate_mfu(n_params, cfg.model, tok_s, env.get("accelerator", ""))
                    if mfu is not None:
                        last["mfu"] = round(mfu, 4)
                tracker.log(last)
                bar.set_postfix(loss=f"{last['loss']:.4f}")
                t_mark, steps_since_mark, paused = time.perf_counter(), 0, 0.0

            t_pause = time.perf_counter()
            if step % t.eval_interval == 0 or final:
                last_eval = evaluate(raw_model, task, cfg, precision, device)
                tracker.log({"step": step, **last_eval})
                if quiet and is_main:
                    shown = " ".join(f"{k} {v:.4f}" for k, v in last_eval.items())
                    print(
                        f"step {step}/{t.max_steps} loss {last.get('loss', 0):.4f} {shown}",
                        file=sys.stderr,
                    )
                if last_eval["eval/loss"] < best_eval:
                    best_eval, bad_evals = last_eval["eval/loss"], 0
                else:
                    bad_evals += 1
                if 0 < t.early_stopping_patience <= bad_evals:
                    stopped_early = True
            if step % t.checkpoint_interval == 0 or final or stopped_early:
                save(step)
            paused += time.perf_counter() - t_pause
            if stopped_early:
                if is_main:
                    print(
                        f"early stopping at step {step}: eval/loss has not improved for "
                        f"{bad_evals} evaluations",
                        file=sys.stderr,
                    )
                break
    finally:
        bar.close()
        tracker.close()

    if is_main:
        sample = ""
        if t.sample_tokens > 0:
            sample = _sample_text(raw_model, task, t.sample_tokens, device)
        summary = {
            "run": run_dir.name,
            "steps": step,
            "max_steps": t.max_steps,
            "seed": t.seed,
            "stopped_early": stopped_early,
            "params": n_params,
            "world_size": world_size,
            "final": last,
            "eval": last_eval,
            "best_eval_loss": best_eval,
            "train_tokens_per_s": round(tokens_per_step * train_steps / train_time, 1)
            if train_time
            else None,
            "train_time_s": round(train_time, 3),
            "wall_time_s": round(elapsed_before + time.perf_counter() - t_loop, 3),
            "environment": env,
            "sample": sample,
        }
        tmp = run_dir / (SUMMARY_FILE + ".tmp")
        tmp.write_text(json.dumps(summary, indent=2), encoding="utf-8")
        os.replace(tmp, run_dir / SUMMARY_FILE)
        write_report(run_dir)
    if ddp:
        dist.barrier()
        dist.destroy_process_group()
    return run_dir


def _sample_text(model: Any, task: Any, n_tokens: int, device: str) -> str:
    """A short generation for the report, from a fixed seed so reports are comparable."""
    import torch

    model.eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        start = torch.zeros((1, 1), dtype=torch.long, device=device)
        out = model.generate(start, n_tokens, temperature=0.8, top_k=None)
    model.train()
    return task.codec.decode(out[0].tolist())


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
