"""Who is working on which project: the store, the acting user, the current project, the menu
and the sidebar, and the "this step needs X first" notices every page starts with."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import streamlit as st

from distill_core.config import Settings
from distill_core.store import Store
from distill_core.study import demo, projects
from distill_core.study.access import ALLOWED, Capability, role_of
from ui import auth

T = TypeVar("T")

#: The workflow's pages: (step name, script, icon). The step names are projects.STEPS.
PAGES = {
    "Projects": ("steps/projects.py", ":material/folder_open:"),
    "Data": ("steps/data.py", ":material/table:"),
    "Codebook": ("steps/codebook.py", ":material/menu_book:"),
    "LLM labels": ("steps/llm_labels.py", ":material/smart_toy:"),
    "Validate": ("steps/validate.py", ":material/fact_check:"),
    "Fine-tune": ("steps/finetune.py", ":material/model_training:"),
    "Results": ("steps/results.py", ":material/bar_chart:"),
    "Export": ("steps/export.py", ":material/download:"),
}


@dataclass(frozen=True)
class Context:
    """Who is working on which project, for this rerun, and the one way pages reach the store:
    ``act`` opens a session for one call into a core entry point as the acting user."""

    store: Store
    user_id: int
    username: str
    project_id: int | None
    project_name: str | None
    steps: dict[str, bool]
    role: str | None = None
    settings: Settings | None = None
    is_admin: bool = False

    def user(self, session):
        return session.get(projects.User, self.user_id)

    def can(self, capability: Capability) -> bool:
        """Whether the user's role in the current project allows ``capability`` (the core
        checks again; this only decides what the page offers)."""
        return self.role is not None and capability in ALLOWED.get(self.role, frozenset())

    @property
    def hosted(self) -> bool:
        return bool(self.settings and self.settings.hosted)

    def act(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(session, acting_user, *args, **kwargs)``: a core function that checks the
        user's role, in a session of its own (committed when it returns)."""
        with self.store.session() as s:
            return fn(s, self.user(s), *args, **kwargs)


@st.cache_resource(show_spinner="Opening the database…")
def _open_store(url: str, local: bool = True) -> Store:
    """One migrated store per database URL and process; in single-user mode, the demo project
    on a new install (on a shared instance each person makes their own on the Projects page)."""
    store = Store(url)
    store.migrate()
    if local:
        with store.session() as s:
            user = projects.ensure_user(s, projects.LOCAL_USERNAME)
            if not s.query(projects.Project.id).first():
                demo.ensure_demo_project(s, user)
    return store


def get_store() -> Store:
    settings = Settings.from_env()
    return _open_store(settings.database_url, not settings.hosted)


def context() -> Context:
    """The store, user and current project: kept in the session and as the user's last project,
    so a reload or a new tab opens the same project; the newest project on a first visit."""
    settings = Settings.from_env()
    _refuse_open_local_mode(settings)
    store = get_store()
    with store.session() as s:
        user = auth.current_user(s, settings)
        mine = projects.list_projects(s, user)
        wanted = st.session_state.get("project_id") or user.last_project_id
        project = next((p for p in mine if p.id == wanted), mine[0] if mine else None)
        if project is None or wanted != project.id:
            st.session_state["project_id"] = project.id if project else None
        if project is not None and user.last_project_id != project.id:
            user.last_project_id = project.id
        steps = projects.steps_done(s, user, project.id) if project else {}
        return Context(
            store=store,
            user_id=user.id,
            username=user.username,
            project_id=project.id if project else None,
            project_name=project.name if project else None,
            steps=steps,
            role=role_of(s, user, project.id) if project else None,
            settings=settings,
            is_admin=bool(user.is_admin),
        )


#: The steps each role works in (a page not listed for a role is not served to it).
STEPS_OF_ROLE = {
    "owner": tuple(PAGES),
    "researcher": tuple(PAGES),
    "coder": ("Projects", "Validate"),
    "viewer": ("Projects", "Results", "Export"),
    None: ("Projects",),
}


#: Addresses single-user mode may listen on without being told it is meant.
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _refuse_open_local_mode(settings: Settings) -> None:
    """Single-user mode has no sign-in, so whoever reaches the address is its owner: it runs
    on a loopback address only, unless DISTILL_LOCAL_ON_NETWORK=1 says that is intended."""
    address = st.get_option("server.address") or "0.0.0.0"
    if settings.auth != "local" or address in LOOPBACK:
        return
    if os.environ.get("DISTILL_LOCAL_ON_NETWORK") == "1":
        return
    st.error(
        f"Distill runs in single-user mode (no sign-in) but listens on {address}, where others "
        "could reach it: set DISTILL_AUTH to oidc or accounts, listen on 127.0.0.1, or set "
        "DISTILL_LOCAL_ON_NETWORK=1 if that is what you mean."
    )
    st.navigation([st.Page(PAGES["Projects"][0])], position="hidden")  # no menu of every file
    st.stop()


def navigation(ctx: Context):
    """The pages the user's role works in, in workflow order; a done step shows a check mark."""
    pages = []
    for step, (script, icon) in PAGES.items():
        if step not in STEPS_OF_ROLE.get(ctx.role, ("Projects",)):
            continue
        done = ctx.steps.get(step, False) and step != "Projects"
        default = step == "Projects"  # the default page is served at "/", not at a path
        pages.append(
            st.Page(
                script,
                title=step,
                icon=":material/check_circle:" if done else icon,
                url_path=None if default else script.removeprefix("steps/").removesuffix(".py"),
                default=default,
            )
        )
    return st.navigation(pages)


def sidebar(ctx: Context) -> None:
    """Current project picker and the workflow's progress; who is signed in."""
    auth.sign_out_button()
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


def for_step(ctx: Context, step: str) -> None:
    """Stop a page whose step the user's role does not work in (the menu does not list it; a
    saved link or an old tab still must not show it)."""
    require_project(ctx)
    if step not in STEPS_OF_ROLE.get(ctx.role, ("Projects",)):
        st.info(
            f"Your role in this project ({ctx.role or 'none'}) does not include the {step} step."
        )
        go_to("Projects")
        st.stop()


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


def project_corpus(ctx: Context) -> projects.Corpus | None:
    return ctx.act(projects.get_corpus, ctx.project_id) if ctx.project_id else None


def secret(name: str) -> str | None:
    """A value from the environment or from ``.streamlit/secrets.toml`` (never stored)."""
    if os.environ.get(name):
        return os.environ[name]
    try:
        value = st.secrets.get(name)
    except Exception:  # no secrets file: that is fine
        return None
    return str(value) if value else None
