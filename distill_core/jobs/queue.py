"""Background jobs: a huey queue, job records in the store, and a worker the app supervises.

* ``SqliteHuey`` in ``DISTILL_HOME`` by default, with one worker process that the app starts
  (``python -m distill_core.jobs.worker``), watches, and starts again when it dies; the new
  worker queues the job it was running again (``records.resume_interrupted``);
* ``RedisHuey`` when ``DISTILL_REDIS_URL`` is set: a lab runs ``huey_consumer
  distill_core.jobs.worker.cpu_huey`` on its CPU machines and ``…worker.gpu_huey -w 1`` once
  per GPU, and the app starts none.

Jobs wait on two queues (:class:`JobQueues`, the kind table ``jobs.kinds`` names each kind's):
labelling and corpus passes on the CPU queue, trainings on the GPU queue, so a labelling job
never waits behind a training; the local worker consumes both.

Jobs share a queue's workers fairly (:func:`enqueue`): each message carries a huey priority
from a start-time fair queueing tag per user, so a user with no job waiting or running goes
ahead of one who has, and a label job works in turns (``records.Turn``): after
``records.SLICE_S`` seconds, if a job waits that goes before it, it hands the worker back
(``records.TurnOver``: its answers are stored, it waits "queued" again with its key kept) and
continues at its next turn.

Progress, counts, cost, messages, the cancel flag and the worker's heartbeat (a timer thread
while a job runs, :class:`Heartbeat`) live in the ``jobs`` table, so a page reload or an app
restart loses nothing; a submit that fails marks its job failed (:func:`submit`). API keys
never enter the queue or the store in clear: the app hands a typed key to the local worker in
memory over a Unix socket in ``DISTILL_HOME`` (mode 0600) and, with the server secret set,
keeps it for the job encrypted under that secret (:func:`keep_key`) so that a restarted or a
remote worker has it too; remote workers decrypt a project's saved endpoint key when the job
runs.

Queue messages are JSON, never pickles (:class:`JsonSerializer`): a message pushed into Redis or
the SQLite queue file by someone else is refused unless it is exactly "run job <int>", and, with
``DISTILL_SECRET_KEY`` set, unless it carries that secret's HMAC.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huey.registry import Message
from huey.serializer import Serializer
from huey.utils import Error
from sqlalchemy import select, update

from distill_core.clock import utcnow
from distill_core.config import Settings
from distill_core.jobs.records import (
    ACTIVE,
    HEARTBEAT_S,
    KEY_LOST,
    KEY_TYPED,
    SLICE_S,
    JobCancelled,
    JobOutcome,
    Turn,
    TurnOver,
    beat,
    fail_job,
    merge_params,
    taking_turn,
)
from distill_core.keys import mask, mask_all, register
from distill_core.store import Job, Store
from distill_core.store.db import connection_lost, retry_lost

log = logging.getLogger("distill.jobs")

#: A job kind's runner: ``fn(store, job_id, secret) -> JobOutcome``; the table is ``jobs.kinds``.
Runner = Callable[[Store, int, str | None], JobOutcome]
Runners = Mapping[str, Runner]


# ---------------------------------------------------------------- running a job


#: What a job says when it is cancelled after it ran (a turn or more).
CANCELLED_KEPT = "Cancelled; what was done before is kept."
#: A job's params: the seconds it ran in its earlier turns (so that ``finished_at -
#: started_at`` is the time it ran, not the time it waited its turn).
RAN_S = "ran_s"


def execute(
    store: Store,
    job_id: int,
    secret: str | None,
    runners: Runners,
    turn: Turn | None = None,
) -> bool:
    """Run one job in this process with the runner of its kind (from ``runners``): status,
    timing, result and a one-sentence error. While it runs, a timer thread beats for it
    (:class:`Heartbeat`), whatever the runner is waiting for. A job whose key was typed for it
    but is gone (held only by a worker that died, with no server secret to keep it) fails with
    :data:`KEY_LOST` instead of running without its key.

    The runner runs within ``turn`` (``records.current_turn``); one that ends its turn
    (``records.TurnOver``) goes back to "queued" with its message, its progress as it stands
    and the seconds it ran so far; True is returned then: queue it again (:func:`enqueue`)."""
    with store.session() as s:
        job = s.get(Job, job_id)
        if job is None or job.status != "queued" or job.cancel_requested:
            # ended, cancelled, or running already (a message queued twice runs it once)
            if job is not None and job.status == "queued":
                job.status, job.finished_at = "cancelled", utcnow()
                job.message = CANCELLED_KEPT if job.started_at else "Cancelled before it started."
            return False
        if (job.params or {}).get(KEY_TYPED) and not secret:
            job.status, job.message, job.finished_at = "failed", KEY_LOST, utcnow()
            return False
        kind, ran_s = job.kind, float((job.params or {}).get(RAN_S) or 0.0)
    with store.session() as s:  # claim it: of two messages for one job, one runs it
        now = utcnow()
        claimed = s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "queued")
            .values(
                status="running",
                started_at=now - dt.timedelta(seconds=ran_s),  # its earlier turns count
                heartbeat_at=now,
                message="Running…",
            )
        ).rowcount
    if not claimed:
        return False
    fn = runners.get(kind)
    try:
        with Heartbeat(store, job_id), taking_turn(turn):
            if fn is None:
                raise RuntimeError(f"No worker knows jobs of kind '{kind}'.")
            outcome = fn(store, job_id, secret) or JobOutcome()
    except TurnOver as over:
        message = over.message
        if retry_lost(lambda: _hand_back(store, job_id, message)):
            return True
        _finish(store, job_id, "cancelled", CANCELLED_KEPT, {})  # cancelled as it ended
    except JobCancelled:
        _finish(store, job_id, "cancelled", CANCELLED_KEPT, {})
    except Exception as exc:  # the job ends; the worker lives on
        _finish(store, job_id, "failed", _sentence(exc), {})
    else:
        _finish(store, job_id, outcome.status, outcome.message, outcome.result)
    return False


def _hand_back(store: Store, job_id: int, message: str) -> bool:
    """A running job whose turn is over waits "queued" again: its message, the seconds it ran
    (:data:`RAN_S`), and its waiting since now (``heartbeat_at``, for :func:`requeue_lost`).
    False when it was cancelled meanwhile (it then ends cancelled)."""
    with store.session() as s:
        job = s.get(Job, job_id)
        if job is None or job.status != "running" or job.cancel_requested:
            return False
        now = utcnow()
        since = job.started_at or now
        if since.tzinfo is None:
            since = since.replace(tzinfo=now.tzinfo)
        job.params = {**(job.params or {}), RAN_S: max(0.0, (now - since).total_seconds())}
        job.status, job.message, job.heartbeat_at = "queued", mask(message), now
    return True


class Heartbeat:
    """The worker's heartbeat for one running job: a daemon thread that stamps the job's
    ``heartbeat_at`` every ``every_s`` seconds until the block ends, independent of the job's
    progress (an endpoint that takes minutes per answer is not a dead worker). A failed stamp
    (a dropped database connection) is logged and tried again at the next beat."""

    def __init__(self, store: Store, job_id: int, every_s: float | None = None) -> None:
        self.store, self.job_id = store, job_id
        self.every_s = HEARTBEAT_S if every_s is None else every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"distill-heartbeat-{job_id}", daemon=True
        )

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                beat(self.store, self.job_id)
            except Exception as exc:  # the next beat tries again
                log.warning("Heartbeat of job %s failed: %s", self.job_id, _short(exc))

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _short(exc: BaseException) -> str:
    return mask(" ".join(str(exc).split())[:200]) or type(exc).__name__


def _finish(store: Store, job_id: int, status: str, message: str, result: dict) -> None:
    """Store a job's end; its message and the strings of its result masked (``keys.mask``);
    tried again on a fresh connection if the database connection was lost."""

    def write() -> None:
        with store.session() as s:
            job = s.get(Job, job_id)
            job.status, job.message, job.finished_at = status, mask(message), utcnow()
            if result:
                job.result = mask_all(result)

    retry_lost(write)


def _sentence(exc: BaseException) -> str:
    """One sentence for a job's failure: a user-fixable problem (a ValueError such as
    TrainingError or StudentError) says itself; a request failure is described by the LLM
    client's rules."""
    from distill_core.llm.errors import describe_error

    if connection_lost(exc):  # never the SQL: it may quote texts
        return (
            "The database connection was lost while the job was writing, and again when it "
            "tried once more; what it had stored is kept. Start it again to continue."
        )
    if isinstance(exc, ValueError) and str(exc):
        return " ".join(str(exc).split())
    try:
        return describe_error(exc)
    except Exception:
        return " ".join(f"{type(exc).__name__}: {exc}".split())


