"""Job records in the store: a queued job, its progress and heartbeat, its cancel flag, and the
sweep that marks jobs whose worker died. Every job kind writes through these; none is known here.
A job's message is masked (``keys.mask``) before it is stored: it may quote a server that
repeated the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from distill_core.clock import utcnow
from distill_core.keys import mask
from distill_core.store import Job, Store
from distill_core.store.models import ACTIVE_JOB_STATUSES, User
from distill_core.study.access import Capability, belongs, entry

#: Seconds without a heartbeat after which a running job counts as stopped.
STALE_AFTER_S = 120
ACTIVE = ACTIVE_JOB_STATUSES


class JobCancelled(Exception):
    """Raised inside a job when its cancel flag is seen."""


#: A job that ended with every part tried but some failed (a label run with texts in error).
FINISHED_WITH_ERRORS = "finished with errors"


@dataclass
class JobOutcome:
    """What a job's runner returns: the result stored on the job, its final status ("done",
    ``FINISHED_WITH_ERRORS`` or "failed") and the one sentence the page shows."""

    result: dict[str, Any] = field(default_factory=dict)
    status: str = "done"
    message: str = "Finished."


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


def update_job(store: Store, job_id: int, **fields: Any) -> bool:
    """Write progress fields and a heartbeat; returns whether cancel was requested. The
    message, if any, is masked."""
    if "message" in fields:
        fields["message"] = mask(fields["message"])
    with store.session() as s:
        s.execute(update(Job).where(Job.id == job_id).values(heartbeat_at=utcnow(), **fields))
        return bool(s.scalar(select(Job.cancel_requested).where(Job.id == job_id)))


@entry(Capability.EDIT)
def request_cancel(session, user: User, project_id: int, job_id: int) -> None:
    """Ask a job to stop; it stops at its next check and keeps what it has done."""
    job = belongs(session.get(Job, job_id), project_id, "job")
    if job.status == "queued":
        job.status, job.message, job.finished_at = (
            "cancelled",
            "Cancelled before it started.",
            utcnow(),
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
