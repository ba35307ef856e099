"""Split documents into sentences ("units") and pack them into chunks.

A document is cut at Markdown headings into sections, sections into paragraphs, list items and
table rows, and those into sentences. Chunks are runs of whole units inside one section, at most
`chunk_size` characters, and each chunk starts with the last units of the previous one (up to
`overlap` characters) so a fact near a boundary is seen whole by at least one chunk.
Every unit and chunk keeps its character offsets: `doc.text[start:end]` is exactly its text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .ingest import Document

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
# A new unit starts at a bullet item or a table row; a numbered item only after another item
# (as in CommonMark, "32. The optimizer" wrapped inside a paragraph is not a list).
BULLET_START = re.compile(r"^\s*([-*+]\s|\|)")
NUMBERED_START = re.compile(r"^\s*\d+[.)]\s")
# Sentence end: . ! or ? then whitespace then something that starts a sentence.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9`\"'(\[<])")


@dataclass
class Unit:
    """A sentence (or list item, table row, code line) with its offsets in the document."""

    file: str
    start: int
    end: int
    text: str
    heading: str  # "Title > Section": context the sentence alone lacks
    chunks: list[int] = field(default_factory=list)


@dataclass
class Chunk:
    id: int
    file: str
    start: int
    end: int
    text: str
    heading: str
    units: list[int] = field(default_factory=list)  # indexes into the global unit list


def _sections(text: str) -> list[tuple[int, int, list[str]]]:
    """(start, end, heading path) per section; heading lines themselves are left out."""
    sections, path, start, pos = [], [], 0, 0
    in_code = False
    for line in text.splitlines(keepends=True):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        m = None if in_code else HEADING.match(line.rstrip("\r\n"))
        if m:
            sections.append((start, pos, list(path)))
            level = len(m.group(1))
            path = [*path[: level - 1], m.group(2)]
            start = pos + len(line)
        pos += len(line)
    sections.append((start, len(text), list(path)))
    return [s for s in sections if text[s[0] : s[1]].strip()]


def _blocks(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Paragraphs, list items, table rows and code blocks as (start, end) spans."""
    blocks, cur, pos, in_code, in_list = [], None, start, False, False
    for line in text[start:end].splitlines(keepends=True):
        stripped = line.strip()
        fence = stripped.startswith("```")
        item = not in_code and (
            BULLET_START.match(line) or ((in_list or cur is None) and NUMBERED_START.match(line))
        )
        if not stripped and not in_code:
            if cur:
                blocks.append(cur)
            cur, in_list = None, False
        elif cur is None or item or (fence and not in_code):
            if cur:
                blocks.append(cur)
            cur = [pos, pos + len(line.rstrip())]
            in_list = bool(item)
        else:
            cur[1] = pos + len(line.rstrip())
        if fence:
            in_code = not in_code
        pos += len(line)
    if cur:
        blocks.append(cur)
    return [(a, b) for a, b in blocks]


def _sentences(text: str, start: int, end: int, max_len: int) -> list[tuple[int, int]]:
    spans, last = [], start
    for m in SENTENCE_END.finditer(text, start, end):
        spans.append((last, m.start()))
        last = m.end()
    spans.append((last, end))
    out = []
    for a, b in spans:
        out.extend(_hard_split(text, a, b, max_len))
    return [(a, b) for a, b in out if text[a:b].strip()]


def _hard_split(text: str, start: int, end: int, max_len: int) -> list[tuple[int, int]]:
    """Cut an over-long sentence at spaces (or anywhere, if it has none) into <= max_len pieces."""
    pieces = []
    while end - start > max_len:
        cut = text.rfind(" ", start + 1, start + max_len)
        cut = cut if cut > start else start + max_len
        pieces.append((start, cut))
        start = cut + 1 if text[cut : cut + 1] == " " else cut
    pieces.append((start, end))
    return pieces


def split_units(doc: Document, max_len: int) -> list[list[Unit]]:
    """Units of a document, grouped by section."""
    title = doc.title
    groups = []
    for s_start, s_end, path in _sections(doc.text):
        if path and path[0] == title:
            path = path[1:]
        heading = " > ".join([title, *path])
        units = []
        for b_start, b_end in _blocks(doc.text, s_start, s_end):
            for a, b in _sentences(doc.text, b_start, b_end, max_len):
                units.append(Unit(doc.path, a, b, doc.text[a:b], heading))
        if units:
            groups.append(units)
    return groups


def chunk_document(doc: Document, chunk_size: int = 400, overlap: int = 80) -> list[Chunk]:
    """Chunks of one document; chunk.units hold local unit positions (see chunk_corpus)."""
    chunks, _ = _chunk(doc, chunk_size, overlap)
    return chunks


def _chunk(doc: Document, chunk_size: int, overlap: int) -> tuple[list[Chunk], list[Unit]]:
    all_units: list[Unit] = []
    chunks: list[Chunk] = []
    for units in split_units(doc, chunk_size):
        base = len(all_units)
        all_units.extend(units)
        i = 0
        while i < len(units):
            j = i + 1  # always take at least one unit (each is <= chunk_size by construction)
            while j < len(units) and units[j].end - units[i].start <= chunk_size:
                j += 1
            a, b = units[i].start, units[j - 1].end
            ids = list(range(base + i, base + j))
            chunks.append(Chunk(len(chunks), doc.path, a, b, doc.text[a:b], units[i].heading, ids))
            if j >= len(units):
                break
            # Start the next chunk with trailing units that fit in the overlap budget.
            nxt = j
            while nxt - 1 > i and units[j - 1].end - units[nxt - 1].start <= overlap:
                nxt -= 1
            i = nxt
    for chunk in chunks:
        for u in chunk.units:
            all_units[u].chunks.append(chunk.id)
    return chunks, all_units


def chunk_corpus(
    docs: list[Document], chunk_size: int = 400, overlap: int = 80
) -> tuple[list[Chunk], list[Unit]]:
    """Chunks and units of all documents with global, consistent ids."""
    chunks: list[Chunk] = []
    units: list[Unit] = []
    for doc in docs:
        doc_chunks, doc_units = _chunk(doc, chunk_size, overlap)
        c_off, u_off = len(chunks), len(units)
        for u in doc_units:
            u.chunks = [c + c_off for c in u.chunks]
        for c in doc_chunks:
            c.id += c_off
            c.units = [u + u_off for u in c.units]
        chunks.extend(doc_chunks)
        units.extend(doc_units)
    return chunks, units
