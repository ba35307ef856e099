"""The demo's Generate tab, served by the KV-cache engine (found by demo.py, as every demo_tab).

This module adds no tab of its own: it gives the demo a `stream_text` that decodes with the
continuous-batching engine of lab 04 instead of recomputing the whole text for every token, so
several people pressing Generate at once share one batch, as clients of `systems serve` do.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from ..sample import stream_text as sliding_window_stream_text
from .engine import Engine

_engines: dict[int, tuple[Any, Engine]] = {}  # id(model) -> (model, its running engine)
_lock = threading.Lock()
MAX_BATCH = 8  # requests decoded together
API_NAMES: tuple[str, ...] = ()  # no tab, so no endpoints of its own: `generate` stays the core's


def engine_for(model: Any) -> Engine:
    """The running engine of this model, started on first use (one per loaded checkpoint)."""
    with _lock:
        entry = _engines.get(id(model))
        if entry is None or entry[0] is not model:
            for _, old in _engines.values():  # a newer checkpoint replaced the model
                old.stop()
            _engines.clear()
            entry = (model, Engine(model, max_batch=MAX_BATCH).start())
            _engines[id(model)] = entry
        return entry[1]


def stream_text(
    model: Any,
    codec: Any,
    prompt: str,
    max_new_tokens: int = 200,
    temperature: float = 0.8,
    top_k: int | None = None,
) -> Iterator[str]:
    """Yield the prompt plus the text generated so far, as sample.stream_text does.

    A cache holds at most the model's context (block_size tokens): a longer text falls back to
    sample.py's sliding window, which recomputes the last block_size tokens for every new one.
    """
    ids = codec.encode(prompt) or [0]  # an empty/unknown prompt starts from token 0
    engine = engine_for(model)
    if len(ids) + max_new_tokens > engine.max_len:
        yield from sliding_window_stream_text(
            model, codec, prompt, max_new_tokens, temperature, top_k
        )
        return
    request = engine.submit(ids, max_new_tokens, temperature, top_k)
    try:
        for _ in request.stream():
            yield prompt + codec.decode(request.tokens)
    finally:
        request.cancel()  # the browser went away: free the slot (no-op once finished)
