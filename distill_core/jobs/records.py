"""Job records in the store: a queued job, its progress and heartbeat, its cancel flag, and the
sweep that marks jobs whose worker died. Every job kind writes through these; none is known here.
A job's message is masked (``keys.mask``) before it is stored: it may quote a server that
repeated the key.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from distill_core.clock import fmt_duration, utcnow
from distill_core.keys import mask
from distill_core.store import Job, Store
from distill_core.store.db import retry_lost
from distill_core.store.models import ACTIVE_JOB_STATUSES, User
from distill_core.study.access import Capability, belongs, entry

#: Seconds between a running job's heartbeats: the worker's timer thread stamps them
#: (``jobs.queue.Heartbeat``), whatever the job is waiting for.
HEARTBEAT_S = 10.0
#: Seconds without a heartbeat after which a running job counts as stopped: nine beats missed
#: (a busy SQLite file can hold a write back for up to 30 s).
STALE_AFTER_S = 90
ACTIVE = ACTIVE_JOB_STATUSES
#: The flag in a job's params that says a key was typed for it (the key itself never is).
KEY_TYPED = "key_typed"
#: What a job says when the key typed for it is gone.
KEY_LOST = (
    "The API key typed for this job was held only in the worker's memory and the worker "
    "restarted; type the key again and start the job again (it continues where it stopped), "
    "or set DISTILL_SECRET_KEY so that keys survive a restart."
)
#: How often a job may be resumed after its worker died before it is given up.
MAX_RESUMES = 2


class JobCancelled(Exception):
    """Raised inside a job when its cancel flag is seen."""


#: Seconds a sliced job (a label run) holds a CPU worker before it looks whether another job
#: waits for one; if so it hands the worker back (:class:`TurnOver`) and continues at its next
#: turn. Long enough that a turn's start (reading the texts and what is already answered,
#: writing the results of a 100,000-text run: a few seconds) is a small share of it, short
#: enough that a 50-text job started behind a 100,000-text one waits about a minute.
SLICE_S = 60.0
#: Seconds between two looks at the queue once a turn's time is up (each is a queue read and a
#: database read, so not at every request).
LOOK_EVERY_S = 2.0
#: A turn lasts at least this many times what its start and end cost (a job that takes long to
#: resume, a 100,000-text run, takes longer turns), so that handing the worker back costs at
#: most about a tenth of the job's time.
TURN_PER_FIXED_COST = 10.0


class TurnOver(Exception):
    """Raised by a sliced job's runner when its turn is over and another job waits: what it has
    done is stored, and the worker queues it again (status "queued", this ``message``) to
    continue at its next turn. Neither a failure nor an interruption."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Turn:
    """A job's turn on a worker: over once it has run ``slice_s`` seconds and
    ``others_waiting()`` says another job waits that goes before it when it queues again
    (looked at every ``LOOK_EVERY_S`` seconds at most). With nothing waiting it goes on."""

    slice_s: float
    others_waiting: Callable[[], bool]
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=0.0)
    _looked: float = field(default=float("-inf"), repr=False)
    _over: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self.started = self.started or self.clock()

    def cover(self, fixed_s: float) -> None:
        """Make the turn last at least :data:`TURN_PER_FIXED_COST` times ``fixed_s``, the
        seconds the job's start and end of a turn cost (not spent on its work)."""
        self.slice_s = max(self.slice_s, TURN_PER_FIXED_COST * max(0.0, fixed_s))

    def over(self) -> bool:
        if self._over:
            return True
        now = self.clock()
        if now - self.started < self.slice_s or now - self._looked < LOOK_EVERY_S:
            return False
        self._looked = now
        self._over = bool(self.others_waiting())
        return self._over


_turn: ContextVar[Turn | None] = ContextVar("distill_turn", default=None)


def current_turn() -> Turn | None:
    """The turn of the job this worker thread runs (None outside a worker: never over)."""
    return _turn.get()


@contextmanager
def taking_turn(turn: Turn | None) -> Iterator[None]:
    """Run a job within ``turn`` (what :func:`current_turn` returns inside the block)."""
    token = _turn.set(turn)
    try:
        yield
    finally:
        _turn.reset(token)


