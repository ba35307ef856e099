"""The web demo: ask your documents, generate text with your model, check the environment.

    python -m <package> demo                          # http://127.0.0.1:7860
    python -m <package> demo --port 8000
    python -m <package> demo --screenshot docs/demo.png   # the README picture, taken by Chromium

The tabs follow the project's components: **Ask** (only when the project has a `rag/` package),
**Generate** (the newest readable checkpoint under `runs/`) and **Environment** (the `doctor`
report). Each button is also an API endpoint (`ask`, `generate`) that `gradio_client` can call.
A track may add a tab: if `<package>/<track>/demo_tab.py` exists (the theory track's Attention
tab), its `add_tab(gr, runs_dir)` is called after Generate, and its `API_NAMES` lists the
endpoints it adds; if it defines `stream_text` (the systems track's KV-cache engine), Generate
uses it instead of sample.py's. It is found by looking, as cli.py finds command groups: the demo
never imports a track by name.

Safe to run on a workshop laptop: it binds 127.0.0.1, sends no analytics, caps input lengths,
queues requests with a concurrency limit, never lets an input name a file, and turns every
mistake into one short message on the page (and no stack trace in the terminal). Problems at
start-up (a bad port, a docs folder given as the index) are `DemoError`s or the RAG component's
own `UserError`s: the CLI prints them as one line and exits with code 2.
Gradio (and torch) are imported inside the functions, so `python -m <package> --help` stays fast.
"""

from __future__ import annotations

import argparse
import errno
import html
import importlib.util
import logging
import math
import os
import shutil
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from .errors import UserError

log = logging.getLogger(__name__)

TRAIN_COMMAND = f"python -m {__package__} train --config configs/tiny.yaml"
EXAMPLE_QUESTION = "Which port does the demo listen on by default?"
MAX_QUESTION_CHARS = 500
MAX_PROMPT_CHARS = 1000
MAX_NEW_TOKENS = 300  # a long generation on a laptop CPU takes tens of seconds: keep it bounded
MAX_TOP_K = 200
QUEUE_SIZE = 64  # requests waiting beyond this are refused ("queue full") instead of piling up
ASK_CONCURRENCY = 4  # answers take milliseconds; the pipeline itself runs one at a time (a lock)
GENERATE_CONCURRENCY = 1  # sampling is CPU-bound: one stream at a time, in its own queue
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


class DemoError(UserError):
    """A problem the user can fix (bad port, no browser...); the CLI prints it, exit code 2."""


# ----------------------------------------------------------------------------- handlers


def _user_error(message: str) -> Exception:
    """gr.Error is shown on the page as a message; no stack trace on the page or the terminal."""
    import gradio as gr

    return gr.Error(message, print_exception=False)


def _shown(value: Any) -> str:
    """A value as it appears in a message: repr, cut short (API clients can send megabytes)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check_text(value: Any, name: str, limit: int, required: bool = True) -> str:
    # The textboxes cap their length too, but API clients can send anything.
    if not isinstance(value, str):
        raise _user_error(f"The {name} must be text.")
    if required and not value.strip():
        raise _user_error(f"Type a {name} first.")
    if len(value) > limit:
        raise _user_error(f"The {name} is too long ({len(value)} characters; at most {limit}).")
    return value


def _check_number(value: Any, name: str, low: float, high: float) -> float:
    """A number from low to high. API clients can send text, NaN or 1e9: each gets this message."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if not low <= number <= high:  # also refuses NaN, which compares false with everything
        raise _user_error(f"{name} must be a number from {low} to {high} (got {_shown(value)}).")
    return number


def checkpoint_files(runs_dir: Path) -> frozenset[tuple[Path, int, int]]:
    """Every checkpoint under runs_dir with its mtime and size (the model reloads on a change)."""
    from .checkpoint import list_checkpoints

    if not runs_dir.is_dir():
        return frozenset()
    found = set()
    for run_dir in runs_dir.iterdir():
        if run_dir.is_dir():
            for path in list_checkpoints(run_dir):
                try:
                    stat = path.stat()
                except OSError:  # deleted meanwhile: training keeps only the newest few
                    continue
                found.add((path, stat.st_mtime_ns, stat.st_size))
    return frozenset(found)


