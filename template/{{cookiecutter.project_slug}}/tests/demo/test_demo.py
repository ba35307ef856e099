"""The demo's handlers called directly, then the served app driven through gradio_client."""

import argparse
import itertools
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import gradio as gr
import pytest

from {{ cookiecutter.package_name }} import cli, demo, sample
from {{ cookiecutter.package_name }}.demo import (
    MAX_NEW_TOKENS,
    TRAIN_COMMAND,
    DemoError,
    DemoHandlers,
    add_parser,
    build_app,
    check_port,
)
from {{ cookiecutter.package_name }}.errors import UserError

from ..conftest import PACKAGE

QUESTION = "Which port does the demo listen on by default?"


def test_cli_help_imports_neither_gradio_nor_torch():
    code = (
        f"import sys; from {PACKAGE}.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('gradio', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_demo_parser_defaults_are_safe():
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["demo"])
    assert (args.host, args.port, args.share, args.screenshot) == ("127.0.0.1", None, False, None)
    args = parser.parse_args(["demo", "--port", "8000", "--share", "--host", "0.0.0.0"])
    assert (args.host, args.port, args.share) == ("0.0.0.0", 8000, True)


def test_the_core_cli_finds_the_demo_command():
    args = cli.build_parser().parse_args(["demo", "--port", "8000"])
    assert args.func is demo.cmd_demo and args.port == 8000
    assert issubclass(DemoError, UserError)  # so the CLI prints it as one line, exit code 2


@pytest.mark.parametrize("port", ["99999", "65536", "0", "-1"])
def test_a_port_out_of_range_is_one_line_exit_2(port, capsys):
    assert cli.main(["demo", "--port", port]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: --port must be between 1 and 65535 (got {port}); "
        "leave it out to use 7860 or the next free port\n"
    )


def test_check_port_says_why_a_port_cannot_be_used():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(DemoError, match=f"port {port} on 127.0.0.1 is already in use"):
            check_port("127.0.0.1", port)
    check_port("127.0.0.1", port)  # free again
    # 192.0.2.1 is a documentation address: no machine has it, so nothing can listen there.
    with pytest.raises(DemoError, match=r"cannot listen on 192\.0\.2\.1 port"):
        check_port("192.0.2.1", port)


def test_train_command_names_this_package():
    assert f"python -m {PACKAGE} train --config configs/tiny.yaml" == TRAIN_COMMAND


# ----------------------------------------------------------------------------- handlers


def test_ask_cites_a_source(pipeline):
    text, rows, context = DemoHandlers(pipeline).ask(QUESTION)
    assert "7860" in text and "demo.md" in text
    assert rows[0][:2] == [1, "demo.md"] and isinstance(rows[0][2], float) and rows[0][3]
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))  # numbered sources
    assert "[1] demo.md" in context


def test_ask_abstains_when_the_docs_have_no_answer(pipeline):
    text, rows, _ = DemoHandlers(pipeline).ask("What is the capital of Australia?")
    assert "not in the documents" in text
    assert rows  # what was retrieved is still shown


@pytest.mark.parametrize(
    ("question", "message"),
    [("", "Type a question"), ("   ", "Type a question"), ("x" * 501, "too long"), (None, "text")],
)
def test_ask_rejects_bad_input_with_a_message(pipeline, question, message):
    with pytest.raises(gr.Error, match=message):
        DemoHandlers(pipeline).ask(question)


def test_ask_without_rag_component_says_so():
    with pytest.raises(gr.Error, match="no RAG component"):
        DemoHandlers(None).ask(QUESTION)


