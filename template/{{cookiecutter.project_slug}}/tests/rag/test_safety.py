"""Hostile and mistaken input: `rag index` never destroys files, damage is detected and named.

Each case comes from the bad-input probe: an --index that is the docs folder, a folder of the
user's own files or a file; an index with a file missing, truncated or replaced by garbage.
"""

import importlib.util
import json
import shutil

import faiss
import pytest

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.rag.config import RagConfig
from {{ cookiecutter.package_name }}.rag.errors import IndexDamaged, RagError
from {{ cookiecutter.package_name }}.rag.index import build_index, load_index
from {{ cookiecutter.package_name }}.rag.pipeline import load_pipeline

INDEX_FILES = ["chunks.json", "manifest.json", "units.faiss"]
PAGE = "# Boats\n\nThe ferry to Lindholm leaves at noon. The return ferry leaves at six.\n"


def snapshot(folder):
    """Every file under folder with its bytes: equal snapshots mean nothing was touched."""
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "boats.md").write_text(PAGE, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def good_index(tmp_path_factory, embedder):
    """One small index, built once; each damage test works on a copy of it."""
    base = tmp_path_factory.mktemp("good")
    (base / "docs").mkdir()
    (base / "docs" / "boats.md").write_text(PAGE, encoding="utf-8")
    build_index(base / "docs", base / "index", RagConfig(), embedder)
    return base


# ----------------------------------------------------------------------------- the --index target


def refused(docs, index, match):
    before, around = snapshot(docs.parent), sorted(p.name for p in docs.parent.iterdir())
    with pytest.raises(RagError, match=match):
        build_index(docs, index, RagConfig())
    assert snapshot(docs.parent) == before  # nothing written, moved or deleted
    assert sorted(p.name for p in docs.parent.iterdir()) == around  # no hidden leftovers


def test_index_into_the_docs_folder_is_refused(docs):
    refused(docs, docs, "is the docs folder itself")
    refused(docs, docs / ".." / "docs", "is the docs folder itself")  # the same, spelt oddly
    refused(docs, docs / "index", "inside the docs folder")


def test_docs_inside_the_index_folder_is_refused(tmp_path):
    docs = tmp_path / "outer" / "docs"
    docs.mkdir(parents=True)
    (docs / "boats.md").write_text(PAGE, encoding="utf-8")
    with pytest.raises(RagError, match="inside the index folder"):
        build_index(docs, tmp_path / "outer", RagConfig())
    assert (docs / "boats.md").read_text(encoding="utf-8") == PAGE


def test_a_folder_of_other_files_is_refused(docs, tmp_path):
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "notes.txt").write_text("mine", encoding="utf-8")
    (victim / "sub" / "x.md").write_text("also mine", encoding="utf-8")
    refused(docs, victim, r"not a RAG index \(it holds notes\.txt, sub\)")
    # A manifest.json that some other tool wrote (a web app's) does not make an index either.
    web = tmp_path / "web"
    web.mkdir()
    (web / "manifest.json").write_text('{"name": "my app", "icons": []}', encoding="utf-8")
    refused(docs, web, "manifest.json is not a RAG index's")
    # Nor does a lone file with an index file's name.
    (web / "manifest.json").unlink()
    (web / "chunks.json").write_text("[]", encoding="utf-8")
    refused(docs, web, "it has no index manifest")


def test_a_file_is_refused(docs, tmp_path):
    victim = tmp_path / "victim.md"
    victim.write_text("my notes", encoding="utf-8")
    refused(docs, victim, "is a file, not an index folder")
    assert victim.read_text(encoding="utf-8") == "my notes"


