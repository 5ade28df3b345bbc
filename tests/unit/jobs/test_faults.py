"""Jobs never hang in a state nobody can leave, and keys survive a worker restart without being
written in clear (fault injection: a queue that refuses the submit, a worker that does not start,
an endpoint slower than the stale limit, a dropped database write, kill -9 of the supervised
worker mid-run, with and without the server secret; worker.log's rotation and query strings)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy
from sqlalchemy import text

from distill_core.config import Settings
from distill_core.jobs import kinds, queue, records, worker
from distill_core.llm import Endpoint
from distill_core.store import Job, Store
from tests.llm_server import LoopbackLLM, ServerConfig
from tests.unit.jobs.test_queue import REDIS_URL, demo_job, job_of, run_consumer, wait_for

pytestmark = pytest.mark.faults

KEY = "typed-key-7777-must-never-be-in-a-file"


@pytest.fixture
def server():
    with LoopbackLLM(ServerConfig(api_key=KEY, keywords={"tax": "economy"})) as srv:
        yield srv


@pytest.fixture
def local(tmp_path):
    settings = Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'd.db'}")
    store = Store(settings.database_url)
    store.migrate()
    return settings, store


def assert_no_clear_key(home: Path, key: str = KEY) -> None:
    for path in home.rglob("*"):
        if path.is_file() and not path.name.endswith(".sock"):
            assert key.encode() not in path.read_bytes(), path


# ---------------------------------------------------------------- a submit that fails


def test_a_queue_that_refuses_the_submit_fails_the_job_with_the_reason(local):
    settings, store = local
    dead = Settings(
        home=settings.home, database_url=settings.database_url, redis_url="redis://127.0.0.1:1/0"
    )  # nothing listens there
    huey = kinds.make_queues(dead)
    job_id, _ = demo_job(store, None, provider="local", n=3)
    with pytest.raises(queue.SubmitFailed) as info:
        queue.submit(store, job_id, settings=dead, huey=huey)
    said = str(info.value)
    assert said.startswith("The job could not be queued (") and said.endswith("start it again.")
    job = job_of(store, job_id)
    assert job.status == "failed" and job.message == said and job.finished_at is not None


class _NoWorker(queue.Supervisor):
    def ensure(self, wait_s: float = 20.0) -> bool:  # a worker that never comes up
        return False


def test_a_worker_that_does_not_start_fails_the_job_and_keeps_no_key(local, monkeypatch):
    settings, store = local
    monkeypatch.setenv("DISTILL_SECRET_KEY", f"s-{uuid.uuid4().hex}")
    job_id, _ = demo_job(store, None, provider="local", n=3)
    with pytest.raises(queue.SubmitFailed, match="did not start; see .*worker.log and worker.out"):
        queue.submit(
            store,
            job_id,
            settings=settings,
            api_key=KEY,
            huey=kinds.make_queues(settings),
            supervisor=_NoWorker(settings),
        )
    assert job_of(store, job_id).status == "failed"
    assert not (settings.home / "job_keys" / f"{job_id}.key").exists()


def test_a_typed_key_without_a_server_secret_cannot_reach_shared_workers(local, monkeypatch):
    settings, store = local
    monkeypatch.delenv("DISTILL_SECRET_KEY", raising=False)
    shared = Settings(home=settings.home, database_url=settings.database_url, redis_url=REDIS_URL)
    job_id, _ = demo_job(store, None, provider="local", n=3)
    with pytest.raises(queue.SubmitFailed, match="DISTILL_SECRET_KEY"):
        queue.submit(store, job_id, settings=shared, api_key=KEY, huey=kinds.make_queues(shared))
    assert job_of(store, job_id).status == "failed"


def test_a_typed_key_reaches_a_redis_worker_encrypted(local, server, monkeypatch):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {type(exc).__name__}")
    settings, store = local
    monkeypatch.setenv("DISTILL_SECRET_KEY", f"s-{uuid.uuid4().hex}")
    shared = Settings(home=settings.home, database_url=settings.database_url, redis_url=REDIS_URL)
    huey = kinds.make_queues(shared, f"distill-test-{uuid.uuid4().hex[:8]}").for_kind("label")
    job_id, _ = demo_job(store, Endpoint(base_url=server.base_url, model="m"), n=5)
    queue.submit(store, job_id, settings=shared, api_key=KEY, huey=huey)
    kept = settings.home / "job_keys" / f"{job_id}.key"
    assert kept.exists() and oct(kept.stat().st_mode & 0o777) == "0o600"
    assert_no_clear_key(settings.home)
    consumer = run_consumer(huey)
    try:
        job = wait_for(lambda: (j := job_of(store, job_id)).status not in records.ACTIVE and j)
    finally:
        consumer.stop(graceful=True)
        huey.storage.flush_all()
    assert job.status == "done", job.message  # the server refuses any other key: 401
    assert job.params[records.KEY_TYPED] is True and KEY not in str(job.params)
    assert not kept.exists()  # forgotten when the job ended


@pytest.mark.slow
def test_a_server_key_from_secrets_toml_reaches_the_worker(local, monkeypatch):
    """The app reads secrets.toml (``ui.context.secret``); the supervisor hands what it finds to
    the worker's environment, where the URL policy decides where the server key may go."""
    settings, store = local
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server_key = f"sk-from-secrets-toml-{uuid.uuid4().hex}"
    supervisor = queue.Supervisor(settings, secrets=lambda: {"OPENAI_API_KEY": server_key})
    try:
        assert supervisor.ensure(wait_s=60)
        pid = int(supervisor.pidfile.read_text())
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    finally:
        supervisor.stop()
    assert f"OPENAI_API_KEY={server_key}".encode() in environ
    assert_no_clear_key(settings.home, server_key)


