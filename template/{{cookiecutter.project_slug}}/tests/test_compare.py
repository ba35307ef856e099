"""`compare RUN_DIR...`: run folders built by hand (fast), plus one comparison of real runs."""

import argparse
import json
import logging
import re
import subprocess
import sys

import pytest

from {{ cookiecutter.package_name }}.compare_runs import (
    add_arguments,
    cmd_compare,
    short,
    use_log_scale,
)
from {{ cookiecutter.package_name }}.errors import UserError

from .conftest import PACKAGE, PROJECT_ROOT, small_overrides

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def compare(*argv) -> int:
    """Run the command's handler as the CLI does, through its own argument parser."""
    parser = argparse.ArgumentParser(prog="compare")
    add_arguments(parser)
    return cmd_compare(parser.parse_args([str(a) for a in argv]))


def write_run(folder, summary=None, lines=(), config=None):
    """A run folder as train writes it: summary.json (finished runs), metrics.jsonl, config."""
    folder.mkdir(parents=True)
    if summary is not None:
        (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    text = "".join(line if isinstance(line, str) else json.dumps(line) + "\n" for line in lines)
    (folder / "metrics.jsonl").write_text(text, encoding="utf-8")
    if config is not None:
        (folder / "config.yaml").write_text(config, encoding="utf-8")
    return folder


def finished(name, loss, evals, test, params, seconds, task="classify"):
    summary = {
        "run": name,
        "task": task,
        "steps": 40,
        "max_steps": 40,
        "seed": 1,
        "params": params,
        "final": {"step": 40, "loss": loss, "lr": 1e-4},
        "eval": {"step": 40, **evals},
        "best_eval_loss": evals["eval/loss"],
        "train_time_s": seconds,
        "wall_time_s": seconds + 1,
    }
    if test:
        summary["test"] = test
        summary["baseline"] = {"accuracy": 0.5, "macro_f1": 0.4}
    lines = [{"step": s, "loss": 2.0 - s * (2.0 - loss) / 40, "lr": 1e-4} for s in (10, 20, 30)]
    lines += [{"step": 20, "eval/loss": evals["eval/loss"] + 0.2}]
    lines += [{"step": 40, "loss": loss, "lr": 1e-4}, {"step": 40, **evals}]
    return summary, lines


@pytest.fixture
def runs(tmp_path):
    """Two finished classify runs, one unfinished with a damaged line, one text run."""
    a = write_run(
        tmp_path / "runs" / "a",
        *finished(
            "a",
            0.5,
            {"eval/loss": 0.6, "eval/train_loss": 0.45, "eval/accuracy": 0.8, "eval/macro_f1": 0.7},
            {"accuracy": 0.78, "macro_f1": 0.7},
            22_713_216,
            12.3456,
        ),
    )
    b = write_run(
        tmp_path / "runs" / "b",
        *finished(
            "b",
            0.4,
            {"eval/loss": 0.7, "eval/accuracy": 0.85, "eval/macro_f1": 0.8},
            {"accuracy": 0.82, "macro_f1": 0.79},
            1000,
            3.0,
        ),
    )
    c = write_run(
        tmp_path / "runs" / "c",
        lines=[
            {"step": 10, "loss": 1.5, "lr": 1e-4},
            "{this line was damaged\n",
            {"step": 20, "loss": 0.9, "lr": 1e-4},
            {"step": 20, "eval/loss": 0.55, "eval/accuracy": 0.7},
            '{"step": 25, "lo',  # torn by a crash mid-write
        ],
        config="data:\n  kind: classify\ntrain:\n  max_steps: 40\n",
    )
    text = write_run(
        tmp_path / "runs" / "text",
        *finished("text", 1.7, {"eval/loss": 1.9}, None, 800_000, 38.0, task="text"),
    )
    return {"a": a, "b": b, "c": c, "text": text}


def table_rows(out: str) -> dict[str, dict[str, str]]:
    """The printed table as {run label: {column: cell}} (columns are 2+ spaces apart)."""
    lines = out.splitlines()
    header = re.split(r"\s{2,}", lines[0])
    rows = {}
    for line in lines[1:]:
        if not line or line.startswith(("*", "note:", "plot:")):
            break
        cells = re.split(r"\s{2,}", line)
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


def test_table_values_best_marks_and_plot(runs, tmp_path, capsys, caplog):
    out = tmp_path / "plots" / "cmp.png"
    with caplog.at_level(logging.WARNING):
        assert compare(runs["a"], runs["b"], runs["c"], "--out", out) == 0
    printed = capsys.readouterr().out
    header = printed.splitlines()[0].split()
    assert header[:5] == ["run", "task", "steps", "train", "loss"]
    metric_columns = [h for h in header if "/" in h]
    assert metric_columns == [
        "eval/loss",  # first, then the other eval metrics and the test metrics, sorted
        "eval/accuracy",
        "eval/macro_f1",
        "eval/train_loss",
        "test/accuracy",
        "test/macro_f1",
    ]
    rows = table_rows(printed)
    assert list(rows) == ["a", "b", "c (unfinished)"]
    a, b, c = rows["a"], rows["b"], rows["c (unfinished)"]
    assert [a[k] for k in ("task", "steps", "train loss")] == ["classify", "40", "0.5"]
    assert a["params"] == "22.71M"
    assert a["train time (s)"] == "12.35"  # 4 significant digits
    # Best per metric column: lowest loss, highest everything else; a lone value gets no mark.
    assert b["train loss"] == "0.4*" and c["eval/loss"] == "0.55*"
    assert b["eval/accuracy"] == "0.85*" and a["eval/accuracy"] == "0.8"
    assert b["test/macro_f1"] == "0.79*" and a["eval/train_loss"] == "0.45"
    # The unfinished run: figures from metrics.jsonl, config.yaml names its task.
    assert [c[k] for k in ("task", "steps", "train loss")] == ["classify", "20", "0.9"]
    assert c["eval/accuracy"] == "0.7"
    assert c["eval/macro_f1"] == c["test/accuracy"] == c["params"] == c["train time (s)"] == "-"
    assert "skipped 1 damaged line(s)" in caplog.text  # the torn last line is not counted
    assert "note:" not in printed  # same task, no damaged summary
    assert f"plot: {out}" in printed
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert [p.name for p in out.parent.iterdir()] == ["cmp.png"]  # no temporary file left


def test_json_shape(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default --out is runs/compare.png
    assert compare(runs["a"], runs["c"], runs["b"], runs["a"], "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"runs", "best", "notes", "plot"}
    assert result["plot"] == "runs/compare.png"
    assert (tmp_path / "runs" / "compare.png").read_bytes().startswith(PNG_MAGIC)
    rows = result["runs"]
    assert [r["run"] for r in rows] == ["a", "c", "b"]  # a given twice counts once
    assert all(set(r) == set(rows[0]) for r in rows)  # every row has every column
    a, c, b = rows
    assert a["finished"] and not c["finished"]
    assert a["params"] == 22_713_216 and c["params"] is None and c["test/accuracy"] is None
    assert c["steps"] == 20 and c["eval/loss"] == 0.55 and b["test/accuracy"] == 0.82
    assert result["best"] == {
        "train_loss": ["b"],
        "eval/loss": ["c"],
        "eval/accuracy": ["b"],
        "eval/macro_f1": ["b"],
        "test/accuracy": ["b"],
        "test/macro_f1": ["b"],
    }
    assert result["notes"] == []


def test_different_tasks_and_damaged_summary_are_noted(runs, tmp_path, capsys):
    (runs["b"] / "summary.json").write_text('{"run": "b", "tas', encoding="utf-8")
    assert compare(runs["a"], runs["b"], runs["text"], "--out", tmp_path / "p.png") == 0
    printed = capsys.readouterr().out
    rows = table_rows(printed)
    assert list(rows) == ["a", "b (damaged summary)", "text"]
    assert rows["b (damaged summary)"]["train loss"] == "0.4*"  # from metrics.jsonl
    assert rows["text"]["eval/accuracy"] == "-" and rows["text"]["task"] == "text"
    notes = [line for line in printed.splitlines() if line.startswith("note:")]
    assert len(notes) == 2
    assert "summary.json is damaged" in notes[0] and str(runs["b"]) in notes[0]
    assert "different tasks (classify, text)" in notes[1]


def test_one_run_and_same_names(tmp_path, capsys):
    x = write_run(tmp_path / "x" / "run", *finished("run", 0.5, {"eval/loss": 0.6}, None, 10, 1.0))
    y = write_run(tmp_path / "y" / "run", *finished("run", 0.3, {"eval/loss": 0.7}, None, 10, 1.0))
    assert compare(x, "--json", "--out", tmp_path / "one.png") == 0
    assert json.loads(capsys.readouterr().out)["best"] == {}  # nothing to compare with
    assert compare(x, y, "--json", "--out", tmp_path / "two.png") == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["run"] for r in result["runs"]] == [str(x), str(y)]  # told apart by their paths
    assert result["best"] == {"train_loss": [str(y)], "eval/loss": [str(x)]}


def test_formatting_and_log_scale():
    assert [short(v) for v in (None, 0.123456, 12345, 22_713_216, 1.5e9, "text")] == [
        "-",
        "0.1235",
        "12345",
        "22.71M",
        "1.5e+09",
        "text",
    ]
    assert short(3_000_000_000) == "3B" and short(150_000) == "150k"
    assert use_log_scale([0.05, 2.0]) and not use_log_scale([0.5, 2.0])
    assert not use_log_scale([0.0, 2.0]) and not use_log_scale([])


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: [], "give at least one run folder"),
        (lambda p: [p / "nope"], "does not exist; give a run folder"),
        (lambda p: [p / "file.txt"], "is a file; give a run folder"),
        (lambda p: [p / "empty"], r"not a run folder: .*empty \(train writes runs/<name>/\)$"),
        (lambda p: [p / "runs"], r"; to compare every run in it: compare .*runs[/\\]\*\)$"),
    ],
)
def test_errors(tmp_path, make, message):
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    (tmp_path / "empty").mkdir()
    write_run(tmp_path / "runs" / "a", lines=[{"step": 1, "loss": 2.0}])  # a folder of runs
    with pytest.raises(UserError, match=message):
        compare(*make(tmp_path), "--out", tmp_path / "c.png")
    assert not (tmp_path / "c.png").exists()


