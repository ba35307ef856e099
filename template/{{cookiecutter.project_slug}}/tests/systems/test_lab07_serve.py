"""Lab 07 (labs/systems/07-serve.md): an OpenAI-compatible server, and a load test against it.

`python -m {{ cookiecutter.package_name }} labs check 07` runs this file. The server is the
real app on a real socket (uvicorn in a background thread), in front of the real engine and a
tiny random-weight GPT: the text is gibberish, but every byte of the protocol is real.
"""

import argparse
import asyncio
import importlib.util
import json
import socket
import threading
import time

import httpx
import pytest
import torch

from {{ cookiecutter.package_name }}.models.gpt import GPT, GPTConfig
from {{ cookiecutter.package_name }}.systems.engine import Engine
from {{ cookiecutter.package_name }}.systems.loadtest import (
    LoadTestError,
    add_loadtest_arguments,
    cmd_loadtest,
    load_test,
)
from {{ cookiecutter.package_name }}.systems.serve import (
    ServeError,
    TextAssembler,
    add_serve_arguments,
    bind,
    check_request,
    cmd_serve,
    create_app,
)
from {{ cookiecutter.package_name }}.tasks.text import Codec

CODEC = Codec.from_text("hello world, the quick brown fox jumps over the lazy dog.\n")
CONTEXT = 1024  # long enough that a 1000-token request is still running when its client leaves
NAME = "tiny-test"


@pytest.fixture(scope="module")
def server():
    """(url, engine): the app served by uvicorn on a free port, for the whole module."""
    import uvicorn

    torch.manual_seed(0)
    config = GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=CONTEXT)
    config.vocab_size = CODEC.vocab_size
    engine = Engine(GPT(config).eval(), max_batch=4).start()
    app = create_app(engine, CODEC, NAME, max_batch=4)
    sock = bind("127.0.0.1", 0)
    uv = uvicorn.Server(uvicorn.Config(app, log_level="warning", ws="none"))
    thread = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.01)
    assert uv.started, "the server did not start"
    yield f"http://127.0.0.1:{sock.getsockname()[1]}", engine
    uv.should_exit = True
    thread.join(timeout=10)
    sock.close()
    engine.stop()


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server[0], timeout=30) as c:
        yield c


def complete(client, **body):
    return client.post("/v1/completions", json={"model": NAME, "prompt": "the ", **body})