def test_the_cli_and_the_demo_refuse_too(docs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    before = snapshot(docs)
    assert main(["rag", "index", "--docs", "docs", "--index", "docs"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "nothing was changed" in err and len(err.splitlines()) == 1
    assert snapshot(docs) == before
    if importlib.util.find_spec("{{ cookiecutter.package_name }}.demo") is None:
        return  # a project without the demo
    from {{ cookiecutter.package_name }}.demo import load_rag

    with pytest.raises(RagError, match="is the docs folder itself"):
        load_rag(docs, docs, RagConfig(), say=lambda _: None)  # first start, --docs X --index X
    assert snapshot(docs) == before


def test_an_empty_folder_is_used_and_a_rebuild_leaves_no_hidden_folders(docs, embedder):
    index = docs.parent / "index"
    index.mkdir()
    build_index(docs, index, RagConfig(), embedder)
    (index / ".DS_Store").write_bytes(b"a file browser was here")  # does not block a rebuild
    build_index(docs, index, RagConfig(), embedder, force=True)  # replaces the old index
    assert sorted(p.name for p in docs.parent.iterdir()) == ["docs", "index"]
    answer = load_pipeline(index, RagConfig(), embedder).ask("Which ferry goes to Lindholm?")
    assert answer.sources[0]["file"] == "boats.md"


def test_a_failed_build_leaves_the_old_index_intact(docs, embedder, monkeypatch):
    index = docs.parent / "index"
    build_index(docs, index, RagConfig(), embedder)
    before = snapshot(index)
    (docs / "more.md").write_text("# More\n\nThe bus leaves at one.\n", encoding="utf-8")

    def disk_full(faiss_index, path):  # the disk fills up half-way through writing
        with open(path, "wb") as f:
            f.write(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(faiss, "write_index", disk_full)
    with pytest.raises(RagError, match=r"No space left on device.*the old one is unchanged"):
        build_index(docs, index, RagConfig(), embedder, force=True)
    assert snapshot(index) == before
    assert sorted(p.name for p in docs.parent.iterdir()) == ["docs", "index"]
    monkeypatch.undo()
    assert load_index(index, RagConfig()).manifest["num_units"] == 2


# ----------------------------------------------------------------------------- damaged indexes


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garbage(path):
    path.write_bytes(bytes(range(256)) * (path.stat().st_size // 256 + 1))


DAMAGE = {"missing": lambda p: p.unlink(), "truncated": truncate, "garbage": garbage}


@pytest.mark.parametrize("name", ["units.faiss", "chunks.json", "manifest.json"])
@pytest.mark.parametrize("how", sorted(DAMAGE))
def test_a_damaged_index_is_named_and_rebuilt(good_index, tmp_path, embedder, name, how):
    index = tmp_path / "index"
    shutil.copytree(good_index / "index", index)
    DAMAGE[how](index / name)
    with pytest.raises(IndexDamaged, match=r"is damaged \(.+\); rebuild it with `rag index"):
        load_pipeline(index, RagConfig(), embedder)
    # `rag index` without --force notices the damage and rebuilds instead of "up to date".
    report = build_index(good_index / "docs", index, RagConfig(), embedder)
    assert not report.up_to_date and "damaged" in report.notes[0]
    assert load_index(index, RagConfig()).manifest["num_units"] == 2


def test_valid_json_with_wrong_content_is_damage(good_index, tmp_path):
    index = tmp_path / "index"
    shutil.copytree(good_index / "index", index)
    payload = json.loads((index / "chunks.json").read_text(encoding="utf-8"))
    payload["units"] = payload["units"][:1]  # one sentence lost, same file size kept below
    text = json.dumps(payload)
    size = (index / "chunks.json").stat().st_size
    (index / "chunks.json").write_text(text + " " * (size - len(text)), encoding="utf-8")
    with pytest.raises(IndexDamaged, match="disagree on the number of sentences"):
        load_index(index, RagConfig())


def test_the_cli_names_the_damage(good_index, tmp_path, monkeypatch, capsys):
    index = tmp_path / "index"
    shutil.copytree(good_index / "index", index)
    truncate(index / "units.faiss")
    monkeypatch.chdir(tmp_path)
    for command in (["ask", "When?"], ["eval", "--qa", "qa.jsonl"]):
        (tmp_path / "qa.jsonl").write_text('{"question": "When?"}\n', encoding="utf-8")
        assert main(["rag", *command, "--index", "index"]) == 2
        err = capsys.readouterr().err
        assert "units.faiss has" in err and "rag index --force" in err and "Traceback" not in err


def test_an_index_of_the_older_format_is_rebuilt(good_index, tmp_path, embedder):
    """Format 1 stored the vectors twice (vectors.npy) and had no `kind` marker."""
    index = tmp_path / "index"
    shutil.copytree(good_index / "index", index)
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    del manifest["kind"], manifest["sizes"]
    manifest["format"] = 1
    (index / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    (index / "vectors.npy").write_bytes(b"old copy")
    with pytest.raises(RagError, match="another version"):
        load_index(index, RagConfig())
    assert not build_index(good_index / "docs", index, RagConfig(), embedder).up_to_date
    assert sorted(p.name for p in index.iterdir()) == INDEX_FILES


# ----------------------------------------------------------------------------- --k


def test_k_is_checked_and_capped(good_index, embedder, monkeypatch, capsys):
    pipe = load_pipeline(good_index / "index", RagConfig(), embedder)
    assert len(pipe.ask("When does the ferry leave?", k=100_000).sources) == len(pipe.index.chunks)
    with pytest.raises(RagError, match="at least 1"):
        pipe.ask("When does the ferry leave?", k=0)
    monkeypatch.chdir(good_index)
    for command in (["ask", "x", "--k=0"], ["ask", "x", "--k=-1"], ["eval", "--qa", "q", "--k=0"]):
        assert main(["rag", *command, "--index", "index"]) == 2
        assert "--k must be at least 1" in capsys.readouterr().err
