"""Lab 08: a one-page technical note from a finished run's measured numbers.

`theory note RUN_DIR [--out PATH]` reads the run folder that `train` wrote (config.yaml,
summary.json, metrics.jsonl, loss.png) and writes note.md: problem, method, set-up, results,
the loss curve, worked examples, and what to try next. Every number in it comes from those
files; nothing is typed by hand, so the note always matches the run.

The wording lives in note_template.md (beside this file, in your project's language); this
module computes the numbers and picks the suggestions. The suggestions follow explicit rules,
checked in this order; the first four that fire are kept, and the thresholds are the constants
below:

- overfitting: the last eval loss is >= 10 % above its best while the train loss, measured at
  the same evaluations, kept falling -> dropout, weight decay, more data, an earlier checkpoint;
- stopped_early: early stopping ended the run -> a lower learning rate, or more patience;
- below_target: eval/accuracy < 0.99 (and neither rule above fired) -> more steps;
- still_falling: no accuracy metric, and the loss fell > 2 % over the last fifth of the run
  -> more steps;
- bigger_model: the loss no longer falls, eval and train loss are within 10 % of each other,
  yet the loss is still > 30 % of its value at step 1 (and the accuracy target, if any, is
  unmet): underfitting -> a bigger model;
- target_met: eval/accuracy >= 0.99 -> find the cheapest set-up that still meets it;
- settled: none of the above fired -> find the cheapest set-up with the same eval loss;
- seeds: always -> repeat with other seeds and report the spread.

note.md is rebuilt each time the command runs (the path is printed): to keep your own edits,
copy it or write to another file with `--out`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from ..errors import UserError
from ..files import NotText, atomic_write_text, read_text_file

NOTE_FILE = "note.md"
TEMPLATE_FILE = Path(__file__).with_name("note_template.md")
MARKER = re.compile(r"^<!-- ([\w.]+) -->$", re.MULTILINE)

# The thresholds of the rules (see the table above).
OVERFIT_RISE = 0.10  # last eval loss this far above its best: the eval loss is rising
STILL_FALLING = 0.02  # relative drop of the loss over the last fifth of the run
TARGET_ACCURACY = 0.99  # the accuracy target of the addition and digits labs
SMALL_GAP = 0.10  # eval loss within 10 % of the train loss: not overfitting
HIGH_LOSS = 0.30  # loss still above 30 % of its value at step 1: far from learned
MAX_SUGGESTIONS = 4
RULES = (
    "overfitting",
    "stopped_early",
    "below_target",
    "still_falling",
    "bigger_model",
    "target_met",
    "settled",
    "seeds",
)  # each has a part `try.<rule>` in note_template.md
MAX_EXAMPLES = 5  # worked examples shown (the report has more)
MAX_SAMPLE_CHARS = 400  # of the text sample: the note stays one page


# ----------------------------------------------------------------------------- the numbers


@dataclass
class Facts:
    """The numbers the rules look at, measured from summary.json and metrics.jsonl."""

    steps: int  # optimizer steps done
    max_steps: int  # optimizer steps planned
    stopped_early: bool
    accuracy: float | None  # the last eval/accuracy; None when the task has none
    first_loss: float | None  # train loss at the first logged step
    eval_loss: float | None  # eval loss at the last evaluation
    best_eval_loss: float | None  # lowest eval loss of the run
    best_step: int | None  # the step of that lowest eval loss
    train_loss: float | None  # train loss at the last evaluation (eval/train_loss)
    train_at_best: float | None  # train loss at the evaluation with the lowest eval loss
    drop: float | None  # relative drop of the loss over the last fifth of the run


def measure(summary: dict[str, Any], rows: list[dict[str, Any]]) -> Facts:
    """Facts from a run's summary and its metrics lines (rows may be partial or empty)."""
    train = [r["loss"] for r in rows if _number(r.get("loss"))]
    evals = [r for r in rows if _number(r.get("eval/loss"))]
    final_eval = _mapping(summary.get("eval"))
    best = min(evals, key=lambda r: r["eval/loss"]) if evals else None
    last = evals[-1] if evals else None
    curve = [r["eval/loss"] for r in evals] if len(evals) >= 2 else train
    accuracy = final_eval.get("eval/accuracy", last.get("eval/accuracy") if last else None)
    return Facts(
        steps=int(summary.get("steps") or 0),
        max_steps=int(summary.get("max_steps") or 0),
        stopped_early=bool(summary.get("stopped_early")),
        accuracy=accuracy if _number(accuracy) else None,
        first_loss=train[0] if train else None,
        eval_loss=_first_number(final_eval.get("eval/loss"), last and last["eval/loss"]),
        best_eval_loss=_first_number(summary.get("best_eval_loss"), best and best["eval/loss"]),
        best_step=best["step"] if best else None,
        train_loss=_first_number(
            final_eval.get("eval/train_loss"), last and last.get("eval/train_loss")
        ),
        train_at_best=_first_number(best and best.get("eval/train_loss")),
        drop=recent_drop(curve),
    )


