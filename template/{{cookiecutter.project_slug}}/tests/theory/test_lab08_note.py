"""Lab 08 (labs/theory/08-note.md): the one-page technical note of a run.

`labs check 08` runs this file. The first tests write the note of a real (tiny) addition run
and compare its numbers with summary.json; the rule tests give `what_to_try_next` hand-made
run folders (plain files) whose numbers should make one rule fire. Headings and labels are
read from note_template.md, so the tests hold in every language.
"""

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config import from_dict
from {{ cookiecutter.package_name }}.theory.note import (
    MAX_SUGGESTIONS,
    RULES,
    TARGET_ACCURACY,
    TEMPLATE_FILE,
    load_parts,
    measure,
    recent_drop,
    what_to_try_next,
)
from {{ cookiecutter.package_name }}.tracking import read_metrics
from {{ cookiecutter.package_name }}.train import run

PARTS = load_parts()
GPT_MODEL = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 16, "dropout": 0.0}


@pytest.fixture(scope="module")
def addition_run(tmp_path_factory):
    """A real 20-step addition run of a one-layer GPT (a few seconds)."""
    cfg = from_dict(
        {
            "name": "note",
            "model": {**GPT_MODEL, "n_layer": 1},
            "data": {"kind": "addition"},
            "train": {
                "device": "cpu",
                "max_steps": 20,
                "batch_size": 32,
                "lr": 3e-3,
                "warmup_steps": 5,
                "eval_interval": 10,
                "eval_iters": 2,
                "log_interval": 5,
                "checkpoint_interval": 20,
                "sample_tokens": 0,
            },
        }
    )
    return run(cfg, tmp_path_factory.mktemp("runs"))


def table_rows(markdown: str) -> dict[str, str]:
    """{first cell: second cell} for every two-column table row."""
    rows = re.findall(r"^\| (.+?) \| (.+?) \|$", markdown, flags=re.MULTILINE)
    return dict(rows)


def headings(markdown: str) -> list[str]:
    return re.findall(r"^#+ .*$", markdown, flags=re.MULTILINE)


def copy_run(run_dir: Path, folder: Path) -> Path:
    """A copy of the run without the note the first test wrote into it."""
    shutil.copytree(run_dir, folder)
    (folder / "note.md").unlink(missing_ok=True)
    return folder


def test_note_of_a_real_run_has_every_section_and_the_summary_numbers(addition_run, capsys):
    assert main(["theory", "note", str(addition_run)]) == 0
    note_path = addition_run / "note.md"
    assert capsys.readouterr().out.strip() == str(note_path)
    note = note_path.read_text(encoding="utf-8")
    summary = json.loads((addition_run / "summary.json").read_text())

    page_headings = [h for h in headings(PARTS["page"]) if "$" not in h]
    assert page_headings and all(h in note for h in page_headings)
    assert headings(PARTS["examples"])[0] in note  # addition has worked examples
    assert note.startswith("# ") and summary["run"] in note.splitlines()[0]
    assert "$" not in note and "\n\n\n" not in note and note.endswith("\n")
    assert len(note.splitlines()) < 80  # about one page

    # The results table: every labelled number equals summary.json's (4 significant digits).
    labels = {name: label for label, name in table_rows(PARTS["page"]).items()}
    rows = table_rows(note)
    expected = {
        "$final_loss": summary["final"]["loss"],
        "$best_eval_loss": summary["best_eval_loss"],
    }
    for name, value in expected.items():
        assert float(rows[labels[name]]) == pytest.approx(value, rel=1e-3), name
    for key, value in summary["eval"].items():
        assert float(rows[key]) == pytest.approx(value, rel=1e-3), key
    assert "eval/accuracy" in rows
    per_s = round(summary["train_tokens_per_s"])
    assert rows[labels["$throughput"]] == f"{per_s:,} tokens/s"

    # Method, set-up and headline quote the run's own numbers.
    assert f"{summary['params']:,}" in note
    assert f"{summary['wall_time_s']:.4g}" in note
    assert str(summary["seed"]) in note and summary["environment"]["torch"] in note
    assert "07+35=" in note and "042" in note  # the addition problem's own format

    # Worked examples: the first ones from the summary, in its order.
    for ex in summary["examples"][:3]:
        assert f"`{ex['input']}` | `{ex['target']}` | `{ex['output']}`" in note

    # What to try next: a numbered list of 2 to 4 items.
    suggestions = re.findall(r"^\d\. ", note, flags=re.MULTILINE)
    assert 2 <= len(suggestions) <= MAX_SUGGESTIONS
    assert "![" in note and "](loss.png)" in note