def skipped_note(skipped: list[tuple[Path, str]], used: Path) -> str:
    """What Generate says when newer checkpoints were unreadable ('' when none was)."""
    if not skipped:
        return ""
    newest, reason = skipped[0]
    note = f"Note: newest checkpoint {Path(newest).as_posix()} is unreadable"
    note += f" ({reason})"  # short, and never torch's advice to load it unsafely
    if len(skipped) > 1:
        note += f"; so are {len(skipped) - 1} other newer ones"
    return f"{note}; using {Path(used).as_posix()}."


class DemoHandlers:
    """What the buttons do, as plain methods: the app wires them up and tests call them directly.

    Inputs are only ever text and numbers; the folders (runs, index) are fixed when the app is
    built, so no request can make the server read a file of its choosing.
    """

    def __init__(self, pipeline: Any = None, runs_dir: str | Path = "runs"):
        self.pipeline = pipeline
        self.runs_dir = Path(runs_dir)
        # One question at a time through the shared pipeline: each takes milliseconds, and the
        # embedder changes torch's thread count while it runs, which must not interleave.
        self._ask_lock = threading.Lock()
        self._model_lock = threading.Lock()
        # (checkpoint files seen, checkpoint used, model, codec, note) once a model is loaded
        self._model: tuple[frozenset, Path, Any, Any, str] | None = None

    def ask(self, question: str) -> tuple[str, list[list[Any]], str]:
        """Question -> (answer as Markdown, source rows [n, file, score, snippet], context)."""
        if self.pipeline is None:
            raise _user_error("This project has no RAG component, so there is nothing to ask.")
        question = _check_text(question, "question", MAX_QUESTION_CHARS)
        try:
            with self._ask_lock:
                answer = self.pipeline.ask(question)
        except UserError as exc:  # e.g. a damaged index: the message says how to rebuild it
            raise _user_error(f"Could not answer: {exc}") from None
        except Exception as exc:
            log.exception("ask failed")  # a bug: the details go to the terminal, not the page
            raise _user_error(f"Could not answer: {exc}") from None
        rows = [[s["n"], s["file"], round(s["score"], 4), s["snippet"]] for s in answer.sources]
        # The answer is shown as Markdown: escape <...> so text like `<package>` stays visible.
        text = html.escape(answer.text, quote=False)
        if answer.abstained:
            text = f"**{text}.** None of the retrieved passages answers this question."
        return text, rows, answer.context

    def newest_model(self) -> tuple[Any, Any, str] | None:
        """(model, codec, note) of the newest readable checkpoint; None when there is none.

        Loaded once and kept until a checkpoint under runs/ appears, changes or goes away. An
        unreadable newer checkpoint is skipped, and the note says so. When no checkpoint is
        readable, `load_newest_model` raises a UserError that says what to do.
        """
        from .device import pick_device
        from .sample import load_newest_model

        files = checkpoint_files(self.runs_dir)
        if not files:
            return None
        with self._model_lock:
            if self._model is None or self._model[0] != files:
                # The GPU when there is one (or AI_DEVICE=...), like training.
                model, codec, path, skipped = load_newest_model(self.runs_dir, pick_device())
                self._model = (files, path, model, codec, skipped_note(skipped, path))
            return self._model[2:]

    def generate(
        self, prompt: str, max_new_tokens: int = 200, temperature: float = 0.8, top_k: int = 40
    ) -> Iterator[str]:
        """Yield the prompt plus the text generated so far (streaming); top_k 0 means no limit.

        The values arrive exactly as sent (the app turns Gradio's own slider checks off, which
        print a stack trace for each refusal): every one is checked here.
        """
        from .sample import stream_text

        for tab in track_tabs():  # a track may bring a faster generator (see the docstring)
            stream_text = getattr(tab, "stream_text", stream_text)
        prompt = _check_text(prompt, "prompt", MAX_PROMPT_CHARS, required=False)
        max_new_tokens = int(_check_number(max_new_tokens, "Max tokens", 1, MAX_NEW_TOKENS))
        temperature = _check_number(temperature, "Temperature", 0.0, 2.0)
        top_k = int(_check_number(top_k, "Top-k", 0, MAX_TOP_K))
        try:
            loaded = self.newest_model()
        except UserError as exc:  # no readable checkpoint: the message says what to do
            raise _user_error(f"Could not load the trained model: {exc}") from None
        except Exception as exc:
            log.exception("loading the checkpoint failed")  # a bug: the details go to the terminal
            raise _user_error(f"Could not load the trained model: {exc}") from None
        if loaded is None:
            yield (
                f"No trained model yet (no checkpoint under {self.runs_dir}/). "
                f"Train one with:\n\n    {TRAIN_COMMAND}\n\nthen press Generate again."
            )
            return
        model, codec, note = loaded
        head = f"{note}\n\n" if note else ""
        top_k = top_k or None  # no limit
        try:
            for text in stream_text(model, codec, prompt, max_new_tokens, temperature, top_k):
                yield head + text
        except Exception as exc:
            log.exception("generate failed")
            raise _user_error(f"Generation failed: {exc}") from None

    def environment(self) -> str:
        """The doctor report plus what the demo itself is using."""
        from .device import doctor_info, format_doctor
        from .sample import latest_checkpoint

        try:
            report = format_doctor(doctor_info())
        except Exception as exc:  # e.g. AI_DEVICE names a device that is not there
            report = f"doctor failed: {exc}"
        lines = [report, "", f"runs     {self.runs_dir.resolve()}"]
        if self._model is not None:  # what Generate uses (an unreadable newer one is skipped)
            lines.append(f"model    {self._model[1]}")
        else:
            ckpt = latest_checkpoint(self.runs_dir)
            lines.append(f"model    {ckpt if ckpt else 'none yet: ' + TRAIN_COMMAND}")
        if self.pipeline is not None:
            manifest = self.pipeline.index.manifest
            lines.append(
                f"index    {manifest.get('num_chunks')} chunks from {manifest.get('docs_dir')}"
                f" ({manifest.get('embedding_model')})"
            )
        return "\n".join(lines)