# ---------------------------------------------------------------- the queue


#: The one task every job goes through (huey registers it as ``<module>.<TASK_NAME>``).
TASK_NAME = "distill.run_job"
#: Environment variable with the secret that signs queue messages (app and workers alike).
SECRET_ENV = "DISTILL_SECRET_KEY"


def make_huey(
    runners: Runners,
    settings: Settings | None = None,
    name: str = "distill",
    secret_key: str | None = None,
    slice_s: float = SLICE_S,
):
    """The huey queue for these settings, with the one task every job goes through (run by the
    runner of its kind from ``runners``, in turns of ``slice_s`` seconds where the runner takes
    turns); messages are JSON, signed when a secret is set (``secret_key``, else
    ``DISTILL_SECRET_KEY``), and taken in the fair order of :func:`enqueue`."""
    settings = settings or Settings.from_env()
    serializer = JsonSerializer(secret_key or os.environ.get(SECRET_ENV) or None)
    if settings.redis_url:
        huey = _priority_redis(name, settings.redis_url, serializer)
    else:
        from huey import SqliteHuey

        settings.home.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey(name, filename=str(settings.home / "jobs.db"), serializer=serializer)
    url = settings.database_url

    @huey.task(name=TASK_NAME)
    def run_job(job_id: int) -> None:
        store = _store_for(url)
        held = Keyring.take(job_id)
        key = held or kept_key(settings, job_id)
        turn = Turn(slice_s, lambda: others_first(store, huey, job_id))
        if execute(store, job_id, key, runners, turn):  # its turn is over: to the back
            if held:
                Keyring.put(job_id, held)  # kept in memory for its next turn
            enqueue(huey, job_id, turn_over=True)
            return
        forget_key(settings, job_id)  # the job ended (a killed worker never gets here)

    huey.distill_run_job = run_job
    huey.distill_database_url = url
    return huey


