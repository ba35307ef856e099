"""Demo benchmark: start-up time of the `demo` command and `ask` latency under load.

    python benchmarks/bench_demo.py                 # 3 starts, 3 rounds of 20 concurrent asks
    python benchmarks/bench_demo.py --json

Start-up is measured from launching the command until the server answers an HTTP request, with
the index already built (run the `rag index` command or start the demo once before);
`--first-start` also times one start that has to build a fresh index first (the demo builds it
before serving, so that a problem with it ends the command). Latency is measured per
request on the client side, with 20 users (threads, one gradio_client each) asking at once.
On a shared 2-core machine other processes move these figures: the best start of several repeats
is reported, and latencies pool every round.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from {{ cookiecutter.package_name }} import demo

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "data" / "qa.jsonl"


def start_demo(extra: list[str]) -> tuple[subprocess.Popen, str, float]:
    """Start the demo; return the process, its URL and the seconds until it answered."""
    port = demo.free_port()
    url = f"http://127.0.0.1:{port}/"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", demo.__package__, "demo", "--port", str(port), *extra]
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = t0 + 180
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the demo exited early: {proc.stderr.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return proc, url, time.perf_counter() - t0
        except OSError:
            time.sleep(0.05)
    stop(proc)
    raise SystemExit("the demo did not answer within 180 s")


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def questions(n: int) -> list[str]:
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines()]
    return [rows[i % len(rows)]["question"] for i in range(n)]


def concurrent_asks(url: str, users: int) -> tuple[list[float], float, int]:
    """`users` clients ask at the same moment; (per-request seconds, wall seconds, errors)."""
    from gradio_client import Client

    with ThreadPoolExecutor(users) as pool:
        clients = list(pool.map(lambda _: Client(url, verbose=False), range(users)))
    start = threading.Barrier(users)

    def ask(job: tuple[Client, str]) -> float | None:
        client, question = job
        start.wait()  # release every request together
        t0 = time.perf_counter()
        try:
            answer, _, _ = client.predict(question, api_name="/ask")
        except Exception:
            return None
        return time.perf_counter() - t0 if answer else None

    t0 = time.perf_counter()
    with ThreadPoolExecutor(users) as pool:
        results = list(pool.map(ask, zip(clients, questions(users), strict=True)))
    wall = time.perf_counter() - t0
    return [r for r in results if r is not None], wall, results.count(None)


def sequential_asks(url: str, n: int) -> list[float]:
    """One user asking n questions one after another (the latency without contention)."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    client.predict(questions(1)[0], api_name="/ask")  # warm-up
    seconds = []
    for question in questions(n):
        t0 = time.perf_counter()
        client.predict(question, api_name="/ask")
        seconds.append(time.perf_counter() - t0)
    return seconds


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--starts", type=int, default=3, help="start-up repeats (best is kept)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of concurrent asks")
    parser.add_argument("--users", type=int, default=20, help="concurrent requests per round")
    parser.add_argument("--first-start", action="store_true", help="also time an index build")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    result: dict = {"users": args.users, "cpu_count": os.cpu_count()}
    if args.first_start:
        with tempfile.TemporaryDirectory() as tmp:
            proc, _, seconds = start_demo(["--index", str(Path(tmp) / "index")])
            stop(proc)
        result["first_start_s"] = round(seconds, 2)
    starts, latencies, walls, errors = [], [], [], 0
    for i in range(args.starts):
        proc, url, seconds = start_demo([])
        starts.append(seconds)
        try:
            if i == args.starts - 1:  # load the last server
                single = sequential_asks(url, args.users)
                concurrent_asks(url, args.users)  # warm-up round, not counted
                for _ in range(args.rounds):
                    ok, wall, failed = concurrent_asks(url, args.users)
                    latencies += ok
                    walls.append(wall)
                    errors += failed
        finally:
            stop(proc)
    result.update(
        startup_best_s=round(min(starts), 2),
        startup_all_s=[round(s, 2) for s in starts],
        ask_single_user_p50_ms=round(statistics.median(single) * 1000, 1),
        ask_requests=len(latencies) + errors,
        ask_errors=errors,
        ask_p50_ms=round(statistics.median(latencies) * 1000, 1),
        ask_p95_ms=round(percentile(latencies, 95) * 1000, 1),
        ask_round_wall_s=round(statistics.median(walls), 2),
    )
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print("| figure | value |\n|---|---|")
    for key, value in result.items():
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