def test_note_elsewhere_links_the_plot_and_redraws_a_missing_one(addition_run, tmp_path):
    copy = copy_run(addition_run, tmp_path / "copy")
    (copy / "loss.png").unlink()
    out = tmp_path / "notes" / "mine.md"  # the folder is created
    assert main(["theory", "note", str(copy), "--out", str(out)]) == 0
    link = re.search(r"!\[[^\]]*\]\(([^)]+)\)", out.read_text(encoding="utf-8")).group(1)
    assert (out.parent / link).resolve() == (copy / "loss.png").resolve()
    assert (copy / "loss.png").read_bytes()[:4] == b"\x89PNG"
    assert not (copy / "note.md").exists()


def test_damaged_metrics_are_skipped_and_the_note_still_matches(addition_run, tmp_path):
    copy = copy_run(addition_run, tmp_path / "copy")
    assert main(["theory", "note", str(copy)]) == 0
    intact = (copy / "note.md").read_text(encoding="utf-8")
    lines = (copy / "metrics.jsonl").read_text().splitlines()
    damaged = [lines[0], "\x00\x01 not json", *lines[1:], '{"step": 21, "lo']  # torn last line
    (copy / "metrics.jsonl").write_text("\n".join(damaged))
    assert main(["theory", "note", str(copy)]) == 0
    assert (copy / "note.md").read_text(encoding="utf-8") == intact