def _priority_redis(name: str, url: str, serializer: Serializer):
    """A Redis queue whose messages are taken by priority (huey's ``PriorityRedisHuey``, a
    sorted set, Redis 5 or later), under its own key; messages a FIFO queue of an earlier
    version left under the old key (a list) are moved into it."""
    from huey import PriorityRedisHuey

    huey = PriorityRedisHuey(name, url=url, serializer=serializer)
    storage = huey.storage
    old, storage.queue_key = storage.queue_key, f"huey.priority.{storage.name}"
    try:
        if storage.conn.type(old) == b"list":
            while (data := storage.conn.rpop(old)) is not None:
                storage.enqueue(data, 0)
    except Exception as exc:  # Redis unreachable now: a submit says so; lost jobs are requeued
        log.warning("The old queue %s could not be read: %s", old, _short(exc))
    return huey


_stores: dict[str, Store] = {}


def _store_for(url: str) -> Store:
    if url not in _stores:
        _stores[url] = Store(url)
    return _stores[url]


#: The queues a lab's workers divide the work by: labelling and corpus passes on CPU workers,
#: trainings on GPU workers (one training at a time per GPU: a consumer with one worker).
CPU, GPU = "cpu", "gpu"


@dataclass(frozen=True)
class Kind:
    """A job kind: the function that runs it and the queue its jobs wait on (:data:`CPU` or
    :data:`GPU`), so that a labelling job never waits behind a training."""

    run: Runner
    queue: str = CPU


Kinds = Mapping[str, Kind]


@dataclass(frozen=True)
class JobQueues:
    """One huey queue per kind of worker (``<prefix>-cpu``, ``<prefix>-gpu``), each able to run
    every kind; a job's message goes to the queue its kind names (:meth:`for_kind`)."""

    hueys: Mapping[str, Any]
    route: Mapping[str, str]

    def for_kind(self, kind: str) -> Any:
        """The huey queue of ``kind`` (an unknown kind goes to the CPU queue, where it fails
        with a sentence instead of waiting)."""
        return self.hueys[self.route.get(kind, CPU)]

    def pending(self) -> set[int]:
        """The job ids with a message waiting on any of the queues."""
        return {t.args[0] for huey in self.hueys.values() for t in huey.pending() if t.args}


def make_queues(
    kinds: Kinds,
    settings: Settings | None = None,
    prefix: str = "distill",
    secret_key: str | None = None,
    slice_s: float = SLICE_S,
) -> JobQueues:
    """The CPU and GPU queues (:func:`make_huey` each, named ``<prefix>-cpu`` and
    ``<prefix>-gpu``: two queues in Redis, or two in the one SQLite queue file)."""
    runners = {name: kind.run for name, kind in kinds.items()}
    hueys = {
        q: make_huey(runners, settings, f"{prefix}-{q}", secret_key, slice_s)
        for q in sorted({CPU, GPU, *(k.queue for k in kinds.values())})
    }
    return JobQueues(hueys, {name: kind.queue for name, kind in kinds.items()})


def enqueue(huey, job_id: int, kind: str | None = None, *, turn_over: bool = False) -> None:
    """Queue the message for one job: on ``huey``, or, given :class:`JobQueues`, on the queue of
    the job's ``kind``; with the priority of its fair turn (:func:`fair_start`; ``turn_over``:
    it is queued again after its turn)."""
    if isinstance(huey, JobQueues):
        if kind is None:
            raise ValueError(f"Job {job_id} needs its kind to choose its queue.")
        huey = huey.for_kind(kind)
    store = _store_for(huey.distill_database_url)

    def tag() -> int:
        with store.session() as s:
            job = s.get(Job, job_id)
            if job is None:
                return 0
            start = fair_start(s, job, huey.name, turn_over=turn_over)
            job.params = {**(job.params or {}), TURN: {"queue": huey.name, "start": start}}
            return start

    huey.distill_run_job(job_id, priority=-retry_lost(tag))


#: A job's params: its fair queueing tag on the queue it waits on ({"queue", "start"}).
TURN = "turn"


def _tag(job: Job, queue_name: str) -> int | None:
    tag = (job.params or {}).get(TURN)
    if isinstance(tag, dict) and tag.get("queue") == queue_name:
        return int(tag.get("start") or 0)
    return None


def fair_start(session, job: Job, queue_name: str, *, turn_over: bool) -> int:
    """The turn at which ``job`` waits on ``queue_name`` (start-time fair queueing per user;
    lower goes first, huey priority ``-start``): a job's turn is one slice, and a user's next
    turn follows the last turn of their jobs waiting or running on the queue, or the earliest
    turn of anyone's active job (the queue's "now") when they have none. So a user with nothing
    going starts at once; one with a job running waits behind them, and users with work waiting
    take turns. A job queued again after its turn (``turn_over``) counts its own last turn; a
    message queued again (lost, or its worker restarted) keeps the turn it had."""
    own = _tag(job, queue_name)
    if own is not None and not turn_over:
        return own
    others = session.scalars(select(Job).where(Job.status.in_(ACTIVE), Job.id != job.id)).all()
    turns = [(o.created_by, t) for o in others if (t := _tag(o, queue_name)) is not None]
    now = min((t for _, t in turns), default=0)
    last = [t for user, t in turns if user == job.created_by]
    if own is not None:
        last.append(own)
    return max(now, max(last) + 1) if last else now


def others_first(store: Store, huey, job_id: int) -> bool:
    """Whether a job other than ``job_id`` waits on ``huey`` with a message that would be taken
    before ``job_id``'s if it were queued again now (its turn over)."""
    waiting = {t.args[0]: t.priority or 0 for t in huey.pending() if t.args}
    waiting.pop(job_id, None)
    if not waiting:
        return False
    with store.session() as s:
        queued = list(
            s.scalars(select(Job.id).where(Job.id.in_(list(waiting)), Job.status == "queued"))
        )
        job = s.get(Job, job_id)
        if not queued or job is None:
            return False
        mine = -fair_start(s, job, huey.name, turn_over=True)
    return any(waiting[i] >= mine for i in queued)


def job_kinds(store: Store, job_ids: list[int]) -> dict[int, str]:
    """The kind of each of these jobs (the queue its message goes to)."""
    if not job_ids:
        return {}
    with store.session() as s:
        return dict(s.execute(select(Job.id, Job.kind).where(Job.id.in_(job_ids))).all())


def _pending(huey) -> set[int]:
    if isinstance(huey, JobQueues):
        return huey.pending()
    return {t.args[0] for t in huey.pending() if t.args}


#: Seconds a job may wait "queued" before its queue message is looked for (requeue_lost).
LOST_AFTER_S = 30.0


def requeue_lost(store: Store, huey, *, after_s: float = LOST_AFTER_S) -> list[int]:
    """Queue again the jobs that wait "queued" for more than ``after_s`` seconds with no
    message in the queue: a Redis restarted without persistence, or a queue file deleted, lost
    it, and they would wait for ever. A job that is picked up meanwhile runs once (``execute``
    starts only a queued job). Returns the ids queued again."""
    limit = utcnow() - dt.timedelta(seconds=after_s)
    with store.session() as s:
        waiting = [  # a job waiting its next turn waits since it was handed back
            (job.id, job.kind, job.heartbeat_at or job.created_at)
            for job in s.scalars(select(Job).where(Job.status == "queued"))
        ]
    waiting = {
        i: kind
        for i, kind, at in waiting
        if (at if at.tzinfo else at.replace(tzinfo=limit.tzinfo)) < limit
    }
    if not waiting:
        return []
    pending = _pending(huey)
    lost = [i for i in waiting if i not in pending]
    for job_id in lost:
        log.warning("Job %s was queued but its queue message is gone; queued again.", job_id)
        enqueue(huey, job_id, waiting[job_id])
    return lost


# ---------------------------------------------------------------- queue messages


class MessageRefused(ValueError):
    """A queue message that is not one of ours; huey's consumer logs it and goes on."""


class JsonSerializer(Serializer):
    """huey's serializer without pickle: tagged JSON, a task message only as "run job <int>",
    and an HMAC-SHA256 under ``secret`` when one is given (so a forged message is refused)."""

    MAX_BYTES = 64 * 1024

    def __init__(self, secret: str | None = None) -> None:
        super().__init__()
        self._key = (
            hashlib.sha256(b"distill-queue\0" + secret.encode("utf-8")).digest() if secret else None
        )

    def _serialize(self, data: Any) -> bytes:
        if isinstance(data, Message):
            _check_message(data)
            doc = {"message": {f: _encode(getattr(data, f)) for f in Message._fields}}
        else:
            doc = {"value": _encode(data)}
        raw = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode("utf-8")
        return raw + b"." + self._sign(raw) if self._key else raw

    def _deserialize(self, data: bytes) -> Any:
        raw = bytes(data)
        if len(raw) > self.MAX_BYTES:
            raise MessageRefused(f"Refused a queue message of {len(raw)} bytes.")
        if self._key:
            raw, dot, sig = raw.rpartition(b".")
            if not dot or not hmac.compare_digest(sig, self._sign(raw)):
                raise MessageRefused("Refused a queue message without a valid signature.")
        try:
            doc = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise MessageRefused("Refused a queue message that is not JSON.") from exc
        if not isinstance(doc, dict) or len(doc) != 1:
            raise MessageRefused("Refused a queue message of an unknown shape.")
        if "value" in doc:
            return _decode(doc["value"])
        fields = doc.get("message")
        if not isinstance(fields, dict) or not set(fields) <= set(Message._fields):
            raise MessageRefused("Refused a queue message of an unknown shape.")
        message = Message(**{f: _decode(v) for f, v in fields.items()})
        _check_message(message)
        return message

    def _sign(self, raw: bytes) -> bytes:
        return hmac.new(self._key, raw, hashlib.sha256).hexdigest().encode("ascii")


def _encode(value: Any) -> Any:
    """A value as JSON, with tags for what JSON lacks (tuple, dict, datetime, timedelta, huey's
    Error); anything else cannot enter the queue."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Error):
        return {"$error": _encode(value.metadata)}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return {"$tuple": [_encode(v) for v in value]}
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"$dict": {k: _encode(v) for k, v in value.items()}}
    if isinstance(value, dt.datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {"$timedelta": value.total_seconds()}
    raise TypeError(f"A {type(value).__name__} cannot enter the job queue.")


def _decode(value: Any) -> Any:
    """The inverse of :func:`_encode`; an unknown tag is refused."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        ((tag, inner),) = value.items()
        try:
            if tag == "$tuple" and isinstance(inner, list):
                return tuple(_decode(v) for v in inner)
            if tag == "$dict" and isinstance(inner, dict):
                return {k: _decode(v) for k, v in inner.items()}
            if tag == "$datetime" and isinstance(inner, str):
                return dt.datetime.fromisoformat(inner)
            if tag == "$timedelta" and isinstance(inner, int | float):
                return dt.timedelta(seconds=inner)
            if tag == "$error":
                return Error(_decode(inner))
        except (ValueError, OverflowError) as exc:
            raise MessageRefused(f"Refused a queue message with a bad {tag} value.") from exc
    raise MessageRefused("Refused a queue message with a value of an unknown kind.")


def _check_message(m: Any) -> None:
    """Raise :class:`MessageRefused` unless ``m`` is our one task with one int (a job id)."""
    number = (int, float)
    when = (dt.datetime, type(None))
    ok = (
        isinstance(m.id, str)
        and isinstance(m.name, str)
        and m.name.endswith("." + TASK_NAME)
        and isinstance(m.args, tuple)
        and len(m.args) == 1
        and type(m.args[0]) is int
        and m.kwargs in ({}, None)
        and m.on_complete is None
        and m.on_error is None
        and m.chord_config is None
        and isinstance(m.eta, when)
        and isinstance(m.expires_resolved, when)
        and isinstance(m.expires, (*number, dt.datetime, dt.timedelta, type(None)))
        and all(
            isinstance(v, (*number, type(None))) and not isinstance(v, bool)
            for v in (m.retries, m.retry_delay, m.priority, m.timeout, m.retry_backoff)
        )
    )
    if not ok:
        raise MessageRefused(f"Refused a queue message that is not '{TASK_NAME}' with one job id.")


# ---------------------------------------------------------------- secrets in memory


class Keyring:
    """API keys for jobs, held in the worker's memory only (taken once, then forgotten)."""

    _keys: dict[int, str] = {}
    _lock = threading.Lock()
    _arrived = threading.Condition(_lock)

    @classmethod
    def put(cls, job_id: int, key: str) -> None:
        register(key)  # masked in whatever this process stores or shows
        with cls._arrived:
            cls._keys[job_id] = key
            cls._arrived.notify_all()

    @classmethod
    def take(cls, job_id: int, wait_s: float = 0.0) -> str | None:
        deadline = time.monotonic() + wait_s
        with cls._arrived:
            while job_id not in cls._keys and time.monotonic() < deadline:
                cls._arrived.wait(timeout=max(0.0, deadline - time.monotonic()))
            return cls._keys.pop(job_id, None)


def socket_path(settings: Settings) -> Path:
    return settings.home / "worker.sock"


def serve_keys(path: Path) -> threading.Thread:
    """Accept ``{"job_id": .., "key": ..}`` lines on a Unix socket only this user can open."""
    path.unlink(missing_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o177)
    try:
        server.bind(str(path))
    finally:
        os.umask(old)
    server.listen(8)

    def loop() -> None:
        while True:
            conn, _ = server.accept()
            with conn:
                data = b""
                while chunk := conn.recv(65536):
                    data += chunk
                try:
                    msg = json.loads(data.decode("utf-8"))
                    Keyring.put(int(msg["job_id"]), str(msg["key"]))
                    conn.sendall(b"ok")
                except (ValueError, KeyError):
                    continue

    thread = threading.Thread(target=loop, name="distill-keys", daemon=True)
    thread.start()
    return thread


