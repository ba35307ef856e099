import logging

from {{ cookiecutter.package_name }}.rag.ingest import load_documents

from .conftest import make_pdf


def test_reads_markdown_text_and_pdf_recursively(tmp_path):
    (tmp_path / "a.md").write_text("# Alpha\n\nAlpha text.\n", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.txt").write_text("Beta text.", encoding="utf-8")
    (tmp_path / "sub" / "c.pdf").write_bytes(make_pdf("The ferry leaves at noon."))
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    docs, report = load_documents(tmp_path)
    by_path = {d.path: d for d in docs}
    assert sorted(by_path) == ["a.md", "sub/b.txt", "sub/c.pdf"]
    assert "ferry leaves at noon" in by_path["sub/c.pdf"].text
    assert by_path["a.md"].title == "Alpha"
    assert report.ignored == 1 and not report.skipped


def test_bad_files_are_skipped_with_a_warning_and_counted(tmp_path, caplog):
    (tmp_path / "good.md").write_text("Fine.", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"abc\x00\x01\x02")
    (tmp_path / "empty.md").write_text("  \n\n", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (tmp_path / "huge.txt").write_text("x" * 2000, encoding="utf-8")
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not really a pdf")
    with caplog.at_level(logging.WARNING):
        docs, report = load_documents(tmp_path, max_bytes=1000)
    assert [d.path for d in docs] == ["good.md"]
    reasons = dict(report.skipped)
    assert set(reasons) == {"binary.txt", "empty.md", "latin1.txt", "huge.txt", "broken.pdf"}
    assert "binary" in reasons["binary.txt"]
    assert "empty" in reasons["empty.md"]
    assert "UTF-8" in reasons["latin1.txt"]
    assert "too large" in reasons["huge.txt"]
    assert "PDF" in reasons["broken.pdf"]
    assert report.summary().startswith("1 files read, 5 skipped")
    assert sum("skipped" in r.message for r in caplog.records) == 5


def test_hidden_folders_are_not_read(tmp_path):
    (tmp_path / ".rag-index").mkdir()
    (tmp_path / ".rag-index" / "notes.md").write_text("Index internals.", encoding="utf-8")
    (tmp_path / "page.md").write_text("Visible.", encoding="utf-8")
    docs, _ = load_documents(tmp_path)
    assert [d.path for d in docs] == ["page.md"]