def test_bad_out(runs, tmp_path):
    with pytest.raises(UserError, match=r"is a folder; give a file name such as runs/compare\.png"):
        compare(runs["a"], "--out", tmp_path)
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    with pytest.raises(UserError, match=r"cannot write the plot .*file\.txt.x\.png"):
        compare(runs["a"], "--out", tmp_path / "file.txt" / "x.png")


def test_parser_does_not_import_torch():
    code = (
        f"import argparse, sys; from {PACKAGE}.compare_runs import add_arguments; "
        "add_arguments(argparse.ArgumentParser()); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_compare_two_real_runs(tmp_path, capsys):
    from {{ cookiecutter.package_name }}.train import run

    dirs = []
    for name, lr in (("slow", 1e-3), ("fast", 3e-3)):
        overrides = {
            "name": name,
            "train.lr": lr,
            "train.max_steps": 4,
            "train.warmup_steps": 1,
            "train.eval_interval": 2,
            "train.log_interval": 1,
            "train.checkpoint_interval": 4,
            "tracking.backend": "jsonl",
        }
        dirs.append(
            run(
                config_file=PROJECT_ROOT / "configs" / "tiny.yaml",
                overrides=small_overrides(**overrides),
                runs_dir=tmp_path / "runs",
            )
        )
    capsys.readouterr()
    assert compare(*dirs, "--json", "--out", tmp_path / "cmp.png") == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["run"] for r in result["runs"]] == ["slow", "fast"]
    for row, run_dir in zip(result["runs"], dirs, strict=True):
        summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        assert row["finished"] and row["task"] == "text" and row["steps"] == 4
        assert row["train_loss"] == summary["final"]["loss"]
        assert row["eval/loss"] == summary["eval"]["eval/loss"]
        assert row["params"] == summary["params"] and row["train_time_s"] > 0
    assert result["best"]["eval/loss"] and result["best"]["train_loss"]
    assert (tmp_path / "cmp.png").read_bytes().startswith(PNG_MAGIC)