def stream_events(client, **body) -> list:
    """The decoded `data:` payloads of one streamed completion, `[DONE]` included."""
    events = []
    with client.stream("POST", "/v1/completions", json={"model": NAME, **body}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data: "):
                data = line.removeprefix("data: ")
                events.append(data if data == "[DONE]" else json.loads(data))
    return events


def test_completion_has_openais_shape(client):
    response = complete(client, max_tokens=5, temperature=0)
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("cmpl-") and body["object"] == "text_completion"
    assert body["model"] == NAME and isinstance(body["created"], int)
    (choice,) = body["choices"]
    assert choice["index"] == 0 and choice["logprobs"] is None
    assert choice["finish_reason"] == "length"
    assert len(choice["text"]) == 5  # a character codec: one token, one character
    assert body["usage"] == {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}


def test_streamed_chunks_assemble_to_the_same_text(client):
    plain = complete(client, max_tokens=30, temperature=0).json()["choices"][0]["text"]
    events = stream_events(
        client,
        prompt="the ",
        max_tokens=30,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    assert events[-1] == "[DONE]"
    *chunks, usage = events[:-1]
    assert "".join(c["choices"][0]["text"] for c in chunks) == plain
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "length"
    assert all(c["object"] == "text_completion" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1  # every chunk of one completion has its id
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 30


def test_a_seed_repeats_a_sampled_completion(client):
    texts = {complete(client, max_tokens=20, seed=7).json()["choices"][0]["text"] for _ in "ab"}
    assert len(texts) == 1


def test_stop_sequence_cuts_the_text(client):
    full = complete(client, max_tokens=40, temperature=0).json()["choices"][0]["text"]
    stop = full[10:12]
    expected = full[: full.find(stop)]
    body = complete(client, max_tokens=40, temperature=0, stop=[stop]).json()
    assert body["choices"][0]["text"] == expected
    assert body["choices"][0]["finish_reason"] == "stop"
    events = stream_events(
        client, prompt="the ", max_tokens=40, temperature=0, stop=stop, stream=True
    )
    chunks = events[:-1]
    assert "".join(c["choices"][0]["text"] for c in chunks) == expected
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_text_assembler_holds_back_a_possible_stop():
    text = TextAssembler(CODEC, ["lo w"])
    sent = [text.add(CODEC.encode(c)) for c in "hello w"]
    # "l", then "lo", then "lo " could be the start of the stop sequence: held back each time.
    assert sent == ["h", "e", "", "l", "", "", ""]
    assert text.stopped and text.text == "hel"


BAD_REQUESTS = [
    # (body, status, words the message must contain)
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    ({"prompt": "the ", "max_tokens": "abc"}, 400, "max_tokens"),
    ({"prompt": "the ", "temperature": "hot"}, 400, "temperature"),
    ({"prompt": "the ", "stream": "yes"}, 400, "stream"),
    ({"max_tokens": 5}, 400, "prompt"),
    ({"prompt": ""}, 400, "empty"),
    ({"prompt": 42}, 400, "prompt: expected a string"),
    ({"prompt": [1, 2]}, 400, "prompt: expected a string"),
    ({"prompt": ["the ", "a "]}, 400, "list of 2"),
    ({"prompt": "the ", "max_tokens": 0}, 400, "at least 1"),
    ({"prompt": "the ", "max_tokens": CONTEXT}, 400, f"context of {CONTEXT} tokens"),
    ({"prompt": "the ", "n": 2}, 400, "n=1"),
    ({"prompt": "the ", "temperature": -1}, 400, "temperature"),
    ({"prompt": "the ", "top_k": 0}, 400, "top_k"),
    ({"prompt": "the ", "stop": ["a", "b", "c", "d", "e"]}, 400, "stop"),
    ({"prompt": "héllo ✓"}, 400, "'é', '✓'"),
    ({"prompt": "the ", "model": "gpt-4"}, 404, "does not exist"),
]


@pytest.mark.parametrize(("body", "status", "words"), BAD_REQUESTS)
def test_bad_request_gets_a_4xx_in_openais_error_shape(client, body, status, words):
    if isinstance(body, bytes):
        headers = {"content-type": "application/json"}
        response = client.post("/v1/completions", content=body, headers=headers)
    else:
        response = client.post("/v1/completions", json=body)
    assert response.status_code == status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert words in error["message"]
    assert complete(client, max_tokens=2).status_code == 200  # and the server keeps serving


def test_unknown_path_is_a_404_in_the_same_shape(client):
    response = client.get("/v1/nothing")
    assert response.status_code == 404
    assert "/v1/nothing" in response.json()["error"]["message"]


def test_models_and_health(client):
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == NAME
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["context"] == CONTEXT


def test_a_client_that_leaves_cancels_its_request(server, client):
    engine = server[1]
    steps = engine.steps
    with client.stream(
        "POST", "/v1/completions", json={"prompt": "the ", "max_tokens": 1000, "stream": True}
    ) as response:
        next(response.iter_lines())  # the first chunk arrived
        deadline = time.monotonic() + 10
        while engine.steps == steps and time.monotonic() < deadline:
            time.sleep(0.001)  # until it is decoding (busy() is briefly False during a prefill)
    # Hung up.
    deadline = time.monotonic() + 10
    while engine.busy() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not engine.busy()
    assert engine.steps - steps < 999  # it stopped long before its 1000 tokens


def test_check_request_rejects_before_the_engine_sees_it():
    with pytest.raises(Exception, match="exceeds the model's context of 8 tokens"):
        check_request({"prompt": "the ", "max_tokens": 5}, CODEC, 8, NAME)
    settings = check_request({"prompt": ["the "], "stop": "x"}, CODEC, 64, NAME)
    assert settings["prompt_ids"] == CODEC.encode("the ") and settings["stops"] == ["x"]
    assert settings["max_tokens"] == 16 and settings["temperature"] == 1.0


def parse(add_arguments, argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


@pytest.mark.parametrize("stream", [False, True])
def test_loadtest_reports_throughput_and_latency(server, capsys, stream):
    argv = [server[0], "--concurrency", "8", "--requests", "16", "--max-tokens", "8", "--json"]
    argv += ["--prompt", "the ", *(["--stream"] if stream else [])]
    assert cmd_loadtest(parse(add_loadtest_arguments, argv)) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] == 16 and result["errors"] == 0 and result["first_errors"] == []
    assert result["model"] == NAME  # asked GET /v1/models
    assert result["completion_tokens"] == 16 * 8
    assert result["requests_per_s"] > 0 and result["tokens_per_s"] > 0
    assert 0 < result["latency_p50_s"] <= result["latency_p95_s"] <= result["latency_max_s"]
    if stream:
        assert 0 < result["ttft_p50_s"] <= result["latency_max_s"]


def test_loadtest_counts_and_shows_errors(server, capsys):
    argv = [server[0], "--concurrency", "4", "--requests", "6", "--prompt", "¿qué?"]
    assert cmd_loadtest(parse(add_loadtest_arguments, argv)) == 1
    out = capsys.readouterr().out
    assert "ok 0, errors 6" in out
    assert "error: HTTP 400: prompt: the model's vocabulary" in out


def test_loadtest_says_when_no_server_answers():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nobody listens there
    with pytest.raises(LoadTestError, match="is the server running"):
        asyncio.run(load_test(f"http://127.0.0.1:{port}", requests=1))


@pytest.mark.slow
def test_fifty_concurrent_requests_without_an_error(server):
    run = load_test(server[0], concurrency=50, requests=50, max_tokens=16, prompt="the ")
    result = asyncio.run(run)
    assert result["errors"] == 0, result["first_errors"]
    assert result["ok"] == 50 and result["completion_tokens"] == 50 * 16


def test_serve_without_a_trained_model_says_train_one_first(tmp_path):
    args = parse(add_serve_arguments, ["--port", "0", "--runs-dir", str(tmp_path / "runs")])
    with pytest.raises(ServeError, match=r"train one first: .* train --config configs/tiny\.yaml"):
        cmd_serve(args)


def test_serve_on_a_taken_port_says_so(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        with pytest.raises(ServeError, match="--port"):
            cmd_serve(parse(add_serve_arguments, ["--port", port, "--runs-dir", str(tmp_path)]))


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed")
def test_vllm_without_vllm_gives_the_commands():
    args = parse(add_serve_arguments, ["--vllm", "Qwen/Qwen2.5-0.5B-Instruct"])
    with pytest.raises(ServeError) as info:
        cmd_serve(args)
    message = str(info.value)
    assert "CUDA GPU" in message and "uv pip install vllm" in message
    assert "vllm serve Qwen/Qwen2.5-0.5B-Instruct --host 127.0.0.1 --port 8000" in message
    assert "systems loadtest http://127.0.0.1:8000" in message
