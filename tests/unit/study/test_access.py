"""Roles are enforced in the core: every entry point called with every role (and by a
stranger) is allowed or refused as ``study.access.ALLOWED`` says, ids from another project
are never read through this one, a coder codes as themselves only, and the pages and the UI
reach the core through entry points alone."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path

import pytest

import distill_core
from distill_core.study import access, projects, runs, students, validation
from distill_core.study.access import ALLOWED, ENTRY_POINTS, AccessDenied, Capability
from tests.fakes import add_ready_model, demo_with_run

REPO = Path(__file__).resolve().parents[3]

#: Core functions that act for the user outside any one project (their own list, a new one).
USER_SCOPED = {
    "distill_core.study.accounts.list_users",  # administrators only (accounts checks)
    "distill_core.study.accounts.admit",
    "distill_core.study.accounts.create_user",
    "distill_core.study.accounts.set_password",
    "distill_core.study.projects.overview",
    "distill_core.study.projects.list_projects",
    "distill_core.study.projects.create_project",
    "distill_core.study.demo.ensure_demo_project",
}


def _load_every_module() -> None:
    skip = ("distill_core.__main__", "distill_core.store.migrations", "distill_core.jobs.worker")
    for m in pkgutil.walk_packages(distill_core.__path__, "distill_core."):
        if not m.name.startswith(skip):
            importlib.import_module(m.name)


@pytest.fixture
def team(store):
    """The demo project with a label run and a ready model, and one member of every role."""
    pid, run_id = demo_with_run(store)
    add_ready_model(store, pid, run_id)
    with store.session() as s:
        owner = projects.ensure_user(s)
        for role in ("researcher", "coder", "viewer"):
            projects.ensure_user(s, f"{role}-user")
            projects.set_member(s, owner, pid, f"{role}-user", role)
        projects.ensure_user(s, "stranger")
    return pid, run_id


def test_every_entry_point_allows_exactly_the_roles_that_may(store, team) -> None:
    _load_every_module()
    pid, _ = team
    assert len(ENTRY_POINTS) >= 45
    people = {"owner": "local", "researcher": "researcher-user", "coder": "coder-user"}
    people |= {"viewer": "viewer-user", None: "stranger"}
    wrong = []
    for name, (fn, capability) in sorted(ENTRY_POINTS.items()):
        for role, username in people.items():
            with store.session() as s:
                user = projects.ensure_user(s, username)
                allowed = role is not None and capability in ALLOWED[role]
                try:
                    fn(s, user, pid)  # too few arguments on purpose: the guard comes first
                except AccessDenied:
                    refused = True
                except Exception:
                    refused = False
                else:
                    refused = False
                s.rollback()
            if refused == allowed:
                wrong.append(f"{name} as {role}: {'refused' if refused else 'allowed'}")
    assert wrong == []


def test_a_missing_project_is_one_sentence(store, team) -> None:
    with store.session() as s, pytest.raises(projects.ProjectError, match="no project with id"):
        runs.project_runs(s, projects.ensure_user(s), 999)


def test_an_id_from_another_project_is_never_read_through_this_one(store, team) -> None:
    pid, run_id = team
    with store.session() as s:
        owner = projects.ensure_user(s)
        other = projects.create_project(s, owner, "Another study").id
        sample = validation.current_sample(s, owner, pid)
        model = students.latest_model(s, owner, pid)
    with store.session() as s:
        owner = projects.ensure_user(s)
        with pytest.raises(projects.ProjectError, match="not part of this project"):
            runs.run_results(s, owner, other, run_id)
        with pytest.raises(projects.ProjectError, match="not part of this project"):
            validation.sample_docs(s, owner, other, sample)
        with pytest.raises(projects.ProjectError, match="not part of this project"):
            students.model_record(s, owner, other, model.id)


def test_a_coder_codes_as_themselves_only(store, team) -> None:
    pid, _ = team
    with store.session() as s:
        coder = projects.ensure_user(s, "coder-user")
        doc = validation.sample_docs(s, coder, pid, validation.current_sample(s, coder, pid))[
            0
        ].doc_id
        validation.save_code(s, coder, pid, doc, "coder-user", "economy")
        with pytest.raises(AccessDenied, match="as themselves"):
            validation.save_code(s, coder, pid, doc, "expert_a", "economy")
        with pytest.raises(AccessDenied, match="as themselves"):
            validation.own_codes(s, coder, pid, "expert_a")
        mine = validation.own_codes(s, coder, pid)
        assert list(mine["coder"]) == ["coder-user"]
        with pytest.raises(AccessDenied):
            validation.codes_frame(s, coder, pid)  # nobody else's codes


def test_a_project_always_keeps_an_owner(store, team) -> None:
    pid, _ = team
    with store.session() as s:
        owner = projects.ensure_user(s)
        with pytest.raises(projects.ProjectError, match="needs an owner"):
            projects.remove_member(s, owner, pid, "local")
        projects.set_member(s, owner, pid, "researcher-user", "owner")
        projects.remove_member(s, owner, pid, "local")
        assert access.role_of(s, owner, pid) is None


def _act_targets(path: Path) -> list[tuple[str, str]]:
    """(what the code passes to ``ctx.act`` or ``ui.start_job``, its resolved name)."""
    tree = ast.parse(path.read_text())
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                imported[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if called not in ("act", "start_job", "_try"):  # _try(ctx, fn, ...) in ui/members
            continue
        target = node.args[0] if called == "act" else node.args[min(1, len(node.args) - 1)]
        text = ast.unparse(target)
        head, _, rest = text.partition(".")
        resolved = imported.get(head, head) + (f".{rest}" if rest else "")
        found.append((text, resolved))
    return found


def test_the_pages_and_the_ui_reach_the_core_through_entry_points_only() -> None:
    _load_every_module()
    allowed = set(ENTRY_POINTS) | USER_SCOPED
    files = sorted((REPO / "steps").glob("*.py")) + sorted((REPO / "ui").glob("*.py"))
    calls = [(f.name, text, name) for f in files for text, name in _act_targets(f)]
    assert len(calls) >= 40
    generic = {("jobs.py", "start", "start"), ("members.py", "fn", "fn"), ("admin.py", "fn", "fn")}
    stray = [c for c in calls if c[2] not in allowed and c not in generic]
    assert stray == []
    sessions = [f.name for f in files if "store.session(" in f.read_text()]
    assert set(sessions) <= {"context.py"}  # the store is opened once, for the signed-in user


def test_capabilities_of_the_roles() -> None:
    assert ALLOWED["owner"] == frozenset(Capability)
    assert Capability.MANAGE not in ALLOWED["researcher"]
    assert Capability.ADJUDICATE in ALLOWED["researcher"]  # the experts settle disagreements
    assert ALLOWED["coder"] == {Capability.MEMBER, Capability.CODE}
    assert ALLOWED["viewer"] == {Capability.MEMBER, Capability.READ}
