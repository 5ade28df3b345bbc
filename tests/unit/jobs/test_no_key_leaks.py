"""No key anywhere it should not be: a real label job against a server that repeats the
request's Authorization header (in its error body, or as its answer), with a key from each
source (typed for the session and handed over in memory, stored encrypted with the endpoint,
the server's own from the environment), leaves no trace of the key in any table of the
database (SQLite and PostgreSQL), in the log, in the job's message, in the connection test's
message or on the command line's stderr."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from distill_core.codebook import Codebook
from distill_core.config import Settings
from distill_core.jobs import kinds, queue, records
from distill_core.jobs.label import LabelRequest, start_label_job
from distill_core.llm import Endpoint
from distill_core.store import Job, Store
from distill_core.study import demo, endpoints, projects
from tests.fakes import local_user
from tests.llm_server import LoopbackLLM, ServerConfig

REPO = Path(__file__).resolve().parents[3]
SOURCES = ("typed", "stored", "environment")


@pytest.fixture(autouse=True)
def env(no_key_settings):
    no_key_settings.setenv("DISTILL_SECRET_KEY", f"secret-{uuid.uuid4().hex}")


def new_key(source: str) -> str:
    """A key no earlier test made known; half of them do not look like keys at all (only the
    registry of known secrets can mask those)."""
    return f"{source}-{uuid.uuid4().hex}" if source != "stored" else f"sk-{uuid.uuid4().hex}"


def dump(store: Store) -> str:
    """Every row of every table of the database, as text."""
    out = []
    with store.engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                out.append(f"{table}: {tuple(row)!r}")
    return "\n".join(out)


def traces(key: str) -> list[str]:
    """The key and long pieces of it (a key cut short is still a leak)."""
    return [key, key[:16], key[-16:]]


def assert_no_trace(key: str, where: str, what: str) -> None:
    found = [t for t in traces(key) if t in what]
    assert not found, f"the key leaked into {where}"


def setup_job(store: Store, source: str, key: str, base_url: str, monkeypatch):
    """A label job over 12 demo texts with the key from ``source``; returns (job id, the
    secret to hand over in memory, the check_endpoint arguments)."""
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = demo.ensure_demo_project(s, user).id
        corpus = projects.get_corpus(s, local_user(s), pid)
        version = projects.latest_codebook(s, local_user(s), pid)
        docs = projects.load_documents(s, local_user(s), pid, with_extra=False)
        endpoint = Endpoint(base_url=base_url, model="m")
        endpoint_id, secret, test = None, None, {"endpoint": endpoint}
        if source == "stored":
            endpoint_id = endpoints.save_endpoint(
                s, user, pid, name="Echo", endpoint=endpoint, api_key=key
            ).id
            test = {"endpoint_id": endpoint_id}
        elif source == "typed":
            secret = key
            test = {"endpoint": endpoint, "api_key": key}
        else:
            monkeypatch.setenv("OPENAI_API_KEY", key)
            monkeypatch.setenv("DISTILL_SERVER_KEY_URLS", base_url)
        request = LabelRequest(
            "openai", None if endpoint_id else endpoint, endpoint_id=endpoint_id, concurrency=4
        )
        job_id, _ = start_label_job(
            s,
            user,
            pid,
            corpus_id=corpus.id,
            codebook_version_id=version.id,
            codebook=Codebook.from_dict(version.content),
            doc_ids=list(docs["doc_id"][:12]),
            request=request,
        )
        test |= {"codebook": Codebook.from_dict(version.content), "text": docs["text"][0]}
    return pid, job_id, secret, test


@pytest.mark.parametrize("echo", ["error", "answer"])
@pytest.mark.parametrize("source", SOURCES)
def test_a_job_against_a_server_that_echoes_the_key_leaves_no_trace_of_it(
    store, source, echo, monkeypatch, caplog
) -> None:
    caplog.set_level(logging.DEBUG)  # the openai client, httpx and ours, at every level
    key = new_key(source)
    with LoopbackLLM(ServerConfig(api_key=key, echo_auth=echo)) as srv:
        pid, job_id, secret, test = setup_job(store, source, key, srv.base_url, monkeypatch)
        if secret:  # what the app does: the key goes to the worker's memory, not the queue
            queue.Keyring.put(job_id, secret)
        kinds.execute(store, job_id, queue.Keyring.take(job_id))
        with store.session() as s:
            result = endpoints.check_endpoint(s, local_user(s), pid, **test)
        sent = set(srv.auth_headers)
    assert sent == {f"Bearer {key}"}, "the key was not sent, so the test would prove nothing"
    with store.session() as s:
        job = s.get(Job, job_id)
        message, status = job.message, job.status
    rows = dump(store)
    if echo == "error":
        assert status == "failed" and "(400)" in message and "****" in message, message
        assert not result.ok and "****" in result.message
    else:
        assert status == "done" and "12 invalid" in message, message
        assert "****" in rows  # the echoed answer was stored, masked
        assert "****" in result.message
    for where, what in [
        ("the job's message", message),
        ("the database", rows),
        ("the log", caplog.text),
        ("the connection test", f"{result.message} {result.raw}"),
    ]:
        assert_no_trace(key, where, what)


def test_the_key_never_reaches_the_queue_or_any_file(tmp_path, monkeypatch) -> None:
    """Through a real SQLite huey queue: the queue file and the database file hold no key."""
    settings = Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'distill.db'}")
    store = Store(settings.database_url)
    store.migrate()
    huey = kinds.make_queues(settings).for_kind("label")
    key = new_key("typed")
    with LoopbackLLM(ServerConfig(api_key=key, echo_auth="error")) as srv:
        _, job_id, secret, _ = setup_job(store, "typed", key, srv.base_url, monkeypatch)
        queue.Keyring.put(job_id, secret)
        consumer = huey.create_consumer(
            workers=1, worker_type="thread", periodic=False, check_worker_health=False
        )
        consumer.start()
        try:
            queue.enqueue(huey, job_id)
            from tests.unit.jobs.test_queue import wait_for

            wait_for(lambda: records_done(store, job_id))
        finally:
            consumer.stop(graceful=True)
        assert set(srv.auth_headers) == {f"Bearer {key}"}
    store.dispose()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not [t for t in traces(key) if t.encode() in data], path


def records_done(store: Store, job_id: int) -> bool:
    with store.session() as s:
        return s.get(Job, job_id).status not in records.ACTIVE


@pytest.mark.parametrize("echo", ["error", "answer"])
def test_the_command_lines_stderr_is_masked(tmp_path, echo) -> None:
    key = new_key("environment")
    corpus = tmp_path / "in.csv"
    corpus.write_text("id,text\n" + "".join(f"{i},text {i}\n" for i in range(10)))
    with LoopbackLLM(ServerConfig(api_key=key, echo_auth=echo)) as srv:
        env = dict(os.environ, OPENAI_API_KEY=key, DISTILL_SERVER_KEY_URLS=srv.base_url)
        for name in ("DISTILL_AUTH", "DISTILL_ALLOWED_PRIVATE_URLS", "OPENAI_BASE_URL"):
            env.pop(name, None)
        out = subprocess.run(
            [sys.executable, "-m", "distill_core", "label", str(corpus), "--codebook"]
            + ["distill_core/study/demo_data/codebook.json", "--output", str(tmp_path / "o.csv")]
            + ["--base-url", srv.base_url, "--workdir", str(tmp_path / "w"), "--model", "m"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert set(srv.auth_headers) == {f"Bearer {key}"}
    assert out.returncode == (2 if echo == "error" else 0), out.stderr
    if echo == "error":
        assert "****" in out.stderr
    assert_no_trace(key, "stderr", out.stderr + out.stdout)
    assert_no_trace(
        key,
        "the work folder",
        "".join(
            p.read_bytes().decode("latin-1") for p in (tmp_path / "w").rglob("*") if p.is_file()
        ),
    )
