"""Who may do what in a project: roles, what each role allows, and the guard every core entry
point goes through.

Roles (``store.models.ROLES``):

* **owner** — everything, including members and deleting the project;
* **researcher** — everything but members and deletion (adjudicating coders' disagreements
  included: owners and researchers are the experts who settle a text's gold code);
* **coder** — codes the sample's texts as themselves, and reads the codebook: no LLM label, no
  other coder's code, no agreement figure, no export;
* **viewer** — reads results and exports; changes nothing.

An entry point is a core function that reads or writes project data and takes
``(session, user, project_id, ...)``; ``@entry(capability)`` checks the acting user's role
before it runs and registers it in ``ENTRY_POINTS`` (a test calls each with every role). The
pages reach the core only through entry points, so they are never the only guard.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from distill_core.store.models import Membership, Project, User


class Capability(StrEnum):
    MEMBER = "member"  # any role: the project's name, its steps, the codebook, the sample
    CODE = "code"  # code texts (as oneself)
    READ = "read"  # LLM labels, codes, figures, models, exports
    EDIT = "edit"  # upload, codebook, labelling, samples, imports, training, endpoints
    ADJUDICATE = "adjudicate"  # settle coders' disagreements: a text's gold code and why
    MANAGE = "manage"  # members, deleting the project


ALLOWED: dict[str, frozenset[Capability]] = {
    "owner": frozenset(Capability),
    "researcher": frozenset(Capability) - {Capability.MANAGE},
    "coder": frozenset({Capability.MEMBER, Capability.CODE}),
    "viewer": frozenset({Capability.MEMBER, Capability.READ}),
}

#: What each capability lets one do, as the refusal says it.
_DOING = {
    Capability.MEMBER: "open",
    Capability.CODE: "code in",
    Capability.READ: "read the results of",
    Capability.EDIT: "change",
    Capability.ADJUDICATE: "adjudicate codes in",
    Capability.MANAGE: "manage",
}


class ProjectError(ValueError):
    """A user-caused problem (a taken name, a missing project); str(e) is one sentence."""


class AccessDenied(ProjectError):
    """The user holds no (or too small a) role in the project."""


def role_of(session: Session, user: User, project_id: int) -> str | None:
    """The user's role in the project (None when not a member)."""
    return session.scalar(
        select(Membership.role).where(
            Membership.project_id == project_id, Membership.user_id == user.id
        )
    )


def can(session: Session, user: User, project_id: int, capability: Capability) -> bool:
    """Whether the user's role in the project allows ``capability``."""
    role = role_of(session, user, project_id) if user is not None and user.active else None
    return role is not None and capability in ALLOWED.get(role, frozenset())


def check(session: Session, user: User, project_id: int, capability: Capability) -> Project:
    """The project, when the user's role allows ``capability``; else ``AccessDenied``."""
    project = session.get(Project, project_id) if project_id is not None else None
    if project is None:
        raise ProjectError(f"There is no project with id {project_id}.")
    if user is None or not can(session, user, project_id, capability):
        raise AccessDenied(
            f"You may not {_DOING[capability]} the project '{project.name}' "
            f"(your role: {role_of(session, user, project_id) if user else 'none'})."
        )
    return project


F = TypeVar("F", bound=Callable[..., Any])

#: Every entry point: "module.function" → (function, capability).
ENTRY_POINTS: dict[str, tuple[Callable[..., Any], Capability]] = {}


def entry(capability: Capability) -> Callable[[F], F]:
    """Make a function ``fn(session, user, project_id, ...)`` an entry point: the user's role
    must allow ``capability`` in the project before it runs."""

    def wrap(fn: F) -> F:
        params = list(inspect.signature(fn).parameters)
        if params[:3] != ["session", "user", "project_id"]:
            raise TypeError(f"{fn.__qualname__} must take (session, user, project_id, ...)")

        @functools.wraps(fn)
        def guarded(session, user, project_id, *args, **kwargs):
            check(session, user, project_id, capability)
            return fn(session, user, project_id, *args, **kwargs)

        guarded.capability = capability  # type: ignore[attr-defined]
        ENTRY_POINTS[f"{fn.__module__}.{fn.__qualname__}"] = (guarded, capability)
        return guarded  # type: ignore[return-value]

    return wrap


def belongs(obj: Any, project_id: int, what: str) -> Any:
    """``obj`` (a run, sample, model… with a ``project_id``) when it is the project's; else a
    ``ProjectError``: an id from another project is never read through this one."""
    if obj is None or getattr(obj, "project_id", None) != project_id:
        raise ProjectError(f"That {what} is not part of this project.")
    return obj