def test_kept_keys_of_ended_jobs_are_removed(local, monkeypatch):
    settings, store = local
    monkeypatch.setenv("DISTILL_SECRET_KEY", f"s-{uuid.uuid4().hex}")
    with store.session() as s:
        ended = records.create_job(s, "label")
        ended.status = "cancelled"
        waiting = records.create_job(s, "label")
        ids = ended.id, waiting.id
    for job_id in ids:
        assert queue.keep_key(settings, job_id, KEY)
    assert queue.kept_key(settings, ids[1]) == KEY
    assert queue.forget_ended_keys(settings, store) == 1
    assert queue.kept_key(settings, ids[0]) is None and queue.kept_key(settings, ids[1]) == KEY
    assert_no_clear_key(settings.home)


# ---------------------------------------------------------------- the heartbeat


def test_a_slow_endpoint_keeps_beating_and_is_never_stale(local, server, monkeypatch):
    """Answers slower than the stale limit: the worker's timer beats anyway."""
    settings, store = local
    monkeypatch.setattr(queue, "HEARTBEAT_S", 0.2)
    server.config.latency = 2.5  # each answer takes longer than the stale limit below
    huey = kinds.make_queues(settings).for_kind("label")
    job_id, _ = demo_job(store, Endpoint(base_url=server.base_url, model="m"), n=2, concurrency=1)
    queue.Keyring.put(job_id, KEY)
    consumer = run_consumer(huey)
    beats = set()
    try:
        queue.enqueue(huey, job_id)
        wait_for(lambda: job_of(store, job_id).status == "running")
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            job = job_of(store, job_id)
            beats.add(job.heartbeat_at)
            with store.session() as s:
                assert records.mark_stale(s, after_s=1.0) == 0  # alive: beat within 1 s
            time.sleep(0.25)
        assert job_of(store, job_id).done == 0  # no answer yet, and beating all the same
        job = wait_for(lambda: (j := job_of(store, job_id)).status not in records.ACTIVE and j)
    finally:
        consumer.stop(graceful=True)
    assert len(beats) >= 4
    assert job.status == "done", job.message


