"""Lab 02: the baseline first. TF-IDF + logistic regression on exactly the fine-tuning split.

TF-IDF turns a text into a weighted bag of its words and word pairs (a word counts for more
when it is rare across the texts); logistic regression draws straight lines between the
classes in that space. It trains in a second and it is often hard to beat: a fine-tuned
encoder must clear it on the same test texts to earn its cost.

The regularisation strength C is chosen on the validation texts, as the encoder's settings
are; the test texts are scored once, with the chosen C.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..errors import UserError
from .data import LabelledTexts

C_GRID = (0.1, 1.0, 10.0, 100.0)  # weaker to stronger fit; picked by validation macro-F1
NAME = "TF-IDF + logistic regression"


def make_baseline(c: float) -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, strip_accents="unicode"),
        LogisticRegression(C=c, max_iter=2000),
    )


def run_baseline(data: LabelledTexts) -> dict[str, Any]:
    """Fit on train, choose C on val, score val and test: {"model", "C", "val", "test", ...}."""
    from .classify import scores

    start = time.perf_counter()
    train_texts, train_ids = data.splits["train"]
    classes = len(data.labels)
    best: tuple[float, float, Any] | None = None
    for c in C_GRID:
        model = make_baseline(c).fit(train_texts, train_ids)
        val = scores(data.splits["val"][1], model.predict(data.splits["val"][0]).tolist(), classes)
        if best is None or val["macro_f1"] > best[0]:
            best = (val["macro_f1"], c, model)
    _, c, model = best
    result = {"model": NAME, "C": c}
    for split in ("val", "test"):
        texts, true = data.splits[split]
        result[split] = scores(true, model.predict(texts).tolist(), classes)
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def shown_path(path: str) -> str:
    """The path relative to the current folder when it is inside it (shorter to read)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def format_baseline(result: dict[str, Any], data: LabelledTexts) -> str:
    counts = data.counts()
    lines = [
        f"data: {shown_path(data.source)}",
        f"  {len(data.labels)} labels: {', '.join(data.labels)}",
        f"  {counts['train']} train / {counts['val']} val / {counts['test']} test texts",
        f"{result['model']} (C = {result['C']:g}, chosen on val; {result['seconds']:.1f} s)",
        "  split  accuracy  macro-F1",
    ]
    for split in ("val", "test"):
        s = result[split]
        lines.append(f"  {split:<5}  {s['accuracy']:8.3f}  {s['macro_f1']:8.3f}")
    lines.append("The fine-tuned encoder (lab 03) must beat the test macro-F1 to earn its cost.")
    return "\n".join(lines)


def cli(args: Any) -> int:
    import json

    from ..config import load_config
    from .data import load_configured_texts

    cfg = load_config(args.config, args.set)
    if cfg.data.kind != "classify":
        raise UserError(f"{args.config} is a {cfg.data.kind!r} config; give a classify config")
    data = load_configured_texts(cfg.data)
    result = run_baseline(data)
    print(json.dumps(result, indent=2) if args.json else format_baseline(result, data))
    return 0
