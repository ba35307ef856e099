"""Reading and writing files safely, in one place for every command.

- **What counts as text** is decided here, for training data and RAG documents alike: a file
  with NUL bytes is binary, anything else must be UTF-8 (a BOM is allowed). Nothing is ever
  decoded with replacement characters, which would silently turn "é" into "\ufffd".
- **Every write is atomic**: the bytes go to a temporary file in the same folder, are flushed
  to disk, then renamed over the target (`os.replace` is atomic on POSIX and Windows). A crash
  mid-write leaves the previous version intact, never half a file.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

TEXT_SUFFIXES = (".md", ".markdown", ".txt", ".rst")


class NotText(ValueError):
    """A file that is not readable text; the message is a short reason ("binary file ...")."""


def decode_text(data: bytes) -> str:
    """Bytes -> str for a text file, or NotText with the reason it is not one."""
    if b"\x00" in data[:8192]:
        raise NotText("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotText(
            f"not UTF-8 ({exc.reason} at byte {exc.start}); re-save it as UTF-8"
        ) from None


def read_text_file(path: str | os.PathLike[str], max_bytes: int | None = None) -> str:
    """The text of one file; NotText (or OSError) says why it cannot be used."""
    path = Path(path)
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise NotText(f"too large ({size:,} bytes > {max_bytes:,})")
    text = decode_text(path.read_bytes())
    if not text.strip():
        raise NotText("empty (no text)")
    return text


def _read_umask() -> int:
    umask = os.umask(0)  # reading the umask means setting it: put it straight back (at
    os.umask(umask)  # import, before any thread could create a file in between)
    return umask


_NEW_FILE_MODE = 0o666 & ~_read_umask()


def _existing_mode(path: Path) -> int:
    """The permission bits of the file being replaced, or a new file's default."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return _NEW_FILE_MODE


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO]:
    """Open a temporary sibling of `path` for writing; on success it replaces `path`.

    `mode` is "w" (text, UTF-8) or "wb". If the block raises, the target is untouched and the
    temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())  # on disk before the rename makes it visible
        # mkstemp makes the file owner-only; give it what a plain open() would have.
        os.chmod(tmp, _existing_mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_open(path, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[IO], object]) -> Path:
    """Atomic write through a function that takes a binary file (torch.save, savefig...)."""
    with atomic_open(path, "wb") as f:
        write(f)
    return Path(path)
