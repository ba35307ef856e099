"""The one-page run summary: report.md plus a loss-curve PNG, rebuilt from the run folder.

Everything comes from files in the run folder (config.yaml, metrics.jsonl, summary.json), so
`report RUN_DIR` can rebuild the page at any time, even for a run that was killed.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from .errors import UserError
from .files import NotText, atomic_write_text, read_text_file
from .tracking import read_metrics

REPORT_FILE = "report.md"
PLOT_FILE = "loss.png"


def plot_losses(rows: list[dict[str, Any]], path: Path) -> Path:
    """Train and eval loss against step, saved as PNG (matplotlib's file-only Agg backend)."""
    from .plots import pyplot, save_figure

    plt = pyplot()
    train = [(r["step"], r["loss"]) for r in rows if "loss" in r]
    val = [(r["step"], r["eval/loss"]) for r in rows if "eval/loss" in r]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), label="train loss")
    if val:
        ax.plot(*zip(*val, strict=True), "o-", label="eval loss")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    if train or val:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no metrics yet", ha="center", va="center", transform=ax.transAxes)
    return save_figure(fig, path)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def run_task(run_dir: Path) -> str | None:
    """The task (`data.kind`) a run folder trains, or None when its config cannot tell.

    The demo asks this of every run on every request, so each config.yaml is read once (until
    it changes: the cache key holds its modification time).
    """
    try:
        stamp = (Path(run_dir) / "config.yaml").stat().st_mtime_ns
    except OSError:
        return None
    return _run_task(Path(run_dir).resolve(), stamp)


@functools.lru_cache(maxsize=1024)
def _run_task(run_dir: Path, stamp: int) -> str | None:
    try:
        return str(read_config(run_dir).get("data", {}).get("kind", "text"))
    except (UserError, OSError):
        return None


def read_config(run_dir: Path) -> dict[str, Any]:
    import yaml

    path = run_dir / "config.yaml"
    if not path.is_file():
        raise UserError(f"{run_dir} is not a run folder (no config.yaml)")
    try:
        config = yaml.safe_load(read_text_file(path))
    except (NotText, yaml.YAMLError) as exc:
        raise UserError(f"{path} is damaged ({str(exc).splitlines()[0]}); restore it") from None
    if not isinstance(config, dict) or not all(
        isinstance(v, dict) for k, v in config.items() if k != "name"
    ):
        raise UserError(f"{path} is damaged (not a mapping of sections); restore it")
    return config


def read_summary(run_dir: Path) -> tuple[dict[str, Any], str]:
    """summary.json, or {} with a note saying why it is not used."""
    path = run_dir / "summary.json"
    if not path.exists():
        return {}, "No summary.json: the run did not finish (figures come from metrics.jsonl)."
    try:
        summary = json.loads(read_text_file(path))
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
    except (ValueError, OSError) as exc:
        return {}, f"summary.json is damaged ({exc}); figures come from metrics.jsonl."
    return summary, ""


def write_report(run_dir: Path) -> Path:
    """(Re)write report.md and loss.png for a run folder; returns the report path."""
    import yaml

    run_dir = Path(run_dir)
    if run_dir.is_file():
        raise UserError(f"{run_dir} is a file; give a run folder (runs/<name>)")
    config = read_config(run_dir)
    rows = read_metrics(run_dir)
    summary, note = read_summary(run_dir)
    plot_losses(rows, run_dir / PLOT_FILE)

    train_rows = [r for r in rows if "loss" in r]
    eval_rows = [r for r in rows if "eval/loss" in r]
    final = _mapping(summary.get("final")) or (train_rows[-1] if train_rows else {})
    final_eval = _mapping(summary.get("eval")) or (eval_rows[-1] if eval_rows else {})
    seed = config.get("train", {}).get("seed")
    lines = [f"# Run report: {run_dir.name}", ""]
    if note:
        lines += [f"> {note}", ""]
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
        unit = next(
            (k[6:-6] for k in summary if k.startswith("train_") and k.endswith("_per_s")), ""
        )
        lines += [
            f"| best eval loss | {_fmt(summary.get('best_eval_loss'))} |",
            f"| stopped early | {summary.get('stopped_early')} |",
            f"| parameters | {_fmt(summary.get('params'))} |",
            f"| training throughput | {_fmt(summary.get(f'train_{unit}_per_s'))} {unit}/s |",
            f"| training time | {_fmt(summary.get('train_time_s'))} s "
            f"(wall {_fmt(summary.get('wall_time_s'))} s incl. eval + checkpoints) |",
        ]
        if isinstance(final.get("mfu"), float):
            lines.append(f"| MFU | {final['mfu']:.1%} |")
        if "sample_word_share" in summary:
            lines.append(
                f"| sample words found in the training text | {summary['sample_word_share']:.0%} |"
            )
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
        lines += [
            "## Sample",
            "",
            "```text",
            str(summary["sample"]).replace("```", "'''"),
            "```",
            "",
        ]
    examples = summary.get("examples")
    if isinstance(examples, list) and examples:
        lines += ["## Examples (held-out, wrong ones first)", "", "| input | expected | model |"]
        lines += ["|---|---|---|"]
        for ex in examples:
            if isinstance(ex, dict):
                mark = "" if ex.get("output") == ex.get("target") else " ✗"
                lines.append(
                    f"| `{ex.get('input')}` | `{ex.get('target')}` | `{ex.get('output')}`{mark} |"
                )
        lines.append("")
    for table in summary.get("tables") or []:  # a task's own tables: {title, columns, rows}
        if isinstance(table, dict) and table.get("columns"):
            lines += [f"## {table.get('title', '')}", ""]
            lines += ["| " + " | ".join(str(c) for c in table["columns"]) + " |"]
            lines += ["|" + "---|" * len(table["columns"])]
            lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in table["rows"]]
            lines += ["", table["note"], ""] if table.get("note") else [""]
    figures = [f for f in summary.get("figures") or [] if isinstance(f, dict) and f.get("file")]
    for figure in figures:
        lines += [f"## {figure.get('title', figure['file'])}", "", f"![]({figure['file']})", ""]
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
    return atomic_write_text(run_dir / REPORT_FILE, "\n".join(lines))


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
