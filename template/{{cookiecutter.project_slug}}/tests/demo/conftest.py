"""Shared fixtures: a real RAG pipeline over the shipped docs, a really trained (tiny) checkpoint,
and the app served on a free loopback port. Everything runs offline."""

import os
import shutil
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.demo import has_rag

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
HAS_RAG = has_rag()  # projects rendered without the RAG component have no Ask tab


@pytest.fixture(scope="session")
def docs_dir(tmp_path_factory):
    """A copy of the shipped docs (the index records its folder; tests never touch docs/)."""
    docs = tmp_path_factory.mktemp("corpus") / "docs"
    # The English corpus the QA file is about: no picture, no translations (docs/zh/).
    shutil.copytree(DOCS, docs, ignore=shutil.ignore_patterns("*.png", "zh"))
    return docs


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory, docs_dir):
    if not HAS_RAG:
        pytest.skip("this project has no RAG component")
    from {{ cookiecutter.package_name }}.rag.index import build_index

    index = tmp_path_factory.mktemp("rag") / "index"
    build_index(docs_dir, index)
    return index


@pytest.fixture(scope="session")
def pipeline(index_dir):
    from {{ cookiecutter.package_name }}.rag.pipeline import load_pipeline

    return load_pipeline(index_dir)


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory, docs_dir):
    """A run trained for real, just long enough to leave a checkpoint (a few seconds)."""
    from {{ cookiecutter.package_name }}.config import load_config
    from {{ cookiecutter.package_name }}.train import run

    runs = tmp_path_factory.mktemp("runs")
    overrides = [
        "model.n_layer=1",
        "model.n_head=2",
        "model.n_embd=32",
        "train.max_steps=5",
        "train.eval_interval=5",
        "train.eval_iters=1",
        "train.checkpoint_interval=5",
        f"data.path={docs_dir}",
    ]
    run(load_config(ROOT / "configs" / "tiny.yaml", overrides), runs)
    return runs


@pytest.fixture(scope="session")
def server(request, runs_dir):
    """The full app on a free 127.0.0.1 port; yields its URL and closes it afterwards."""
    from {{ cookiecutter.package_name }}.demo import build_app, free_port

    pipeline = request.getfixturevalue("pipeline") if HAS_RAG else None
    app = build_app(pipeline, runs_dir)
    app.launch(
        server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True
    )
    try:
        yield app.local_url
    finally:
        app.close()


@pytest.fixture(scope="session")
def artefacts():
    """Where tests leave files for people to look at (screenshots): $TEST_ARTEFACTS or
    test-artefacts/ in the project (CI uploads it)."""
    folder = Path(os.environ.get("TEST_ARTEFACTS", ROOT / "test-artefacts"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder
