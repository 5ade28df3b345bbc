"""Queue messages are JSON, never pickles: a real task message survives the round trip, and a
pickle (or a forged message) pushed straight into Redis or the SQLite queue file is refused by
the consumer without running anything."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import pickle
import sqlite3
import uuid
from pathlib import Path

import pytest

from distill_core.config import Settings
from distill_core.jobs import queue, records
from distill_core.jobs.records import JobOutcome
from distill_core.store import Job, Store

REDIS_URL = os.environ.get("DISTILL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
SECRET = "test-server-secret-0123456789"


class CreatesAFile:
    """Unpickling this opens (so creates) ``path`` for writing: code run by ``pickle.loads``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def pickle_payload(path: Path) -> bytes:
    return pickle.dumps(CreatesAFile(path), protocol=pickle.HIGHEST_PROTOCOL)


@pytest.fixture
def ran() -> list[int]:
    return []


def spy_runners(ran: list[int]) -> queue.Runners:
    """One job kind, "spy", whose runner records which jobs it ran."""

    def run(store: Store, job_id: int, secret: str | None) -> JobOutcome:
        ran.append(job_id)
        return JobOutcome()

    return {"spy": run}


def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'distill.db'}")


def new_job(settings: Settings) -> int:
    store = Store(settings.database_url)
    store.migrate()
    with store.session() as s:
        return records.create_job(s, "spy").id


def job_status(settings: Settings, job_id: int) -> str:
    with Store(settings.database_url).session() as s:
        return s.get(Job, job_id).status


def one_consumer_iteration(huey) -> None:
    """What a huey worker thread does once: dequeue a message and execute its task."""
    consumer = huey.create_consumer(workers=1, worker_type="thread", periodic=False)
    consumer._create_worker().loop()


def redis_settings(tmp_path: Path) -> Settings:
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {type(exc).__name__}")
    return Settings(
        home=tmp_path / "home",
        database_url=f"sqlite:///{tmp_path / 'distill.db'}",
        redis_url=REDIS_URL,
    )


def push_raw(huey, data: bytes) -> None:
    """Put bytes into the queue storage itself, past the serializer: what an intruder can do."""
    storage = huey.storage
    if hasattr(storage, "queue_key"):  # Redis: the sorted set the consumer pops from
        storage.enqueue(data, 0)
    else:  # SQLite: the task table of the queue file
        with sqlite3.connect(storage.filename) as db:
            db.execute(
                "insert into task (queue, data, priority) values (?, ?, 0)", (storage.name, data)
            )


# ---------------------------------------------------------------- the round trip


def test_a_real_task_message_round_trips_as_json(tmp_path, ran) -> None:
    huey = queue.make_huey(spy_runners(ran), sqlite_settings(tmp_path))
    task = huey.distill_run_job.s(42)
    task.eta = dt.datetime(2030, 1, 2, 3, 4, 5, 678)
    task.expires = dt.timedelta(minutes=5)
    task.resolve_expires(huey.utc)
    data = huey.serialize_task(task)
    doc = json.loads(data)  # plain JSON, no pickle opcodes
    assert set(doc) == {"message"} and not data.startswith(b"\x80")
    back = huey.deserialize_task(data)
    assert type(back) is type(task)
    assert (back.id, back.args, back.kwargs) == (task.id, (42,), {})
    assert back.eta == task.eta and back.expires == task.expires
    assert back.expires_resolved == task.expires_resolved
    assert (back.retries, back.retry_delay, back.priority) == (0, 0, None)
    # What huey stores beside messages: revocations (datetime, bool) and locks.
    until = dt.datetime(2030, 1, 1)
    assert huey.serializer.deserialize(huey.serializer.serialize((until, False))) == (until, False)
    assert huey.serializer.deserialize(huey.serializer.serialize("1")) == "1"


def test_a_signed_message_round_trips_and_a_forged_one_is_refused(tmp_path, ran) -> None:
    signed = queue.make_huey(spy_runners(ran), sqlite_settings(tmp_path), secret_key=SECRET)
    task = signed.distill_run_job.s(7)
    data = signed.serialize_task(task)
    assert signed.deserialize_task(data).args == (7,)
    forged = data.replace(b"[7]", b"[8]")
    with pytest.raises(queue.MessageRefused, match="signature"):
        signed.deserialize_task(forged)
    unsigned = queue.make_huey(spy_runners(ran), sqlite_settings(tmp_path), name="plain")
    with pytest.raises(queue.MessageRefused, match="signature"):
        signed.deserialize_task(unsigned.serialize_task(unsigned.distill_run_job.s(7)))
    with pytest.raises(queue.MessageRefused):
        unsigned.deserialize_task(data)  # a signed message is not plain JSON


