"""Jobs through a real huey queue (SQLite file, and Redis at 127.0.0.1:6379), the supervised
local worker process, API keys handed over in memory only, cancel, and a killed worker."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import text

from distill_core.codebook import Codebook
from distill_core.config import Settings
from distill_core.jobs import kinds, queue, records
from distill_core.jobs.label import LabelRequest, start_label_job
from distill_core.llm import Endpoint
from distill_core.store import Job, Store
from distill_core.study import demo, projects
from tests.fakes import local_user
from tests.llm_server import LoopbackLLM, ServerConfig

KEY = "sk-job-SECRET-7777-never-stored"
REDIS_URL = os.environ.get("DISTILL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def wait_for(predicate, timeout: float = 60.0, every: float = 0.1):
    """Poll ``predicate`` until it returns something truthy, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")


def job_of(store: Store, job_id: int) -> Job:
    with store.session() as s:
        return s.get(Job, job_id)


def demo_job(
    store: Store, endpoint: Endpoint | None, provider: str = "openai", n: int | None = 40, **kw
):
    """A label job over the demo project's first ``n`` documents."""
    with store.session() as s:
        user = projects.ensure_user(s)
        p = demo.ensure_demo_project(s, user)
        corpus = projects.get_corpus(s, local_user(s), p.id)
        version = projects.latest_codebook(s, local_user(s), p.id)
        docs = projects.load_documents(s, local_user(s), corpus.project_id, with_extra=False)
        doc_ids = list(docs["doc_id"][:n]) if n else None
        return start_label_job(
            s,
            local_user(s),
            project_id=p.id,
            corpus_id=corpus.id,
            codebook_version_id=version.id,
            codebook=Codebook.from_dict(version.content),
            doc_ids=doc_ids,
            request=LabelRequest(provider=provider, endpoint=endpoint, **kw),
        )


@pytest.fixture
def server():
    with LoopbackLLM(ServerConfig(api_key=KEY, keywords={"tax": "economy"})) as srv:
        yield srv


def run_consumer(huey, workers: int = 2):
    consumer = huey.create_consumer(
        workers=workers, worker_type="thread", periodic=False, check_worker_health=False
    )
    consumer.start()
    return consumer


def test_a_job_runs_through_a_sqlite_huey_queue(tmp_path, server) -> None:
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'distill.db'}")
    store = Store(settings.database_url)
    store.migrate()
    huey = kinds.make_queues(settings).for_kind("label")
    endpoint = Endpoint(base_url=server.base_url, model="m")
    job_id, run_id = demo_job(store, endpoint)
    queue.Keyring.put(job_id, KEY)  # what the key socket does in the worker process
    consumer = run_consumer(huey)
    try:
        queue.enqueue(huey, job_id)
        job = wait_for(lambda: (j := job_of(store, job_id)).status not in records.ACTIVE and j)
    finally:
        consumer.stop(graceful=True)
    assert job.status == "done", job.message
    assert job.done == job.total == 40 and job.errors == 0
    assert "40 labelled" in job.message
    assert job.prompt_tokens > 0 and job.result["run_id"] == run_id
    assert server.stats()["requests"] == 40


def test_a_job_runs_through_a_redis_huey_queue(tmp_path, server) -> None:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {type(exc).__name__}")
    settings = Settings(
        home=tmp_path, database_url=f"sqlite:///{tmp_path / 'distill.db'}", redis_url=REDIS_URL
    )
    store = Store(settings.database_url)
    store.migrate()
    huey = kinds.make_queues(settings, f"distill-test-{uuid.uuid4().hex[:8]}").for_kind("label")
    job_id, _ = demo_job(store, Endpoint(base_url=server.base_url, model="m"), n=10)
    queue.Keyring.put(job_id, KEY)
    consumer = run_consumer(huey)
    try:
        queue.enqueue(huey, job_id)
        job = wait_for(lambda: (j := job_of(store, job_id)).status not in records.ACTIVE and j)
    finally:
        consumer.stop(graceful=True)
        huey.storage.flush_all()
    assert job.status == "done" and job.done == 10