#: A job that ended with every part tried but some failed (a label run with texts in error).
FINISHED_WITH_ERRORS = "finished with errors"


@dataclass
class JobOutcome:
    """What a job's runner returns: the result stored on the job, its final status ("done",
    ``FINISHED_WITH_ERRORS`` or "failed") and the one sentence the page shows."""

    result: dict[str, Any] = field(default_factory=dict)
    status: str = "done"
    message: str = "Finished."


@dataclass(frozen=True)
class JobProgress:
    """What a job's progress bar says beside done and total (``Job.result["progress"]`` while
    it runs): the phase it is in, what it counts, and the time left at the rate measured so
    far (None until there is a rate)."""

    phase: str = ""
    unit: str = "steps"
    eta_s: float | None = None
    version: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "unit": self.unit, "eta_s": self.eta_s, "version": 1}

    @classmethod
    def of(cls, result: Mapping[str, Any] | None) -> JobProgress | None:
        """The progress stored in a job's result; None for a job that stores none."""
        data = (result or {}).get("progress")
        if not isinstance(data, Mapping):
            return None
        eta = data.get("eta_s")
        return cls(
            phase=str(data.get("phase") or ""),
            unit=str(data.get("unit") or "steps"),
            eta_s=None if eta is None else float(eta),
            version=int(data.get("version") or 1),
        )

    def text(self, done: int, total: int) -> str:
        """E.g. '120 of 1,070 steps · Student on human codes, fold 2 of 5 · about 3 min left'."""
        parts = [f"{done:,} of {total:,} {self.unit}"]
        if self.phase:
            parts.append(self.phase)
        if self.eta_s is not None and done < total:
            parts.append(f"about {fmt_duration(self.eta_s)} left")
        return " · ".join(parts)


class Phases:
    """One progress total over a job's phases, planned as (name, steps) in order: step i of a
    phase is ``done`` = the steps of the phases before it + i. A phase that ends early (early
    stopping) jumps to the next one's start; one that turns out longer than planned, or is not
    in the plan, grows the total. ``done`` never goes back, and the time left is the wall
    seconds per step actually run since the first report times the steps still to go."""

    def __init__(
        self, planned: Sequence[tuple[str, int]], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.names = [name for name, _ in planned]
        self.steps = {name: max(0, int(n)) for name, n in planned}
        self.clock = clock
        self.done = 0
        self.ran = 0  # steps actually run (not skipped by early stopping)
        self.started: float | None = None
        self._last: tuple[str, int] | None = None

    @property
    def total(self) -> int:
        return max(self.done, sum(self.steps.values()))

    def at(self, phase: str, step: int, phase_total: int | None = None) -> JobProgress:
        """Record that ``phase`` is at ``step`` (of ``phase_total`` when known); read ``done``
        and ``total`` after it."""
        if phase not in self.steps:
            self.names.append(phase)
            self.steps[phase] = 0
        if phase_total is not None and phase_total > self.steps[phase]:
            self.steps[phase] = int(phase_total)
        step = max(0, min(int(step), self.steps[phase]))
        last_phase, last_step = self._last or (phase, 0)
        self.ran += step - last_step if last_phase == phase else step
        self._last = (phase, step)
        offset = sum(self.steps[n] for n in self.names[: self.names.index(phase)])
        self.done = max(self.done, offset + step)
        now = self.clock()
        if self.started is None:
            self.started = now
        eta = None
        if self.ran > 0 and now > self.started:
            eta = (now - self.started) / self.ran * (self.total - self.done)
        return JobProgress(phase=phase, eta_s=None if eta is None else round(eta, 1))

    def finish(self) -> None:
        """Every phase is over (early stopping may have skipped steps): done is the total."""
        self.done = self.total


def create_job(
    session,
    kind: str,
    *,
    params: dict[str, Any] | None = None,
    project_id: int | None = None,
    user_id: int | None = None,
    total: int = 0,
) -> Job:
    """A queued job record (``params`` must not hold secrets)."""
    job = Job(
        kind=kind,
        params=params or {},
        project_id=project_id,
        created_by=user_id,
        total=total,
        status="queued",
        message="Waiting for a worker…",
    )
    session.add(job)
    session.flush()
    return job


def beat(store: Store, job_id: int) -> None:
    """Stamp a running job's heartbeat (the worker is alive)."""
    with store.session() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status == "running")
            .values(heartbeat_at=utcnow())
        )


