"""The demo under load (20 parallel asks) and started the way a user starts it: the CLI."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.demo import free_port, has_rag

from ..conftest import PACKAGE

ROOT = Path(__file__).resolve().parents[2]


def questions(n):
    rows = [json.loads(line) for line in (ROOT / "data" / "qa.jsonl").read_text().splitlines()]
    return [rows[i % len(rows)]["question"] for i in range(n)]


def test_20_concurrent_asks_all_succeed(server, pipeline):
    from gradio_client import Client

    def ask(question):
        client = Client(server, verbose=False)  # one client per simulated user
        return client.predict(question, api_name="/ask")

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(ask, questions(20)))
    assert len(results) == 20
    for answer, sources, _context in results:
        assert answer and sources["data"]
    assert sum(".md" in answer for answer, _, _ in results) >= 15  # most are answered with a cite


def wait_until_up(url, proc, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"demo exited with {proc.returncode}: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"demo not up after {timeout} s")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="sends a POSIX SIGINT")
def test_cli_builds_the_index_on_first_start_and_answers(tmp_path, docs_dir, runs_dir):
    from gradio_client import Client

    if not has_rag():
        pytest.skip("this project has no RAG component")
    port = free_port()
    index = tmp_path / "index"
    command = [
        sys.executable,
        "-m",
        PACKAGE,
        "demo",
        "--port",
        str(port),
        "--index",
        str(index),
    ]
    command += ["--docs", str(docs_dir), "--runs-dir", str(runs_dir)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # A terminal delivers Ctrl+C; a test runner's worker may ignore SIGINT, and a child
        # inherits that. Give the demo the terminal's default so the SIGINT below reaches it.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        wait_until_up(f"http://127.0.0.1:{port}/", proc)
        answer, _, _ = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
            "Which port does the demo listen on by default?", api_name="/ask"
        )
        assert "demo.md" in answer
        assert (index / "manifest.json").is_file()
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl+C does
        try:
            output, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()  # never leave a server running behind a failed test
            output, _ = proc.communicate()
            raise AssertionError(f"the demo did not stop on Ctrl+C:\n{output[-2000:]}") from None
    assert "building it from" in output  # the first-start progress message
    assert f"http://127.0.0.1:{port}" in output
    assert "Traceback" not in output


def test_cli_refuses_a_busy_port_with_a_message(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", PACKAGE, "demo", "--port", str(port)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert out.returncode == 2
    assert re.search(rf"error: port {port} .* already in use", out.stderr)
    assert "Traceback" not in out.stderr


def test_cli_refuses_the_docs_folder_as_the_index_and_deletes_nothing(tmp_path):
    """`demo --docs X --index X` on a first start: one line, exit code 2, X as it was."""
    if not has_rag():
        pytest.skip("this project has no RAG component")
    docs = tmp_path / "mydocs"
    (docs / "notes").mkdir(parents=True)
    files = {"a.md": "# A\n\nFirst page.\n", "notes/b.txt": "Second page.\n"}
    for name, text in files.items():
        (docs / name).write_text(text, encoding="utf-8")
    command = [sys.executable, "-m", PACKAGE, "demo", "--port", str(free_port())]
    command += ["--docs", str(docs), "--index", str(docs), "--runs-dir", str(tmp_path / "runs")]
    out = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2, out.stderr
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, out.stderr
    assert "Traceback" not in out.stderr and "Demo running" not in out.stdout
    after = {p.relative_to(docs).as_posix() for p in docs.rglob("*") if p.is_file()}
    assert after == set(files)  # no index files written into it, nothing deleted
    assert {name: (docs / name).read_text(encoding="utf-8") for name in files} == files


@pytest.mark.slow
def test_demo_works_in_a_project_without_rag(tmp_path):
    """Projects rendered without the RAG component have no rag/ package: the demo still runs."""
    import {{ cookiecutter.package_name }}

    package = Path({{ cookiecutter.package_name }}.__file__).parent
    shutil.copytree(package, tmp_path / PACKAGE, ignore=shutil.ignore_patterns("rag", "__py*"))
    code = """
import sys
from gradio_client import Client
from {{ cookiecutter.package_name }} import demo
assert not demo.has_rag()
app = demo.launch(port=demo.free_port(), block=False, runs_dir="runs")
try:
    client = Client(app.local_url, verbose=False)
    assert "train --config" in client.predict("Hi", api_name="/generate")
    names = {f.api_name for f in app.fns.values() if f.api_visibility == "public"}
    assert names == {"generate", "environment"} | {
        name for tab in demo.track_tabs() for name in tab.API_NAMES
    }, names
finally:
    app.close()
assert not any(name.startswith(demo.__package__ + ".rag") for name in sys.modules)
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