def test_unfinished_run_and_other_folders_are_refused(addition_run, tmp_path, capsys):
    copy = copy_run(addition_run, tmp_path / "copy")
    (copy / "summary.json").unlink()
    assert main(["theory", "note", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "did not finish" in err and "--resume" in err
    assert not (copy / "note.md").exists()

    (copy / "summary.json").write_text('{"run": "cut sho')
    assert main(["theory", "note", str(copy)]) == 2
    assert "summary.json is damaged" in capsys.readouterr().err

    assert main(["theory", "note", str(tmp_path)]) == 2  # a folder, but not a run
    assert "not a run folder" in capsys.readouterr().err
    assert main(["theory", "note", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "a-file").write_text("x")
    out = tmp_path / "a-file" / "note.md"
    assert main(["theory", "note", str(addition_run), "--out", str(out)]) == 2
    assert "cannot create the folder" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the rules


def craft(
    folder: Path,
    *,
    eval_losses: list[float],
    train_losses: list[float],
    accuracy: float | None = None,
    first_loss: float = 4.2,
    stopped_early: bool = False,
    task: str = "text",
    model: dict | None = None,
) -> Path:
    """A run folder written by hand: config.yaml, metrics.jsonl and summary.json."""
    folder.mkdir()
    steps = 100 * len(eval_losses)
    config = {
        "name": folder.name,
        "model": model or GPT_MODEL,
        "data": {"kind": task, "path": "docs", "val_fraction": 0.1},
        "train": {"max_steps": steps, "seed": 1, "batch_size": 8, "lr": 1e-3},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    rows = [{"step": 1, "loss": first_loss}]
    for i, (ev, tr) in enumerate(zip(eval_losses, train_losses, strict=True), start=1):
        rows.append({"step": 100 * i, "loss": tr})
        extra = {"eval/accuracy": accuracy} if accuracy is not None else {}
        rows.append({"step": 100 * i, "eval/loss": ev, "eval/train_loss": tr, **extra})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {
        "run": folder.name,
        "task": task,
        "steps": steps,
        "max_steps": steps,
        "seed": 1,
        "stopped_early": stopped_early,
        "params": 12_345,
        "final": rows[-2],
        "eval": rows[-1],
        "best_eval_loss": min(eval_losses),
        "train_samples_per_s": 500.0,
        "train_time_s": 1.5,
        "wall_time_s": 2.0,
        "environment": {"device": "cpu", "dtype": "float32", "torch": "2.x"},
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


CASES = {
    # eval loss back up 29 % from its best while the train loss keeps falling
    "overfitting": (
        dict(eval_losses=[1.0, 0.8, 0.7, 0.8, 0.9], train_losses=[1.0, 0.7, 0.5, 0.35, 0.25]),
        ["overfitting", "seeds"],
    ),
    "stopped early": (
        dict(eval_losses=[1.0, 0.9, 0.9], train_losses=[1.0, 0.9, 0.88], stopped_early=True),
        ["stopped_early", "seeds"],
    ),
    "addition below 99 %": (
        dict(eval_losses=[1.0, 0.5], train_losses=[1.0, 0.5], accuracy=0.9, task="addition"),
        ["below_target", "seeds"],
    ),
    "text, loss still falling 14 %": (
        dict(eval_losses=[2.0, 1.8, 1.6, 1.4, 1.2], train_losses=[2.0, 1.8, 1.6, 1.4, 1.2]),
        ["still_falling", "seeds"],
    ),
    "flat, small gap, high loss": (
        dict(eval_losses=[2.0, 1.9, 1.85, 1.84, 1.84], train_losses=[2.0, 1.9, 1.85, 1.83, 1.83]),
        ["bigger_model", "seeds"],
    ),
    "digits at 99.5 %": (
        dict(
            eval_losses=[0.3, 0.05],
            train_losses=[0.3, 0.04],
            accuracy=0.995,
            task="digits",
            model={"channels": [32, 64], "kernel_size": 3, "hidden": 128, "dropout": 0.3},
        ),
        ["target_met", "seeds"],
    ),
    "flat and low": (
        dict(eval_losses=[0.6, 0.5, 0.5], train_losses=[0.6, 0.49, 0.49]),
        ["settled", "seeds"],
    ),
    "everything at once": (
        dict(
            eval_losses=[1.0, 0.6, 0.9, 0.95],
            train_losses=[1.0, 0.6, 0.4, 0.3],
            accuracy=0.5,
            stopped_early=True,
            task="addition",
        ),
        ["overfitting", "stopped_early", "seeds"],
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_what_to_try_next_follows_the_rules(case, tmp_path, capsys):
    kwargs, expected = CASES[case]
    folder = craft(tmp_path / "run", **kwargs)
    summary = json.loads((folder / "summary.json").read_text())
    suggestions = what_to_try_next(measure(summary, read_metrics(folder)))
    assert [rule for rule, _ in suggestions] == expected

    # The note says the same, in the template's words, with every $name filled.
    assert main(["theory", "note", str(folder)]) == 0
    note = (folder / "note.md").read_text(encoding="utf-8")
    items = re.findall(r"^\d\. (.*)$", note, flags=re.MULTILINE)
    assert len(items) == len(expected) and "$" not in note
    for item, rule in zip(items, expected, strict=True):
        words = PARTS[f"try.{rule}"].split("$")[0]  # the sentence up to its first number
        assert item.startswith(words), (rule, item)
    if "below_target" in expected:
        assert f"train.max_steps={2 * summary['max_steps']}" in note
    if "bigger_model" in expected:
        assert "model.n_embd=64" in note
    if summary["task"] == "digits":
        assert "128" in note and "32, 64" in note  # the CNN's own settings in Method


def test_recent_drop_compares_the_last_fifth_with_the_fifth_before():
    assert recent_drop([]) is None and recent_drop([1.0]) is None
    assert recent_drop([2.0, 1.0]) == pytest.approx(0.5)
    assert recent_drop([9.0] * 5 + [4.0, 4.0, 3.0, 3.0, 2.0]) == pytest.approx((3.5 - 2.5) / 3.5)
    assert recent_drop([1.0, 1.0, 1.0]) == 0.0


def test_every_rule_has_its_sentence_and_the_template_is_packaged():
    assert TEMPLATE_FILE.name == "note_template.md" and TEMPLATE_FILE.is_file()
    for rule in RULES:
        assert f"try.{rule}" in PARTS, rule
    needed = ("page", "headline.accuracy", "headline.loss", "examples", "sample")
    needed += ("problem.text", "problem.addition", "problem.digits", "problem.other")
    needed += ("method.gpt", "method.cnn", "method.other")
    assert all(name in PARTS for name in needed)
    assert 0.9 < TARGET_ACCURACY < 1
