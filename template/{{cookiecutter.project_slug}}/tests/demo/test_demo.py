"""The demo's handlers called directly, then the served app driven through gradio_client."""

import argparse
import itertools
import subprocess
import sys
from pathlib import Path

import gradio as gr
import pytest

from {{ cookiecutter.package_name }} import demo
from {{ cookiecutter.package_name }}.demo import (
    TRAIN_COMMAND,
    DemoHandlers,
    add_demo_parser,
    build_app,
)

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
    add_demo_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["demo"])
    assert (args.host, args.port, args.share, args.screenshot) == ("127.0.0.1", None, False, None)
    args = parser.parse_args(["demo", "--port", "8000", "--share", "--host", "0.0.0.0"])
    assert (args.host, args.port, args.share) == ("0.0.0.0", 8000, True)


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


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("x" * 1001,), "too long"),
        (("hi", 0), "max new tokens"),
        (("hi", 10_000), "max new tokens"),
        (("hi", 10, -1.0), "temperature"),
        (("hi", 10, "hot"), "temperature"),
        (("hi", 10, 0.8, -3), "top-k"),
    ],
)
def test_generate_rejects_bad_input_with_a_message(runs_dir, args, message):
    with pytest.raises(gr.Error, match=message):
        list(DemoHandlers(None, runs_dir).generate(*args))


def test_generate_with_a_broken_checkpoint_is_a_message(tmp_path):
    run = tmp_path / "runs" / "broken" / "checkpoints"
    run.mkdir(parents=True)
    (run / "step_0000001.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(gr.Error, match="Could not load the trained model"):
        list(DemoHandlers(None, tmp_path / "runs").generate("Hello"))


def test_environment_reports_device_versions_and_model(pipeline, runs_dir):
    report = DemoHandlers(pipeline, runs_dir).environment()
    for word in ("device", "torch", "python", "dtype", "step_", "chunks"):
        assert word in report


# ----------------------------------------------------------------------------- the app


def api_names(app):
    return {fn.api_name for fn in app.fns.values() if fn.api_visibility == "public"}


def test_app_without_rag_has_no_ask_tab(tmp_path):
    assert api_names(build_app(None, tmp_path)) == {"generate", "environment"}


def test_app_with_rag_has_every_tab(pipeline, tmp_path):
    assert api_names(build_app(pipeline, tmp_path)) == {"ask", "generate", "environment"}


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
    with pytest.raises(AppError, match="500"):  # the slider or the handler refuses it
        client.predict("Hi", 100_000, 0.8, 10, api_name="/generate")


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
