import itertools

from {{ cookiecutter.package_name }}.rag.chunking import (
    chunk_corpus,
    chunk_document,
    split_units,
)
from {{ cookiecutter.package_name }}.rag.ingest import Document

TEXT = """# Guide

## Setup

Install the tool first. Then run it once to create the config. The config lives in the home
folder and can be edited by hand at any time.

- Step one is short.
- Step two is also short.

## Usage

Run the tool with a file name. It prints a summary. The summary has three lines and ends with
32. This line was wrapped, not a list.
"""


def doc(text=TEXT, path="guide.md"):
    return Document(path=path, text=text, sha256="x")


def test_offsets_reproduce_the_text_exactly():
    d = doc()
    for chunk in chunk_document(d, chunk_size=120, overlap=40):
        assert d.text[chunk.start : chunk.end] == chunk.text
    for units in split_units(d, 120):
        for u in units:
            assert d.text[u.start : u.end] == u.text


def test_chunks_respect_the_budget_and_stay_inside_a_section():
    d = doc()
    chunks = chunk_document(d, chunk_size=120, overlap=40)
    assert all(len(c.text) <= 120 for c in chunks)
    assert {c.heading for c in chunks} == {"Guide > Setup", "Guide > Usage"}
    assert not any("## Usage" in c.text for c in chunks)  # headings split, never inside a chunk


def test_neighbouring_chunks_overlap_by_whole_sentences():
    d = doc()
    chunks = [
        c for c in chunk_document(d, chunk_size=120, overlap=80) if c.heading.endswith("Setup")
    ]
    assert len(chunks) >= 2
    assert any(b.start < a.end for a, b in itertools.pairwise(chunks))
    no_overlap = chunk_document(d, chunk_size=120, overlap=0)
    assert all(b.start >= a.end for a, b in itertools.pairwise(no_overlap))


def test_list_items_are_units_and_a_wrapped_number_is_not_a_list():
    units = [u.text for group in split_units(doc(), 400) for u in group]
    assert "- Step one is short." in units
    assert any(u.endswith("ends with\n32.") for u in units)


def test_a_huge_sentence_is_cut_into_pieces_within_budget():
    d = doc("word " * 400)
    chunks = chunk_document(d, chunk_size=100, overlap=0)
    assert len(chunks) > 10 and all(len(c.text) <= 100 for c in chunks)
    assert "".join(c.text.replace(" ", "") for c in chunks) == d.text.replace(" ", "")


def test_corpus_ids_are_global_and_consistent():
    chunks, units = chunk_corpus([doc(), doc(path="copy.md")], chunk_size=120, overlap=40)
    assert [c.id for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        for u in c.units:
            assert c.id in units[u].chunks and units[u].file == c.file
