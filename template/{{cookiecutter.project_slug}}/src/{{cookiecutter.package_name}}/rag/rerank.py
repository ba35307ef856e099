"""Optional cross-encoder reranking: reads question and chunk together, so it judges relevance
better than comparing two separate embeddings - at the price of one model call per candidate."""

from __future__ import annotations

from .errors import RagError
from .index import RagIndex
from .retrieve import Hit


class Reranker:
    def __init__(self, model: str):
        from sentence_transformers import CrossEncoder

        try:
            self.model = CrossEncoder(model, num_labels=1, device="cpu")
        except Exception as exc:
            raise RagError(f"cannot load reranker {model!r}: {exc}") from exc

    def rerank(self, question: str, hits: list[Hit], index: RagIndex, k: int) -> list[Hit]:
        if not hits:
            return hits
        pairs = [(question, index.chunks[h.chunk].text) for h in hits]
        scores = self.model.predict(pairs, show_progress_bar=False)
        order = sorted(range(len(hits)), key=lambda i: -float(scores[i]))
        out = []
        for i in order[:k]:
            hit = hits[i]
            out.append(Hit(hit.chunk, float(scores[i]), hit.dense, hit.bm25))
        return out
