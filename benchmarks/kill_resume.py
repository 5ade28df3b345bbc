"""What a kill -9 of the worker costs a label job: how many texts are asked (and paid) again,
and how long the job takes to go on by itself.

For each concurrency, a label job of --n demo texts runs against the loopback
OpenAI-compatible server (tests/llm_server.py, --latency seconds an answer) through the
supervised local worker, as the app runs it (a typed key kept for the job encrypted with a
server secret). Once --kill-at of the texts are answered, the worker is SIGKILLed; the
supervisor starts a new one and the job is queued again. Printed per run: requests the server
answered, texts, asked again (requests − texts; the bound is the requests in flight at the
kill plus the answers of the one write under way), answers stored (must equal the texts), the
seconds from the kill until the new worker had the job again, and the job's end.

Usage: .venv/bin/python benchmarks/kill_resume.py [--n 200] [--concurrency 1,4,8]
       [--latency 0.2] [--kill-at 0.25]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import text  # noqa: E402

from distill_core.config import Settings  # noqa: E402
from distill_core.jobs import kinds, queue, records  # noqa: E402
from distill_core.llm import Endpoint  # noqa: E402
from distill_core.store import Store  # noqa: E402
from tests.llm_server import LoopbackLLM, ServerConfig  # noqa: E402
from tests.unit.jobs.test_queue import demo_job, job_of, wait_for  # noqa: E402

KEY = "benchmark-key-not-a-secret"


def one_run(n: int, concurrency: int, latency: float, kill_at: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp, LoopbackLLM(ServerConfig(api_key=KEY)) as server:
        server.config.latency = latency
        settings = Settings(home=Path(tmp) / "home", database_url=f"sqlite:///{tmp}/d.db")
        store = Store(settings.database_url)
        store.migrate()
        supervisor = queue.Supervisor(settings)
        supervisor.watch(every_s=0.5)
        try:
            huey = kinds.make_queues(settings)
            endpoint = Endpoint(base_url=server.base_url, model="m")
            job_id, _ = demo_job(store, endpoint, n=n, concurrency=concurrency)
            queue.submit(
                store, job_id, settings=settings, api_key=KEY, huey=huey, supervisor=supervisor
            )
            first_pid = int(supervisor.pidfile.read_text())
            wait_for(lambda: job_of(store, job_id).done >= int(kill_at * n), timeout=600)
            at_kill = job_of(store, job_id).done
            os.kill(first_pid, signal.SIGKILL)
            killed = time.monotonic()
            wait_for(
                lambda: (
                    job_of(store, job_id).done > at_kill
                    or job_of(store, job_id).status not in records.ACTIVE
                ),
                timeout=600,
            )
            back_s = time.monotonic() - killed
            job = wait_for(
                lambda: (j := job_of(store, job_id)).status not in records.ACTIVE and j,
                timeout=900,
            )
        finally:
            supervisor.stop()
        with store.session() as s:
            stored = s.scalar(text("select count(*) from llm_responses"))
        asked = server.stats()["requests"]
        return {
            "n": n,
            "concurrency": concurrency,
            "answered_at_kill": at_kill,
            "requests": asked,
            "asked_again": asked - n,
            "stored": stored,
            "back_s": round(back_s, 1),
            "status": job.status,
            "resumes": job.params.get("resumes"),
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--concurrency", default="1,4,8")
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--kill-at", type=float, default=0.25)
    a = ap.parse_args()
    os.environ.setdefault("DISTILL_SECRET_KEY", f"benchmark-{uuid.uuid4().hex}")
    print(
        "| concurrency | texts | answered at the kill | requests | asked again | answers stored "
        "| kill → job going on | end |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for c in [int(x) for x in a.concurrency.split(",")]:
        r = one_run(a.n, c, a.latency, a.kill_at)
        print(
            f"| {c} | {r['n']} | {r['answered_at_kill']} | {r['requests']} | {r['asked_again']} "
            f"| {r['stored']} | {r['back_s']} s | {r['status']} (resumed {r['resumes']}×) |",
            flush=True,
        )


if __name__ == "__main__":
    main()
