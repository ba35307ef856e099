"""The RAG pipeline's errors: each is a core `UserError`, so the CLI prints it as one line."""

from __future__ import annotations

import os

from ..errors import UserError


class RagError(UserError):
    """Bad input or state the user can fix: the message says what to do."""


class IndexDamaged(RagError):
    """An index folder whose files are missing, truncated or not what its manifest says."""

    def __init__(self, index_dir: str | os.PathLike[str], problem: str):
        self.problem = problem
        super().__init__(
            f"the index in {index_dir} is damaged ({problem}); "
            "rebuild it with `rag index --force` (with the same --docs and --index)"
        )