def test_a_heartbeat_survives_a_failed_write(local, monkeypatch, caplog):
    """A beat whose database write fails (a dropped connection) is logged and tried again."""
    settings, store = local
    with store.session() as s:
        job = records.create_job(s, "label")
        job.status = "running"
        job_id = job.id
    calls = []

    def flaky(store_, job_id_):
        calls.append(time.monotonic())
        if len(calls) == 2:
            raise ConnectionError("server closed the connection unexpectedly")
        real_beat(store_, job_id_)

    real_beat = records.beat
    monkeypatch.setattr(queue, "beat", flaky)
    with (
        caplog.at_level(logging.WARNING, logger="distill.jobs"),
        queue.Heartbeat(store, job_id, every_s=0.05),
    ):
        wait_for(lambda: len(calls) >= 4, timeout=10)
    assert any("Heartbeat of job" in r.getMessage() for r in caplog.records)
    assert job_of(store, job_id).heartbeat_at is not None


def test_stale_means_no_beat_and_only_for_running_jobs(local):
    settings, store = local
    with store.session() as s:
        running = records.create_job(s, "label")
        running.status = "running"
        queued = records.create_job(s, "label")
        ids = running.id, queued.id
    with store.session() as s:
        assert records.mark_stale(s, after_s=0) == 1
    assert job_of(store, ids[0]).status == "failed"
    assert job_of(store, ids[1]).status == "queued"


def test_resuming_gives_up_after_max_resumes(local):
    settings, store = local
    with store.session() as s:
        job = records.create_job(s, "label", params={"resumes": records.MAX_RESUMES})
        job.status = "running"
        again = records.create_job(s, "label")
        again.status = "running"
        ids = job.id, again.id
    with store.session() as s:
        assert records.resume_interrupted(s) == [ids[1]]
    first, second = job_of(store, ids[0]), job_of(store, ids[1])
    assert first.status == "failed" and "3 times" in first.message
    assert second.status == "queued" and second.params["resumes"] == 1


def test_a_queued_job_whose_typed_key_is_gone_says_so(local):
    settings, store = local
    job_id, _ = demo_job(store, None, provider="local", n=2)
    with store.session() as s:
        job = s.get(Job, job_id)
        job.params = {**job.params, records.KEY_TYPED: True}
    kinds.execute(store, job_id, None)  # the worker that held the key died before it ran
    job = job_of(store, job_id)
    assert job.status == "failed" and job.message == records.KEY_LOST


@pytest.mark.postgres
def test_postgres_connections_dropped_mid_run_lose_nothing_and_pay_nothing_twice(server):
    """Every connection of the job's store is terminated again and again (pg_terminate_backend,
    as a database restart or a network cut does) while it labels: the writes are tried again
    on fresh connections; the job finishes, every answer stored once and asked once."""
    from tests.conftest import POSTGRES_URL, make_postgres_store, postgres_unavailable

    if reason := postgres_unavailable():
        pytest.skip(reason)
    base, drop = make_postgres_store()
    app = f"distill_fault_{uuid.uuid4().hex[:8]}"  # only this test's connections are cut
    store = Store(f"{POSTGRES_URL}?application_name={app}", schema=base.schema)
    admin = sqlalchemy.create_engine(POSTGRES_URL)
    server.config.latency = 0.05
    try:
        job_id, _ = demo_job(
            store, Endpoint(base_url=server.base_url, model="m"), n=100, concurrency=2
        )
        thread = threading.Thread(target=kinds.execute, args=(store, job_id, KEY), daemon=True)
        thread.start()
        wait_for(lambda: job_of(store, job_id).done >= 20)
        cut = 0
        for _ in range(40):
            with admin.begin() as conn:
                cut += conn.execute(
                    text(
                        "select count(pg_terminate_backend(pid)) from pg_stat_activity "
                        "where application_name = :app"
                    ),
                    {"app": app},
                ).scalar()
            time.sleep(0.02)
        thread.join(120)
        job = job_of(store, job_id)
        with store.session() as s:
            stored = s.scalar(text("select count(*) from llm_responses"))
    finally:
        admin.dispose()
        store.dispose()
        drop()
    assert cut >= 3
    assert job.status == "done", job.message
    assert stored == 100 and server.stats()["requests"] == 100