def send_key(settings: Settings, job_id: int, key: str, timeout_s: float = 5.0) -> None:
    """Hand an API key for one job to the local worker, in memory."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
        conn.settimeout(timeout_s)
        conn.connect(str(socket_path(settings)))
        conn.sendall(json.dumps({"job_id": job_id, "key": key}).encode("utf-8"))
        conn.shutdown(socket.SHUT_WR)
        conn.recv(16)


# ---------------------------------------------------------------- the local worker


@dataclass
class Supervisor:
    """Starts the local worker process when none is alive (SQLite queue only)."""

    settings: Settings
    #: Secrets the worker needs in its environment beyond ours (the app's secrets.toml values,
    #: read when the worker starts: ``OPENAI_API_KEY``, ``DISTILL_SECRET_KEY``).
    secrets: Callable[[], Mapping[str, str]] | None = None
    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)
    _watching: threading.Thread | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stopped: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    @property
    def pidfile(self) -> Path:
        return self.settings.home / "worker.pid"

    @property
    def logfile(self) -> Path:
        return self.settings.home / "worker.log"

    @property
    def local(self) -> bool:
        return not self.settings.redis_url

    def alive(self) -> bool:
        """A worker process runs (not a zombie) and its key socket exists."""
        if self._proc is not None:
            self._proc.poll()  # reaps our own dead child, so its pid stops looking alive
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return False
        return _pid_running(pid) and socket_path(self.settings).exists()

    def ensure(self, wait_s: float = 20.0) -> bool:
        """Start the worker if it is not running; True once it is ready. One caller at a time
        (a page's submit and the watch): a worker of ours still starting is waited for, not
        started twice."""
        if not self.local:
            return True
        with self._lock:
            self._stopped.clear()
            deadline = time.monotonic() + wait_s
            spawned = None
            while True:
                if self.alive():
                    return True
                if self._proc is None or self._proc.poll() is not None:
                    if spawned is not None and self._proc is spawned:
                        return False  # it died while starting: worker.out says why
                    self._spawn()
                    spawned = self._proc
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.1)

    def _spawn(self) -> None:
        self.settings.home.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        for name, value in (self.secrets() if self.secrets else {}).items():
            if value and not env.get(name):
                env[name] = value
        env["DISTILL_HOME"] = str(self.settings.home)
        env["DISTILL_DATABASE_URL"] = self.settings.database_url
        out = open(self.settings.home / "worker.out", "wb")  # noqa: SIM115 - the child's, anew
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "distill_core.jobs.worker"],
            env=env,
            stdout=out,  # what the worker prints before its rotating worker.log is set up
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        out.close()  # the child has its own copy

    def started_before(self) -> bool:
        """A worker ran here (its pid file is left): one that died should be brought back."""
        return self._proc is not None or self.pidfile.exists()

    def watch(self, every_s: float = 5.0) -> None:
        """Bring the local worker back whenever it has died (a daemon thread in the app, one
        per supervisor): queued jobs then run, and the job it was running resumes
        (``records.resume_interrupted``). Only a worker that ran before is restarted."""
        if not self.local or (self._watching is not None and self._watching.is_alive()):
            return

        def loop() -> None:
            pause = every_s
            while not self._stopped.is_set():
                try:
                    if self.started_before() and not self.alive():
                        log.warning("The job worker is not running; starting it again.")
                        pause = every_s if self.ensure() else min(pause * 2, 300.0)
                except Exception as exc:  # keep watching
                    log.warning("Restarting the job worker failed: %s", _short(exc))
                    pause = min(pause * 2, 300.0)
                self._stopped.wait(pause)

        self._watching = threading.Thread(target=loop, name="distill-supervisor", daemon=True)
        self._watching.start()

    def stop(self) -> None:
        """Stop the worker (SIGTERM) and the watch, so that it is not started again."""
        import signal

        self._stopped.set()
        if self._watching is not None:
            self._watching.join(timeout=10)

        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, signal.SIGTERM)
        except (OSError, ValueError):
            pass


def _pid_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, dead but not yet reaped, is not)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True  # no /proc: trust kill(0)


class SubmitFailed(ValueError):
    """A job could not be queued; the job is marked failed with the same sentence."""


def submit(
    store: Store,
    job_id: int,
    *,
    settings: Settings | None = None,
    api_key: str | None = None,
    huey,
    supervisor: Supervisor | None = None,
) -> None:
    """Queue a job: start the local worker if ``supervisor`` is given and none runs, hand it
    the job's key (if any) in memory, keep the key encrypted with the server secret so that a
    restarted worker still has it (:func:`keep_key`), then queue the job.

    If any of it fails, the job is marked failed with the reason (it would otherwise wait for a
    worker that never comes) and :class:`SubmitFailed` says the same sentence."""
    settings = settings or Settings.from_env()
    try:
        if supervisor is not None and not supervisor.ensure():
            raise SubmitFailed(
                f"The background worker did not start; see {supervisor.logfile} and worker.out "
                "beside it for why."
            )
        if api_key:
            register(api_key)
            kept = keep_key(settings, job_id, api_key)
            if settings.redis_url and not kept:
                raise SubmitFailed(
                    "With a shared job queue a typed key reaches the workers only encrypted with "
                    "the server secret DISTILL_SECRET_KEY, which is not set: save the endpoint "
                    "with its key in the project instead, or ask the administrator to set it."
                )
            _mark_key_typed(store, job_id)
            if not settings.redis_url:
                send_key(settings, job_id, api_key)
        enqueue(huey, job_id, job_kinds(store, [job_id]).get(job_id))
    except Exception as exc:
        forget_key(settings, job_id)
        sentence = str(exc) if isinstance(exc, SubmitFailed) else _submit_sentence(exc)
        fail_job(store, job_id, sentence)
        raise SubmitFailed(sentence) from None


def _submit_sentence(exc: BaseException) -> str:
    return (
        f"The job could not be queued ({_short(exc).rstrip('.')}); check that the job queue is "
        "reachable and start it again."
    )


def _mark_key_typed(store: Store, job_id: int) -> None:
    """Note on the job (never the key) that it runs with a key typed for it."""
    merge_params(store, job_id, **{KEY_TYPED: True})


# ---------------------------------------------------------------- keys kept for a restart


def _key_path(settings: Settings, job_id: int) -> Path:
    return settings.home / "job_keys" / f"{int(job_id)}.key"


def keep_key(settings: Settings, job_id: int, key: str) -> bool:
    """Keep a job's key for a restarted worker, encrypted with the server secret
    (``keys.encrypt``: Fernet under ``DISTILL_SECRET_KEY``) in a file only this user can read
    (``DISTILL_HOME/job_keys``, shared with a lab's workers); never in clear. False, and
    nothing written, without a server secret: the key then lives only in the worker's memory.
    Removed when the job ends."""
    from distill_core.keys import encrypt, server_secret

    if not server_secret():
        return False
    path = _key_path(settings, job_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = encrypt(key)
    fd = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    os.replace(path.with_suffix(".tmp"), path)
    return True


def kept_key(settings: Settings, job_id: int) -> str | None:
    """The key :func:`keep_key` kept for a job, decrypted; None when there is none (or it
    cannot be decrypted here: the job then says so, :data:`records.KEY_LOST`)."""
    from distill_core.keys import SecretError, decrypt

    try:
        token = _key_path(settings, job_id).read_text().strip()
    except OSError:
        return None
    try:
        return decrypt(token)
    except SecretError as exc:
        log.warning("The kept key of job %s cannot be read: %s", job_id, exc)
        return None


def forget_key(settings: Settings, job_id: int) -> None:
    _key_path(settings, job_id).unlink(missing_ok=True)


def forget_ended_keys(settings: Settings, store: Store) -> int:
    """Remove the kept keys of jobs that ended without a worker seeing them end (cancelled while
    queued, failed by the stale sweep, deleted); returns how many."""
    folder = settings.home / "job_keys"
    if not folder.is_dir():
        return 0
    kept = {int(p.stem): p for p in folder.glob("*.key") if p.stem.isdigit()}
    if not kept:
        return 0
    with store.session() as s:
        active = set(
            s.scalars(select(Job.id).where(Job.id.in_(list(kept)), Job.status.in_(ACTIVE)))
        )
    for job_id in set(kept) - active:
        kept[job_id].unlink(missing_ok=True)
    return len(set(kept) - active)
