"""Lab 02 (labs/applied/02-baseline.md): the labelled texts, their split, and the baseline.

`python -m {{ cookiecutter.package_name }} labs check 02` runs this file.
"""

import json

import pytest
import torch

from {{ cookiecutter.package_name }}.applied.baseline import C_GRID, run_baseline
from {{ cookiecutter.package_name }}.applied.data import (
    MIN_PER_CLASS,
    SHIPPED,
    DataError,
    augment,
    load_texts,
)
from {{ cookiecutter.package_name }}.cli import main

from .conftest import write_labelled_csv


def test_the_shipped_set_is_balanced_and_split_once_for_all():
    data = load_texts()
    assert data.source == str(SHIPPED)
    assert len(data.labels) >= 5
    assert sum(data.counts().values()) >= 400
    for split in ("train", "val", "test"):
        ids = data.splits[split][1]
        per_label = [ids.count(i) for i in range(len(data.labels))]
        assert min(per_label) >= 0.8 * max(per_label), (split, per_label)
    every_text = [t for texts, _ in data.splits.values() for t in texts]
    assert len(set(every_text)) == len(every_text), "a text appears twice (leakage)"


def test_a_file_without_a_split_column_gets_one_fixed_stratified_split(tmp_path):
    path = write_labelled_csv(tmp_path / "t.csv", per_label=40)
    first, again = load_texts(str(path)), load_texts(str(path))
    assert first.splits == again.splits
    assert first.counts() == {"train": 84, "val": 18, "test": 18}
    for _, ids in first.splits.values():
        assert sorted(set(ids)) == [0, 1, 2]
    other = load_texts(str(path), val_fraction=0.2, test_fraction=0.2)
    assert other.digest != first.digest  # a resumed run notices a changed split


def test_a_split_column_is_followed_and_jsonl_reads_like_csv(tmp_path):
    import csv

    path = write_labelled_csv(tmp_path / "t.csv", per_label=20, split=True)
    data = load_texts(str(path))
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert data.counts()["test"] == sum(r["split"] == "test" for r in rows)
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert load_texts(str(jsonl)).splits == data.splits


def test_other_column_names_are_configurable(tmp_path):
    path = tmp_path / "t.csv"
    rows = [f"question {i} about {t},{t}" for i in range(10) for t in ("a", "b")]
    path.write_text("question,topic\n" + "\n".join(rows) + "\n", encoding="utf-8")
    data = load_texts(str(path), text_column="question", label_column="topic")
    assert data.labels == ["a", "b"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("words,label\nhi,a\n", "no 'text' column (it has: words, label); name yours with --set"),
        ("text,label\n,a\n", "line 2: the text is empty"),
        ("text,label\nhi,\n", "line 2: the label is empty"),
        ("text,label\n" + "x,a\n" * 10 + "y,b\n" * 2, "too few examples of 'b' (2)"),
        ("text,label\n" + "x,a\n" * 10, "found 1 label(s); a classifier needs at least 2"),
        ("text,label,split\n" + "x,a,train\n" * 5 + "y,b,exam\n", "split is 'exam', not one of"),
        ("text,label\n", "has no rows"),
        ("", "is empty; the first line must name the columns"),
    ],
)
def test_bad_files_get_a_message_that_says_what_to_do(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as caught:
        load_texts(str(path))
    assert message in str(caught.value)


def test_non_utf8_and_wrong_kinds_of_file_are_refused(tmp_path):
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text,label\ncafé crème,a\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"cannot be read as text: not UTF-8 .*re-save it"):
        load_texts(str(latin))
    xlsx = tmp_path / "book.xlsx"
    xlsx.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataError, match=r"use a \.csv file"):
        load_texts(str(xlsx))
    with pytest.raises(DataError, match="not found"):
        load_texts(str(tmp_path / "missing.csv"))
    with pytest.raises(DataError, match="is a folder"):
        load_texts(str(tmp_path))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "a", "label": "x"}\n{oops\n', encoding="utf-8")
    with pytest.raises(DataError, match="line 2: not valid JSON"):
        load_texts(str(broken))


def test_a_class_needs_enough_examples_for_every_split(tmp_path):
    rows = "".join(f"t{i},a\n" for i in range(10)) + "".join(
        f"u{i},b\n" for i in range(MIN_PER_CLASS)
    )
    path = tmp_path / "ok.csv"
    path.write_text("text,label\n" + rows, encoding="utf-8")
    data = load_texts(str(path), val_fraction=0.2, test_fraction=0.2)
    for _, ids in data.splits.values():
        assert 1 in ids


def test_augmentation_edits_one_word_and_repeats_with_the_generator():
    text = "why does the model need a big batch to start"
    words = text.split()
    gen = torch.Generator().manual_seed(0)
    edits = [augment(text, 1.0, gen) for _ in range(50)]
    assert all(abs(len(e.split()) - len(words)) <= 1 for e in edits)
    assert len(set(edits)) > 5  # deletions, swaps and synonyms
    assert any(w in e.split() for e in edits for w in ("large", "network", "require"))
    again = torch.Generator().manual_seed(0)
    assert [augment(text, 1.0, again) for _ in range(50)] == edits
    assert augment(text, 0.0, gen) == text
    assert augment("two words", 1.0, gen) == "two words"


def test_the_baseline_picks_c_on_validation_and_beats_chance(labelled_csv):
    data = load_texts(str(labelled_csv))
    result = run_baseline(data)
    assert result["C"] in C_GRID
    assert result["test"]["macro_f1"] > 0.9  # each topic has its own words: easy for TF-IDF
    assert set(result["test"]) == {"accuracy", "macro_f1"}


def test_the_command_prints_the_same_figures(labelled_csv, capsys):
    args = ["--set", f"data.path={labelled_csv}", "--json"]
    assert main(["applied", "baseline", *args]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["test"] == run_baseline(load_texts(str(labelled_csv)))["test"]
    assert main(["applied", "baseline", "--set", f"data.path={labelled_csv}"]) == 0
    assert "must beat the test macro-F1" in capsys.readouterr().out


def test_the_command_refuses_a_config_of_another_task(capsys):
    assert main(["applied", "baseline", "--config", "configs/tiny.yaml"]) == 2
    assert "give a classify config" in capsys.readouterr().err