def test_a_database_error_never_shows_its_sql(local):
    settings, store = local
    with store.session() as s:
        job_id = records.create_job(s, "boom").id

    def boom(store_, job_id_, secret):
        raise sqlalchemy.exc.OperationalError(
            "INSERT INTO llm_responses (raw) VALUES ('a private text')", {}, Exception("gone")
        )

    queue.execute(store, job_id, None, {"boom": boom})
    job = job_of(store, job_id)
    assert job.status == "failed" and job.message.startswith("The database connection was lost")
    assert "INSERT" not in job.message and "private" not in job.message


def test_retry_lost_tries_a_lost_connection_again_and_nothing_else():
    from distill_core.store.db import retry_lost

    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise sqlalchemy.exc.OperationalError("select 1", {}, Exception("closed"))
        return "ok"

    assert retry_lost(flaky, pause_s=0.01) == "ok" and len(calls) == 3
    with pytest.raises(ValueError):
        retry_lost(lambda: (calls.append(1), int("x")), pause_s=0.01)
    assert len(calls) == 4  # a ValueError is not tried again


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_server(port: int) -> subprocess.Popen:
    """A Redis of this test's own (no persistence, like a default container) on ``port``."""
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    import redis

    wait_for(lambda: _pings(redis, port), timeout=10)
    return proc


def _pings(redis, port: int) -> bool:
    try:
        return redis.Redis(port=port, socket_connect_timeout=0.2).ping()
    except Exception:
        return False


def test_a_redis_restart_mid_job_loses_no_job(local, server):
    """Redis restarted (without persistence) while one job runs and another waits: the running
    job finishes; the waiting one, whose message Redis forgot, is found and queued again."""
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    settings, store = local
    port = _free_port()
    redis_proc = _redis_server(port)
    shared = Settings(
        home=settings.home,
        database_url=settings.database_url,
        redis_url=f"redis://127.0.0.1:{port}/0",
    )
    huey = kinds.make_queues(shared).for_kind("label")
    server.config.latency = 0.05
    endpoint = Endpoint(base_url=server.base_url, model="m")
    running, _ = demo_job(store, endpoint, n=60, concurrency=2)
    waiting, _ = demo_job(store, endpoint, n=10, concurrency=2)
    for job_id in (running, waiting):
        queue.Keyring.put(job_id, KEY)
    consumer = run_consumer(huey, workers=1)  # one at a time: the second job waits
    try:
        queue.enqueue(huey, running)
        queue.enqueue(huey, waiting)
        wait_for(lambda: job_of(store, running).done >= 10)
        redis_proc.kill()
        redis_proc.wait()
        redis_proc = _redis_server(port)
        assert queue.requeue_lost(store, huey, after_s=3600) == []  # not waiting long enough
        assert queue.requeue_lost(store, huey, after_s=0) == [waiting]
        jobs = wait_for(
            lambda: (
                all(
                    (js := [job_of(store, i) for i in (running, waiting)])[k].status
                    not in records.ACTIVE
                    for k in (0, 1)
                )
                and js
            ),
            timeout=120,
        )
    finally:
        consumer.stop(graceful=False)
        redis_proc.kill()
        redis_proc.wait()
    assert [j.status for j in jobs] == ["done", "done"], [j.message for j in jobs]
    assert jobs[1].done == 10
    assert server.stats()["requests"] == 60  # each text asked once (the 10 are among the 60)


def test_a_job_queued_twice_runs_once(local):
    settings, store = local
    job_id, _ = demo_job(store, None, provider="local", n=3)
    with store.session() as s:
        s.get(Job, job_id).status = "running"  # another worker has claimed it
    kinds.execute(store, job_id, None)
    assert job_of(store, job_id).status == "running" and job_of(store, job_id).done == 0


# ---------------------------------------------------------------- the worker's log


