"""Lab 04: the learning-rate range test (Leslie Smith, 2015; fast.ai's `lr_find`).

Train a fresh copy of the model for a few steps while the learning rate grows exponentially
from 1e-7 to 1. The loss first barely moves (the rate is too small to matter), then falls
faster and faster, then explodes (the rate is too large). A good rate sits where the loss
falls fastest, well before the bottom: that is the suggestion. It is a starting point for
`train.lr`, found in seconds instead of whole runs; the model it trained is thrown away.

It works for any task of the training loop: it builds the task from the config, so the
encoder, LoRA and the freeze schedule's first phase are exactly those of a real run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..config import Config
from ..errors import UserError

START_LR, END_LR = 1e-7, 1.0
SMOOTHING = 0.9  # exponential moving average of the loss: single batches are noisy
EXPLODED = 4.0  # stop once the smoothed loss is this many times its best


def range_test(cfg: Config, steps: int = 100) -> dict[str, Any]:
    """{"lrs", "losses" (smoothed), "suggested_lr", "min_loss_lr", "stopped_at", ...}."""
    import torch

    from ..config import seed_everything
    from ..device import setup_hardware
    from ..optim import build_optimizer
    from ..tasks import task_class

    t = cfg.train
    hw = setup_hardware(t)
    seed_everything(t.seed, t.deterministic)
    task = task_class(cfg.data.kind)(cfg)
    model = task.build_model().to(hw.device).train()
    task.before_step(model, 0)  # the first phase of a freeze schedule, as in a real run
    optimizer = build_optimizer(model, t, task.lr_scale)
    scales = [group["lr"] / t.lr for group in optimizer.param_groups]
    generator = torch.Generator().manual_seed(t.seed)
    lrs, losses = [], []
    average, best = 0.0, math.inf
    for i in range(steps):
        lr = START_LR * (END_LR / START_LR) ** (i / max(1, steps - 1))
        for group, scale in zip(optimizer.param_groups, scales, strict=True):
            group["lr"] = lr * scale
        batch = task.get_batch("train", t.batch_size, generator, hw.device)
        with hw.precision.autocast_context():
            loss = task.loss(model, batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if t.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), t.grad_clip)
        optimizer.step()
        value = loss.item()
        if not math.isfinite(value):
            break
        average = SMOOTHING * average + (1 - SMOOTHING) * value
        smoothed = average / (1 - SMOOTHING ** (i + 1))  # bias-corrected, as in Adam
        lrs.append(lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if i > steps // 10 and smoothed > EXPLODED * best:
            break
    if len(lrs) < 10:
        raise UserError(
            f"the loss exploded after {len(lrs)} steps of the range test; check the data "
            "and the model (it diverges even at tiny learning rates)"
        )
    return {
        "suggested_lr": steepest_descent(lrs, losses),
        "min_loss_lr": lrs[losses.index(min(losses))],
        "steps": steps,
        "stopped_at": len(lrs),
        "lrs": lrs,
        "losses": losses,
    }


def steepest_descent(lrs: list[float], losses: list[float]) -> float:
    """The rate where the smoothed loss falls fastest per decade, before its minimum.

    The first tenth of the curve is skipped (the average is still settling there).
    """
    bottom = losses.index(min(losses))
    start = max(1, len(lrs) // 10)
    if bottom <= start:
        return lrs[bottom] / 10
    slopes = [
        (losses[i + 1] - losses[i - 1]) / (math.log10(lrs[i + 1]) - math.log10(lrs[i - 1]))
        for i in range(start, bottom)
    ]
    return lrs[start + slopes.index(min(slopes))]


def plot(result: dict[str, Any], path: Path) -> Path:
    from ..plots import pyplot, save_figure

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.plot(result["lrs"], result["losses"], label="loss (smoothed)")
    suggested = result["suggested_lr"]
    ax.axvline(suggested, color="tab:red", linestyle="--", label=f"suggested {suggested:.2g}")
    ax.axvline(result["min_loss_lr"], color="grey", linestyle=":", label="lowest loss")
    ax.set_xscale("log")
    top = min(max(result["losses"]), 2 * result["losses"][0])  # keep the explosion off-scale
    ax.set_ylim(min(result["losses"]) * 0.95, top * 1.05)
    ax.set_xlabel("learning rate")
    ax.set_ylabel("training loss")
    ax.set_title("learning-rate range test")
    ax.legend()
    return save_figure(fig, path)


def cli(args: Any) -> int:
    import json

    from ..config import load_config

    if args.steps < 20:
        raise UserError(f"--steps must be >= 20 (got {args.steps}): the curve needs points")
    cfg = load_config(args.config, args.set)
    result = range_test(cfg, args.steps)
    out = args.out or Path("runs") / "lr-find.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    result["plot"] = str(plot(result, out))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    done, last = result["stopped_at"], result["lrs"][-1]
    print(f"range test: {done} of {args.steps} steps, lr {START_LR:g} to {last:.2g}")
    print(f"  lowest loss at lr {result['min_loss_lr']:.2g}")
    print(f"  steepest descent at lr {result['suggested_lr']:.2g} <- suggested train.lr")
    print(f"plot: {out}")
    print(f"Try it: train --config {args.config} --set train.lr={result['suggested_lr']:.2g}")
    return 0
