"""How much does our training loop cost on top of a plain hand-written loop?

Both train the same GPT (nanoGPT's CPU example shape: 4 layers, 4 heads, 128 wide, block 64,
batch 12, no dropout) on the same data with the same optimizer. The plain loop is the
textbook five lines; ours is `train.run` (LR schedule, GradScaler/autocast plumbing, metrics,
progress bar, timing), timed in its steady state from the `elapsed_s` it logs, so model
construction, evaluation, checkpoints and the report are not counted. Both are timed in
chunks of 10 steps, alternately, in one process, and the best chunk of each is compared:
other processes on a shared machine slow some chunks down 5-20x, the best ones are not.

    python benchmarks/bench_train.py [--steps 100] [--repeats 5] [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from statistics import median

import torch

from {{ cookiecutter.package_name }}.config import load_config
from {{ cookiecutter.package_name }}.optim import build_optimizer
from {{ cookiecutter.package_name }}.tasks import TextTask
from {{ cookiecutter.package_name }}.tracking import read_metrics
from {{ cookiecutter.package_name }}.train import run

ROOT = Path(__file__).resolve().parents[1]
SHAPE = {
    "model.n_layer": 4,
    "model.n_head": 4,
    "model.n_embd": 128,
    "model.block_size": 64,
    "model.dropout": 0.0,
    "model.bias": False,
    "train.batch_size": 12,
    "train.device": "cpu",
}


CHUNK = 10  # steps per timed chunk; our loop logs (and times itself) every 10 steps too


def plain_loop(cfg, steps: int) -> list[float]:
    """Seconds per step, per chunk of 10 steps, of the simplest correct loop."""
    task = TextTask(cfg)
    torch.manual_seed(0)
    model = task.build_model()
    opt = build_optimizer(model, cfg.train)
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        x, y = task.get_batch("train", cfg.train.batch_size, gen, "cpu")
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()  # our loop reads the loss when it logs; do the same here

    for _ in range(CHUNK):  # warm-up
        step()
    chunks = []
    for _ in range(steps // CHUNK):
        start = time.perf_counter()
        for _ in range(CHUNK):
            step()
        chunks.append((time.perf_counter() - start) / CHUNK)
    return chunks


def our_loop(cfg, steps: int, runs_dir: Path, repeat: int) -> list[float]:
    """Seconds per step of train.run, per 10-step logging interval (after a warm-up chunk)."""
    cfg.name = f"bench-{repeat}"
    cfg.train.max_steps = CHUNK + steps
    cfg.train.log_interval = CHUNK
    rows = [r for r in read_metrics(run(cfg, runs_dir)) if "tokens_per_s" in r]
    tokens_per_step = cfg.train.batch_size * cfg.model.block_size
    return [tokens_per_step / r["tokens_per_s"] for r in rows if r["step"] > CHUNK]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = [f"{k}={v}" for k, v in SHAPE.items()]
    overrides += [
        f"data.path={ROOT / 'docs'}",
        "train.log_interval=10",
        "train.eval_interval=100000",  # evaluate and checkpoint only at the very end
        "train.checkpoint_interval=100000",
        "train.eval_iters=1",
        "train.sample_tokens=0",
        f"train.threads={args.threads}",
    ]
    plain, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):
            plain += plain_loop(load_config(None, overrides), args.steps)
            ours += our_loop(load_config(None, overrides), args.steps, Path(tmp), r)
    best_plain, best_ours = min(plain), min(ours)
    result = {
        "plain_ms_per_step": round(best_plain * 1e3, 2),
        "ours_ms_per_step": round(best_ours * 1e3, 2),
        "overhead_pct": round((best_ours / best_plain - 1) * 100, 2),
        "tokens_per_s": round(12 * 64 / best_ours, 1),
        "median_overhead_pct": round((median(ours) / median(plain) - 1) * 100, 2),
        "chunks": len(plain),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"plain loop : {result['plain_ms_per_step']:.2f} ms/step")
        print(
            f"our loop   : {result['ours_ms_per_step']:.2f} ms/step "
            f"({result['tokens_per_s']:.0f} tokens/s)"
        )
        print(f"overhead   : {result['overhead_pct']:+.2f} % (target <= 5 %), best 10-step chunks")
        print(f"             {result['median_overhead_pct']:+.2f} % comparing medians (noisier)")


if __name__ == "__main__":
    main()
