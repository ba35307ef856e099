"""Lab 07: serve the mini-GPT over HTTP with an OpenAI-compatible API.

Many tools speak OpenAI's HTTP API: the `openai` Python client, LangChain, curl scripts, load
testers. A server that speaks it too can be swapped for vLLM or a hosted model without changing
the client, and the other way round. This module serves `POST /v1/completions` (text in, text
out; streaming as Server-Sent Events), `GET /v1/models` and `GET /health` with FastAPI.

The model runs in the continuous-batching engine (engine.py), in its own thread; the web server
runs an asyncio event loop in another. They meet in one place, `TokenBridge`: the engine calls
`on_token` from its thread, which hands the token to the request's `asyncio.Queue` with
`loop.call_soon_threadsafe`. So 50 open requests cost 50 queues, not 50 threads, and the event
loop never blocks on the model. A client that goes away cancels its request, which frees its
slot in the batch for the next one.

FastAPI and uvicorn are imported inside the functions that need them: the CLI imports this
module to build its `--help`, which should stay fast.
"""

import argparse
import asyncio
import importlib.util
import json
import os
import shlex
import shutil
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import aclosing, contextmanager, suppress
from pathlib import Path
from typing import Any

from ..errors import UserError

PACKAGE = __package__.split(".")[0]
VLLM_EXAMPLE = "Qwen/Qwen2.5-0.5B-Instruct"
MAX_STOPS = 4  # as OpenAI's API: up to 4 stop sequences
EITHER = {"prompt": "a string or a list of one string", "stop": "a string or a list of strings"}
REPLACEMENT = "\ufffd"  # what an incomplete UTF-8 sequence decodes to (byte-level codec)


class ServeError(UserError):
    """The server cannot start: no trained model, the port is taken, vLLM is missing..."""


class BadRequest(Exception):
    """A request the client must fix: answered with a 4xx in OpenAI's error shape."""

    def __init__(self, message: str, param: str | None = None, status: int = 400, code=None):
        super().__init__(message)
        self.message, self.param, self.status, self.code = message, param, status, code


def error_body(message: str, param=None, code=None, kind: str = "invalid_request_error") -> dict:
    """OpenAI's error shape, so that clients (the openai package too) show the message."""
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


# ----------------------------------------------------------------------------- request checks


def check_request(body: dict[str, Any], codec, max_len: int, model_name: str) -> dict[str, Any]:
    """The settings of one completion request, or `BadRequest` saying what to fix.

    Types come first (a string where a number belongs), then the values: an empty prompt,
    characters the model never saw, a prompt and max_tokens that do not fit in the context.
    Returns prompt_ids, max_tokens, temperature, top_k, seed, stream, stops, include_usage.
    """
    from pydantic import ValidationError

    try:
        req = _request_model().model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else None
        if field in EITHER and field in body:  # plainer than naming the union's members
            message = f"{field}: expected {EITHER[field]} (got {body[field]!r})"
            raise BadRequest(message, field) from None
        param = ".".join(str(part) for part in first["loc"]) or None
        shown = "input" in first and first["type"] != "missing"
        got = f" (got {first['input']!r})" if shown else ""
        raise BadRequest(f"{param}: {first['msg']}{got}", param) from None
    if req.model is not None and req.model != model_name:
        raise BadRequest(
            f"the model {req.model!r} does not exist: this server serves {model_name!r}",
            "model",
            status=404,
            code="model_not_found",
        )
    prompt = req.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise BadRequest(
                f"prompt: give one string (or a list of one string), got a list of {len(prompt)}",
                "prompt",
            )
        prompt = prompt[0]
    if not prompt:
        raise BadRequest("prompt: the prompt is empty: give at least one character", "prompt")
    if codec.chars:  # a character-level codec knows only the characters of its training text
        unknown = sorted(set(prompt) - set(codec.chars))
        if unknown:
            shown = ", ".join(repr(c) for c in unknown[:10])
            raise BadRequest(
                f"prompt: the model's vocabulary ({len(codec.chars)} characters, from its "
                f"training text) lacks {shown}: remove or replace them",
                "prompt",
            )
    prompt_ids = codec.encode(prompt)
    if req.max_tokens < 1:
        raise BadRequest(f"max_tokens must be at least 1, got {req.max_tokens}", "max_tokens")
    if len(prompt_ids) + req.max_tokens > max_len:
        raise BadRequest(
            f"the prompt ({len(prompt_ids)} tokens) + max_tokens ({req.max_tokens}) = "
            f"{len(prompt_ids) + req.max_tokens} exceeds the model's context of {max_len} "
            "tokens: shorten the prompt or lower max_tokens",
            "max_tokens",
        )
    if req.n != 1:
        raise BadRequest(f"n: only n=1 is supported, got {req.n}", "n")
    if req.temperature < 0:
        raise BadRequest(f"temperature must be >= 0, got {req.temperature}", "temperature")
    if req.top_k is not None and req.top_k < 1:
        raise BadRequest(f"top_k must be >= 1 (or null for no limit), got {req.top_k}", "top_k")
    stops = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    if len(stops) > MAX_STOPS or not all(stops):
        raise BadRequest(f"stop: give up to {MAX_STOPS} non-empty strings", "stop")
    if req.echo or req.logprobs:
        param = "echo" if req.echo else "logprobs"
        raise BadRequest(f"{param} is not supported by this server", param)
    return {
        "prompt_ids": prompt_ids,
        "max_tokens": req.max_tokens,
        "temperature": req.temperature,
        "top_k": req.top_k,
        "seed": req.seed,
        "stream": req.stream,
        "stops": stops,
        "include_usage": bool((req.stream_options or {}).get("include_usage")),
    }