# ----------------------------------------------------------------------------- the app


class BackgroundPipeline:
    """The RAG pipeline, loaded in a thread so the server is up in seconds.

    Importing sentence-transformers and loading the model takes longer than starting Gradio; the
    page can open meanwhile, and the first question waits until the pipeline is ready.
    """

    def __init__(self, load: Callable[[], Any]):
        self._pipeline: Future = Future()
        threading.Thread(target=self._load, args=(load,), daemon=True).start()

    def _load(self, load: Callable[[], Any]) -> None:
        # A failure is reported to whoever asks, as a message on the page; the terminal gets
        # one line for a UserError (e.g. a damaged index) and the stack trace only for a bug.
        try:
            self._pipeline.set_result(load())
        except UserError as exc:
            log.error("question answering is unavailable: %s", exc)
            self._pipeline.set_exception(exc)
        except Exception as exc:
            log.exception("loading the question-answering pipeline failed")
            self._pipeline.set_exception(exc)

    def ask(self, question: str) -> Any:
        return self._pipeline.result().ask(question)

    @property
    def index(self) -> Any:
        return self._pipeline.result().index


def has_rag() -> bool:
    """True when this project has the RAG component (some rendered projects leave it out)."""
    return importlib.util.find_spec(".rag", __package__) is not None


def track_tabs() -> list[Any]:
    """The `demo_tab` modules of this project's track (see the docstring); none in most tracks."""
    found = []
    for track in ("theory", "applied", "systems"):
        name = f"{__package__}.{track}.demo_tab"
        if importlib.util.find_spec(f".{track}", __package__) and importlib.util.find_spec(name):
            found.append(importlib.import_module(name))
    return found


