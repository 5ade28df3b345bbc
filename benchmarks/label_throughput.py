"""Throughput of LLM labelling against the loopback server: achieved labels/s vs the ideal C/L.

Run from the repository root::

    .venv/bin/python benchmarks/label_throughput.py --n 2000 --latency 0.1 --concurrency 32

The server runs in a separate process (so it does not compete for this process's GIL) and
answers after ``--latency`` seconds; with ``C`` requests in flight the best possible rate is
``C / L`` labels per second. It also counts requests per distinct text, which must be 1.00.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from distill_core.codebook import Codebook, Label  # noqa: E402
from distill_core.llm import Endpoint, run_items  # noqa: E402
from distill_core.llm.openai_teacher import OpenAITeacher, aiohttp_usable  # noqa: E402

CODEBOOK = Codebook(
    name="Benchmark topics",
    instructions="Assign the one topic that best fits the text.",
    labels=(
        Label("health", "Health care, disease, hospitals."),
        Label("economy", "Taxes, jobs, trade, prices."),
        Label("defense", "The army, weapons, wars."),
        Label("other", "Anything else."),
    ),
)


def start_server(latency: float) -> tuple[subprocess.Popen, str]:
    """The loopback server in its own process; returns it and its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.llm_server", "--port", "0", "--latency", str(latency)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    if not url.startswith("http://127.0.0.1:"):
        proc.kill()
        raise SystemExit(f"The loopback server did not start (first line: {url!r}).")
    return proc, url


def server_stats(base_url: str) -> dict:
    origin = base_url.removesuffix("/v1")
    with urllib.request.urlopen(f"{origin}/stats", timeout=10) as resp:
        return json.loads(resp.read())


def label_stored(base_url: str, n: int, concurrency: int, transport: str, workdir: str):
    """The app's and CLI's path: labelling.label_texts, every answer stored in SQLite."""
    from distill_core.store import Store
    from distill_core.study import labelling

    store = Store(f"sqlite:///{workdir}/distill.db")
    store.migrate()
    teacher = OpenAITeacher(
        Endpoint(base_url=base_url, model="loopback", api_key="bench-key", timeout_s=30),
        concurrency=concurrency,
        transport=transport,
    )
    with store.session() as s:
        run_id = labelling.create_run(s, teacher=teacher, codebook=CODEBOOK, n_texts=n).id
    items = bench_items(n)
    started = time.perf_counter()
    outcome = labelling.label_texts(store, run_id, teacher, items, concurrency=concurrency)
    elapsed = time.perf_counter() - started
    return type(
        "Stats",
        (),
        {
            "ok": outcome.counts["ok"],
            "invalid": outcome.counts["invalid"],
            "errors": outcome.counts["error"],
            "elapsed": elapsed,
        },
    )


def bench_items(n: int) -> list[tuple[str, str]]:
    return [
        (str(i), f"Benchmark text number {i}: a bill about item {i * 7919 % 1000}.")
        for i in range(n)
    ]


async def label_all(base_url: str, n: int, concurrency: int, transport: str):
    teacher = OpenAITeacher(
        Endpoint(base_url=base_url, model="loopback", api_key="bench-key", timeout_s=30),
        concurrency=concurrency,
        transport=transport,
    )
    items = bench_items(n)
    received = 0

    def on_answer(key: str, repeat: int, answer) -> None:
        nonlocal received
        received += 1

    try:
        stats = await run_items(
            teacher, CODEBOOK, items, concurrency=concurrency, on_answer=on_answer
        )
    finally:
        await teacher.aclose()
    assert received == n
    return stats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--latency", type=float, default=0.1)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--transport", choices=["auto", "aiohttp", "httpx"], default="auto")
    p.add_argument("--profile", action="store_true", help="print a cProfile of the client side")
    p.add_argument(
        "--path",
        choices=["stored", "runner"],
        default="stored",
        help="stored: the app's path (labelling.label_texts, answers written to SQLite, then a "
        "rerun that must send nothing); runner: the concurrent client alone",
    )
    args = p.parse_args()
    import tempfile

    workdir = tempfile.mkdtemp(prefix="distill-bench-")

    proc, url = start_server(args.latency)
    try:
        t0 = time.perf_counter()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        if args.profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            prof.enable()
            stats = asyncio.run(label_all(url, args.n, args.concurrency, args.transport))
            prof.disable()
            pstats.Stats(prof).sort_stats("cumulative").print_stats(40)
        elif args.path == "stored":
            stats = label_stored(url, args.n, args.concurrency, args.transport, workdir)
        else:
            stats = asyncio.run(label_all(url, args.n, args.concurrency, args.transport))
        wall = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        server = server_stats(url)
        rerun_requests = None
        if args.path == "stored":
            label_stored(url, args.n, args.concurrency, args.transport, workdir)
            rerun_requests = server_stats(url)["requests"] - server["requests"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    client_cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    server_cpu = child.ru_utime + child.ru_stime

    run_time = getattr(stats, "elapsed", wall)
    achieved = args.n / run_time
    ideal = args.concurrency / args.latency if args.latency > 0 else float("inf")
    transport = args.transport
    if transport == "auto":
        transport = "aiohttp" if aiohttp_usable() else "httpx"
    print(f"path                  {args.path}")
    print(f"texts                 {args.n}")
    print(f"client HTTP transport {transport}")
    print(f"latency / concurrency {args.latency * 1000:.0f} ms / {args.concurrency}")
    print(f"answers ok/invalid/error {stats.ok}/{stats.invalid}/{stats.errors}")
    print(f"wall time             {wall:.2f} s (the run itself: {run_time:.2f} s)")
    print(f"achieved              {achieved:.1f} labels/s")
    print(f"ideal C/L             {ideal:.1f} labels/s")
    print(f"ratio                 {achieved / ideal:.3f}")
    print(
        f"requests per text     {server['requests_per_text']:.2f} "
        f"({server['requests']} requests, {server['distinct_texts']} distinct texts)"
    )
    print(f"server max in flight  {server['max_in_flight']}")
    if rerun_requests is not None:
        print(f"rerun of the same run {rerun_requests} requests sent")
    print(
        f"CPU per request       client {client_cpu / args.n * 1000:.2f} ms, "
        f"server {server_cpu / args.n * 1000:.2f} ms (this machine: {os.cpu_count()} cores)"
    )


if __name__ == "__main__":
    main()
