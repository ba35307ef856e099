"""Lab 04: continuous batching. An inference engine that serves many requests at once.

Decoding one request at a time leaves most of the hardware idle: a decode step reads every weight
of the model to produce one token, and reading them for 8 rows costs little more than for one.
So a server batches requests. *Static* batching (batching.py) starts a batch and runs it until its
longest request is done: short requests wait for long ones, and new arrivals wait for the whole
batch. *Continuous* batching (Orca, vLLM) decides again between every two decode steps: finished
requests leave the batch at once and waiting ones join it, so the batch stays full.

The engine keeps one KV-cache with `max_batch` slots (kv_cache.py). A new request takes a free
slot and is *prefilled* (its whole prompt in one forward pass, which also gives its first token);
then every decode step feeds the last token of every running request together, each at its own
position in its own slot. `submit` may be called from any thread; `start` runs the loop in a
background thread (the server), `run_until_idle` runs it in the caller's (benchmarks, tests).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator

import torch

from ..models.gpt import GPT
from .kv_cache import KVCache, forward, sample

TokenCallback = Callable[[int | None], None]
log = logging.getLogger(__name__)


class Request:
    """One prompt being completed: its settings, its tokens so far, and when things happened."""

    def __init__(
        self,
        prompt: list[int],
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
        on_token: TokenCallback | None = None,
        device: torch.device | str = "cpu",
    ):
        self.prompt = prompt
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.top_k = top_k
        # A seed gives a request its own random stream: the same answer whatever runs beside it.
        self.generator = None if seed is None else torch.Generator(device).manual_seed(seed)
        self.on_token = on_token
        self.tokens: list[int] = []
        self.finish_reason: str | None = None
        self.done = threading.Event()
        self.submitted = time.perf_counter()
        self.first_token_at: float | None = None
        self.finished_at: float | None = None
        self._queue: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._cancelled = False
        self.slot = -1  # its cache slot while running
        self.position = 0  # tokens in its sequence (prompt + generated); the last is not cached yet

    def cancel(self) -> None:
        """Stop generating (a client went away); the engine frees the slot before its next step."""
        self._cancelled = True

    def stream(self) -> Iterator[int]:
        """The new token ids as they are generated (blocks between them)."""
        while (token := self._queue.get()) is not None:
            yield token

    def _emit(self, token: int) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        self.tokens.append(token)
        self._queue.put(token)
        if self.on_token is not None:
            self.on_token(token)

    def _finish(self, reason: str) -> None:
        self.finish_reason = reason
        self.finished_at = time.perf_counter()
        self._queue.put(None)
        if self.on_token is not None:
            self.on_token(None)
        self.done.set()


class Engine:
    """Continuous batching over a slotted KV-cache (see the module docstring)."""

    def __init__(self, model: GPT, max_batch: int = 8, max_len: int | None = None):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.cache = KVCache.allocate(model, max_batch, max_len)
        self.max_len = self.cache.max_len
        self.free = list(range(max_batch))  # slots nobody uses
        self.running: list[Request] = []
        self.waiting: deque[Request] = deque()
        self.steps = 0  # decode steps run (each one token for every running request)
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def submit(
        self,
        prompt: list[int],
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int | None = None,
        on_token: TokenCallback | None = None,
    ) -> Request:
        """Queue a request; it joins the running batch before the next decode step."""
        if not prompt:
            raise ValueError("the prompt is empty: give at least one token")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if len(prompt) + max_new_tokens > self.max_len:
            raise ValueError(
                f"prompt ({len(prompt)} tokens) + max_new_tokens ({max_new_tokens}) exceeds the "
                f"model's context of {self.max_len} tokens"
            )
        request = Request(prompt, max_new_tokens, temperature, top_k, seed, on_token, self.device)
        with self._wake:
            self.waiting.append(request)
            self._wake.notify()
        return request

    def _next_token(self, request: Request, logits: torch.Tensor) -> None:
        token = sample(logits[None], request.temperature, request.top_k, request.generator)
        request._emit(int(token))
        request.position += 1

    def _retire(self) -> None:
        """Take finished and cancelled requests out of the batch and free their slots."""
        keep = []
        for request in self.running:
            if request._cancelled or len(request.tokens) >= request.max_new_tokens:
                self.free.append(request.slot)
                request._finish("cancelled" if request._cancelled else "length")
            else:
                keep.append(request)
        self.running = keep

    def _admit(self) -> None:
        """Prefill waiting requests into free slots: each prompt in one pass, first token out."""
        while self.free:
            with self._wake:
                if not self.waiting:
                    break
                request = self.waiting.popleft()
                if request._cancelled:
                    request._finish("cancelled")
                    continue
                request.slot = self.free.pop()
                self.running.append(request)  # in the batch before its prefill: never lost
            idx = torch.tensor([request.prompt], device=self.device)
            zero = torch.zeros(1, dtype=torch.long, device=self.device)
            slot = torch.tensor([request.slot], device=self.device)
            logits = forward(self.model, self.cache, idx, zero, slots=slot)
            request.position = len(request.prompt)
            self._next_token(request, logits[0])
        self._retire()

    def step(self) -> int:
        """One scheduling round: admit, one decode step for the batch, retire. Returns running."""
        self._retire()
        self._admit()
        batch = [r for r in self.running if r.tokens]  # prefilled, so each has a last token
        if batch:
            tokens = torch.tensor([[r.tokens[-1]] for r in batch], device=self.device)  # (B, 1)
            # Each row's last token was sampled but not yet run: it goes at position - 1.
            start = torch.tensor([r.position - 1 for r in batch], device=self.device)
            slots = torch.tensor([r.slot for r in batch], device=self.device)
            logits = forward(self.model, self.cache, tokens, start, slots=slots)
            self.steps += 1
            if all(r.temperature <= 0 for r in batch):  # all greedy: one argmax for the batch
                for request, token in zip(batch, logits.argmax(-1).tolist(), strict=True):
                    request._emit(token)
                    request.position += 1
            else:  # each request samples with its own temperature, top-k and seed
                for request, row in zip(batch, logits, strict=True):
                    self._next_token(request, row)
            self._retire()
        return len(self.running)

    def busy(self) -> bool:
        return bool(self.running or self.waiting)

    @property
    def alive(self) -> bool:
        """Whether the background loop is running (a server checks before taking requests)."""
        return self._thread is not None and self._thread.is_alive()

    def run_until_idle(self) -> None:
        """Run steps in this thread until every submitted request is done."""
        while self.busy():
            self.step()

    def start(self) -> Engine:
        """Run the loop in a background (daemon) thread: what a server does."""
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._loop, name="engine", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _loop(self) -> None:
        while True:
            with self._wake:
                while not self._stopping and not self.busy():
                    self._wake.wait()  # sleep until a request arrives: no busy waiting
                if self._stopping:
                    break
            try:
                self.step()
            except Exception:  # a bug or out of memory: fail the requests, not the server
                log.exception("engine step failed; the requests in flight end with an error")
                self._fail_all("error")
        self._fail_all("cancelled")

    def _fail_all(self, reason: str) -> None:
        """End every running and waiting request with `reason` and free all the slots."""
        with self._wake:
            requests = [*self.running, *self.waiting]
            self.running, self.waiting = [], deque()
            self.free = list(range(self.cache.slots))
        for request in requests:
            request._finish(reason)