def test_ask_on_a_damaged_index_shows_the_rag_message(index_dir, docs_dir, tmp_path, caplog):
    """A truncated chunks.json: the page says the index is damaged and how to rebuild it."""
    damaged = tmp_path / "index"
    shutil.copytree(index_dir, damaged)
    chunks = damaged / "chunks.json"
    chunks.write_bytes(chunks.read_bytes()[:1000])
    handlers = DemoHandlers(demo.BackgroundPipeline(lambda: demo.load_rag(damaged, docs_dir)))
    with pytest.raises(gr.Error) as info:
        handlers.ask(QUESTION)
    message = str(info.value)
    assert "damaged" in message and "rag index" in message
    assert "Expecting" not in message and "line 1 column" not in message  # no raw JSON error
    # The terminal gets one line, not a stack trace; nothing was rebuilt behind the user's back.
    records = [r for r in caplog.records if r.name == demo.__name__]
    assert [r.levelno for r in records] == [logging.ERROR] and records[0].exc_info is None
    assert "question answering is unavailable" in records[0].getMessage()
    assert len(chunks.read_bytes()) == 1000


def test_ask_failure_is_a_message_not_a_traceback(pipeline, monkeypatch):
    handlers = DemoHandlers(pipeline)

    def broken(question):
        raise RuntimeError("index went away")

    monkeypatch.setattr(handlers.pipeline, "ask", broken)
    with pytest.raises(gr.Error, match="Could not answer: index went away"):
        handlers.ask(QUESTION)


def test_generate_without_checkpoint_names_the_train_command(tmp_path):
    (message,) = DemoHandlers(None, tmp_path / "runs").generate("Hello")
    assert TRAIN_COMMAND in message


def test_generate_streams_growing_text(runs_dir):
    handlers = DemoHandlers(None, runs_dir)
    steps = list(handlers.generate("The model ", max_new_tokens=12, temperature=0.8, top_k=5))
    assert len(steps) == 12
    assert all(s.startswith("The model ") for s in steps)
    assert all(b.startswith(a) for a, b in itertools.pairwise(steps))  # it grows
    greedy = list(handlers.generate("The", max_new_tokens=6, temperature=0, top_k=0))
    assert greedy == list(handlers.generate("The", max_new_tokens=6, temperature=0, top_k=0))


TOKENS = f"Max tokens must be a number from 1 to {MAX_NEW_TOKENS}"
TEMPERATURE = "Temperature must be a number from 0.0 to 2.0"
TOP_K = "Top-k must be a number from 0 to 200"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("x" * 1001,), "too long"),
        ((5,), "The prompt must be text"),
        (("hi", 0), f"{TOKENS} (got 0)"),
        (("hi", -5), f"{TOKENS} (got -5)"),
        (("hi", 10**9), f"{TOKENS} (got 1000000000)"),
        (("hi", 10**400), TOKENS),  # too large even for a float
        (("hi", MAX_NEW_TOKENS + 1), TOKENS),
        (("hi", "abc"), f"{TOKENS} (got 'abc')"),
        (("hi", None), f"{TOKENS} (got None)"),
        (("hi", "x" * 10_000), f"{TOKENS} (got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...)."),
        (("hi", 10, -1.0), f"{TEMPERATURE} (got -1.0)"),
        (("hi", 10, 1e9), TEMPERATURE),
        (("hi", 10, float("nan")), f"{TEMPERATURE} (got nan)"),
        (("hi", 10, float("inf")), f"{TEMPERATURE} (got inf)"),
        (("hi", 10, "hot"), TEMPERATURE),
        (("hi", 10, 0.8, -1), f"{TOP_K} (got -1)"),
        (("hi", 10, 0.8, 1000), f"{TOP_K} (got 1000)"),
        (("hi", 10, 0.8, float("nan")), TOP_K),
    ],
)
def test_generate_rejects_bad_input_with_a_message(runs_dir, args, message):
    with pytest.raises(gr.Error, match=re.escape(message)):
        list(DemoHandlers(None, runs_dir).generate(*args))


def test_generate_accepts_numbers_as_an_api_client_may_send_them(runs_dir):
    """2.5 tokens means 2 (as the probe found); numbers written as text are numbers too."""
    assert len(list(DemoHandlers(None, runs_dir).generate("The ", 2.5, 0.8, 40))) == 2
    assert len(list(DemoHandlers(None, runs_dir).generate("The ", "3", "0", "0"))) == 3


