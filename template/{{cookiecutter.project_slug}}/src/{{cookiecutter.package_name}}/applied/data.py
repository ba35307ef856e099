"""Labelled texts for the classification labs: the shipped learner questions, or your own file.

A file is CSV (a header row) or JSONL (one JSON object per line) with a text column and a label
column; `data.text_column` and `data.label_column` name them. A `split` column (train, val or
test on every row) fixes the split. Without one, a stratified split is made with seed 0, so the
fine-tuned model, the baseline and every later run see exactly the same texts. The split belongs
to the data, not to the run: `train.seed` does not move it.

Every way a file can be wrong is a DataError naming the file, the line and what to do.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..files import NotText, decode_text

SHIPPED = Path(__file__).parent / "texts" / "learner_questions.csv"
SPLITS = ("train", "val", "test")
MIN_PER_CLASS = 5  # so that the training, validation and test texts each hold every class


class DataError(UserError):
    """A labelled-text file that cannot be used as it is."""


@dataclass
class LabelledTexts:
    source: str  # where the texts came from
    labels: list[str]  # class names, sorted; a label's id is its position here
    splits: dict[str, tuple[list[str], list[int]]] = field(default_factory=dict)  # (texts, ids)
    digest: str = ""  # of the file's bytes and the settings that read it

    def counts(self) -> dict[str, int]:
        return {name: len(texts) for name, (texts, _) in self.splits.items()}


def load_texts(
    path: str = "",
    text_column: str = "text",
    label_column: str = "label",
    split_column: str = "split",
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
) -> LabelledTexts:
    """Read, check and split a labelled-text file ("" = the shipped learner questions)."""
    file = Path(path) if path else SHIPPED
    if file.is_dir():
        raise DataError(f"{file} is a folder; give a .csv or .jsonl file")
    if not file.is_file():
        raise DataError(f"data file not found: {file}")
    suffix = file.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise DataError(f"{file}: use a .csv file (with a header row) or a .jsonl file")
    raw = file.read_bytes()
    try:
        text = decode_text(raw)  # a spreadsheet's byte-order mark is dropped
    except NotText as exc:
        raise DataError(
            f"{file} cannot be read as text: {exc} (a spreadsheet's 'CSV UTF-8' format is)"
        ) from None
    rows = _read_csv(text, file) if suffix == ".csv" else _read_jsonl(text, file)
    if not rows:
        raise DataError(f"{file} has no rows")
    columns = rows[0][1].keys()
    for column, key in ((text_column, "text_column"), (label_column, "label_column")):
        if column not in columns:
            raise DataError(
                f"{file} has no {column!r} column (it has: {', '.join(columns)}); name yours "
                f"with --set data.{key}=NAME"
            )
    texts, labels, splits = [], [], []
    for line, row in rows:
        value, label = _cell(row, text_column), _cell(row, label_column)
        if not value:
            raise DataError(f"{file} line {line}: the text is empty; fill it in or remove the row")
        if not label:
            raise DataError(f"{file} line {line}: the label is empty; fill it in or remove the row")
        texts.append(value)
        labels.append(label)
        if split_column in row:
            split = _cell(row, split_column).lower()
            if split not in SPLITS:
                raise DataError(
                    f"{file} line {line}: {split_column} is {split!r}, not one of train, val, "
                    f"test (or remove the {split_column!r} column to split automatically)"
                )
            splits.append(split)
    names = check_classes(labels, file)
    # What the texts and their split depend on: the bytes, the columns read and, when the split
    # is made here, its fractions. A resumed run compares it to say when the data changed.
    settings = (text_column, label_column, split_column)
    settings += () if splits else (val_fraction, test_fraction)
    digest = hashlib.sha256(raw + repr(settings).encode()).hexdigest()[:16]
    data = LabelledTexts(str(file), names, digest=digest)
    ids = [names.index(label) for label in labels]
    if splits:
        for name in SPLITS:
            picked = [i for i, s in enumerate(splits) if s == name]
            if not picked:
                raise DataError(f"{file}: no row has {split_column} = {name}")
            data.splits[name] = ([texts[i] for i in picked], [ids[i] for i in picked])
        missing = set(range(len(names))) - set(data.splits["train"][1])
        if missing:
            absent = ", ".join(names[i] for i in sorted(missing))
            raise DataError(f"{file}: no training row has the label {absent}")
    else:
        for name, picked in stratified_split(ids, val_fraction, test_fraction).items():
            data.splits[name] = ([texts[i] for i in picked], [ids[i] for i in picked])
    return data


def load_configured_texts(d: Any) -> LabelledTexts:
    """`load_texts` with the settings of a classify config's `data` section."""
    return load_texts(
        d.path, d.text_column, d.label_column, d.split_column, d.val_fraction, d.test_fraction
    )


