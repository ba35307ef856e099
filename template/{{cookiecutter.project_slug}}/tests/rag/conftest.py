"""Shared RAG fixtures. The embedding model is loaded once per session because importing
sentence-transformers and loading weights costs several seconds.

The quality tests run on a fixture corpus, `tests/rag/corpus/`: a frozen copy of the project's
English docs pages as the template shipped them, with `tests/rag/qa.jsonl` (the same questions
as `data/qa.jsonl`). Your own `docs/` is yours to edit: changing it never breaks a test.
"""

import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
QA = HERE / "qa.jsonl"


@pytest.fixture(scope="session")
def embedder():
    from {{ cookiecutter.package_name }}.rag.config import RagConfig
    from {{ cookiecutter.package_name }}.rag.embed import Embedder

    emb = Embedder(RagConfig().model)
    _ = emb.model  # load now, once
    return emb


@pytest.fixture(scope="session")
def shipped(tmp_path_factory, embedder):
    """A pipeline over a copy of the fixture corpus."""
    from {{ cookiecutter.package_name }}.rag.config import RagConfig
    from {{ cookiecutter.package_name }}.rag.index import build_index
    from {{ cookiecutter.package_name }}.rag.pipeline import load_pipeline

    base = tmp_path_factory.mktemp("shipped")
    docs = base / "docs"
    shutil.copytree(CORPUS, docs)
    config = RagConfig()
    build_index(docs, base / "index", config, embedder)
    return load_pipeline(base / "index", config, embedder)


def make_pdf(text: str) -> bytes:
    """A minimal one-page PDF with `text` in Helvetica (xref offsets computed, so it is valid)."""
    content = f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 400 200] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)