def test_generate_with_only_a_broken_checkpoint_is_a_message(tmp_path):
    run = tmp_path / "runs" / "broken" / "checkpoints"
    run.mkdir(parents=True)
    (run / "step_0000001.pt").write_bytes(os.urandom(2000))  # garbage: torch's safe loader refuses
    with pytest.raises(gr.Error, match="Could not load the trained model") as info:
        list(DemoHandlers(None, tmp_path / "runs").generate("Hello"))
    assert "weights_only" not in str(info.value) and "False" not in str(info.value)


def test_generate_falls_back_to_the_newest_readable_checkpoint(runs_dir, tmp_path):
    """A garbage file as the newest checkpoint: Generate says so and uses the one before it."""
    runs = tmp_path / "runs"
    shutil.copytree(runs_dir, runs)
    (good,) = runs.glob("*/checkpoints/step_*.pt")
    os.utime(good, (1_000_000_000, 1_000_000_000))  # older than the garbage below
    garbage = runs / "zz-garbage" / "checkpoints" / "step_0000001.pt"
    garbage.parent.mkdir(parents=True)
    garbage.write_bytes(os.urandom(2000))
    handlers = DemoHandlers(None, runs)
    *_, text = handlers.generate("The ", max_new_tokens=5, temperature=0, top_k=0)
    note, generated = text.split("\n\n", 1)
    assert note.startswith(f"Note: newest checkpoint {garbage.as_posix()} is unreadable (")
    assert note.endswith(f"; using {good.as_posix()}.")
    assert "weights_only" not in note and "False" not in note  # never torch's unsafe advice
    assert generated.startswith("The ") and len(generated) > len("The ")
    assert str(good) in handlers.environment()  # the model Generate really uses
    garbage.unlink()  # fixed: the note goes away without restarting the demo
    *_, text = handlers.generate("The ", max_new_tokens=5, temperature=0, top_k=0)
    assert text == generated


def test_environment_reports_device_versions_and_model(pipeline, runs_dir):
    report = DemoHandlers(pipeline, runs_dir).environment()
    for word in ("device", "torch", "python", "dtype", "step_", "chunks"):
        assert word in report


# ----------------------------------------------------------------------------- the app


def api_names(app):
    return {fn.api_name for fn in app.fns.values() if fn.api_visibility == "public"}


def with_track_apis(*names):
    """names plus the endpoints of a track's own tab (the theory track's Attention tab)."""
    return {*names, *(name for tab in demo.track_tabs() for name in tab.API_NAMES)}


def test_app_without_rag_has_no_ask_tab(tmp_path):
    assert api_names(build_app(None, tmp_path)) == with_track_apis("generate", "environment")


def test_app_with_rag_has_every_tab(pipeline, tmp_path):
    expected = with_track_apis("ask", "generate", "environment")
    assert api_names(build_app(pipeline, tmp_path)) == expected


def test_rag_component_is_detected():
    assert demo.has_rag() == (Path(demo.__file__).parent / "rag").is_dir()


def test_client_ask(server, pipeline):
    from gradio_client import Client

    answer, sources, context = Client(server, verbose=False).predict(QUESTION, api_name="/ask")
    assert "demo.md" in answer and "7860" in answer
    assert sources["headers"] == ["#", "file", "score", "snippet"]
    assert sources["data"][0][1] == "demo.md" and context


def test_client_generate(server):
    from gradio_client import Client

    client = Client(server, verbose=False)
    text = client.predict("The ", 20, 0.8, 10, api_name="/generate")
    assert text.startswith("The ") and len(text) > len("The ")
    assert client.predict("Hello", api_name="/generate").startswith("Hello")  # defaults apply


def test_client_gets_messages_not_tracebacks(server):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(server, verbose=False)
    with pytest.raises(AppError, match="too long") as info:
        client.predict("x" * 2000, api_name="/generate")
    assert "Traceback" not in str(info.value)
    with pytest.raises(AppError, match=TOKENS):
        client.predict("Hi", 100_000, 0.8, 10, api_name="/generate")