def import_anyio_up_front() -> None:
    """Import all of anyio now, in this thread, before the server starts its own threads.

    anyio (under Gradio's server) imports its modules lazily, and it builds each lazy-import
    table by compiling module source to an AST; pytest does the same when it rewrites them
    (anyio is a pytest plugin). On CPython 3.11 two threads doing that at once can fail with
    "SystemError: AST constructor recursion depth mismatch". After this, a request has nothing
    of anyio's left to import.
    """
    import contextlib
    import importlib
    import pkgutil

    import anyio

    for module in pkgutil.walk_packages(anyio.__path__, "anyio."):
        if "pytest" in module.name:  # its pytest plugin: not needed to serve
            continue
        with contextlib.suppress(ImportError):  # an optional backend (trio) not installed
            importlib.import_module(module.name)


def build_app(pipeline: Any = None, runs_dir: str | Path = "runs", title: str | None = None):
    """The gr.Blocks app. Without a pipeline (no RAG component) the Ask tab is left out."""
    import gradio as gr

    import_anyio_up_front()
    handlers = DemoHandlers(pipeline, runs_dir)
    title = title or f"{__package__} demo"
    with gr.Blocks(title=title, analytics_enabled=False) as app:
        gr.Markdown(f"# {title}")
        if pipeline is not None:
            with gr.Tab("Ask"):
                gr.Markdown("Ask a question about the project's documents (`docs/`).")
                question = gr.Textbox(
                    label="Question",
                    placeholder=EXAMPLE_QUESTION,
                    max_length=MAX_QUESTION_CHARS,
                    elem_id="question",
                )
                ask_button = gr.Button("Ask", variant="primary")
                answer = gr.Markdown(
                    label="Answer", show_label=True, container=True, elem_id="answer"
                )
                sources = gr.Dataframe(
                    headers=["#", "file", "score", "snippet"],
                    label="Sources (retrieval score: higher is closer)",
                    interactive=False,
                    wrap=True,
                    column_widths=["6%", "18%", "10%", "66%"],
                )
                with gr.Accordion("Show context", open=False):
                    context = gr.Textbox(label="Retrieved context", lines=10, interactive=False)
                gr.Examples([[EXAMPLE_QUESTION]], inputs=question)
                ask_args = {
                    "fn": handlers.ask,
                    "inputs": question,
                    "outputs": [answer, sources, context],
                    "concurrency_limit": ASK_CONCURRENCY,
                    "concurrency_id": "ask",
                }
                ask_button.click(**ask_args, api_name="ask")
                question.submit(**ask_args, api_visibility="private")  # Enter does the same
        with gr.Tab("Generate"):
            gr.Markdown(
                "Continue a prompt with the newest readable checkpoint under "
                f"`{Path(runs_dir).as_posix()}/`. No model yet? Run `{TRAIN_COMMAND}`."
            )
            prompt = gr.Textbox(label="Prompt", value="The model ", max_length=MAX_PROMPT_CHARS)
            with gr.Row():
                max_new_tokens = gr.Slider(1, MAX_NEW_TOKENS, value=200, step=1, label="Max tokens")
                temperature = gr.Slider(0.0, 2.0, value=0.8, step=0.05, label="Temperature")
                top_k = gr.Slider(0, MAX_TOP_K, value=40, step=1, label="Top-k (0 = off)")
            generate_button = gr.Button("Generate", variant="primary")
            output = gr.Textbox(label="Generated text", lines=10, interactive=False)
            generate_button.click(
                handlers.generate,
                [prompt, max_new_tokens, temperature, top_k],
                output,
                api_name="generate",
                # The values reach the handler exactly as sent and it checks them all: Gradio's
                # own slider check would print a stack trace in the terminal for each refusal.
                preprocess=False,
                # Generations wait in their own line, one at a time: Ask never waits behind them.
                concurrency_limit=GENERATE_CONCURRENCY,
                concurrency_id="generate",
            )
        for tab in track_tabs():
            if hasattr(tab, "add_tab"):
                tab.add_tab(gr, runs_dir)
        with gr.Tab("Environment"):
            # Filled in when the page opens: the report imports torch, which must not delay startup.
            report = gr.Code(language=None, label="doctor", lines=12)
            gr.Button("Refresh").click(handlers.environment, None, report, api_name="environment")
        app.load(handlers.environment, None, report, api_visibility="private")
    app.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    return app