_MODEL = None


def _request_model():
    """The pydantic model of a request body, built on first use (pydantic loads slowly)."""
    global _MODEL
    if _MODEL is None:
        from pydantic import BaseModel, ConfigDict

        class CompletionRequest(BaseModel):
            # strict: "16" is not a number and 1 is not a boolean, as in OpenAI's API. Other
            # fields OpenAI defines (user, presence_penalty, ...) are accepted and ignored.
            model_config = ConfigDict(strict=True, extra="ignore")

            prompt: str | list[str]
            model: str | None = None
            max_tokens: int = 16
            temperature: float = 1.0
            top_k: int | None = None  # an extension (vLLM has it too)
            seed: int | None = None
            stream: bool = False
            stream_options: dict[str, bool] | None = None
            n: int = 1
            stop: str | list[str] | None = None
            echo: bool = False
            logprobs: int | None = None

        _MODEL = CompletionRequest
    return _MODEL


# ----------------------------------------------------------------------------- tokens -> text


class TokenBridge:
    """Carries one request's tokens from the engine thread into the event loop.

    The engine calls the bridge (its `on_token`) from its own thread; `call_soon_threadsafe`
    schedules `queue.put_nowait` on the loop's thread, the only thread that may touch an
    asyncio queue. No thread per request, no polling.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue[int | None] = asyncio.Queue()

    def __call__(self, token: int | None) -> None:
        # RuntimeError: the loop is closed (the server shut down), so nobody is listening.
        with suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self.queue.put_nowait, token)

    async def batches(self):
        """(tokens, done): the tokens that arrived since the last batch; done after the last.

        The engine may be ahead of us: sending what piled up as one chunk keeps a slow client
        from falling further behind token by token. The engine ends a request with None.
        """
        while True:
            tokens = [await self.queue.get()]
            while not self.queue.empty():
                tokens.append(self.queue.get_nowait())
            done = tokens[-1] is None
            yield [t for t in tokens if t is not None], done
            if done:
                return


class TextAssembler:
    """Turns new tokens into the new text that is safe to send, and finds stop sequences.

    The whole text is decoded again each time (it is at most a context long): then a character
    made of several tokens (UTF-8 bytes in a byte-level codec) is sent only once complete. Text
    that might be the start of a stop sequence is held back until we know, so a client never
    receives part of a stop sequence.
    """

    def __init__(self, codec, stops: list[str]):
        self.codec = codec
        self.stops = stops
        self.tokens: list[int] = []
        self.text = ""
        self.sent = 0  # characters of self.text already sent
        self.stopped = False

    def add(self, tokens: list[int]) -> str:
        """New text to send after these tokens (may be empty); sets `stopped` on a stop."""
        self.tokens += tokens
        self.text = self.codec.decode(self.tokens)
        hits = [i for i in (self.text.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.stopped = True
            self.text = self.text[: min(hits)]
            return self.flush()
        safe = len(self.text.rstrip(REPLACEMENT))
        for stop in self.stops:  # hold back a tail that could grow into a stop sequence
            for k in range(min(len(stop) - 1, safe), 0, -1):
                if self.text[safe - k : safe] == stop[:k]:
                    safe -= k
                    break
        new = self.text[self.sent : max(safe, self.sent)]
        self.sent = max(safe, self.sent)
        return new

    def flush(self) -> str:
        """The rest of the text (the request is over)."""
        new = self.text[self.sent :]
        self.sent = len(self.text)
        return new


# ----------------------------------------------------------------------------- the app


def sse(payload: dict | str) -> str:
    """One Server-Sent Event as OpenAI streams them: `data: <json>` and a blank line."""
    if isinstance(payload, str):  # the stream's end: `data: [DONE]`
        return f"data: {payload}\n\n"
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))  # one line, compact
    return f"data: {data}\n\n"


def create_app(engine, codec, model_name: str, max_batch: int | None = None):
    """The FastAPI app serving `engine` (already started) under OpenAI's completions API.

    `codec` turns text into the model's token ids and back; `model_name` is the id clients
    pass as `model` (and GET /v1/models lists).
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse, StreamingResponse
    from starlette.exceptions import HTTPException

    # No /docs page: it loads its scripts from a CDN (blank offline), and the request body is
    # checked by check_request, not declared to FastAPI.
    app = FastAPI(title=f"{PACKAGE}: {model_name}", docs_url=None, redoc_url=None)
    started = int(time.time())

    def error(status: int, message: str, param=None, code=None) -> JSONResponse:
        kind = "invalid_request_error" if status < 500 else "server_error"
        return JSONResponse(error_body(message, param, code, kind), status_code=status)

    @app.exception_handler(BadRequest)
    async def bad_request(request: Request, exc: BadRequest):
        return error(exc.status, exc.message, exc.param, exc.code)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError):
        # FastAPI answers 422 with its own shape; OpenAI clients expect 400 and `error.message`.
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"][1:]) or None
        return error(400, f"{param or 'request'}: {first['msg']}", param)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):
        return error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")

    @app.get("/health")
    async def health():
        if not engine.alive:
            return error(503, "the engine has stopped: restart the server")
        return {
            "status": "ok",
            "model": model_name,
            "running": len(engine.running),
            "waiting": len(engine.waiting),
            "max_batch": max_batch,
            "context": engine.max_len,
        }

    @app.get("/v1/models")
    async def models():
        card = {
            "id": model_name,
            "object": "model",
            "created": started,
            "owned_by": PACKAGE,
            "max_model_len": engine.max_len,
        }
        return {"object": "list", "data": [card]}

    @app.post("/v1/completions")
    async def completions(request: Request):
        raw = await request.body()
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BadRequest(f"the request body is not valid JSON: {exc}") from None
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object")
        settings = check_request(body, codec, engine.max_len, model_name)
        if not engine.alive:
            return error(503, "the engine has stopped: restart the server")
        bridge = TokenBridge(asyncio.get_running_loop())
        try:
            job = engine.submit(
                settings["prompt_ids"],
                settings["max_tokens"],
                temperature=settings["temperature"],
                top_k=settings["top_k"],
                seed=settings["seed"],
                on_token=bridge,
            )
        except ValueError as exc:  # the engine's own checks; ours should have caught them
            raise BadRequest(str(exc)) from None
        head = {
            "id": f"cmpl-{uuid.uuid4().hex[:24]}",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model_name,
        }
        text = TextAssembler(codec, settings["stops"])
        prompt_tokens = len(settings["prompt_ids"])

        def usage(completion_tokens: int) -> dict[str, int]:
            return {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }

        def choice(piece: str, finish: str | None) -> dict[str, Any]:
            return {"text": piece, "index": 0, "logprobs": None, "finish_reason": finish}

        async def run():
            """(new text, finish_reason or None) as tokens arrive; cancels the job if left."""
            finished = False
            try:
                async for tokens, done in bridge.batches():
                    piece = text.add(tokens)
                    if text.stopped:
                        yield piece, "stop"
                        return
                    if done:  # the engine set finish_reason before it sent the final None
                        finished = True
                        yield piece + text.flush(), job.finish_reason
                        return
                    if piece:
                        yield piece, None
            finally:
                if not finished:
                    job.cancel()  # a stop sequence, or the client left: free the slot

        if not settings["stream"]:
            pieces, finishes = [], []
            async with aclosing(run()) as parts:  # closed (and cancelled) even on an error
                async for piece, finish in parts:
                    pieces.append(piece)
                    finishes.append(finish)
            body = {**head, "choices": [choice("".join(pieces), finishes[-1])]}
            return {**body, "usage": usage(len(text.tokens))}

        async def events():
            # A client that disconnects closes this generator; aclosing closes run() at once,
            # which cancels the job instead of leaving it to the garbage collector.
            async with aclosing(run()) as parts:
                async for piece, finish in parts:
                    yield sse({**head, "choices": [choice(piece, finish)]})
            if settings["include_usage"]:  # OpenAI's stream_options: a last chunk with usage
                yield sse({**head, "choices": [], "usage": usage(len(text.tokens))})
            yield sse("[DONE]")

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


