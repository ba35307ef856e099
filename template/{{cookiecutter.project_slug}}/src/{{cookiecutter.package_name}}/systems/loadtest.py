"""Lab 07: load-test any OpenAI-compatible completions server (ours, vLLM, a hosted one).

A server's speed for one user (latency) and for many (throughput) are different figures, and
a single request measures neither well. This sends `--requests` completions with at most
`--concurrency` in flight at once (an `asyncio.Semaphore` is the gate), all from one thread:
each waiting request is a coroutine, not a thread, so 50 cost almost nothing on the client.

It reports requests/s and completion tokens/s over the whole run, latency percentiles (p50 is
the typical request, p95 the slow tail users notice), time to first token when streaming, and
every error (count and the first messages): a load test that hides errors measures nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from ..errors import UserError

PACKAGE = __package__.split(".")[0]
DEFAULT_PROMPT = "The model "  # short, and made of characters the tiny model has seen


class LoadTestError(UserError):
    """The server cannot be reached or does not look like an OpenAI-compatible one."""


def base_url(url: str) -> str:
    """http://host:port, whether the user gave that, a trailing slash or the /v1 prefix."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise LoadTestError(f"{url!r} is not an http:// or https:// URL")
    return url.removesuffix("/v1")


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation between ranks; None if empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def error_message(response) -> str:
    """`HTTP 400: <message>` from an OpenAI-shaped error body, or the start of the body."""
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = response.text[:200]
    return f"HTTP {response.status_code}: {message}"


async def one_request(client, url: str, payload: dict[str, Any]) -> dict[str, Any]:
    """Send one completion; returns latency, ttft (streaming), tokens, and error (or None)."""
    start = time.perf_counter()
    result: dict[str, Any] = {"latency": None, "ttft": None, "tokens": 0, "error": None}
    try:
        if not payload["stream"]:
            response = await client.post(url, json=payload)
            if response.status_code != 200:
                result["error"] = error_message(response)
                return result
            usage = response.json().get("usage") or {}
            result["tokens"] = int(usage.get("completion_tokens", 0))
        else:
            result.update(await read_stream(client, url, payload, start))
            if result["error"]:
                return result
    except Exception as exc:  # connection refused, reset, timeout, bad JSON: all count as errors
        result["error"] = f"{type(exc).__name__}: {exc}".rstrip(": ") or type(exc).__name__
        return result
    result["latency"] = time.perf_counter() - start
    return result


async def read_stream(client, url: str, payload: dict[str, Any], start: float) -> dict[str, Any]:
    """Read one Server-Sent Events stream to its `[DONE]`; the first text marks the TTFT."""
    ttft, chunks, usage, done = None, 0, None, False
    async with client.stream("POST", url, json=payload) as response:
        if response.status_code != 200:
            await response.aread()
            return {"error": error_message(response)}
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, comments
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                done = True
                break
            chunk = json.loads(data)
            if "error" in chunk:
                return {"error": f"in the stream: {chunk['error'].get('message', chunk)}"}
            usage = chunk.get("usage") or usage
            if any(c.get("text") for c in chunk.get("choices", [])):
                chunks += 1
                ttft = ttft if ttft is not None else time.perf_counter() - start
    if not done:
        return {"error": "the stream ended without data: [DONE]"}
    # Servers that honour stream_options send the exact count; otherwise count the chunks
    # with text (a chunk may carry several tokens, so this can undercount).
    tokens = int(usage["completion_tokens"]) if usage else chunks
    return {"error": None, "ttft": ttft, "tokens": tokens}


