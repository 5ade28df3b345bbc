"""Background jobs: a huey queue, job records in the store, and a worker the app supervises.

* ``SqliteHuey`` in ``DISTILL_HOME`` by default, with one worker process that the app starts
  (``python -m distill_core.jobs.worker``) and restarts when it is gone;
* ``RedisHuey`` when ``DISTILL_REDIS_URL`` is set: a lab runs ``huey_consumer
  distill_core.jobs.worker.huey`` on its GPU machines and the app starts none.

Progress, counts, cost, messages and the cancel flag live in the ``jobs`` table, so a page
reload or an app restart loses nothing. API keys never enter the queue or the store: the app
hands a key to the local worker in memory over a Unix socket in ``DISTILL_HOME`` (mode 0600),
and remote workers use their own ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from distill_core.clock import utcnow
from distill_core.config import Settings
from distill_core.jobs.records import ACTIVE, JobCancelled, JobOutcome
from distill_core.store import Job, Store

#: A job kind's runner: ``fn(store, job_id, secret) -> JobOutcome``; the table is ``jobs.kinds``.
Runner = Callable[[Store, int, str | None], JobOutcome]
Runners = Mapping[str, Runner]


# ---------------------------------------------------------------- running a job


def execute(store: Store, job_id: int, secret: str | None, runners: Runners) -> None:
    """Run one job in this process with the runner of its kind (from ``runners``): status,
    timing, result and a one-sentence error."""
    with store.session() as s:
        job = s.get(Job, job_id)
        if job is None or job.status not in ACTIVE or job.cancel_requested:
            if job is not None and job.status == "queued":
                job.status, job.finished_at = "cancelled", utcnow()
            return
        job.status, job.started_at, job.heartbeat_at = "running", utcnow(), utcnow()
        job.message = "Running…"
        kind = job.kind
    fn = runners.get(kind)
    try:
        if fn is None:
            raise RuntimeError(f"No worker knows jobs of kind '{kind}'.")
        outcome = fn(store, job_id, secret) or JobOutcome()
    except JobCancelled:
        _finish(store, job_id, "cancelled", "Cancelled; what was done before is kept.", {})
    except Exception as exc:  # the job ends; the worker lives on
        _finish(store, job_id, "failed", _sentence(exc), {})
    else:
        _finish(store, job_id, outcome.status, outcome.message, outcome.result)


def _finish(store: Store, job_id: int, status: str, message: str, result: dict) -> None:
    with store.session() as s:
        job = s.get(Job, job_id)
        job.status, job.message, job.finished_at = status, message, utcnow()
        if result:
            job.result = result


def _sentence(exc: BaseException) -> str:
    """One sentence for a job's failure: a user-fixable problem (a ValueError such as
    TrainingError or StudentError) says itself; a request failure is described by the LLM
    client's rules."""
    from distill_core.llm.errors import describe_error

    if isinstance(exc, ValueError) and str(exc):
        return " ".join(str(exc).split())
    try:
        return describe_error(exc)
    except Exception:
        return " ".join(f"{type(exc).__name__}: {exc}".split())


# ---------------------------------------------------------------- the queue


def make_huey(runners: Runners, settings: Settings | None = None, name: str = "distill"):
    """The huey queue for these settings, with the one task every job goes through (run by the
    runner of its kind from ``runners``)."""
    settings = settings or Settings.from_env()
    if settings.redis_url:
        from huey import RedisHuey

        huey = RedisHuey(name, url=settings.redis_url)
    else:
        from huey import SqliteHuey

        settings.home.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey(name, filename=str(settings.home / "jobs.db"))
    url = settings.database_url

    @huey.task(name="distill.run_job")
    def run_job(job_id: int) -> None:
        store = _store_for(url)
        execute(store, job_id, Keyring.take(job_id), runners)

    huey.distill_run_job = run_job
    return huey


_stores: dict[str, Store] = {}


def _store_for(url: str) -> Store:
    if url not in _stores:
        _stores[url] = Store(url)
    return _stores[url]


def enqueue(huey, job_id: int) -> None:
    huey.distill_run_job(job_id)


# ---------------------------------------------------------------- secrets in memory


class Keyring:
    """API keys for jobs, held in the worker's memory only (taken once, then forgotten)."""

    _keys: dict[int, str] = {}
    _lock = threading.Lock()
    _arrived = threading.Condition(_lock)

    @classmethod
    def put(cls, job_id: int, key: str) -> None:
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
    _proc: subprocess.Popen | None = field(default=None, init=False, repr=False)

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
        """Start the worker if it is not running; True once it is ready."""
        if not self.local:
            return True
        if self.alive():
            return True
        self.settings.home.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env["DISTILL_HOME"] = str(self.settings.home)
        env["DISTILL_DATABASE_URL"] = self.settings.database_url
        log = open(self.logfile, "ab")  # noqa: SIM115 - handed to the child process
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "distill_core.jobs.worker"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if self.alive():
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        import signal

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


def submit(
    store: Store,
    job_id: int,
    *,
    settings: Settings | None = None,
    api_key: str | None = None,
    huey,
) -> None:
    """Queue a job; its key (if any) goes to the worker in memory before the job is queued."""
    settings = settings or Settings.from_env()
    if api_key:
        if settings.redis_url:
            raise ValueError(
                "With a shared job queue the workers use their own OPENAI_API_KEY; "
                "leave the key field empty."
            )
        send_key(settings, job_id, api_key)
    enqueue(huey, job_id)
