"""Shared RAG fixtures. The embedding model is loaded once per session because importing
sentence-transformers and loading weights costs several seconds."""

import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
QA = ROOT / "data" / "qa.jsonl"
# The evaluated corpus is docs/ itself; docs/zh/ (Chinese projects) holds translations of it.
ENGLISH_ONLY = shutil.ignore_patterns("zh")


@pytest.fixture(scope="session")
def embedder():
    from {{ cookiecutter.package_name }}.rag.config import RagConfig
    from {{ cookiecutter.package_name }}.rag.embed import Embedder

    emb = Embedder(RagConfig().model)
    _ = emb.model  # load now, once
    return emb


@pytest.fixture(scope="session")
def shipped(tmp_path_factory, embedder):
    """A pipeline over a copy of the shipped docs/ folder."""
    from {{ cookiecutter.package_name }}.rag.config import RagConfig
    from {{ cookiecutter.package_name }}.rag.index import build_index
    from {{ cookiecutter.package_name }}.rag.pipeline import load_pipeline

    base = tmp_path_factory.mktemp("shipped")
    docs = base / "docs"
    shutil.copytree(DOCS, docs, ignore=ENGLISH_ONLY)
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
