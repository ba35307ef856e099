"""The web demo: ask your documents, generate text with your model, check the environment.

    python -m <package> demo                          # http://127.0.0.1:7860
    python -m <package> demo --port 8000
    python -m <package> demo --screenshot docs/demo.png   # the README picture, taken by Chromium

The tabs follow the project's components: **Ask** (only when the project has a `rag/` package),
**Generate** (the newest checkpoint under `runs/`) and **Environment** (the `doctor` report).
Each button is also an API endpoint (`ask`, `generate`) that `gradio_client` can call.

Safe to run on a workshop laptop: it binds 127.0.0.1, sends no analytics, caps input lengths,
queues requests with a concurrency limit, never lets an input name a file, and turns every
failure into a short message on the page instead of a stack trace.
Gradio (and torch) are imported inside the functions, so `python -m <package> --help` stays fast.
"""

from __future__ import annotations

import argparse
import html
import importlib.util
import logging
import os
import shutil
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

TRAIN_COMMAND = f"python -m {__package__} train --config configs/tiny.yaml"
EXAMPLE_QUESTION = "Which port does the demo listen on by default?"
MAX_QUESTION_CHARS = 500
MAX_PROMPT_CHARS = 1000
MAX_NEW_TOKENS = 500
QUEUE_SIZE = 64  # requests waiting beyond this are refused ("queue full") instead of piling up
ASK_CONCURRENCY = 4  # answers take milliseconds; the pipeline itself runs one at a time (a lock)
GENERATE_CONCURRENCY = 2  # sampling is CPU-bound: more parallel streams only slow each other
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


class DemoError(Exception):
    """A problem the user can fix (no browser, no index...); the CLI prints it, exit code 2."""


# ----------------------------------------------------------------------------- handlers


def _user_error(message: str) -> Exception:
    """gr.Error is shown on the page as a message; no stack trace on the page or the terminal."""
    import gradio as gr

    return gr.Error(message, print_exception=False)


def _check_text(value: Any, name: str, limit: int, required: bool = True) -> str:
    # The textboxes cap their length too, but API clients can send anything.
    if not isinstance(value, str):
        raise _user_error(f"The {name} must be text.")
    if required and not value.strip():
        raise _user_error(f"Type a {name} first.")
    if len(value) > limit:
        raise _user_error(f"The {name} is too long ({len(value)} characters; at most {limit}).")
    return value


def _check_number(value: Any, name: str, low: float, high: float, kind: type = float) -> Any:
    try:
        number = kind(value)
    except (TypeError, ValueError):
        raise _user_error(f"{name} must be a number between {low} and {high}.") from None
    if not low <= number <= high:
        raise _user_error(f"{name} must be between {low} and {high} (got {value}).")
    return number


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
        self._model: tuple[Path, float, Any, Any] | None = None  # (checkpoint, mtime, model, codec)

    def ask(self, question: str) -> tuple[str, list[list[Any]], str]:
        """Question -> (answer as Markdown, source rows [n, file, score, snippet], context)."""
        if self.pipeline is None:
            raise _user_error("This project has no RAG component, so there is nothing to ask.")
        question = _check_text(question, "question", MAX_QUESTION_CHARS)
        try:
            with self._ask_lock:
                answer = self.pipeline.ask(question)
        except Exception as exc:
            log.exception("ask failed")  # the details go to the terminal, not to the page
            raise _user_error(f"Could not answer: {exc}") from None
        rows = [[s["n"], s["file"], round(s["score"], 4), s["snippet"]] for s in answer.sources]
        # The answer is shown as Markdown: escape <...> so text like `<package>` stays visible.
        text = html.escape(answer.text, quote=False)
        if answer.abstained:
            text = f"**{text}.** None of the retrieved passages answers this question."
        return text, rows, answer.context

    def latest_model(self) -> tuple[Path, Any, Any] | None:
        """(checkpoint, model, codec) of the newest checkpoint; reloaded when a new one appears."""
        from .device import pick_device
        from .sample import latest_checkpoint, load_for_generation

        ckpt = latest_checkpoint(self.runs_dir)
        if ckpt is None:
            return None
        with self._model_lock:
            mtime = ckpt.stat().st_mtime
            if self._model is None or self._model[:2] != (ckpt, mtime):
                # The GPU when there is one (or AI_DEVICE=...), like training.
                model, codec = load_for_generation(ckpt, device=pick_device())
                self._model = (ckpt, mtime, model, codec)
            return ckpt, self._model[2], self._model[3]

    def generate(
        self, prompt: str, max_new_tokens: int = 200, temperature: float = 0.8, top_k: int = 40
    ) -> Iterator[str]:
        """Yield the prompt plus the text generated so far (streaming); top_k 0 means no limit."""
        from .sample import stream_text

        prompt = _check_text(prompt, "prompt", MAX_PROMPT_CHARS, required=False)
        max_new_tokens = _check_number(max_new_tokens, "max new tokens", 1, MAX_NEW_TOKENS, int)
        temperature = _check_number(temperature, "temperature", 0.0, 2.0)
        top_k = _check_number(top_k, "top-k", 0, 1000, int)
        try:
            loaded = self.latest_model()
        except Exception as exc:
            log.exception("loading the checkpoint failed")
            raise _user_error(f"Could not load the trained model: {exc}") from None
        if loaded is None:
            yield (
                f"No trained model yet (no checkpoint under {self.runs_dir}/). "
                f"Train one with:\n\n    {TRAIN_COMMAND}\n\nthen press Generate again."
            )
            return
        _, model, codec = loaded
        try:
            yield from stream_text(model, codec, prompt, max_new_tokens, temperature, top_k or None)
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
        ckpt = latest_checkpoint(self.runs_dir)
        lines = [report, "", f"runs     {self.runs_dir.resolve()}"]
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
        try:
            self._pipeline.set_result(load())
        except Exception as exc:  # reported to whoever asks, as a message
            self._pipeline.set_exception(exc)

    def ask(self, question: str) -> Any:
        return self._pipeline.result().ask(question)

    @property
    def index(self) -> Any:
        return self._pipeline.result().index


