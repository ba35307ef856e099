"""Honest numbers for a RAG system on a JSON-lines QA file.

Each line: {"id", "question", "answer", "sources": [file, ...]}; an empty answer and empty
sources mark a question the documents cannot answer. `load_qa` checks every line: "question" a
non-empty string, "answer" a string, "sources" a list of strings, "id" a string or an integer
(answer, sources and id may be left out); a mistake names the file and the line.

Metrics (all in [0, 1] unless noted):

  hit_at_k          answerable questions with a gold source among the top k retrieved chunks
  hit_at_1          ... with a gold source as the very first chunk
  mrr               mean of 1 / rank of the first chunk from a gold source (0 when none in top k)
  answer_contains   answerable questions whose answer contains the gold answer (both normalised:
                    lower case, punctuation removed); an abstention counts as a miss
  token_f1          SQuAD-style token F1 between answer and gold, over answerable questions
  coverage          answerable questions answered rather than abstained on
  abstain_accuracy  unanswerable questions abstained on
  hallucination_rate  answer sentences NOT supported by the retrieved text, over all sentences
                    of all answers given. Support rule: a sentence is supported when at least
                    90 % of its word tokens (normalised, citations removed) occur in the
                    retrieved context and every number in it occurs there too. Extractive
                    answers are verbatim, so anything above 0 points to a bug.
  mean_answer_words words per answer given (citations excluded)
  latency_p50_ms / latency_p95_ms   wall time of pipeline.ask per question
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from pathlib import Path

from ..files import NotText, atomic_open, decode_text
from .errors import RagError
from .text import WORD, normalize

CITATION = re.compile(r"\[\d+\]\s+\S+")
NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def load_qa(path: str | Path) -> list[dict]:
    """Read and check a QA file; every problem is a RagError naming the file and line."""
    path = Path(path)
    if path.is_dir():
        raise RagError(f"QA file {path} is a folder; pass a .jsonl file")
    if not path.is_file():
        raise RagError(f"QA file {path} not found")
    try:
        text = decode_text(path.read_bytes())
    except NotText as exc:
        raise RagError(f"QA file {path} is not a JSON-lines text file: {exc}") from None
    except OSError as exc:
        raise RagError(f"cannot read QA file {path}: {exc}") from None
    items = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise RagError(f"{path}:{i}: not valid JSON ({exc})") from None
        problem = qa_problem(item)
        if problem:
            raise RagError(f"{path}:{i}: {problem}")
        item.setdefault("id", str(i))
        item.setdefault("answer", "")
        item["sources"] = list(item.get("sources") or [])
        items.append(item)
    if not items:
        raise RagError(f"QA file {path} has no questions")
    return items


def qa_problem(item) -> str | None:
    """What is wrong with one parsed QA line, or None. Missing answer/sources mean unanswerable."""
    if not isinstance(item, dict):
        return 'each line must be a JSON object such as {"question": "...", "answer": "..."}'
    question = item.get("question")
    if not isinstance(question, str) or not question.strip():
        return '"question" must be a non-empty string'
    if "answer" in item and not isinstance(item["answer"], str):
        return f'"answer" must be a string ("" = not in the documents), got {item["answer"]!r}'
    sources = item.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        return f'"sources" must be a list of file names such as ["training.md"], got {sources!r}'
    if "id" in item and (isinstance(item["id"], bool) or not isinstance(item["id"], (str, int))):
        return f'"id" must be a string or an integer, got {item["id"]!r}'
    return None


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize(prediction).split(), normalize(gold).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def contains(answer: str, gold: str) -> bool:
    return bool(gold) and f" {normalize(gold)} " in f" {normalize(answer)} "


def supported(sentence: str, context: str) -> bool:
    """The support rule documented at the top of this module."""
    sentence = CITATION.sub("", sentence)
    words = WORD.findall(sentence.lower())
    if not words:
        return True
    ctx_words = set(WORD.findall(context.lower()))
    share = sum(w in ctx_words for w in words) / len(words)
    ctx_numbers = set(NUMBER.findall(context))
    numbers_ok = all(n in ctx_numbers for n in NUMBER.findall(sentence))
    return share >= 0.9 and numbers_ok


def gold_rank(files: list[str], gold: list[str]) -> int | None:
    """1-based rank of the first retrieved chunk whose file is a gold source."""
    gold_set = {g.replace("\\", "/") for g in gold}
    for rank, f in enumerate(files, start=1):
        if f in gold_set or any(f.endswith("/" + g) for g in gold_set):
            return rank
    return None


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    pos = (len(values) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (pos - lo)


def evaluate(
    pipeline, qa: list[dict], k: int = 5, progress: bool = False
) -> tuple[dict, list[dict]]:
    from tqdm import tqdm

    rows = []
    for item in tqdm(qa, desc="eval", disable=not progress, leave=False):
        t0 = time.perf_counter()
        ans = pipeline.ask(item["question"], k=k)
        ms = (time.perf_counter() - t0) * 1000
        files = [s["file"] for s in ans.sources]
        answerable = bool(item["answer"])
        rank = gold_rank(files, item["sources"]) if answerable else None
        sentences = [] if ans.abstained else ans.sentences
        rows.append(
            {
                "id": item["id"],
                "question": item["question"],
                "gold": item["answer"],
                "gold_sources": item["sources"],
                "answer": ans.text,
                "abstained": ans.abstained,
                "reason": ans.reason,
                "retrieved": files,
                "answerable": answerable,
                "hit": rank is not None,
                "rank": rank,
                "contains": answerable and not ans.abstained and contains(ans.text, item["answer"]),
                "token_f1": token_f1(" ".join(sentences), item["answer"]) if answerable else None,
                "unsupported": [s for s in sentences if not supported(s, ans.context)],
                "n_sentences": len(sentences),
                "words": sum(len(s.split()) for s in sentences),
                "latency_ms": round(ms, 2),
            }
        )
    return summarize(rows, k), rows


def summarize(rows: list[dict], k: int) -> dict:
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    given = [r for r in rows if not r["abstained"]]
    n_sent = sum(r["n_sentences"] for r in given)

    def mean(values) -> float:
        values = list(values)
        return round(sum(values) / len(values), 4) if values else 0.0

    latencies = [r["latency_ms"] for r in rows]
    return {
        "n": len(rows),
        "n_answerable": len(ans),
        "n_unanswerable": len(una),
        "k": k,
        "hit_at_k": mean(r["hit"] for r in ans),
        "hit_at_1": mean(r["rank"] == 1 for r in ans),
        "mrr": mean(1 / r["rank"] if r["rank"] else 0.0 for r in ans),
        "answer_contains": mean(r["contains"] for r in ans),
        "token_f1": mean(r["token_f1"] for r in ans),
        "coverage": mean(not r["abstained"] for r in ans),
        "abstain_accuracy": mean(r["abstained"] for r in una),
        "hallucination_rate": round(sum(len(r["unsupported"]) for r in given) / n_sent, 4)
        if n_sent
        else 0.0,
        "mean_answer_words": mean(r["words"] for r in given),
        "latency_p50_ms": round(percentile(latencies, 0.5), 2),
        "latency_p95_ms": round(percentile(latencies, 0.95), 2),
    }


def markdown_table(summary: dict) -> str:
    lines = ["| metric | value |", "|---|---|"]
    for key, value in summary.items():
        lines.append(f"| {key} | {value} |")
    return "\n".join(lines)


def check_out_path(path: str | Path) -> Path:
    """Refuse an --out that cannot be written, before the (slow) evaluation starts."""
    path = Path(path)
    if path.is_dir():
        raise RagError(f"--out {path} is a folder; give a file name such as eval.jsonl")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:  # missing folders get created
        folder = folder.parent
    if not folder.is_dir():
        raise RagError(f"--out {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise RagError(f"--out {path}: no permission to write there")
    return path


def write_rows(rows: list[dict], path: str | Path) -> None:
    """One JSON line per question, written atomically (all lines or the old file)."""
    with atomic_open(path, "w") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