def fail_job(store: Store, job_id: int, message: str) -> None:
    """Mark a queued or running job failed with ``message`` (masked); an ended job is left."""
    with store.session() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id, Job.status.in_(ACTIVE))
            .values(status="failed", message=mask(message), finished_at=utcnow())
        )


def resume_interrupted(session) -> list[int]:
    """After the only local worker (re)starts, nothing can be running: each job left
    "running" by a worker that died goes back to the queue to continue where it stopped (a
    label run asks only what is not stored; at most the requests in flight at the kill are
    asked again). A job interrupted more than ``MAX_RESUMES`` times is failed with a sentence.
    Returns the ids to queue again."""
    again = []
    for job in session.scalars(select(Job).where(Job.status == "running")).all():
        resumes = int((job.params or {}).get("resumes", 0))
        if resumes >= MAX_RESUMES:
            job.status, job.finished_at = "failed", utcnow()
            job.message = (
                f"The worker stopped {resumes + 1} times while running this job (it may run out "
                "of memory); what it had finished is kept. Start it again to continue."
            )
            continue
        job.params = {**(job.params or {}), "resumes": resumes + 1}
        job.status, job.heartbeat_at = "queued", None
        job.message = (
            "The worker stopped and was started again; the job continues where it stopped."
        )
        again.append(job.id)
    session.flush()
    return again


def merge_params(store: Store, job_id: int, **values: Any) -> None:
    """Add ``values`` to a job's params (never secrets)."""

    def write() -> None:
        with store.session() as s:
            job = s.get(Job, job_id)
            job.params = {**(job.params or {}), **values}

    retry_lost(write)


def update_job(store: Store, job_id: int, **fields: Any) -> bool:
    """Write progress fields and a heartbeat; returns whether cancel was requested. The
    message, if any, is masked."""
    if "message" in fields:
        fields["message"] = mask(fields["message"])

    def write() -> bool:
        with store.session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow(), **fields))
            return bool(s.scalar(select(Job.cancel_requested).where(Job.id == job_id)))

    return retry_lost(write)  # a dropped connection does not end the job


@entry(Capability.EDIT)
def request_cancel(session, user: User, project_id: int, job_id: int) -> None:
    """Ask a job to stop; it stops at its next check and keeps what it has done."""
    job = belongs(session.get(Job, job_id), project_id, "job")
    if job.status == "queued":  # waiting to start, or for its next turn (it ran before)
        job.status, job.finished_at = "cancelled", utcnow()
        job.message = (
            "Cancelled while waiting its turn; what was done before is kept."
            if job.started_at
            else "Cancelled before it started."
        )
    job.cancel_requested = True
    session.flush()


@entry(Capability.READ)
def latest_jobs(
    session, user: User, project_id: int, kind: str | None = None, limit: int = 10
) -> list[Job]:
    """The project's newest jobs (of one ``kind``), newest first; jobs whose worker died are
    marked failed first (``mark_stale``)."""
    mark_stale(session)
    stmt = select(Job).where(Job.project_id == project_id).order_by(Job.id.desc()).limit(limit)
    if kind:
        stmt = stmt.where(Job.kind == kind)
    return list(session.scalars(stmt))


def mark_stale(session, *, now=None, after_s: float = STALE_AFTER_S) -> int:
    """Running jobs whose worker stopped sending heartbeats become ``failed`` with a sentence."""
    now = now or utcnow()
    limit = now - timedelta(seconds=after_s)
    stale = session.scalars(select(Job).where(Job.status == "running")).all()
    n = 0
    for job in stale:
        beat = job.heartbeat_at or job.started_at or job.created_at
        if beat.tzinfo is None:
            beat = beat.replace(tzinfo=limit.tzinfo)
        if beat < limit:
            job.status = "failed"
            job.finished_at = now
            job.message = (
                "The worker stopped while running this job; what it had finished is kept. "
                "Start it again to continue where it stopped."
            )
            n += 1
    session.flush()
    return n