def test_cancel_stops_a_running_job_and_keeps_its_answers(tmp_path, server) -> None:
    server.config.latency = 0.05
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'distill.db'}")
    store = Store(settings.database_url)
    store.migrate()
    huey = kinds.make_queues(settings).for_kind("label")
    job_id, run_id = demo_job(
        store, Endpoint(base_url=server.base_url, model="m"), n=None, concurrency=2
    )
    queue.Keyring.put(job_id, KEY)
    consumer = run_consumer(huey)
    try:
        queue.enqueue(huey, job_id)
        wait_for(lambda: job_of(store, job_id).done >= 4)
        with store.session() as s:
            records.request_cancel(s, local_user(s), s.get(Job, job_id).project_id, job_id)
        job = wait_for(lambda: (j := job_of(store, job_id)).status not in records.ACTIVE and j)
    finally:
        consumer.stop(graceful=True)
    assert job.status == "cancelled"
    asked = server.stats()["requests"]
    assert 4 <= asked < 300
    with store.session() as s:
        stored = s.scalar(text("select count(*) from llm_responses"))
    assert stored == asked


def test_a_queued_job_cancelled_before_it_starts_never_runs(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'distill.db'}")
    store.migrate()
    job_id, _ = demo_job(store, None, provider="local", n=5)
    with store.session() as s:
        records.request_cancel(s, local_user(s), s.get(Job, job_id).project_id, job_id)
    kinds.execute(store, job_id)
    assert job_of(store, job_id).status == "cancelled"


def test_stale_running_jobs_are_marked_failed_with_a_sentence(tmp_path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'distill.db'}")
    store.migrate()
    with store.session() as s:
        job = records.create_job(s, "label")
        job.status = "running"
        job_id = job.id
    with store.session() as s:
        assert records.mark_stale(s, after_s=3600) == 0
        assert records.mark_stale(s, after_s=0) == 1
    job = job_of(store, job_id)
    assert job.status == "failed" and "worker stopped" in job.message


@pytest.mark.slow
def test_the_supervised_worker_gets_the_key_in_memory_and_survives_a_kill(tmp_path, server) -> None:
    """The app's local worker: started on demand, key over the socket, killed mid-run, resumed."""
    server.config.latency = 0.05
    home = tmp_path / "home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'distill.db'}")
    store = Store(settings.database_url)
    store.migrate()
    supervisor = queue.Supervisor(settings)
    assert supervisor.ensure(wait_s=60)
    first_pid = int(supervisor.pidfile.read_text())
    huey = kinds.make_queues(settings)
    endpoint = Endpoint(base_url=server.base_url, model="m")
    job_id, run_id = demo_job(store, endpoint, n=200, concurrency=2)
    queue.submit(store, job_id, settings=settings, api_key=KEY, huey=huey)
    wait_for(lambda: job_of(store, job_id).done >= 10)
    os.kill(first_pid, signal.SIGKILL)  # the worker dies mid-run
    wait_for(lambda: not supervisor.alive())
    assert supervisor.ensure(wait_s=60)  # the app restarts it; the job is queued again, but
    job = wait_for(lambda: (j := job_of(store, job_id)).status == "failed" and j)
    assert job.message == records.KEY_LOST  # no server secret: its typed key died with it
    asked_before = server.stats()["requests"]
    # Resuming: a new job for the same documents asks only for what is missing.
    job2, _ = demo_job(store, endpoint, n=200, concurrency=4)
    queue.submit(store, job2, settings=settings, api_key=KEY, huey=huey)
    done = wait_for(
        lambda: (j := job_of(store, job2)).status not in records.ACTIVE and j, timeout=120
    )
    supervisor.stop()
    assert done.status == "done", done.message
    stats = server.stats()
    assert stats["requests"] <= 200 + 4  # at most what was in flight at the kill is asked again
    assert stats["requests"] > asked_before
    # The key never reached a file: database, queue, worker log.
    for path in Path(home).rglob("*"):
        if path.is_file() and not path.name.endswith(".sock"):
            assert KEY.encode() not in path.read_bytes(), path