def build_index_if_missing(
    index_dir: str | Path, docs_dir: str | Path, config: Any = None, say=print
) -> None:
    """First start: build the search index with the RAG component's `build_index`.

    That builder refuses a folder that is not an index (the docs folder itself, say) with a
    UserError, so a wrong `--index` stops the demo with one line and deletes nothing.
    """
    from .rag.index import build_index, read_manifest

    try:
        if read_manifest(index_dir) is not None:
            return
    except UserError:  # a damaged index: the Ask tab says so, and how to rebuild it
        return
    say(f"No search index yet: building it from {docs_dir}/ into {index_dir}/ (first start)...")
    report = build_index(docs_dir, index_dir, config, progress=sys.stderr.isatty())
    say(f"Index ready: {report.summary()}")


def load_rag(index_dir: str | Path, docs_dir: str | Path, config: Any = None, say=print) -> Any:
    """The RAG pipeline; builds the index first when there is none yet (first start)."""
    from .rag.pipeline import load_pipeline

    build_index_if_missing(index_dir, docs_dir, config, say)
    say("Loading the question-answering pipeline...")
    pipeline = load_pipeline(index_dir, config)
    say("Question answering is ready.")
    return pipeline


def quiet_environment() -> None:
    """No analytics, no hub telemetry (unless the user set these variables themselves)."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def launch(
    host: str = "127.0.0.1",
    port: int | None = None,
    share: bool = False,
    runs_dir: str | Path = "runs",
    index_dir: str | Path = ".rag-index",
    docs_dir: str | Path = "docs",
    rag_config: Any = None,
    block: bool = True,
    say=print,
):
    """Build and serve the app. block=False returns the running app (call app.close() later).

    port None takes the first free port from 7860 (Gradio's default, or GRADIO_SERVER_PORT).
    share=True asks Gradio for a public link: only when explicitly requested.
    On the first start the index is built before serving, so a problem with it (a docs folder
    given as the index, no readable documents) ends the command with one line, exit code 2.
    The pipeline then loads in the background while the page opens.
    """
    quiet_environment()
    if port is not None:
        check_port(host, port)  # say so before loading anything
    pipeline = None
    if has_rag():
        build_index_if_missing(index_dir, docs_dir, rag_config, say)
        pipeline = BackgroundPipeline(lambda: load_rag(index_dir, docs_dir, rag_config, say))
    app = build_app(pipeline, runs_dir)
    try:
        app.launch(
            server_name=host,
            server_port=port,
            share=share,
            prevent_thread_lock=True,
            quiet=True,
            show_error=False,  # unexpected errors stay in the terminal; gr.Error messages show
            footer_links=["api"],
        )
    except OSError as exc:  # e.g. the port was taken meanwhile, or no free port from 7860 up
        raise DemoError(f"cannot serve on {host}: {exc}") from None
    say(f"Demo running at {app.local_url}" + (f" (public link: {app.share_url})" if share else ""))
    if block:
        say("Press Ctrl+C to stop.")
        try:
            app.block_thread()
        finally:
            app.close()
    return app


def check_port(host: str, port: int) -> None:
    """Refuse a port outside 1-65535, or one already in use, with a DemoError that says so."""
    if not 1 <= port <= 65535:
        raise DemoError(
            f"--port must be between 1 and 65535 (got {port}); "
            "leave it out to use 7860 or the next free port"
        )
    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as s:
            if os.name != "nt":  # like the server: a port left in TIME_WAIT by a restart is free
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(address)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise DemoError(
                f"port {port} on {host} is already in use: pick another with --port"
            ) from None
        raise DemoError(f"cannot listen on {host} port {port}: {exc.strerror or exc}") from None


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for tests and screenshots)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------------------- browser


def find_chromium() -> str | None:
    """The system's Chromium (or Chrome); the CHROMIUM variable may name the executable."""
    for name in (os.environ.get("CHROMIUM"), *CHROMIUM_NAMES):
        found = name and shutil.which(name)
        if found:
            return found
    return None


def browser_ask(url: str, question: str, screenshot: str | Path | None = None) -> str:
    """Ask `question` in a real headless Chromium the way a person would; return the answer.

    Uses Playwright for Python with the system's Chromium (no `playwright install` needed).
    Saves a screenshot of the page with its answer when `screenshot` is given.
    """
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        raise DemoError("the browser needs Playwright: pip install playwright") from None
    executable = find_chromium()
    if executable is None:
        raise DemoError(
            "no Chromium found: install it (Debian/Ubuntu: apt-get install chromium) "
            "or set CHROMIUM=/path/to/chromium"
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 860})
            page.goto(url)
            page.get_by_label("Question").fill(question)
            page.get_by_role("button", name="Ask", exact=True).click()
            answer = page.locator("#answer")
            expect(answer).not_to_be_empty(timeout=60_000)
            # The first answer can wait for the pipeline, still loading just after start-up.
            first_source = page.get_by_role("gridcell", name="1", exact=True)
            expect(first_source).to_be_visible(timeout=60_000)
            text = answer.inner_text()
            if screenshot is not None:
                save_png(page.screenshot(full_page=True), Path(screenshot))
            return text
        finally:
            browser.close()