def call_raw(url, api_name, body):
    """POST a request body as raw text (JSON with NaN in it, which gradio_client cannot send)."""
    request = urllib.request.Request(
        f"{url}gradio_api/call/{api_name}",
        data=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{url}gradio_api/call/{api_name}/{event_id}", timeout=60) as r:
        return r.read().decode()


def test_out_of_range_api_values_get_one_message_and_a_quiet_terminal(server, capfd, caplog):
    """Each refusal is one message for the client and prints nothing in the server's terminal
    (Gradio's own slider check printed a ~27-line stack trace for each)."""
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(server, verbose=False)
    capfd.readouterr()
    cases = [
        ((10**9, 0.8, 40), TOKENS),
        ((-5, 0.8, 40), TOKENS),
        (("abc", 0.8, 40), TOKENS),  # Gradio alone said "the upstream app has raised an exception"
        ((20, 1e9, 40), TEMPERATURE),
        ((20, -1, 40), TEMPERATURE),
        ((20, 0.8, -1), TOP_K),
        ((20, 0.8, 1000), TOP_K),
    ]
    for values, message in cases:
        with pytest.raises(AppError, match=message) as info:
            client.predict("The model ", *values, api_name="/generate")
        assert "upstream" not in str(info.value)
    for body in ('["The model ", 20, NaN, 40]', '["The model ", 20, 0.8, Infinity]'):
        stream = call_raw(server, "generate", '{"data": ' + body + "}")
        assert "event: error" in stream and "must be a number from" in stream
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err and "Error" not in err, err
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert client.predict("The ", 3, 0.8, 10, api_name="/generate").startswith("The ")


def test_ask_answers_while_a_generation_runs(server, pipeline, monkeypatch):
    """Generations have their own queue, one at a time: Ask does not wait behind them."""
    from gradio_client import Client

    started, release = [], threading.Event()
    real_stream_text = sample.stream_text

    def held_stream_text(*args, **kwargs):  # the real generation, held open like a long one
        started.append(threading.current_thread().name)
        release.wait(60)
        yield from real_stream_text(*args, **kwargs)

    # Generate uses sample.py's stream_text, or a track's own (the systems track's engine).
    for module in (sample, *(tab for tab in demo.track_tabs() if hasattr(tab, "stream_text"))):
        monkeypatch.setattr(module, "stream_text", held_stream_text)
    client = Client(server, verbose=False)
    try:
        first = client.submit("The ", 5, 0.8, 10, api_name="/generate")
        second = client.submit("The ", 5, 0.8, 10, api_name="/generate")
        answer, _, _ = client.predict(QUESTION, api_name="/ask")
        assert "7860" in answer
        assert len(started) <= 1  # the second generation waits for the first
        assert not first.done() and not second.done()
    finally:
        release.set()
    assert first.result(timeout=60).startswith("The ")
    assert second.result(timeout=60).startswith("The ")
    assert len(started) == 2


def test_background_pipeline_waits_for_loading_and_reports_its_errors(pipeline, tmp_path):
    """`demo` serves at once and loads the RAG pipeline in a thread (see BackgroundPipeline)."""
    import time

    def slow_load():
        time.sleep(0.3)
        return pipeline

    answer = demo.BackgroundPipeline(slow_load).ask(QUESTION)
    assert "7860" in answer.text
    environment = DemoHandlers(demo.BackgroundPipeline(slow_load), tmp_path).environment()
    assert "chunks from" in environment

    def broken_load():
        raise RuntimeError("the index is corrupt")

    handlers = DemoHandlers(demo.BackgroundPipeline(broken_load), tmp_path)
    with pytest.raises(gr.Error, match="the index is corrupt"):
        handlers.ask(QUESTION)


def test_the_app_imports_anyio_before_serving(tmp_path):
    """Nothing of anyio is left to import lazily from a server thread (CPython 3.11's AST race)."""
    import pkgutil

    import anyio

    build_app(None, tmp_path)
    modules = [m.name for m in pkgutil.walk_packages(anyio.__path__, "anyio.")]
    optional = ("pytest", "trio")
    missing = [n for n in modules if n not in sys.modules and not any(o in n for o in optional)]
    assert not missing