def test_worker_log_rotates_and_carries_no_query_strings(tmp_path, monkeypatch):
    monkeypatch.setattr(worker, "LOG_MAX_BYTES", 2_000)
    path = tmp_path / "worker.log"
    handler = worker.configure_logging(path)
    try:
        log = logging.getLogger("distill.test")
        log.info("POST https://llm.example/v1/chat?api-key=abc123secret&x=1 took 2 s")
        try:
            raise RuntimeError("GET http://h/v1/models?token=zzz9 failed")
        except RuntimeError:
            log.exception("request failed")
        for client in ("httpx", "httpx2"):  # the openai client's (httpx2 in openai 3.x)
            logging.getLogger(client).info("HTTP Request: POST https://llm.example/v1/x?k=1")
        for i in range(100):
            log.info("line %d of filler text to make the log rotate", i)
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()
    written = "".join(p.read_text() for p in tmp_path.glob("worker.log*"))
    assert (tmp_path / "worker.log.1").exists()
    assert len(list(tmp_path.glob("worker.log*"))) <= 1 + worker.LOG_BACKUPS
    assert all(p.stat().st_size <= 2_500 for p in tmp_path.glob("worker.log*"))
    for secret in ("abc123secret", "zzz9", "?k=1", "HTTP Request"):
        assert secret not in written


# ---------------------------------------------------------------- kill -9 of the worker


def _supervised(settings: Settings, store: Store, server, n: int):
    supervisor = queue.Supervisor(settings)
    supervisor.watch(every_s=0.5)
    huey = kinds.make_queues(settings)
    endpoint = Endpoint(base_url=server.base_url, model="m")
    job_id, _ = demo_job(store, endpoint, n=n, concurrency=2)
    queue.submit(store, job_id, settings=settings, api_key=KEY, huey=huey, supervisor=supervisor)
    return supervisor, job_id


def _kill_mid_run(supervisor: queue.Supervisor, store: Store, job_id: int):
    """SIGKILL the worker once the job has 10 answers; the supervisor's watch brings a worker
    back. Returns the ended job and the pids of the killed and the new worker."""
    try:
        first_pid = int(supervisor.pidfile.read_text())
        wait_for(lambda: job_of(store, job_id).done >= 10, timeout=120)
        os.kill(first_pid, signal.SIGKILL)
        job = wait_for(
            lambda: (j := job_of(store, job_id)).status not in records.ACTIVE and j, timeout=180
        )
        new_pid = int(supervisor.pidfile.read_text())
    finally:
        supervisor.stop()
    return job, first_pid, new_pid


@pytest.mark.slow
def test_kill_9_mid_run_resumes_by_itself_with_the_kept_key(local, server, monkeypatch):
    settings, store = local
    monkeypatch.setenv("DISTILL_SECRET_KEY", f"s-{uuid.uuid4().hex}")
    server.config.latency = 0.2
    n = 60
    supervisor, job_id = _supervised(settings, store, server, n)
    job, first_pid, new_pid = _kill_mid_run(supervisor, store, job_id)
    assert new_pid != first_pid
    assert job.status == "done", job.message
    assert job.params["resumes"] == 1
    assert "HTTP Request" not in (settings.home / "worker.log").read_text()
    asked = server.stats()["requests"]
    # Asked again: at most the 2 requests in flight at the kill and the answers of the one
    # commit under way (the answer writer commits every 50 ms: llm.cache.CacheWriter).
    assert n <= asked <= n + 2 * 2, asked
    with store.session() as s:
        assert s.scalar(text("select count(*) from llm_responses")) == n
    assert_no_clear_key(settings.home)


@pytest.mark.slow
def test_kill_9_without_a_server_secret_says_the_key_must_be_typed_again(
    local, server, monkeypatch
):
    settings, store = local
    monkeypatch.delenv("DISTILL_SECRET_KEY", raising=False)
    server.config.latency = 0.05
    supervisor, job_id = _supervised(settings, store, server, 120)
    job, _, _ = _kill_mid_run(supervisor, store, job_id)
    assert job.status == "failed" and job.message == records.KEY_LOST
    assert_no_clear_key(settings.home)
