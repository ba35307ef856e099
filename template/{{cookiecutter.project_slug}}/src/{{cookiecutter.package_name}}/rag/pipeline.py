"""The object the CLI, the evaluation and the demo share: load once, then `ask` many times.

pipe = load_pipeline(".rag-index")
answer = pipe.ask("How many layers does the tiny model have?")
answer.text, answer.abstained, answer.sources, answer.context
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from .answer import (
    NOT_IN_DOCS,
    Answer,
    Evidence,
    GenerativeAnswerer,
    context_text,
    extractive_answer,
    format_sources,
    trim_generated,
)
from .config import RagConfig
from .embed import Embedder
from .errors import RagError
from .index import RagIndex, check_dimension, load_index, stale_files
from .retrieve import Hit, Retriever

log = logging.getLogger(__name__)


class Pipeline:
    def __init__(self, index: RagIndex, config: RagConfig, embedder: Embedder | None = None):
        self.index = index
        self.config = config
        self.embedder = embedder or Embedder(
            config.model, config.batch_size, query_threads=config.query_threads
        )
        check_dimension(index, self.embedder.dimension)
        self.retriever = Retriever(index, config)
        self.evidence = Evidence(index, config)
        self.reranker = None
        if config.reranker:
            from .rerank import Reranker

            self.reranker = Reranker(config.reranker)
        self.generator = None
        if config.answerer == "generative":
            self.generator = GenerativeAnswerer(config.generator, config.max_new_tokens)

    def stale(self) -> dict[str, list[str]]:
        """Files changed since indexing (empty lists when the index is current)."""
        docs = self.index.manifest.get("docs_dir")
        if not docs or not Path(docs).is_dir():
            return {"added": [], "changed": [], "removed": []}
        return stale_files(self.index.manifest, docs)

    def embed_question(self, question: str) -> np.ndarray:
        return self.embedder.encode_query(question)

    def chunks_to_use(self, k: int | None = None) -> int:
        """k from the caller, else the config's; at least 1, at most the number of chunks."""
        k = self.config.k if k is None else k
        if k < 1:
            raise RagError(f"k (chunks to retrieve) must be at least 1, got {k}")
        return min(k, len(self.index.chunks))

    def retrieve(self, question: str, k: int | None = None) -> list[Hit]:
        k = self.chunks_to_use(k)
        qvec = self.embed_question(question)
        return self._retrieve(question, qvec, k)

    def _retrieve(self, question: str, qvec: np.ndarray, k: int) -> list[Hit]:
        if self.reranker is None:
            return self.retriever.search(question, qvec, k)
        pool = self.retriever.search(question, qvec, max(k, self.config.rerank_candidates))
        return self.reranker.rerank(question, pool, self.index, k)

    def ask(self, question: str, k: int | None = None) -> Answer:
        question = question.strip()
        k = self.chunks_to_use(k)
        if not question:
            return Answer(NOT_IN_DOCS, True, reason="empty question")
        qvec = self.embed_question(question)
        hits = self._retrieve(question, qvec, k)
        sources = format_sources(self.index, hits)
        context = context_text(self.index, hits)
        candidates, reason = self.evidence.candidates(question, qvec, hits)
        if not candidates:
            return Answer(NOT_IN_DOCS, True, sources, context, reason=reason)
        if self.generator is None:
            text, sentences = extractive_answer(self.index, candidates, self.config)
            return Answer(text, False, sources, context, sentences, reason="extractive")
        return self._generate(question, hits, sources, context, candidates)

    def _generate(self, question, hits, sources, context, candidates) -> Answer:
        cfg = self.config
        sentences = trim_generated(
            self.generator.generate(question, context), cfg.max_sentences, cfg.max_words
        )
        if not sentences or NOT_IN_DOCS in " ".join(sentences).lower():
            return Answer(NOT_IN_DOCS, True, sources, context, reason="the generator declined")
        cited = sorted({c.source_n for c in candidates[: cfg.max_sentences]})
        cites = " ".join(f"[{n}] {self.index.chunks[hits[n - 1].chunk].file}" for n in cited)
        return Answer(
            f"{' '.join(sentences)} {cites}", False, sources, context, sentences, "generative"
        )


def load_pipeline(
    index_dir: str | Path = ".rag-index",
    config: RagConfig | None = None,
    embedder: Embedder | None = None,
) -> Pipeline:
    """Load the index (checking model, dimension and damage) and get ready to answer."""
    config = config or RagConfig()
    index = load_index(index_dir, config)
    pipe = Pipeline(index, config, embedder)
    stale = pipe.stale()
    if any(stale.values()):
        log.warning(
            "the index in %s is older than its documents (added %d, changed %d, removed %d); "
            "run `rag index` to refresh it",
            index_dir,
            len(stale["added"]),
            len(stale["changed"]),
            len(stale["removed"]),
        )
    return pipe