def save_png(data: bytes, path: Path) -> None:
    """Write a PNG reduced to 256 colours (a README picture stays well under 300 KB)."""
    import io

    from PIL import Image

    from .files import atomic_write_with

    image = Image.open(io.BytesIO(data)).convert("RGB").quantize(colors=256)
    atomic_write_with(path, lambda f: image.save(f, format="PNG", optimize=True))


def screenshot(path: str | Path, question: str = EXAMPLE_QUESTION, **launch_args: Any) -> str:
    """Start the app on a free port, ask `question` in Chromium, save the picture, stop."""
    app = launch(port=free_port(), block=False, **launch_args)
    try:
        return browser_ask(app.local_url, question, path)
    finally:
        app.close()


# ----------------------------------------------------------------------------- CLI


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register `demo [--host 127.0.0.1] [--port N] [--share] [--screenshot PNG]`.

    The core CLI finds this module and calls this function (see cli.py: find_components).
    """
    p = subparsers.add_parser("demo", help="start the web demo (Gradio) on 127.0.0.1")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port, 1-65535 (default: 7860, or the next free one)")
    p.add_argument("--share", action="store_true", help="also open a public Gradio link")
    p.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where `train` writes runs")
    p.add_argument("--index", type=Path, help="RAG index folder (default: <project>/.rag-index)")
    p.add_argument("--docs", type=Path, help="documents to index if there is no index yet")
    p.add_argument(
        "--screenshot",
        type=Path,
        metavar="PNG",
        help="instead of serving: ask a question in headless Chromium and save a picture",
    )
    p.set_defaults(func=cmd_demo)
    return p


def cmd_demo(args: argparse.Namespace) -> int:
    """Serve the demo (or take the screenshot). Problems are UserErrors: the CLI prints them."""
    settings: dict[str, Any] = {"runs_dir": args.runs_dir}
    if has_rag():
        from .rag.cli import project_root
        from .rag.config import load_config

        root = project_root()
        settings.update(
            index_dir=args.index or root / ".rag-index",
            docs_dir=args.docs or root / "docs",
            rag_config=load_config(None, root),
        )
    if args.screenshot:
        answer = screenshot(args.screenshot, **settings)
        print(f"saved {args.screenshot} (answer: {answer.splitlines()[0]})")
    else:
        launch(args.host, args.port, args.share, **settings)
    return 0