def check_classes(labels: list[str], file: Path) -> list[str]:
    counts = Counter(labels)
    if len(counts) < 2:
        raise DataError(f"{file}: found {len(counts)} label(s); a classifier needs at least 2")
    small = sorted((n, label) for label, n in counts.items() if n < MIN_PER_CLASS)
    if small:
        shown = ", ".join(f"{label!r} ({n})" for n, label in small[:5])
        raise DataError(
            f"{file}: too few examples of {shown}; every label needs at least {MIN_PER_CLASS} "
            "(the training, validation and test texts each need some): add examples or merge "
            "the label into another"
        )
    return sorted(counts)


def stratified_split(ids: list[int], val_fraction: float, test_fraction: float) -> dict:
    """{split: row indices}: every label keeps its share in each split; seed 0, always."""
    from sklearn.model_selection import train_test_split

    rows = list(range(len(ids)))
    rest, test = train_test_split(rows, test_size=test_fraction, stratify=ids, random_state=0)
    val_share = val_fraction / (1 - test_fraction)
    train, val = train_test_split(
        rest, test_size=val_share, stratify=[ids[i] for i in rest], random_state=0
    )
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


def _cell(row: dict[str, Any], column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value).strip()


def _read_csv(text: str, file: Path) -> list[tuple[int, dict[str, Any]]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as exc:
        raise DataError(f"{file} line {reader.line_num}: not valid CSV ({exc})") from None
    if reader.fieldnames is None:
        raise DataError(f"{file} is empty; the first line must name the columns (text,label)")
    return rows


def _read_jsonl(text: str, file: Path) -> list[tuple[int, dict[str, Any]]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{file} line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{file} line {number}: expected a JSON object with text and label")
        rows.append((number, row))
    return rows


# ----------------------------------------------------------------------------- augmentation

# A small, general list: words that can replace each other in most sentences of this domain.
SYNONYMS = {
    "big": "large",
    "large": "big",
    "small": "little",
    "little": "small",
    "fast": "quick",
    "quick": "fast",
    "slow": "sluggish",
    "error": "failure",
    "problem": "issue",
    "issue": "problem",
    "start": "begin",
    "begin": "start",
    "stop": "halt",
    "get": "obtain",
    "show": "display",
    "use": "employ",
    "need": "require",
    "make": "create",
    "fix": "repair",
    "wrong": "incorrect",
    "good": "fine",
    "bad": "poor",
    "change": "modify",
    "check": "verify",
    "run": "execute",
    "find": "locate",
    "keep": "retain",
    "help": "assist",
    "why": "how come",
    "model": "network",
}


def augment(text: str, probability: float, generator: Any) -> str:
    """With `probability`, one random edit: drop a word, swap two words, or use a synonym.

    Random draws come from the training batches' torch generator, so a resumed run makes the
    same edits. An edit keeps the meaning (and so the label) of all but a few texts, and shows
    the model many surface forms of each one.
    """
    import torch

    def draw(n: int) -> int:
        return int(torch.randint(n, (1,), generator=generator))

    if probability <= 0 or float(torch.rand(1, generator=generator)) >= probability:
        return text
    words = text.split()
    if len(words) < 3:
        return text
    kind = draw(3)
    if kind == 0:  # delete one word
        del words[draw(len(words))]
    elif kind == 1:  # swap two words
        i, j = draw(len(words)), draw(len(words))
        words[i], words[j] = words[j], words[i]
    else:  # a synonym for the first replaceable word after a random start
        start = draw(len(words))
        for k in range(len(words)):
            i = (start + k) % len(words)
            if words[i].lower() in SYNONYMS:
                words[i] = SYNONYMS[words[i].lower()]
                break
    return " ".join(words)
