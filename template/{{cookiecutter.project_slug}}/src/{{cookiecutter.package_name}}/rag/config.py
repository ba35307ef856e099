"""RagConfig: every knob of the RAG pipeline in one dataclass, optionally read from YAML.

Defaults are chosen to work offline on a laptop CPU; `configs/rag.yaml` overrides any of them.
The file is read by the same typed loader as the training config (`config.load_into`): each
value is converted to the field's type, and an unknown key, a wrong type (`chunk_size: abc`) or
an out-of-range value stops with one line naming the key. The comment beside each field is its
documentation: `config show` prints it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..config import ConfigError, check_all, load_into, read_yaml_mapping, require

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass
class RagConfig:
    model: str = DEFAULT_MODEL  # embedding model: sentence-transformers hub id or local folder
    batch_size: int = 64  # sentences embedded per batch while indexing
    query_threads: int = 1  # torch threads for embedding one question (0 = leave as is)
    chunk_size: int = 400  # most characters in one chunk (at least 50)
    chunk_overlap: int = 80  # characters neighbouring chunks share, as whole sentences
    max_file_bytes: int = 5_000_000  # larger files are skipped while indexing
    exclude: list[str] = dataclasses.field(default_factory=list)  # globs on paths, e.g. "zh/*"
    index_type: str = "flat"  # faiss index: flat is exact, hnsw approximate (large corpora)
    hnsw_m: int = 32  # HNSW: links per vector
    hnsw_ef_construction: int = 80  # HNSW: search width while building
    hnsw_ef_search: int = 64  # HNSW: search width while asking (higher = more exact)
    k: int = 5  # chunks retrieved per question (capped at the number of chunks)
    fusion: str = "rrf"  # how the dense and BM25 rankings combine (rrf = both)
    rrf_k: int = 60  # reciprocal rank fusion constant: score = sum of 1 / (rrf_k + rank)
    mmr: bool = False  # re-order chunks with maximal marginal relevance (less redundancy)
    mmr_lambda: float = 0.7  # MMR: 1 = relevance only, 0 = diversity only
    reranker: str | None = None  # optional cross-encoder (hub id or folder) to re-sort chunks
    rerank_candidates: int = 20  # chunks the reranker re-sorts
    answerer: str = "extractive"  # extractive quotes sentences; generative needs generator
    generator: str | None = None  # causal LM (hub id or folder) for answerer: generative
    max_new_tokens: int = 64  # generative answerer: most tokens generated
    max_sentences: int = 2  # most sentences in an answer
    max_words: int = 60  # most words in an answer
    min_similarity: float = 0.25  # below this cosine similarity nothing counts as evidence
    strong_similarity: float = 0.6  # trust a sentence sharing no content word with the question
    check_answer_type: bool = True  # abstain when the answer lacks the asked type (number, date)

    CHOICES: ClassVar = {
        "index_type": ("flat", "hnsw"),
        "fusion": ("rrf", "dense", "bm25"),
        "answerer": ("extractive", "generative"),
    }

    def __post_init__(self) -> None:
        self.check()  # RagConfig(k=0) in code is refused like `k: 0` in a file

    def check(self) -> None:
        """Value rules that types alone cannot express (the loader has checked the types)."""
        for key, allowed in self.CHOICES.items():
            value = getattr(self, key)
            require(value in allowed, f"rag.{key}: {value!r} is not one of {', '.join(allowed)}")
        require(bool(self.model.strip()), "rag.model must name an embedding model")
        for key in (
            "batch_size",
            "max_file_bytes",
            "hnsw_m",
            "hnsw_ef_construction",
            "hnsw_ef_search",
            "k",
            "rrf_k",
            "rerank_candidates",
            "max_new_tokens",
            "max_sentences",
            "max_words",
        ):
            value = getattr(self, key)
            require(value >= 1, f"rag.{key} must be at least 1, got {value}")
        require(self.query_threads >= 0, "rag.query_threads must be >= 0 (0 = torch's default)")
        require(self.chunk_size >= 50, "rag.chunk_size must be at least 50 characters")
        require(
            0 <= self.chunk_overlap < self.chunk_size,
            "rag.chunk_overlap must be >= 0 and smaller than rag.chunk_size",
        )
        lam = self.mmr_lambda
        require(0 <= lam <= 1, f"rag.mmr_lambda must be in [0, 1], got {lam}")
        for key in ("min_similarity", "strong_similarity"):
            value = getattr(self, key)
            require(-1 <= value <= 1, f"rag.{key} must be a cosine similarity in [-1, 1]")
        require(
            self.answerer != "generative" or bool(self.generator),
            "rag.answerer 'generative' needs rag.generator: <hub id or folder>",
        )

    @classmethod
    def from_dict(cls, data: dict) -> RagConfig:
        """Defaults <- `data` (typed: unknown keys and wrong types are ConfigErrors), checked."""
        config = cls()
        load_into(config, data, prefix="rag")
        check_all(config)
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> RagConfig:
        data = read_yaml_mapping(path, "a mapping of RAG settings (key: value)")
        # The settings may sit at the top level or under a `rag:` key (a file shared with
        # other tools); in the second case the other top-level keys are not ours to check.
        if isinstance(data.get("rag"), dict):
            data = data["rag"]
        elif "rag" in data:
            raise ConfigError(f"{path}: rag: must be a mapping of RAG settings")
        return cls.from_dict(data)


def load_config(path: str | Path | None = None, project_root: Path | None = None) -> RagConfig:
    """Read `path`, else `<project>/configs/rag.yaml` when it exists, else the defaults."""
    if path is not None:
        return RagConfig.from_yaml(path)
    default = (project_root or Path.cwd()) / "configs" / "rag.yaml"
    return RagConfig.from_yaml(default) if default.is_file() else RagConfig()
