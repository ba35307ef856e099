"""The one error type the RAG commands turn into a friendly message (exit code 2)."""


class RagError(Exception):
    """Bad input or state the user can fix: the message says what to do."""
