"""The one-page run summary: report.md plus a loss-curve PNG, rebuilt from the run folder.

Everything comes from files in the run folder (config.yaml, metrics.jsonl, summary.json), so
`report RUN_DIR` can rebuild the page at any time, even for a run that was killed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import UserError
from .tracking import read_metrics

REPORT_FILE = "report.md"
PLOT_FILE = "loss.png"


def plot_losses(rows: list[dict[str, Any]], path: Path) -> Path:
    """Train and eval loss against step, saved as PNG (matplotlib's file-only Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    val = [(r["step"], r["eval/loss"]) for r in rows if "eval/loss" in r]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss")
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def write_report(run_dir: Path) -> Path:
    """(Re)write report.md and loss.png for a run folder; returns the report path."""
    import yaml

    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise UserError(f"{run_dir} is not a run folder (no config.yaml)")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    rows = read_metrics(run_dir)
    summary_path = run_dir / "summary.json"
    summary = json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.exists() else {}
    plot_losses(rows, run_dir / PLOT_FILE)

    train_rows = [r for r in rows if "loss" in r]
    eval_rows = [r for r in rows if "eval/loss" in r]
    final = summary.get("final") or (train_rows[-1] if train_rows else {})
    final_eval = summary.get("eval") or (eval_rows[-1] if eval_rows else {})
    seed = config.get("train", {}).get("seed")
    lines = [f"# Run report: {run_dir.name}", ""]
    if not summary:
        lines += [
            "> No summary.json: the run did not finish (figures come from metrics.jsonl).",
            "",
        ]
    lines += [
        "## Result",
        "",
        "| metric | value |",
        "|---|---|",
        f"| steps | {final.get('step', '-')} of {config.get('train', {}).get('max_steps')} |",
        f"| final train loss | {_fmt(final.get('loss', '-'))} |",
    ]
    lines += [f"| {k} | {_fmt(v)} |" for k, v in final_eval.items() if k != "step"]
    if summary:
        lines += [
            f"| best eval loss | {_fmt(summary.get('best_eval_loss'))} |",
            f"| stopped early | {summary.get('stopped_early')} |",
            f"| parameters | {summary.get('params'):,} |",
            f"| training throughput | {_fmt(summary.get('train_tokens_per_s'))} tokens/s |",
            f"| training time | {_fmt(summary.get('train_time_s'))} s "
            f"(wall {_fmt(summary.get('wall_time_s'))} s incl. eval + checkpoints) |",
        ]
        if "mfu" in final:
            lines.append(f"| MFU | {final['mfu']:.1%} |")
    lines += [f"| seed | {seed} |", "", f"![loss curve]({PLOT_FILE})", ""]
    env = summary.get("environment") or {}
    if env:
        lines += ["## Environment", "", "| | |", "|---|---|"]
        keys = ("device", "accelerator", "dtype", "torch", "python", "threads", "memory_gb")
        lines += [f"| {k} | {env[k]} |" for k in keys if env.get(k) is not None]
        if summary.get("world_size", 1) > 1:
            lines.append(f"| processes (DDP) | {summary['world_size']} |")
        lines.append("")
    if summary.get("sample"):
        lines += ["## Sample", "", "```text", summary["sample"].replace("```", "'''"), "```", ""]
    lines += [
        "## Config (resolved)",
        "",
        "```yaml",
        yaml.safe_dump(config, sort_keys=False).rstrip(),
        "```",
        "",
        "Reproduce: `train --config config.yaml` with this file (same seed, same numbers on the "
        "same hardware and torch version).",
        "",
    ]
    out = run_dir / REPORT_FILE
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, out)
    return out
