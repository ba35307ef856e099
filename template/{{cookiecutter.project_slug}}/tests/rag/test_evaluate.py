import json
import re

import pytest

from {{ cookiecutter.package_name }}.rag.errors import RagError
from {{ cookiecutter.package_name }}.rag.evaluate import (
    check_out_path,
    contains,
    gold_rank,
    load_qa,
    markdown_table,
    percentile,
    summarize,
    supported,
    token_f1,
    write_rows,
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


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"question": 42}', '"question" must be a non-empty string'),
        ('{"question": "  "}', '"question" must be a non-empty string'),
        ('["Q?"]', "each line must be a JSON object"),
        ('{"question": "Q?", "answer": 7}', '"answer" must be a string'),
        ('{"question": "Q?", "answer": null}', '"answer" must be a string'),
        ('{"question": "Q?", "sources": "training.md"}', '"sources" must be a list of file names'),
        ('{"question": "Q?", "sources": [1]}', '"sources" must be a list of file names'),
        ('{"question": "Q?", "id": [1]}', '"id" must be a string or an integer'),
        ('{"question": "Q?", "id": true}', '"id" must be a string or an integer'),
    ],
)
def test_load_qa_checks_field_types_with_the_line_number(tmp_path, line, message):
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"id": 1, "question": "Fine?", "answer": "yes", "sources": ["a.md"]}\n' + line)
    with pytest.raises(RagError, match=re.escape(f"qa.jsonl:2: {message}")):
        load_qa(qa)


def test_load_qa_refuses_binary_non_utf8_and_folders(tmp_path):
    (tmp_path / "binary.jsonl").write_bytes(b"\x00\x01\x02" * 100)
    with pytest.raises(RagError, match="not a JSON-lines text file: binary file"):
        load_qa(tmp_path / "binary.jsonl")
    (tmp_path / "latin1.jsonl").write_bytes('{"question": "Café?"}'.encode("latin-1"))
    with pytest.raises(RagError, match="not UTF-8"):
        load_qa(tmp_path / "latin1.jsonl")
    with pytest.raises(RagError, match="is a folder"):
        load_qa(tmp_path)


def test_out_is_checked_first_and_written_atomically(tmp_path):
    with pytest.raises(RagError, match="is a folder"):
        check_out_path(tmp_path)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(RagError, match="is a file, not a folder"):
        check_out_path(tmp_path / "file.txt" / "sub" / "out.jsonl")
    out = tmp_path / "new" / "dir" / "out.jsonl"
    assert check_out_path(out) == out and not out.parent.exists()  # created only when written
    write_rows([{"id": 1}, {"id": 2}], out)
    assert out.read_text().splitlines() == ['{"id": 1}', '{"id": 2}']
    assert sorted(p.name for p in out.parent.iterdir()) == ["out.jsonl"]  # no .tmp left


def test_the_cli_refuses_a_bad_out_before_evaluating(tmp_path, monkeypatch, capsys):
    from {{ cookiecutter.package_name }}.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "qa.jsonl").write_text('{"question": "Q?"}\n')
    (tmp_path / "folder").mkdir()
    # No index exists: the --out check must come first, before any model or index is loaded.
    assert main(["rag", "eval", "--qa", "qa.jsonl", "--out", "folder"]) == 2
    assert "--out folder is a folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "qa.jsonl"]
    (tmp_path / "qa.jsonl").write_text('{"question": "Q?", "sources": "training.md"}\n')
    assert main(["rag", "eval", "--qa", "qa.jsonl"]) == 2
    assert 'qa.jsonl:1: "sources" must be a list' in capsys.readouterr().err
