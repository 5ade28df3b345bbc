"""What every page needs: the store, the acting user, the current project, the sidebar,
"this step needs X first" notices, and cached reads. The one UI helper module; pages stay thin."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import streamlit as st

from distill_core import projects
from distill_core.config import Settings
from distill_core.store import Store

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
    """Who is working on which project, for this rerun."""

    store: Store
    user_id: int
    username: str
    project_id: int | None
    project_name: str | None
    steps: dict[str, bool]

    def user(self, session):
        return session.get(projects.User, self.user_id)


@st.cache_resource(show_spinner="Opening the database…")
def _open_store(url: str) -> Store:
    """One migrated store per database URL and process; the demo project on a new install."""
    store = Store(url)
    store.migrate()
    with store.session() as s:
        user = projects.ensure_user(s, projects.LOCAL_USERNAME)
        if not s.query(projects.Project.id).first():
            projects.ensure_demo_project(s, user)
    return store


def get_store() -> Store:
    return _open_store(Settings.from_env().database_url)


def current_username() -> str:
    """Single-user mode: the one local user."""
    return projects.LOCAL_USERNAME


def context() -> Context:
    """The store, user and current project (kept in the session; the first project by default)."""
    store = get_store()
    with store.session() as s:
        user = projects.ensure_user(s, current_username())
        mine = projects.list_projects(s, user)
        wanted = st.session_state.get("project_id")
        project = next((p for p in mine if p.id == wanted), mine[0] if mine else None)
        if project is None or wanted != project.id:
            st.session_state["project_id"] = project.id if project else None
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
        pages.append(
            st.Page(
                script,
                title=step,
                icon=":material/check_circle:" if done else icon,
                url_path=script.removeprefix("pages/").removesuffix(".py"),
                default=step == "Projects",
            )
        )
    return st.navigation(pages)


def sidebar(ctx: Context) -> None:
    """Current project picker and the workflow's progress."""
    with st.sidebar:
        store = ctx.store
        with store.session() as s:
            mine = projects.list_projects(s, ctx.user(s))
            names = {p.id: p.name for p in mine}
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


def require_project(ctx: Context) -> int:
    """The current project's id, or a notice with a link to the Projects page and a stop."""
    if ctx.project_id is None:
        st.info("This step needs a project. Create or choose one first.")
        st.page_link(PAGES["Projects"][0], label="Go to Projects", icon=":material/arrow_forward:")
        st.stop()
    return ctx.project_id


def require_step(ctx: Context, step: str, why: str) -> None:
    """Stop the page with a link when an earlier ``step`` has no result yet."""
    require_project(ctx)
    if not ctx.steps.get(step, False):
        st.info(f"This step needs {why} first.")
        st.page_link(PAGES[step][0], label=f"Go to {step}", icon=":material/arrow_forward:")
        st.stop()


def coming_next(step: str, what: str) -> None:
    """A page of a workflow step that is not built yet: says so, shows nothing made up."""
    st.title(step)
    st.info(
        f"This step comes next in Distill's development. {what}", icon=":material/construction:"
    )


@st.cache_resource(max_entries=8, show_spinner="Loading the corpus…")
def _documents(url: str, corpus_id: int, uploaded_at: datetime) -> pd.DataFrame:
    store = _open_store(url)
    with store.session() as s:
        return projects.load_documents(s, corpus_id)


def documents(ctx: Context, corpus: projects.Corpus) -> pd.DataFrame:
    """The corpus as a frame, read from the database once (shared, treat as read-only)."""
    return _documents(ctx.store.url, corpus.id, corpus.uploaded_at)


def project_corpus(ctx: Context) -> projects.Corpus | None:
    with ctx.store.session() as s:
        return projects.get_corpus(s, ctx.project_id) if ctx.project_id else None
