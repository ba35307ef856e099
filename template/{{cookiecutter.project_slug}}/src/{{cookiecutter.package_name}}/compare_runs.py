"""`compare RUN_DIR...`: several runs side by side, as one table and one plot of their losses.

Everything comes from the run folders, as in `report.py`: a finished run's `summary.json`
gives the final figures; a run without one (still training, killed, crashed) is compared from
its `metrics.jsonl` and marked "(unfinished)". The table has one row per run and one column
per metric found in any run; the best value of each metric column is marked with `*`
(lowest for a loss, highest for anything else, such as accuracy or macro-F1).

The plot overlays the training loss of every run (solid lines) and its evaluation loss (dashed,
same colour), so the curves show what the final numbers cannot: which run learned faster, and
where one started to overfit.

Only the standard library is imported at the top, so building the CLI parser stays instant;
the helpers that read run folders import torch (through the config) and are loaded when the
command runs.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError

DEFAULT_PLOT = "runs/compare.png"  # beside the runs, out of git (like lr-find.png)
SUMMARY_FILE = "summary.json"
METRICS_FILE = "metrics.jsonl"
# Columns every row has, in table order: (JSON key, column title).
HEAD = (("run", "run"), ("task", "task"), ("steps", "steps"), ("train_loss", "train loss"))
TAIL = (("params", "params"), ("train_time_s", "train time (s)"))


@dataclass
class RunData:
    """One run as the comparison sees it: its table row and its two loss curves."""

    label: str  # the name shown in the table and the plot legend
    row: dict[str, Any]
    train: list[tuple[int, float]] = field(default_factory=list)  # (step, training loss)
    evals: list[tuple[int, float]] = field(default_factory=list)  # (step, eval/loss)
    note: str = ""  # why figures come from metrics.jsonl, when summary.json is damaged


def _number(value: Any) -> float | int | None:
    """A finite int or float, else None (metrics.jsonl writes NaN/inf as null)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _is_run(path: Path) -> bool:
    return (path / SUMMARY_FILE).is_file() or (path / METRICS_FILE).is_file()


def _holds_runs(path: Path) -> bool:
    """Whether a folder is a runs folder (its subfolders are runs), for a helpful error."""
    try:
        return any(_is_run(child) for child in path.iterdir() if child.is_dir())
    except OSError:
        return False


def run_folders(paths: list[str]) -> list[Path]:
    """The folders to compare, checked, each once (the same folder given twice counts once)."""
    if not paths:
        raise UserError("give at least one run folder, e.g. compare runs/<name-a> runs/<name-b>")
    folders, seen = [], set()
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise UserError(f"{path} does not exist; give a run folder (train writes runs/<name>/)")
        if not path.is_dir():
            raise UserError(f"{path} is a file; give a run folder (train writes runs/<name>/)")
        if not _is_run(path):
            hint = ""
            if _holds_runs(path):
                hint = f"; to compare every run in it: compare {path / '*'}"
            raise UserError(f"not a run folder: {path} (train writes runs/<name>/{hint})")
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            folders.append(path)
    return folders


def load_run(run_dir: Path) -> RunData:
    """Read one run folder: summary.json when the run finished, metrics.jsonl always."""
    from .report import read_summary, run_task
    from .tracking import read_metrics

    summary, note = read_summary(run_dir)  # ({}, why) when missing or damaged
    rows = read_metrics(run_dir)  # skips damaged lines (one warning)
    train_rows = [r for r in rows if "loss" in r]
    eval_rows = [r for r in rows if "eval/loss" in r]
    final = _mapping(summary.get("final")) or (train_rows[-1] if train_rows else {})
    last_eval = _mapping(summary.get("eval")) or (eval_rows[-1] if eval_rows else {})

    task = summary.get("task")
    if not isinstance(task, str):  # an unfinished run has no summary: its config.yaml says
        task = run_task(run_dir)
    steps = _number(summary.get("steps"))
    if steps is None and rows:
        steps = max(r["step"] for r in rows)

    row: dict[str, Any] = {
        "run": run_dir.resolve().name,
        "path": str(run_dir),
        "finished": bool(summary),
        "task": task if isinstance(task, str) else None,
        "steps": steps,
        "train_loss": _number(final.get("loss")),
    }
    row.update({k: _number(v) for k, v in last_eval.items() if k.startswith("eval/")})
    row.update({f"test/{k}": _number(v) for k, v in _mapping(summary.get("test")).items()})
    row["params"] = _number(summary.get("params"))
    row["train_time_s"] = _number(summary.get("train_time_s"))

    damaged = not summary and (run_dir / SUMMARY_FILE).exists()  # note says why
    label = row["run"]
    if not summary:
        label += " (damaged summary)" if damaged else " (unfinished)"
    curve = [(r["step"], r["loss"]) for r in train_rows]
    eval_curve = [(r["step"], r["eval/loss"]) for r in eval_rows]
    return RunData(
        label=label,
        row=row,
        train=[(s, v) for s, v in curve if _number(v) is not None],  # null: a non-finite loss
        evals=[(s, v) for s, v in eval_curve if _number(v) is not None],
        note=note if damaged else "",
    )


def metric_keys(rows: list[dict[str, Any]]) -> list[str]:
    """Every eval/* and test/* key found in any run: eval/loss first, then eval/*, then test/*."""
    keys = {k for row in rows for k in row if k.startswith(("eval/", "test/"))}
    return sorted(keys, key=lambda k: (k.startswith("test/"), k != "eval/loss", k))


