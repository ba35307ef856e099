import json
import shutil

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.rag.config import RagConfig
from {{ cookiecutter.package_name }}.rag.embed import EmbeddingCache, embed_cached
from {{ cookiecutter.package_name }}.rag.errors import RagError
from {{ cookiecutter.package_name }}.rag.index import (
    build_index,
    check_dimension,
    embed_text,
    load_index,
    stale_files,
)
from {{ cookiecutter.package_name }}.rag.pipeline import load_pipeline

from .conftest import CORPUS


@pytest.fixture
def corpus(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in ("training.md", "faq.md"):  # two pages keep each build to about a second
        shutil.copy(CORPUS / name, docs / name)
    return docs, tmp_path / "index"


def test_round_trip_and_manifest(corpus, embedder):
    docs, index_dir = corpus
    report = build_index(docs, index_dir, RagConfig(), embedder)
    assert report.chunks > 5 and report.embedded == report.units
    index = load_index(index_dir, RagConfig())
    m = index.manifest
    assert m["embedding_model"] == RagConfig().model and m["dimension"] == 384
    assert m["chunking"] == {"chunk_size": 400, "chunk_overlap": 80}
    assert set(m["files"]) == {p.name for p in docs.glob("*.md")}
    assert "faiss-cpu" in m["versions"]
    assert m["kind"] == "rag-index"
    assert index.faiss_index.ntotal == len(index.units) == index.vectors.shape[0]
    # The saved vectors find themselves: the index is the one that was built.
    sims, ids = index.faiss_index.search(index.vectors[:3], 1)
    assert list(ids[:, 0]) == [0, 1, 2] and np.allclose(sims[:, 0], 1.0, atol=1e-4)
    # One copy of the vectors on disk (in units.faiss), read back bit for bit.
    assert sorted(p.name for p in index_dir.iterdir()) == [
        "chunks.json",
        "manifest.json",
        "units.faiss",
    ]
    fresh, _ = embed_cached(embedder, [embed_text(u) for u in index.units], EmbeddingCache())
    assert index.vectors.dtype == np.float32 and np.array_equal(index.vectors, fresh)
    assert not [p.name for p in index_dir.parent.iterdir() if p.name.startswith(".")]


def test_unchanged_corpus_costs_nothing_and_cache_is_reused(corpus, embedder):
    from {{ cookiecutter.package_name }}.rag.embed import Embedder

    docs, index_dir = corpus
    build_index(docs, index_dir, RagConfig(), embedder)
    lazy = Embedder(RagConfig().model)  # never loads its model if nothing needs embedding
    assert build_index(docs, index_dir, RagConfig(), lazy).up_to_date
    assert build_index(docs, index_dir, RagConfig(), lazy, force=True).embedded == 0
    assert lazy._model is None
    (docs / "new.md").write_text("# New\n\nA brand new fact about zebras.\n", encoding="utf-8")
    report = build_index(docs, index_dir, RagConfig(), embedder)
    assert report.embedded == 1  # only the new sentence


def test_model_and_dimension_mismatch_are_clear_errors(corpus, embedder):
    docs, index_dir = corpus
    build_index(docs, index_dir, RagConfig(), embedder)
    with pytest.raises(RagError, match="built with embedding model"):
        load_index(index_dir, RagConfig(model="some/other-model"))
    index = load_index(index_dir, RagConfig())
    with pytest.raises(RagError, match="384-d"):
        check_dimension(index, 768)
    manifest = json.loads((index_dir / "manifest.json").read_text())
    manifest["dimension"] = 768
    (index_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(RagError, match="dimension"):
        load_index(index_dir, RagConfig())


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(RagError, match="rag index"):
        load_index(tmp_path / "nothing", RagConfig())


def test_index_older_than_its_corpus_is_reported(corpus, embedder, caplog):
    docs, index_dir = corpus
    build_index(docs, index_dir, RagConfig(), embedder)
    manifest = load_index(index_dir, RagConfig()).manifest
    assert not any(stale_files(manifest, docs).values())
    (docs / "faq.md").write_text("# FAQ\n\nChanged.\n", encoding="utf-8")
    (docs / "extra.txt").write_text("Extra.", encoding="utf-8")
    (docs / "training.md").unlink()
    stale = stale_files(manifest, docs)
    assert stale == {"added": ["extra.txt"], "changed": ["faq.md"], "removed": ["training.md"]}
    pipe = load_pipeline(index_dir, RagConfig(), embedder)
    assert pipe.stale() == stale
    assert "older than its documents" in caplog.text


def test_hnsw_index_option(corpus, embedder):
    docs, index_dir = corpus
    config = RagConfig(index_type="hnsw", hnsw_m=16, hnsw_ef_search=32)
    build_index(docs, index_dir, config, embedder)
    pipe = load_pipeline(index_dir, config, embedder)
    assert type(pipe.index.faiss_index).__name__ == "IndexHNSWFlat"
    answer = pipe.ask("What is the default seed?")
    assert "1337" in answer.text
    # HNSW keeps the vectors too (they are the cache): switching to flat embeds nothing.
    assert build_index(docs, index_dir, RagConfig(), embedder).embedded == 0
    flat = load_pipeline(index_dir, RagConfig(), embedder)
    assert np.array_equal(pipe.index.vectors, flat.index.vectors)
    assert flat.ask("What is the default seed?").text == answer.text


def test_excluded_files_stay_out_of_the_index_and_its_staleness(corpus, embedder):
    docs, index_dir = corpus
    (docs / "zh").mkdir()
    (docs / "zh" / "faq.md").write_text("# 常见问题\n\n离线也能运行。\n", encoding="utf-8")
    config = RagConfig(exclude=["zh/*"])
    report = build_index(docs, index_dir, config, embedder)
    assert sorted(report.ingest.loaded) == ["faq.md", "training.md"]
    manifest = load_index(index_dir, config).manifest
    assert "zh/faq.md" not in manifest["files"] and manifest["exclude"] == ["zh/*"]
    assert stale_files(manifest, docs) == {"added": [], "changed": [], "removed": []}
