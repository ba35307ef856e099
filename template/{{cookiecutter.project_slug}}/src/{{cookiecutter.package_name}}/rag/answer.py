"""Answers with citations: extractive by default, generative (a causal LM) as an option.

The extractive answerer scores every sentence of the retrieved chunks and returns the best one
or two, verbatim, so every word of an answer can be traced to a source. Before answering it asks
three questions of the best sentence, and abstains with "not in the documents" if any fails:
is it similar enough to the question, does it share a content word with the question (or is it
very similar), and does it contain the kind of detail asked for (see answer_types.py)?
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .answer_types import (
    QUESTION_WORDS,
    expected_type,
    focus_terms,
    has_type,
    question_entities,
)
from .config import RagConfig
from .errors import RagError
from .index import RagIndex
from .retrieve import Hit
from .text import stem, tokens

NOT_IN_DOCS = "not in the documents"
PRONOUN_START = re.compile(r"^(It|Its|This|That|These|Those|They|Their|He|She)\b")
SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")


@dataclass
class Answer:
    text: str  # the answer with its citations, or NOT_IN_DOCS
    abstained: bool
    sources: list[dict] = field(default_factory=list)  # {n, file, snippet, score} per hit
    context: str = ""  # the retrieved text the answer was drawn from
    sentences: list[str] = field(default_factory=list)  # answer sentences, no citations
    reason: str = ""  # why it abstained (or which evidence won): for debugging and --json


@dataclass
class Candidate:
    unit: int
    source_n: int  # 1-based position of its chunk among the hits: the citation number
    similarity: float
    overlap: float
    score: float


def clean(text: str) -> str:
    """Sentence text for display: Markdown list/table/code marks removed, one line."""
    text = re.sub(r"^\s*([-*+]|\d+[.)])\s+", "", text)
    text = text.replace("`", "").replace("|", " ")
    return " ".join(text.split())


def limit_words(text: str, max_words: int) -> str:
    words = text.split()
    return text if len(words) <= max_words else " ".join(words[:max_words]) + " ..."


class Evidence:
    """Finds and checks the sentences that could answer a question (shared by both answerers)."""

    def __init__(self, index: RagIndex, config: RagConfig):
        self.index = index
        self.config = config
        # Lower-case words of every document, for the "named things must match" check.
        self.doc_words: dict[str, set[str]] = {}
        for u in index.units:
            words = set(re.findall(r"[a-z0-9][a-z0-9_-]*", (u.heading + " " + u.text).lower()))
            self.doc_words.setdefault(u.file, set()).update(words)
        # Words of titles and headings: the named things documents are *about* (Oakmere, K3).
        # Only these must match; "Hugging Face" in a question need not appear in the answer's file.
        self.subjects: set[str] = set()
        for u in index.units:
            self.subjects.update(re.findall(r"[a-z0-9][a-z0-9_-]*", u.heading.lower()))

    def candidates(self, question: str, qvec: np.ndarray, hits: list[Hit]) -> tuple[list, str]:
        """Sentences that pass every check, best first, and a reason when there are none."""
        cfg = self.config
        kind = expected_type(question) if cfg.check_answer_type else None
        entities = [e for e in question_entities(question) if e in self.subjects]
        entity_stems = set(tokens(" ".join(entities)))
        anchors = {t for t in tokens(question) if t not in QUESTION_WORDS} - entity_stems
        focus = [stem(f) for f in focus_terms(question)]
        seen, out, reasons = set(), [], set()
        for n, hit in enumerate(hits, start=1):
            for uid in self.index.chunks[hit.chunk].units:
                if uid in seen:
                    continue
                seen.add(uid)
                unit = self.index.units[uid]
                if unit.text.lstrip().startswith("```"):
                    # Code blocks help retrieval, but an answer is a sentence of prose.
                    reasons.add("only code matches the question")
                    continue
                sim = float(self.index.vectors[uid] @ qvec)
                words = set(tokens(unit.heading + " " + unit.text))
                overlap = len(anchors & words) / len(anchors) if anchors else 1.0
                if sim < cfg.min_similarity:
                    reasons.add("no sentence is similar enough to the question")
                    continue
                if any(e not in self.doc_words[unit.file] for e in entities):
                    reasons.add(f"no document about {' '.join(entities)} answers it")
                    continue
                if overlap == 0 and sim < cfg.strong_similarity:
                    reasons.add("no sentence shares a content word with the question")
                    continue
                if sim < cfg.strong_similarity and not all(_has_prefix(f, words) for f in focus):
                    reasons.add(f"no sentence is about the {' '.join(focus)} asked for")
                    continue
                if not has_type(unit.text, kind, question):
                    reasons.add(f"no sentence gives the {kind} asked for")
                    continue
                score = sim + 0.2 * overlap + 0.02 / n
                out.append(Candidate(uid, n, sim, overlap, score))
        out.sort(key=lambda c: -c.score)
        reason = "; ".join(sorted(reasons)) if not out else ""
        return out, reason or ("" if out else "nothing retrieved")


def _has_prefix(term: str, words: set[str]) -> bool:
    """'dimension' matches 'dimensional': a shared prefix of at least 5 letters counts."""
    n = min(len(term), 5)
    return any(len(w) >= n and w[:n] == term[:n] for w in words)


def format_sources(index: RagIndex, hits: list[Hit]) -> list[dict]:
    sources = []
    for n, hit in enumerate(hits, start=1):
        chunk = index.chunks[hit.chunk]
        snippet = limit_words(" ".join(chunk.text.split()), 40)
        sources.append(
            {"n": n, "file": chunk.file, "snippet": snippet, "score": round(hit.score, 4)}
        )
    return sources


def context_text(index: RagIndex, hits: list[Hit]) -> str:
    parts = []
    for n, hit in enumerate(hits, start=1):
        chunk = index.chunks[hit.chunk]
        parts.append(f"[{n}] {chunk.file} ({chunk.heading})\n{chunk.text.strip()}")
    return "\n\n".join(parts)


def extractive_answer(index: RagIndex, candidates: list[Candidate], config: RagConfig):
    """The best sentence, plus the runner-up when it is nearly as good; citations per source.

    A best sentence that opens with a pronoun ("It listens on ...") is unreadable alone, so the
    sentence before it in the same section comes along instead of the runner-up.
    """
    best = candidates[0]
    picked = [(best.source_n, best.unit)]
    prev = best.unit - 1
    units = index.units
    if (
        PRONOUN_START.match(clean(units[best.unit].text))
        and prev >= 0
        and (units[prev].file, units[prev].heading)
        == (units[best.unit].file, units[best.unit].heading)
    ):
        picked.insert(0, (best.source_n, prev))
    else:
        for c in candidates[1 : config.max_sentences]:
            if c.score >= best.score - 0.05:
                picked.append((c.source_n, c.unit))
        picked.sort()  # by source, then in document order
    picked = picked[: config.max_sentences]
    sentences, chosen, words = [], [], 0
    for n, uid in picked:
        text = clean(units[uid].text)
        if sentences and words + len(text.split()) > config.max_words:
            break
        sentences.append(limit_words(text, config.max_words))
        chosen.append((n, uid))
        words += len(text.split())
    parts = []
    for i, ((n, uid), text) in enumerate(zip(chosen, sentences, strict=True)):
        last_of_source = i + 1 == len(chosen) or chosen[i + 1][0] != n
        parts.append(text + (f" [{n}] {units[uid].file}" if last_of_source else ""))
    return " ".join(parts), sentences


class GenerativeAnswerer:
    """Answers with a Hugging Face causal LM (hub id or local folder) prompted with the sources."""

    def __init__(self, model: str, max_new_tokens: int = 64):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            self.model = AutoModelForCausalLM.from_pretrained(model)
        except Exception as exc:  # missing folder, no network, unknown architecture...
            raise RagError(f"cannot load generator {model!r}: {exc}") from exc
        self.model.eval()
        self.max_new_tokens = max_new_tokens

    @staticmethod
    def prompt(question: str, context: str) -> str:
        return (
            "Answer the question in at most two sentences using only the sources below, and cite "
            f"them as [n]. If they do not contain the answer, reply: {NOT_IN_DOCS}.\n\n"
            f"{context}\n\nQuestion: {question}\nAnswer:"
        )

    def generate(self, question: str, context: str) -> str:
        import torch

        ids = self.tokenizer(self.prompt(question, context), return_tensors="pt")["input_ids"]
        limit = getattr(self.model.config, "max_position_embeddings", None) or getattr(
            self.model.config, "n_positions", 1024
        )
        ids = ids[:, -max(1, limit - self.max_new_tokens) :]  # keep the question at the end
        pad = self.tokenizer.pad_token_id
        pad = pad if pad is not None else self.tokenizer.eos_token_id
        with torch.no_grad():
            out = self.model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=pad,
            )
        return self.tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()


def trim_generated(text: str, max_sentences: int, max_words: int) -> list[str]:
    text = text.split("\nQuestion:")[0].strip()
    sentences = [s.strip() for s in SENTENCE_SPLIT.split(" ".join(text.split())) if s.strip()]
    out, words = [], 0
    for s in sentences[:max_sentences]:
        if out and words + len(s.split()) > max_words:
            break
        out.append(limit_words(s, max_words))
        words += len(s.split())
    return out