def test_the_secret_comes_from_the_environment(tmp_path, ran, monkeypatch) -> None:
    monkeypatch.setenv(queue.SECRET_ENV, SECRET)
    from_env = queue.make_huey(spy_runners(ran), sqlite_settings(tmp_path))
    given = queue.make_huey(spy_runners(ran), sqlite_settings(tmp_path), secret_key=SECRET)
    data = from_env.serialize_task(from_env.distill_run_job.s(3))
    assert given.deserialize_task(data).args == (3,)


@pytest.mark.parametrize(
    "message",
    [
        {"id": "x", "name": "anything.distill.run_job", "args": {"$tuple": ["1"]}},
        {"id": "x", "name": "anything.distill.run_job", "args": {"$tuple": [1, 2]}},
        {"id": "x", "name": "anything.distill.run_job", "args": {"$tuple": [True]}},
        {"id": "x", "name": "os.system", "args": {"$tuple": [1]}},
        {"id": "x", "name": "a.distill.run_job", "args": {"$tuple": [1]}, "on_error": "x"},
        {"id": "x", "name": "a.distill.run_job", "args": {"$tuple": [1]}, "ev": 1},
        {"id": "x", "name": "a.distill.run_job", "args": {"$pickle": "gASV"}},
    ],
)
def test_json_of_another_shape_is_refused(tmp_path, ran, message) -> None:
    huey = queue.make_huey(spy_runners(ran), sqlite_settings(tmp_path))
    with pytest.raises(queue.MessageRefused):
        huey.deserialize_task(json.dumps({"message": message}).encode())


def test_nothing_but_json_values_can_be_queued(tmp_path, ran) -> None:
    huey = queue.make_huey(spy_runners(ran), sqlite_settings(tmp_path))
    with pytest.raises(TypeError):
        huey.serializer.serialize(CreatesAFile(tmp_path / "never"))
    with pytest.raises(queue.MessageRefused):
        huey.serialize_task(huey.distill_run_job.s("not a job id"))
    assert not (tmp_path / "never").exists()


# ---------------------------------------------------------------- raw payloads in the storage


def _pickle_is_refused_by_the_consumer(huey, settings, tmp_path, caplog, ran) -> None:
    control = tmp_path / "control.txt"
    pickle.loads(pickle_payload(control)).close()  # the payload does run code when unpickled
    assert control.exists()

    marker = tmp_path / "pwned.txt"
    push_raw(huey, pickle_payload(marker))
    with pytest.raises(Exception) as refusal:  # noqa: B017 - the file is checked first
        huey.dequeue()
    assert not marker.exists(), "unpickling the message ran its code"
    assert refusal.type is queue.MessageRefused

    job_id = new_job(settings)
    push_raw(huey, pickle_payload(marker))  # a pickle, then a forged message for a real job
    push_raw(huey, json.dumps({"message": {"id": "f", "name": "x.distill.run_job"}}).encode())
    with caplog.at_level(logging.ERROR, logger="huey"):
        one_consumer_iteration(huey)  # logs and goes on: no crash, nothing executed
        one_consumer_iteration(huey)
    refused = [r for r in caplog.records if "Error reading from queue" in r.getMessage()]
    assert len(refused) == 2 and all(r.exc_info[0] is queue.MessageRefused for r in refused)
    assert not marker.exists() and ran == []
    assert job_status(settings, job_id) == "queued"
    assert huey.pending_count() == 0  # the refused messages are gone from the queue

    queue.enqueue(huey, job_id)  # the same worker still runs a real message
    one_consumer_iteration(huey)
    assert ran == [job_id] and job_status(settings, job_id) == "done"


def test_a_pickle_in_the_sqlite_queue_file_is_refused_without_running(tmp_path, caplog, ran):
    settings = sqlite_settings(tmp_path)
    huey = queue.make_huey(spy_runners(ran), settings)
    assert Path(huey.storage.filename) == settings.home / "jobs.db"
    _pickle_is_refused_by_the_consumer(huey, settings, tmp_path, caplog, ran)


def test_a_pickle_in_the_redis_list_is_refused_without_running(tmp_path, caplog, ran):
    settings = redis_settings(tmp_path)
    huey = queue.make_huey(spy_runners(ran), settings, name=f"distill-test-{uuid.uuid4().hex[:8]}")
    try:
        _pickle_is_refused_by_the_consumer(huey, settings, tmp_path, caplog, ran)
    finally:
        huey.storage.flush_all()
        assert not huey.storage.conn.exists(huey.storage.queue_key)
