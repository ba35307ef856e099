"""Hybrid retrieval: dense (faiss) and lexical (BM25) rankings fused by reciprocal rank fusion.

Dense search finds paraphrases ("how deep is the model" ~ "4 layers"); BM25 finds rare exact
terms (a file name, a flag, a product code) that embeddings blur. RRF adds 1 / (rrf_k + rank)
from each ranking, so a chunk ranked well by both wins without calibrating their scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .config import RagConfig
from .index import RagIndex
from .text import tokens


@dataclass
class Hit:
    chunk: int  # chunk id
    score: float  # fused score (RRF, or the single retriever's score)
    dense: float = 0.0  # best sentence cosine similarity in the chunk
    bm25: float = 0.0


class Bm25:
    """BM25 over chunk text plus its heading path, using the bm25s library."""

    def __init__(self, texts: list[str]):
        import bm25s

        self.model = bm25s.BM25()
        # bm25s needs a non-empty vocabulary; "_" never matches a real query token.
        self.model.index([tokens(t) or ["_"] for t in texts], show_progress=False)

    def scores(self, query: str) -> np.ndarray:
        q = tokens(query)
        if not q:
            return np.zeros(self.model.scores["num_docs"], dtype=np.float32)
        return np.asarray(self.model.get_scores(q), dtype=np.float32)


def rrf(rankings: list[list[int]], k: int = 60) -> dict[int, float]:
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return fused


def mmr(candidates: list[int], relevance: dict[int, float], vecs: np.ndarray, k: int, lam: float):
    """Maximal marginal relevance: trade relevance against similarity to what is already picked."""
    picked: list[int] = []
    pool = list(candidates)
    while pool and len(picked) < k:

        def gain(c: int) -> float:
            redundancy = max((float(vecs[c] @ vecs[p]) for p in picked), default=0.0)
            return lam * relevance[c] - (1 - lam) * redundancy

        best = max(pool, key=gain)
        picked.append(best)
        pool.remove(best)
    return picked


class Retriever:
    def __init__(self, index: RagIndex, config: RagConfig):
        self.index = index
        self.config = config
        self.bm25 = Bm25([f"{c.heading}\n{c.text}" for c in index.chunks])
        self.unit_chunks = [u.chunks for u in index.units]
        # One vector per chunk (mean of its sentences) is only needed for MMR's redundancy term.
        self._chunk_vecs: np.ndarray | None = None

    def dense(self, qvec: np.ndarray) -> dict[int, float]:
        """Chunk -> best sentence similarity, from a faiss search over sentence vectors."""
        n = min(self.index.faiss_index.ntotal, max(64, 10 * self.config.k))
        sims, ids = self.index.faiss_index.search(qvec.reshape(1, -1).astype(np.float32), n)
        best: dict[int, float] = {}
        for sim, uid in zip(sims[0], ids[0], strict=True):
            if uid < 0:
                continue
            for c in self.unit_chunks[uid]:
                if c not in best or sim > best[c]:
                    best[c] = float(sim)
        return best

    def search(self, question: str, qvec: np.ndarray, k: int | None = None) -> list[Hit]:
        cfg = self.config
        k = k or cfg.k
        dense = self.dense(qvec)
        bm25 = self.bm25.scores(question)
        dense_rank = sorted(dense, key=lambda c: -dense[c])
        bm25_rank = [int(c) for c in np.argsort(-bm25, kind="stable") if bm25[c] > 0]
        if cfg.fusion == "dense":
            fused = dense
        elif cfg.fusion == "bm25":
            fused = {c: float(bm25[c]) for c in bm25_rank}
        else:
            fused = rrf([dense_rank, bm25_rank], cfg.rrf_k)
        order = sorted(fused, key=lambda c: (-fused[c], c))
        if cfg.mmr:
            pool = order[: 4 * k]
            order = mmr(
                pool, {c: dense.get(c, 0.0) for c in pool}, self.chunk_vecs, k, cfg.mmr_lambda
            )
        return [Hit(c, fused[c], dense.get(c, 0.0), float(bm25[c])) for c in order[:k]]

    @property
    def chunk_vecs(self) -> np.ndarray:
        if self._chunk_vecs is None:
            vecs = np.stack([self.index.vectors[c.units].mean(axis=0) for c in self.index.chunks])
            self._chunk_vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True).clip(1e-9)
        return self._chunk_vecs
