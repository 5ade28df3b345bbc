"""What happened in a project and who did it: the activity log (samples drawn, the held-out
score seen, trainings, exports, member changes), what each person spent on the LLM, and the
project's budget that labelling respects. Owners read them; nothing here holds a key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from distill_core.store.models import Activity, Job, Project, User
from distill_core.study.access import Capability, ProjectError, entry


def record(session: Session, user: User, project_id: int, action: str, **details: Any) -> None:
    """Add one line to the project's activity log (called by the entry points that act)."""
    session.add(
        Activity(
            project_id=project_id, user_id=user.id if user else None, action=action, details=details
        )
    )
    session.flush()


@dataclass(frozen=True)
class Event:
    at: datetime
    who: str
    action: str
    details: dict[str, Any]


@entry(Capability.MANAGE)
def recent(session: Session, user: User, project_id: int, limit: int = 200) -> list[Event]:
    """The project's latest activity, newest first."""
    rows = session.execute(
        select(Activity, User.username)
        .outerjoin(User, User.id == Activity.user_id)
        .where(Activity.project_id == project_id)
        .order_by(Activity.id.desc())
        .limit(limit)
    ).all()
    return [Event(a.at, name or "(removed user)", a.action, a.details or {}) for a, name in rows]


@dataclass(frozen=True)
class Usage:
    """What one person's labelling jobs asked of the LLM in a project."""

    who: str
    jobs: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


@entry(Capability.MANAGE)
def usage(session: Session, user: User, project_id: int) -> list[Usage]:
    """Tokens and cost of the project's labelling jobs, per person, most spent first."""
    rows = session.execute(
        select(
            User.username,
            func.count(Job.id),
            func.coalesce(func.sum(Job.prompt_tokens), 0),
            func.coalesce(func.sum(Job.completion_tokens), 0),
            func.coalesce(func.sum(Job.cost_usd), 0.0),
        )
        .outerjoin(User, User.id == Job.created_by)
        .where(Job.project_id == project_id, Job.kind == "label")
        .group_by(User.username)
    ).all()
    out = [
        Usage(name or "(removed user)", int(n), int(p), int(c), float(cost))
        for name, n, p, c, cost in rows
    ]
    return sorted(out, key=lambda u: -u.cost_usd)


def spent(session: Session, project_id: int) -> float:
    """US$ the project's labelling jobs have spent so far."""
    return float(
        session.scalar(
            select(func.coalesce(func.sum(Job.cost_usd), 0.0)).where(
                Job.project_id == project_id, Job.kind == "label"
            )
        )
    )


def remaining_budget(session: Session, project_id: int) -> float | None:
    """What the project may still spend on the LLM (None: no budget set)."""
    budget = session.get(Project, project_id).budget_usd
    return None if budget is None else max(0.0, budget - spent(session, project_id))


@entry(Capability.MANAGE)
def set_budget(session: Session, user: User, project_id: int, budget_usd: float | None) -> None:
    """The most the project may spend on LLM answers in all (None or 0: no limit)."""
    if budget_usd is not None and budget_usd < 0:
        raise ProjectError("A budget cannot be negative.")
    session.get(Project, project_id).budget_usd = budget_usd or None
    record(session, user, project_id, "set the budget", budget_usd=budget_usd or None)