def recent_drop(values: list[float]) -> float | None:
    """How much the loss fell over the last fifth of the curve, relative: mean of the last
    fifth of the points against the mean of the fifth before it. None with < 2 points."""
    if len(values) < 2:
        return None
    w = max(1, len(values) // 5)
    before = sum(values[-2 * w : -w]) / len(values[-2 * w : -w])
    after = sum(values[-w:]) / w
    return (before - after) / before if before > 0 else None


# ----------------------------------------------------------------------------- the rules


def what_to_try_next(f: Facts) -> list[tuple[str, dict[str, Any]]]:
    """The suggestions for a run: (rule name, values its sentence needs), in rule order.

    At most MAX_SUGGESTIONS; at least two, because "seeds" always fires and "settled" fires
    when nothing else does. Each rule is one `if`: read it next to the table in the docstring.
    """
    out: list[tuple[str, dict[str, Any]]] = []
    more_steps = {"more_steps": 2 * max(f.max_steps, 1)}
    overfitting = (
        f.best_eval_loss is not None
        and f.eval_loss is not None
        and f.eval_loss >= f.best_eval_loss * (1 + OVERFIT_RISE)
        and f.train_loss is not None
        and f.train_at_best is not None
        and f.train_loss < f.train_at_best
    )
    if overfitting:
        out.append(("overfitting", {}))
    if f.stopped_early:
        out.append(("stopped_early", {}))
    has_target = f.accuracy is not None
    falling = f.drop is not None and f.drop > STILL_FALLING
    if has_target and f.accuracy < TARGET_ACCURACY and not (overfitting or f.stopped_early):
        out.append(("below_target", more_steps))
    if not has_target and falling and not (overfitting or f.stopped_early):
        out.append(("still_falling", {**more_steps, "drop_pct": round(100 * f.drop, 1)}))
    if (
        not falling
        and f.eval_loss is not None
        and f.train_loss
        and f.first_loss
        and abs(f.eval_loss - f.train_loss) / f.train_loss < SMALL_GAP
        and f.eval_loss > HIGH_LOSS * f.first_loss
        and not (has_target and f.accuracy >= TARGET_ACCURACY)
    ):
        gap = abs(f.eval_loss - f.train_loss) / f.train_loss
        level = f.eval_loss / f.first_loss
        out.append(
            ("bigger_model", {"gap_pct": round(100 * gap, 1), "level_pct": round(100 * level)})
        )
    if has_target and f.accuracy >= TARGET_ACCURACY:
        out.append(("target_met", {}))
    if not out:
        out.append(("settled", {}))
    out.append(("seeds", {}))
    return out[:MAX_SUGGESTIONS]


# ----------------------------------------------------------------------------- the page


def load_parts(path: Path = TEMPLATE_FILE) -> dict[str, str]:
    """note_template.md split at its `<!-- name -->` lines: {name: text}."""
    text = path.read_text(encoding="utf-8")
    pieces = MARKER.split(text)  # [preamble, name, text, name, text, ...]
    return {name: body.strip("\n") for name, body in zip(pieces[1::2], pieces[2::2], strict=True)}


def read_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """(config, summary, metrics rows) of a finished run, or a UserError saying what to do."""
    import yaml

    from ..tracking import read_metrics

    if not run_dir.is_dir() or not (run_dir / "config.yaml").is_file():
        what = "does not exist" if not run_dir.exists() else "is not a run folder (no config.yaml)"
        raise UserError(f"{run_dir} {what}: give a folder that `train` wrote, e.g. runs/<name>")
    try:
        config = yaml.safe_load(read_text_file(run_dir / "config.yaml"))
    except (NotText, yaml.YAMLError) as exc:
        raise UserError(f"{run_dir / 'config.yaml'} is damaged ({exc}); restore it") from None
    if not isinstance(config, dict):
        raise UserError(f"{run_dir / 'config.yaml'} is damaged (not a mapping); restore it")
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        raise UserError(
            f"{run_dir} has no summary.json: the run did not finish. Finish it with "
            f"`train --resume {run_dir}`, then write the note again"
        )
    try:
        summary = json.loads(read_text_file(summary_path))
        if not isinstance(summary, dict):
            raise ValueError("not a JSON object")
    except (ValueError, OSError) as exc:
        raise UserError(
            f"{summary_path} is damaged ({exc}); restore it, or train the run again"
        ) from None
    return config, summary, read_metrics(run_dir)


def build_note(run_dir: Path, out: Path, parts: dict[str, str] | None = None) -> str:
    """The note's Markdown for the run in `run_dir`, to be written at `out`."""
    from ..report import PLOT_FILE, plot_losses

    parts = parts or load_parts()
    config, summary, rows = read_run(run_dir)
    model, data, train = (_mapping(config.get(k)) for k in ("model", "data", "train"))
    env = _mapping(summary.get("environment"))
    final_eval = _mapping(summary.get("eval"))
    facts = measure(summary, rows)
    task = str(summary.get("task") or data.get("kind") or "?")

    plot = run_dir / PLOT_FILE
    if not plot.is_file():  # e.g. deleted, or the run was copied without it
        plot_losses(rows, plot)

    values: dict[str, Any] = {
        "run": summary.get("run") or run_dir.name,
        "task": task,
        "params": fmt(summary.get("params")),
        "steps": fmt(facts.steps),
        "max_steps": fmt(facts.max_steps),
        "seed": summary.get("seed", train.get("seed", "-")),
        "accuracy": percent(facts.accuracy),
        "target": percent(TARGET_ACCURACY),
        "batch": batch(train),
        "best_eval_loss": fmt(facts.best_eval_loss),
        "wall_time_s": fmt(summary.get("wall_time_s")),
        "train_time_s": fmt(summary.get("train_time_s")),
        "final_loss": fmt(_mapping(summary.get("final")).get("loss")),
        "throughput": throughput(summary),
        "device": env.get("accelerator") or env.get("device") or "-",
        "dtype": env.get("dtype", "-"),
        "torch": env.get("torch", "-"),
        "plot": Path(os.path.relpath(plot, out.parent)).as_posix(),
        "val_pct": fmt(100 * float(data.get("val_fraction") or 0)),
        "path": data.get("path", "-"),
        "tokenizer": data.get("tokenizer", "-"),
        "block_size": model.get("block_size", "-"),
    }
    values.update({k: fmt(train.get(k)) for k in _TRAIN_KEYS})
    values.update(addition_example(int(data.get("digits") or 2)))
    values["metric_rows"] = "\n".join(
        f"| {key} | {fmt_metric(key, value)} |"
        for key, value in final_eval.items()
        if key != "step"
    )
    values["headline"] = fill(
        parts["headline.accuracy" if facts.accuracy is not None else "headline.loss"], values
    )
    problem = f"problem.{task}" if f"problem.{task}" in parts else "problem.other"
    values["problem"] = fill(parts[problem], values)
    values["method"] = describe_model(model, values, parts)
    values["examples"] = examples(summary.get("examples"), parts)
    values["sample"] = sample(summary.get("sample"), parts)
    values["suggestions"] = "\n".join(
        f"{i}. " + fill(parts[f"try.{rule}"], {**values, **_rule_values(facts, model), **extra})
        for i, (rule, extra) in enumerate(what_to_try_next(facts), start=1)
    )
    page = fill(parts["page"], values)
    page = re.sub(r"\n{3,}", "\n\n", page)  # empty optional sections leave no gaps
    return "\n".join(line.rstrip() for line in page.strip().splitlines()) + "\n"


def write_note(run_dir: Path, out: Path | None = None) -> Path:
    """Write the note atomically and return its path: RUN_DIR/note.md by default, else `out`
    (a file, or a folder to hold note.md; missing folders are created). Replaces the file."""
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / NOTE_FILE
    if out.is_dir():
        out = out / NOTE_FILE
    text = build_note(run_dir, out)  # first: a bad run folder creates nothing
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the folder for {out}: {exc.strerror}") from None
    return atomic_write_text(out, text)


def cli(args: argparse.Namespace) -> int:
    path = write_note(args.run_dir, args.out)
    print(path)
    return 0


# ----------------------------------------------------------------------------- helpers

_TRAIN_KEYS = (
    "warmup_steps",
    "lr",
    "min_lr",
    "weight_decay",
    "grad_clip",
)


def fill(text: str, values: dict[str, Any]) -> str:
    """A template part with its $names filled; a name without a value is a bug (KeyError)."""
    return Template(text).substitute({k: str(v) for k, v in values.items()})


def fmt(value: Any) -> str:
    """Numbers as the note shows them: integers with thousands separators, floats with four
    significant digits, a missing value as '-'."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def fmt_metric(key: str, value: Any) -> str:
    """A metric in the results table: accuracies with four decimals (0.9990), others as fmt."""
    if key.endswith("accuracy") and _number(value):
        return f"{value:.4f}"
    return fmt(value)


def percent(value: float | None) -> str:
    """0.999 -> '99.9' (the template adds the % sign, spaced as its language spaces it)."""
    return "-" if value is None else f"{100 * value:.1f}".removesuffix(".0")


def batch(train: dict[str, Any]) -> str:
    """'64', or '64 x 4 = 256' with gradient accumulation (micro-batch x micro-batches)."""
    size, accum = train.get("batch_size"), train.get("grad_accum") or 1
    if not isinstance(size, int) or not isinstance(accum, int) or accum == 1:
        return fmt(size)
    return f"{size:,} x {accum} = {size * accum:,}"


def throughput(summary: dict[str, Any]) -> str:
    """'12,345 tokens/s' from the summary's train_<unit>_per_s key."""
    for key, value in summary.items():
        if key.startswith("train_") and key.endswith("_per_s") and _number(value):
            return f"{value:,.0f} {key[6:-6]}/s"
    return "-"


def addition_example(digits: int) -> dict[str, str]:
    """The addition problem's format for this width: '07+35=' and '042' for 2 digits."""
    a, b = 7 % 10**digits, 35 % 10**digits
    return {
        "digits": str(digits),
        "example_prompt": f"{a:0{digits}d}+{b:0{digits}d}=",
        "example_answer": f"{a + b:0{digits + 1}d}",
        "n_pairs": f"{10 ** (2 * digits):,}",
    }


def describe_model(model: dict[str, Any], values: dict[str, Any], parts: dict[str, str]) -> str:
    """The Method paragraph: which model (from the config's model section) and its size."""
    if "n_layer" in model:
        part = "method.gpt"
    elif "channels" in model:
        part = "method.cnn"
    else:
        part = "method.other"
    settings = ", ".join(f"{k}={v}" for k, v in model.items()) or "-"
    shown = {k: ", ".join(map(str, v)) if isinstance(v, list) else v for k, v in model.items()}
    return fill(
        parts[part], {**{k: "-" for k in _MODEL_KEYS}, **shown, **values, "settings": settings}
    )


_MODEL_KEYS = (
    "n_layer",
    "n_head",
    "n_embd",
    "dropout",
    "convs",
    "kernel_size",
    "channels",
    "hidden",
)


def examples(rows: Any, parts: dict[str, str]) -> str:
    """The worked-examples table (first few), or '' when the run has none."""
    if not isinstance(rows, list) or not rows:
        return ""
    lines = []
    for ex in [r for r in rows if isinstance(r, dict)][:MAX_EXAMPLES]:
        mark = "" if ex.get("output") == ex.get("target") else " ✗"
        cells = [_cell(ex.get("input")), _cell(ex.get("target")), _cell(ex.get("output"))]
        lines.append(f"| {cells[0]} | {cells[1]} | {cells[2]}{mark} |")
    return fill(parts["examples"], {"rows": "\n".join(lines)}) if lines else ""


def sample(text: Any, parts: dict[str, str]) -> str:
    """The text sample in a code block (shortened to MAX_SAMPLE_CHARS), or ''."""
    if not text:
        return ""
    text = str(text).replace("```", "'''")
    if len(text) > MAX_SAMPLE_CHARS:
        text = text[:MAX_SAMPLE_CHARS].rstrip() + " …"
    return fill(parts["sample"], {"sample": text.strip("\n")})


def _rule_values(f: Facts, model: dict[str, Any]) -> dict[str, Any]:
    """Every value a suggestion sentence may quote."""
    return {
        "eval_loss": fmt(f.eval_loss),
        "best_step": fmt(f.best_step),
        "train_loss": fmt(f.train_loss),
        "train_at_best": fmt(f.train_at_best),
        "first_loss": fmt(f.first_loss),
        "bigger": bigger_model(model),
    }


def bigger_model(model: dict[str, Any]) -> str:
    """An override that doubles the model's width: n_embd for a GPT, channels for a CNN."""
    if isinstance(model.get("n_embd"), int):
        return f"--set model.n_embd={2 * model['n_embd']}"
    if isinstance(model.get("channels"), list):
        return "--set model.channels=" + ",".join(str(2 * c) for c in model["channels"])
    return "model.*"


def _cell(value: Any) -> str:
    """A table cell: code-formatted, with the characters that would break the table escaped."""
    return "`" + str(value).replace("`", "'").replace("|", "\\|").replace("\n", " ") + "`"


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _first_number(*candidates: Any) -> float | None:
    return next((c for c in candidates if _number(c)), None)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
