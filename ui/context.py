"""Who is working on which project: the store, the acting user, the current project, the menu
and the sidebar, and the "this step needs X first" notices every page starts with."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import pandas as pd
import streamlit as st

from distill_core.config import Settings
from distill_core.store import Store
from distill_core.study import demo, projects

T = TypeVar("T")

#: The workflow's pages: (step name, script, icon). The step names are projects.STEPS.
PAGES = {
    "Projects": ("pages/projects.py", ":material/folder_open:"),
    "Data": ("pages/data.py", ":material/table:"),
    "Codebook": ("pages/codebook.py", ":material/menu_book:"),
    "LLM labels": ("pages/llm_labels.py", ":material/smart_toy:"),
    "Validate": ("pages/validate.py", ":material/fact_check:"),
    "Fine-tune": ("pages/finetune.py", ":material/model_training:"),
    "Results": ("pages/results.py", ":material/bar_chart:"),
    "Export": ("pages/export.py", ":material/download:"),
}


@dataclass(frozen=True)
class Context:
    """Who is working on which project, for this rerun, and the one way pages reach the store:
    ``read`` and ``act`` each open a session for one call into the core."""

    store: Store
    user_id: int
    username: str
    project_id: int | None
    project_name: str | None
    steps: dict[str, bool]

    def user(self, session):
        return session.get(projects.User, self.user_id)

    def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(session, *args, **kwargs)`` in a session of its own."""
        with self.store.session() as s:
            return fn(s, *args, **kwargs)

    def act(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(session, acting_user, *args, **kwargs)``: a core function that checks the
        user's role, in a session of its own (committed when it returns)."""
        with self.store.session() as s:
            return fn(s, self.user(s), *args, **kwargs)


@st.cache_resource(show_spinner="Opening the database…")
def _open_store(url: str) -> Store:
    """One migrated store per database URL and process; the demo project on a new install."""
    store = Store(url)
    store.migrate()
    with store.session() as s:
        user = projects.ensure_user(s, projects.LOCAL_USERNAME)
        if not s.query(projects.Project.id).first():
            demo.ensure_demo_project(s, user)
    return store


def get_store() -> Store:
    return _open_store(Settings.from_env().database_url)


def current_username() -> str:
    """Single-user mode: the one local user."""
    return projects.LOCAL_USERNAME


def context() -> Context:
    """The store, user and current project: kept in the session and as the user's last project,
    so a reload or a new tab opens the same project; the newest project on a first visit."""
    store = get_store()
    with store.session() as s:
        user = projects.ensure_user(s, current_username())
        mine = projects.list_projects(s, user)
        wanted = st.session_state.get("project_id") or user.last_project_id
        project = next((p for p in mine if p.id == wanted), mine[0] if mine else None)
        if project is None or wanted != project.id:
            st.session_state["project_id"] = project.id if project else None
        if project is not None and user.last_project_id != project.id:
            user.last_project_id = project.id
        steps = projects.steps_done(s, project.id) if project else {}
        return Context(
            store=store,
            user_id=user.id,
            username=user.username,
            project_id=project.id if project else None,
            project_name=project.name if project else None,
            steps=steps,
        )


def navigation(ctx: Context):
    """The pages in workflow order; a done step shows a check mark."""
    pages = []
    for step, (script, icon) in PAGES.items():
        done = ctx.steps.get(step, False) and step != "Projects"
        default = step == "Projects"  # the default page is served at "/", not at a path
        pages.append(
            st.Page(
                script,
                title=step,
                icon=":material/check_circle:" if done else icon,
                url_path=None if default else script.removeprefix("pages/").removesuffix(".py"),
                default=default,
            )
        )
    return st.navigation(pages)


def sidebar(ctx: Context) -> None:
    """Current project picker and the workflow's progress."""
    with st.sidebar:
        names = {p.id: p.name for p in ctx.act(projects.list_projects)}
        if names and ctx.project_id in names:
            picker = f"project_picker_{ctx.project_id}"
            st.selectbox(
                "Project",
                options=list(names),
                index=list(names).index(ctx.project_id),
                format_func=names.get,
                key=picker,
                on_change=_choose_project,
                args=(picker,),
                help="Every page works on this project.",
            )
            done = sum(ctx.steps.get(step, False) for step in projects.STEPS[1:])
            st.caption(f"{done} of {len(projects.STEPS) - 1} steps done (✓ in the menu).")
        else:
            st.caption("No project yet: create one on the Projects page.")


def _choose_project(picker: str) -> None:
    st.session_state["project_id"] = st.session_state[picker]


def choose_project(project_id: int) -> None:
    """Make ``project_id`` the current project (from the next rerun on)."""
    st.session_state["project_id"] = project_id


def go_to(step: str, label: str | None = None) -> None:
    """A link to a step's page."""
    st.page_link(PAGES[step][0], label=label or f"Go to {step}", icon=":material/arrow_forward:")


def require_project(ctx: Context) -> int:
    """The current project's id, or a notice with a link to the Projects page and a stop."""
    if ctx.project_id is None:
        st.info("This step needs a project. Create or choose one first.")
        go_to("Projects")
        st.stop()
    return ctx.project_id


def require_step(ctx: Context, step: str, why: str) -> None:
    """Stop the page with a link when an earlier ``step`` has no result yet."""
    require_project(ctx)
    if not ctx.steps.get(step, False):
        st.info(f"This step needs {why} first.")
        go_to(step)
        st.stop()


@st.cache_resource(max_entries=8, show_spinner="Loading the corpus…")
def _documents(url: str, corpus_id: int, uploaded_at: datetime) -> pd.DataFrame:
    store = _open_store(url)
    with store.session() as s:
        return projects.load_documents(s, corpus_id)


def documents(ctx: Context, corpus: projects.Corpus) -> pd.DataFrame:
    """The corpus as a frame, read from the database once (shared, treat as read-only)."""
    return _documents(ctx.store.url, corpus.id, corpus.uploaded_at)


def project_corpus(ctx: Context) -> projects.Corpus | None:
    return ctx.read(projects.get_corpus, ctx.project_id) if ctx.project_id else None


def secret(name: str) -> str | None:
    """A value from the environment or from ``.streamlit/secrets.toml`` (never stored)."""
    if os.environ.get(name):
        return os.environ[name]
    try:
        value = st.secrets.get(name)
    except Exception:  # no secrets file: that is fine
        return None
    return str(value) if value else None
