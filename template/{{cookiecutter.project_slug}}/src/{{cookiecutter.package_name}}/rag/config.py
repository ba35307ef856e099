"""RagConfig: every knob of the RAG pipeline in one dataclass, optionally read from YAML.

Defaults are chosen to work offline on a laptop CPU; `configs/rag.yaml` overrides any of them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from .errors import RagError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class RagConfig:
    # Embeddings: a sentence-transformers hub id or a local folder.
    model: str = DEFAULT_MODEL
    batch_size: int = 64
    query_threads: int = 1  # torch threads for embedding one question (0 = leave as is)
    # Chunking: character budget per chunk and how much text neighbouring chunks share.
    chunk_size: int = 400
    chunk_overlap: int = 80
    max_file_bytes: int = 5_000_000
    # Files under the docs folder to leave out, as glob patterns on their relative path
    # (e.g. "drafts/*"): translations or notes that the evaluated corpus should not contain.
    exclude: list[str] = dataclasses.field(default_factory=list)
    # Index: "flat" is exact search; "hnsw" is approximate and scales to large corpora.
    index_type: str = "flat"
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    hnsw_ef_search: int = 64
    # Retrieval: k chunks reach the answerer; fusion combines the dense and BM25 rankings.
    k: int = 5
    fusion: str = "rrf"
    rrf_k: int = 60
    mmr: bool = False
    mmr_lambda: float = 0.7
    # Optional cross-encoder reranking of the fused candidates (hub id or local folder).
    reranker: str | None = None
    rerank_candidates: int = 20
    # Answering.
    answerer: str = "extractive"
    generator: str | None = None
    max_new_tokens: int = 64
    max_sentences: int = 2
    max_words: int = 60
    # Abstention: below min_similarity nothing counts as evidence; a sentence that shares no
    # content word with the question needs strong_similarity to be trusted.
    min_similarity: float = 0.25
    strong_similarity: float = 0.6
    check_answer_type: bool = True

    def __post_init__(self) -> None:
        choices = {
            "index_type": ("flat", "hnsw"),
            "fusion": ("rrf", "dense", "bm25"),
            "answerer": ("extractive", "generative"),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise RagError(
                    f"rag config: {key} must be one of {allowed}, got {getattr(self, key)!r}"
                )
        if self.chunk_size < 50:
            raise RagError("rag config: chunk_size must be at least 50 characters")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise RagError("rag config: chunk_overlap must be >= 0 and smaller than chunk_size")
        if self.k < 1:
            raise RagError("rag config: k must be at least 1")
        if self.answerer == "generative" and not self.generator:
            raise RagError("rag config: answerer 'generative' needs generator: <hub id or folder>")

    @classmethod
    def from_dict(cls, data: dict) -> RagConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RagError(f"rag config: unknown keys {unknown}; known keys: {sorted(known)}")
        return cls(**data)

    @classmethod
    def from_yaml(cls, path: str | Path) -> RagConfig:
        import yaml

        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise RagError(f"cannot read rag config {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise RagError(f"rag config {path} must be a mapping of key: value")
        # Allow the settings either at the top level or under a `rag:` key.
        data = data.get("rag", data) if isinstance(data.get("rag"), dict) else data
        return cls.from_dict(data)


def load_config(path: str | Path | None = None, project_root: Path | None = None) -> RagConfig:
    """Read `path`, else `<project>/configs/rag.yaml` when it exists, else the defaults."""
    if path is not None:
        return RagConfig.from_yaml(path)
    default = (project_root or Path.cwd()) / "configs" / "rag.yaml"
    return RagConfig.from_yaml(default) if default.is_file() else RagConfig()
