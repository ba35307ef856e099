import json

import pytest

from {{ cookiecutter.package_name }}.rag.errors import RagError
from {{ cookiecutter.package_name }}.rag.evaluate import (
    contains,
    gold_rank,
    load_qa,
    markdown_table,
    percentile,
    summarize,
    supported,
    token_f1,
)


def row(answerable, abstained, rank=None, contains_=False, f1=None, unsupported=(), n=1, words=10):
    return {
        "answerable": answerable,
        "abstained": abstained,
        "hit": rank is not None,
        "rank": rank,
        "contains": contains_,
        "token_f1": f1,
        "unsupported": list(unsupported),
        "n_sentences": 0 if abstained else n,
        "words": 0 if abstained else words,
        "latency_ms": 10.0,
    }


def test_token_f1_and_contains():
    assert token_f1("the port is 7860", "7860") == pytest.approx(2 * (1 / 4) * 1 / (1 / 4 + 1))
    assert token_f1("abc", "xyz") == 0.0
    assert token_f1("", "") == 1.0
    assert contains("It listens on port 7860.", "port 7860")
    assert contains("Set HF_HUB_OFFLINE=1 first", "hf_hub_offline=1")
    assert not contains("port 78600", "7860")  # whole tokens only
    assert not contains("anything", "")


def test_support_rule():
    context = "[1] demo.md\nThe demo listens on port 7860 by default."
    assert supported("The demo listens on port 7860 by default. [1] demo.md", context)
    assert not supported("The demo listens on port 8080 by default.", context)  # new number
    assert not supported("The demo is written in Rust and runs on Windows only.", context)


def test_gold_rank_and_percentile():
    assert gold_rank(["a.md", "b.md", "sub/c.md"], ["c.md"]) == 3
    assert gold_rank(["a.md"], ["b.md"]) is None
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([5.0], 0.95) == 5.0


def test_summary_on_hand_computed_rows():
    rows = [
        row(True, False, rank=1, contains_=True, f1=1.0, words=10),
        row(True, False, rank=2, contains_=False, f1=0.5, unsupported=["x"], n=2, words=20),
        row(True, True, rank=None, f1=0.0),
        row(True, False, rank=3, contains_=True, f1=0.5, words=30),
        row(False, True),
        row(False, False, n=1, words=20),
    ]
    s = summarize(rows, k=5)
    assert s["n"] == 6 and s["n_answerable"] == 4 and s["n_unanswerable"] == 2
    assert s["hit_at_k"] == 0.75
    assert s["hit_at_1"] == 0.25
    assert s["mrr"] == pytest.approx(round((1 + 1 / 2 + 0 + 1 / 3) / 4, 4))
    assert s["answer_contains"] == 0.5
    assert s["token_f1"] == 0.5
    assert s["coverage"] == 0.75
    assert s["abstain_accuracy"] == 0.5
    assert s["hallucination_rate"] == pytest.approx(1 / 5)  # 1 unsupported of 1+2+1+1 sentences
    assert s["mean_answer_words"] == 20.0  # (10 + 20 + 30 + 20) / 4 answers given
    assert s["latency_p50_ms"] == 10.0
    assert markdown_table(s).startswith("| metric | value |")


def test_load_qa_validates(tmp_path):
    good = tmp_path / "qa.jsonl"
    good.write_text(json.dumps({"id": "1", "question": "Q?", "answer": "", "sources": []}) + "\n\n")
    assert load_qa(good) == [{"id": "1", "question": "Q?", "answer": "", "sources": []}]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n")
    with pytest.raises(RagError, match=r"bad\.jsonl:1"):
        load_qa(bad)
    with pytest.raises(RagError, match="not found"):
        load_qa(tmp_path / "missing.jsonl")