def best_values(rows: list[dict[str, Any]], keys: list[str]) -> dict[str, list[str]]:
    """{metric: names of the runs with its best value}, for metrics at least two runs have.

    Lower is better for a loss (any key with "loss" in it), higher for everything else.
    """
    best = {}
    for key in keys:
        values = [(row[key], row["run"]) for row in rows if _number(row.get(key)) is not None]
        if len(values) < 2:
            continue  # one number is not a comparison
        pick = min if "loss" in key else max
        target = pick(v for v, _ in values)
        best[key] = [name for v, name in values if v == target]
    return best


def short(value: Any) -> str:
    """A table cell: 4 significant digits, large counts as 22.71M, missing as "-"."""
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        if abs(value) < 100_000:
            return str(value)
        for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
            if abs(value) >= div:
                return f"{value / div:.4g}{unit}"
    return f"{value:.4g}"


def format_table(runs: list[RunData], keys: list[str], best: dict[str, list[str]]) -> str:
    """Aligned plain-text table, one row per run; text left-aligned, numbers right-aligned."""
    columns = [*HEAD, *((k, k) for k in keys), *TAIL]
    table = [[title for _, title in columns]]
    for run in runs:
        cells = []
        for key, _ in columns:
            if key == "run":
                cells.append(run.label)
                continue
            cell = short(run.row.get(key))
            if run.row["run"] in best.get(key, ()):
                cell += "*"
            cells.append(cell)
        table.append(cells)
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = []
    for n, line in enumerate(table):
        cells = [
            cell.ljust(width) if n == 0 or key in ("run", "task") else cell.rjust(width)
            for cell, width, (key, _) in zip(line, widths, columns, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def use_log_scale(values: list[float]) -> bool:
    """True when the losses span more than 10x (a log scale needs every value above zero).

    Without it, one run that diverged, or a run of another task, squashes the others flat.
    """
    return bool(values) and min(values) > 0 and max(values) / min(values) > 10


def plot_runs(runs: list[RunData], path: Path) -> Path:
    """Overlaid loss curves: training loss solid, eval loss dashed, one colour per run."""
    from .plots import pyplot, save_figure

    plt = pyplot()  # matplotlib drawing into files only
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    values = []
    for i, run in enumerate(runs):
        color = f"C{i % 10}"
        if run.train:
            ax.plot(*zip(*run.train, strict=True), color=color, label=run.label)
        if run.evals:
            label = None if run.train else run.label
            ax.plot(*zip(*run.evals, strict=True), "o--", color=color, label=label)
        values += [v for _, v in run.train + run.evals]
    if values:
        if use_log_scale(values):
            ax.set_yscale("log")
        ax.legend(fontsize="small")
    else:
        ax.text(0.5, 0.5, "no losses logged yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_title("loss per step (solid: train, dashed: eval)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # runs/ for the default
        return save_figure(fig, path)  # atomic: a failed write leaves the old file
    except OSError as exc:
        plt.close(fig)
        raise UserError(f"cannot write the plot {path}: {exc.strerror or exc}") from None


def compare(
    paths: list[str], out: str | Path = DEFAULT_PLOT
) -> tuple[list[RunData], dict[str, Any]]:
    """Compare run folders and write the plot.

    Returns the runs (for the table) and the result `--json` prints:
    {"runs": [row, ...], "best": {metric: [run, ...]}, "notes": [...], "plot": path}.
    """
    out = Path(out)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file name such as {DEFAULT_PLOT}")
    folders = run_folders(paths)
    runs = [load_run(folder) for folder in folders]
    names = [run.row["run"] for run in runs]
    for run, folder in zip(runs, folders, strict=True):
        if names.count(run.row["run"]) > 1:  # same folder name under different parents
            run.label = run.label.replace(run.row["run"], str(folder), 1)
            run.row["run"] = str(folder)
    rows = [run.row for run in runs]
    keys = metric_keys(rows)
    best = best_values(rows, ["train_loss", *keys])
    # Every run has every column: null where a run lacks a metric.
    for row in rows:
        for key in keys:
            row.setdefault(key, None)
    notes = [f"{run.row['path']}: {run.note}" for run in runs if run.note]
    tasks = sorted({row["task"] for row in rows if row["task"]})
    if len(tasks) > 1:
        notes.append(
            f"these runs train different tasks ({', '.join(tasks)}): only the metrics they "
            "share line up, and their losses measure different things"
        )
    plot_runs(runs, out)
    return runs, {"runs": rows, "best": best, "notes": notes, "plot": str(out)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The `compare` command's arguments (the core CLI registers the command)."""
    parser.add_argument(
        "run_dirs", nargs="*", metavar="RUN_DIR", help="run folders, e.g. runs/<name>"
    )
    parser.add_argument(
        "--out",
        default=DEFAULT_PLOT,
        metavar="PNG",
        help=f"where to write the overlaid loss curves (default: {DEFAULT_PLOT})",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def cmd_compare(args: argparse.Namespace) -> int:
    runs, result = compare(args.run_dirs, args.out)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    keys = metric_keys(result["runs"])
    print(format_table(runs, keys, result["best"]))
    if result["best"]:
        print("* best in its column (lowest loss; highest for other metrics)")
    for note in result["notes"]:
        print(f"note: {note}")
    print(f"plot: {result['plot']}")
    return 0
