"""One exception family for mistakes a user can fix (bad config, missing file, bad checkpoint).

Every error a user can cause derives from `UserError`: the RAG pipeline's `RagError`, the
demo's `DemoError`, each track's own. The CLI turns any of them into one line on stderr and
exit code 2 (`print_error`); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

EXIT_USER_ERROR = 2


class UserError(Exception):
    """An error caused by input the user controls; the message says what to do."""


def print_error(exc: BaseException, file=None) -> int:
    """Print a user error as one `error: ...` line; returns the exit code to use."""
    message = str(exc).strip() or type(exc).__name__
    print(f"error: {message}", file=file or sys.stderr)
    return EXIT_USER_ERROR