async def first_model(client, root: str) -> str:
    """The first model the server lists at GET /v1/models (every OpenAI-style server has it)."""
    import httpx

    try:
        response = await client.get(f"{root}/v1/models")
    except httpx.HTTPError as exc:
        raise LoadTestError(
            f"cannot reach {root}: {type(exc).__name__}: {exc}; is the server running? "
            f"start one: python -m {PACKAGE} systems serve"
        ) from None
    if response.status_code != 200:
        raise LoadTestError(f"GET {root}/v1/models: {error_message(response)}")
    try:
        return response.json()["data"][0]["id"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise LoadTestError(f"GET {root}/v1/models lists no model; give one with --model") from None


async def load_test(
    url: str,
    concurrency: int = 8,
    requests: int = 32,
    max_tokens: int = 32,
    prompt: str = DEFAULT_PROMPT,
    model: str | None = None,
    stream: bool = False,
    timeout: float = 120.0,
    temperature: float = 1.0,
) -> dict[str, Any]:
    """Run the load test; returns the figures (see format_report) and the errors."""
    import httpx

    if concurrency < 1 or requests < 1:
        raise LoadTestError("--concurrency and --requests must be at least 1")
    root = base_url(url)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
        model = model or await first_model(client, root)
        payload: dict[str, Any] = {
            "model": model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": stream,
        }
        if stream:
            payload["stream_options"] = {"include_usage": True}
        gate = asyncio.Semaphore(concurrency)  # at most `concurrency` requests in flight

        async def gated() -> dict[str, Any]:
            async with gate:
                return await one_request(client, f"{root}/v1/completions", payload)

        start = time.perf_counter()
        results = await asyncio.gather(*(gated() for _ in range(requests)))
        wall = time.perf_counter() - start
    ok = [r for r in results if r["error"] is None]
    errors = [r["error"] for r in results if r["error"] is not None]
    latencies = [r["latency"] for r in ok]
    ttfts = [r["ttft"] for r in ok if r["ttft"] is not None]
    tokens = sum(r["tokens"] for r in ok)
    return {
        "url": root,
        "model": model,
        "concurrency": concurrency,
        "requests": requests,
        "max_tokens": max_tokens,
        "stream": stream,
        "ok": len(ok),
        "errors": len(errors),
        "first_errors": list(dict.fromkeys(errors))[:3],  # distinct, in order
        "seconds": wall,
        "requests_per_s": len(ok) / wall,
        "completion_tokens": tokens,
        "tokens_per_s": tokens / wall,
        "latency_p50_s": percentile(latencies, 50),
        "latency_p95_s": percentile(latencies, 95),
        "latency_max_s": max(latencies, default=None),
        "ttft_p50_s": percentile(ttfts, 50) if stream else None,
        "ttft_p95_s": percentile(ttfts, 95) if stream else None,
    }


def format_report(result: dict[str, Any]) -> str:
    """The figures as a few lines of text."""

    def ms(seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds * 1000:,.0f} ms"

    lines = [
        f"{result['requests']} requests to {result['url']} (model {result['model']}), "
        f"{result['concurrency']} at a time, max_tokens {result['max_tokens']}"
        f"{', streaming' if result['stream'] else ''}",
        f"  ok {result['ok']}, errors {result['errors']} in {result['seconds']:.2f} s",
        f"  throughput: {result['requests_per_s']:.2f} requests/s, "
        f"{result['tokens_per_s']:,.1f} completion tokens/s ({result['completion_tokens']} tokens)",
        f"  latency: p50 {ms(result['latency_p50_s'])}, p95 {ms(result['latency_p95_s'])}, "
        f"max {ms(result['latency_max_s'])}",
    ]
    if result["stream"]:
        ttft = f"p50 {ms(result['ttft_p50_s'])}, p95 {ms(result['ttft_p95_s'])}"
        lines.append(f"  time to first token: {ttft}")
    for message in result["first_errors"]:
        lines.append(f"  error: {message}")
    return "\n".join(lines)


def add_loadtest_arguments(parser: argparse.ArgumentParser) -> None:
    """`systems loadtest` options."""
    parser.add_argument("url", help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at once")
    parser.add_argument("--requests", type=int, default=32, help="requests in all")
    parser.add_argument("--max-tokens", type=int, default=32, help="max_tokens of each request")
    parser.add_argument("--prompt", default=DEFAULT_PROMPT, help="the prompt of every request")
    parser.add_argument("--model", help="model id (default: the first of GET /v1/models)")
    parser.add_argument("--temperature", type=float, default=1.0, help="sampling temperature")
    parser.add_argument("--stream", action="store_true", help="stream (measures first token)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")


def cmd_loadtest(args: argparse.Namespace) -> int:
    """Run the load test and print the figures; exit code 1 when any request failed."""
    result = asyncio.run(
        load_test(
            args.url,
            concurrency=args.concurrency,
            requests=args.requests,
            max_tokens=args.max_tokens,
            prompt=args.prompt,
            model=args.model,
            stream=args.stream,
            timeout=args.timeout,
            temperature=args.temperature,
        )
    )
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 1 if result["errors"] else 0