def has_rag() -> bool:
    """True when this project has the RAG component (some rendered projects leave it out)."""
    return importlib.util.find_spec(".rag", __package__) is not None


def build_app(pipeline: Any = None, runs_dir: str | Path = "runs", title: str | None = None):
    """The gr.Blocks app. Without a pipeline (no RAG component) the Ask tab is left out."""
    import gradio as gr

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
                "Continue a prompt with the newest checkpoint under "
                f"`{Path(runs_dir).as_posix()}/`. No model yet? Run `{TRAIN_COMMAND}`."
            )
            prompt = gr.Textbox(label="Prompt", value="The model ", max_length=MAX_PROMPT_CHARS)
            with gr.Row():
                max_new_tokens = gr.Slider(1, MAX_NEW_TOKENS, value=200, step=1, label="Max tokens")
                temperature = gr.Slider(0.0, 2.0, value=0.8, step=0.05, label="Temperature")
                top_k = gr.Slider(0, 200, value=40, step=1, label="Top-k (0 = off)")
            generate_button = gr.Button("Generate", variant="primary")
            output = gr.Textbox(label="Generated text", lines=10, interactive=False)
            generate_button.click(
                handlers.generate,
                [prompt, max_new_tokens, temperature, top_k],
                output,
                api_name="generate",
                concurrency_limit=GENERATE_CONCURRENCY,
            )
        with gr.Tab("Environment"):
            # Filled in when the page opens: the report imports torch, which must not delay startup.
            report = gr.Code(language=None, label="doctor", lines=12)
            gr.Button("Refresh").click(handlers.environment, None, report, api_name="environment")
        app.load(handlers.environment, None, report, api_visibility="private")
    app.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    return app


def load_rag(index_dir: str | Path, docs_dir: str | Path, config: Any = None, say=print) -> Any:
    """The RAG pipeline; builds the index first when there is none yet (first start)."""
    from .rag.index import build_index, read_manifest
    from .rag.pipeline import load_pipeline

    index_dir = Path(index_dir)
    if read_manifest(index_dir) is None:
        say(f"No search index yet: building it from {docs_dir}/ into {index_dir}/ (first start)...")
        report = build_index(docs_dir, index_dir, config, progress=sys.stderr.isatty())
        say(f"Index ready: {report.summary()}")
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
    """
    quiet_environment()
    if port is not None and not port_is_free(host, port):  # say so before loading anything
        raise DemoError(f"port {port} on {host} is already in use: pick another with --port")
    pipeline = None
    if has_rag():
        pipeline = BackgroundPipeline(lambda: load_rag(index_dir, docs_dir, rag_config, say))
    app = build_app(pipeline, runs_dir)
    app.launch(
        server_name=host,
        server_port=port,
        share=share,
        prevent_thread_lock=True,
        quiet=True,
        show_error=False,  # unexpected errors stay in the terminal; gr.Error messages still show
        footer_links=["api"],
    )
    say(f"Demo running at {app.local_url}" + (f" (public link: {app.share_url})" if share else ""))
    if block:
        say("Press Ctrl+C to stop.")
        try:
            app.block_thread()
        finally:
            app.close()
    return app


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


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

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.open(io.BytesIO(data)).convert("RGB").quantize(colors=256)
    tmp = path.with_name(path.name + ".tmp")
    image.save(tmp, format="PNG", optimize=True)
    os.replace(tmp, path)


def screenshot(path: str | Path, question: str = EXAMPLE_QUESTION, **launch_args: Any) -> str:
    """Start the app on a free port, ask `question` in Chromium, save the picture, stop."""
    app = launch(port=free_port(), block=False, **launch_args)
    try:
        return browser_ask(app.local_url, question, path)
    finally:
        app.close()


# ----------------------------------------------------------------------------- CLI


def add_demo_parser(subparsers) -> argparse.ArgumentParser:
    """Register `demo [--host 127.0.0.1] [--port N] [--share] [--screenshot PNG]`."""
    p = subparsers.add_parser("demo", help="start the web demo (Gradio) on 127.0.0.1")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: 7860, or the next free one)")
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
    from .errors import UserError

    known: tuple[type[Exception], ...] = (DemoError, UserError, OSError)
    settings: dict[str, Any] = {"runs_dir": args.runs_dir}
    if has_rag():
        from .rag.cli import project_root
        from .rag.config import load_config
        from .rag.errors import RagError

        known += (RagError,)
        try:
            root = project_root()
            settings.update(
                index_dir=args.index or root / ".rag-index",
                docs_dir=args.docs or root / "docs",
                rag_config=load_config(None, root),
            )
        except RagError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    try:
        if args.screenshot:
            answer = screenshot(args.screenshot, **settings)
            print(f"saved {args.screenshot} (answer: {answer.splitlines()[0]})")
        else:
            launch(args.host, args.port, args.share, **settings)
    except known as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0
