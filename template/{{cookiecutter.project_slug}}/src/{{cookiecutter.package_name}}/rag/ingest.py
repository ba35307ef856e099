"""Read Markdown, plain text and PDF files from a folder, recursively.

Bad files never stop indexing: each one is skipped with one logged warning (the only place it is
reported) and counted in the IngestReport, so a single broken PDF in a folder of hundreds costs
one line of output. What counts as text (UTF-8, no NUL bytes) is decided by the core `files.py`,
the same rule the training data follows; PDF extraction lives here.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..files import TEXT_SUFFIXES, NotText, decode_text

log = logging.getLogger(__name__)

PDF_SUFFIXES = {".pdf"}
SUPPORTED = set(TEXT_SUFFIXES) | PDF_SUFFIXES


@dataclass
class Document:
    path: str  # relative to the docs folder, with forward slashes: what citations show
    text: str
    sha256: str  # of the raw file bytes, recorded in the index manifest

    @property
    def title(self) -> str:
        """The first Markdown H1, else the file name made readable."""
        for line in self.text.splitlines():
            if line.startswith("# "):
                return line[2:].strip()
        return Path(self.path).stem.replace("-", " ").replace("_", " ")


@dataclass
class IngestReport:
    loaded: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    ignored: int = 0  # files with an unsupported suffix

    def summary(self) -> str:
        text = f"{len(self.loaded)} files read, {len(self.skipped)} skipped"
        if self.ignored:
            text += f", {self.ignored} ignored (unsupported type)"
        return text


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def list_files(root: Path, exclude: Sequence[str] = ()) -> list[Path]:
    """Supported files under root, sorted so every run sees them in the same order."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file()
        and p.suffix.lower() in SUPPORTED
        and not _hidden(p, root)
        and not _excluded(p, root, exclude)
    )


def _excluded(path: Path, root: Path, patterns: Sequence[str]) -> bool:
    rel = path.relative_to(root).as_posix()
    return any(fnmatch.fnmatch(rel, pattern) for pattern in patterns)


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader

    try:
        reader = PdfReader(str(path))
        pages = [page.extract_text() or "" for page in reader.pages]
    except Exception as exc:  # pypdf raises many types for damaged files
        raise NotText(f"unreadable PDF ({type(exc).__name__}: {exc})") from exc
    # A blank line between pages keeps sentences from running across page breaks.
    return "\n\n".join(p.strip() for p in pages)


def read_document(path: Path, root: Path, max_bytes: int) -> Document:
    """Read one file; raise NotText (or OSError) with a short reason when it must be skipped."""
    size = path.stat().st_size
    if size > max_bytes:
        raise NotText(f"too large ({size:,} bytes > {max_bytes:,})")
    data = path.read_bytes()  # read once: the same bytes are decoded and hashed
    text = _pdf_text(path) if path.suffix.lower() in PDF_SUFFIXES else decode_text(data)
    if not text.strip():
        raise NotText("empty (no text)")
    rel = path.relative_to(root).as_posix()
    return Document(path=rel, text=text, sha256=file_sha256(data))


def load_documents(
    root: str | Path, max_bytes: int = 5_000_000, exclude: Sequence[str] = ()
) -> tuple[list[Document], IngestReport]:
    root = Path(root)
    report = IngestReport()
    report.ignored = sum(
        1 for p in root.rglob("*") if p.is_file() and p.suffix.lower() not in SUPPORTED
    )
    docs = []
    for path in list_files(root, exclude):
        rel = path.relative_to(root).as_posix()
        try:
            docs.append(read_document(path, root, max_bytes))
            report.loaded.append(rel)
        except (NotText, OSError) as exc:
            log.warning("skipped %s: %s", rel, exc)  # the caller prints no second copy
            report.skipped.append((rel, str(exc)))
    return docs, report


def corpus_hashes(root: str | Path, exclude: Sequence[str] = ()) -> dict[str, str]:
    """sha256 of every supported file: the manifest compares these to spot a stale index."""
    root = Path(root)
    out = {}
    for path in list_files(root, exclude):
        try:
            out[path.relative_to(root).as_posix()] = file_sha256(path.read_bytes())
        except OSError:
            continue
    return out