# ----------------------------------------------------------------------------- the command


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """`systems serve` options."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: local)")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--run", help="run folder or checkpoint file (default: newest run)")
    source.add_argument(
        "--vllm",
        metavar="HF_MODEL_ID",
        help=f"serve a Hugging Face model with vLLM instead (CUDA GPU), e.g. {VLLM_EXAMPLE}",
    )
    parser.add_argument("--runs-dir", default="runs", help="where to look for the newest run")
    parser.add_argument("--max-batch", type=int, default=8, help="requests decoded together")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")


def cmd_serve(args: argparse.Namespace) -> int:
    """Load the trained model, start the engine, serve until Ctrl+C."""
    if args.vllm:
        return exec_vllm(args.vllm, args.host, args.port)
    if args.max_batch < 1:
        raise ServeError(f"--max-batch must be at least 1, got {args.max_batch}")
    from .engine import Engine

    sock = bind(args.host, args.port)  # before loading the model: a taken port fails fast
    with sock:
        model, codec, name = load_model(args.run, args.runs_dir, args.device)
        engine = Engine(model, max_batch=args.max_batch).start()
        try:
            app = create_app(engine, codec, name, max_batch=args.max_batch)
            host, port = sock.getsockname()[:2]
            url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
            print(banner(url, name, model, engine.max_len, args.max_batch), flush=True)
            if args.host not in ("127.0.0.1", "localhost", "::1"):
                print(f"warning: bound to {args.host}: anyone who can reach it can use it")
            run_uvicorn(app, sock)
        finally:
            engine.stop()
    return 0


def banner(url: str, name: str, model, context: int, max_batch: int) -> str:
    """What the server prints at start: where it is and how to try it."""
    params = sum(p.numel() for p in model.parameters()) / 1e6
    device = next(model.parameters()).device
    example = json.dumps({"model": name, "prompt": "The ", "max_tokens": 32})
    return "\n".join(
        [
            f"Serving {name} ({params:.2f} M parameters, context {context} tokens) on {device}, "
            f"up to {max_batch} requests per batch",
            f"  {url}/v1/completions  (OpenAI-compatible; also {url}/v1/models, {url}/health)",
            "Try it:",
            f"  curl {url}/v1/completions -H 'Content-Type: application/json' "
            f"-d {shlex.quote(example)}",
            f"  python -m {PACKAGE} systems loadtest {url} --concurrency 8 --requests 32",
            "Ctrl+C stops the server.",
        ]
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a clear error when the address is taken or unknown."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ServeError(f"cannot bind --host {host!r}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ServeError(
            f"cannot listen on {host}:{port}: {exc.strerror}; is a server already running "
            "there? pick another with --port N (0 picks a free one)"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def run_uvicorn(app, sock: socket.socket) -> None:
    """Serve `app` on an already bound socket until Ctrl+C (or `server.should_exit`)."""
    import uvicorn

    # ws="none": no websockets here (and their import warns on some versions).
    config = uvicorn.Config(app, log_level="info", access_log=False, ws="none")
    uvicorn.Server(config).run(sockets=[sock])


@contextmanager
def background_server(app, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `app` on a free port from a background thread; yields its URL (tests, `bench`)."""
    import uvicorn

    sock = bind(host, 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="none"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        if not server.started:
            raise ServeError("the server did not start within 30 s")
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def load_model(run: str | None, runs_dir: str, device: str):
    """(model, codec, name) from --run, or the newest run under --runs-dir."""
    from ..device import pick_device
    from ..sample import latest_checkpoint, load_for_generation, load_newest_model

    device = pick_device(device)
    if run:
        model, codec = load_for_generation(run, device)
        path = Path(run)
        return model, codec, (path.name if path.is_dir() else path.parent.parent.name)
    if latest_checkpoint(runs_dir) is None:
        raise ServeError(
            f"no trained model under {runs_dir}/: train one first: python -m {PACKAGE} "
            "train --config configs/tiny.yaml (or pass --run RUN_DIR)"
        )
    model, codec, ckpt, skipped = load_newest_model(runs_dir, device)
    for path, reason in skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    return model, codec, ckpt.parent.parent.name  # runs/<run>/checkpoints/<file>


def vllm_help(model_id: str, host: str, port: int) -> str:
    """The commands that serve `model_id` with vLLM on a GPU machine."""
    return (
        "vLLM is not installed here, and it needs a CUDA GPU (Linux): on a machine with one, run "
        f"`uv pip install vllm`, then `vllm serve {model_id} --host {host} --port {port}` "
        f"(or this command again), then `python -m {PACKAGE} systems loadtest "
        f"http://{host}:{port} --concurrency 50 --requests 200 --max-tokens 32`"
    )


def exec_vllm(model_id: str, host: str, port: int) -> int:
    """Replace this process with vLLM's own OpenAI-compatible server (`vllm serve`)."""
    if importlib.util.find_spec("vllm") is None:
        raise ServeError(vllm_help(model_id, host, port))
    exe = shutil.which("vllm") or str(Path(sys.executable).with_name("vllm"))
    argv = [exe, "serve", model_id, "--host", host, "--port", str(port)]
    print(f"running: {shlex.join(argv)}", flush=True)
    os.execv(exe, argv)  # does not return
    return 0
