"""AppTest helpers: a fresh DISTILL_HOME per test and a way to open one page of the app."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def home(request, tmp_path, monkeypatch) -> Path:
    """A fresh, empty DISTILL_HOME: what a newcomer's first start sees, with the store in it
    (SQLite) or in a fresh schema of the test PostgreSQL database, as a lab hosts it."""
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DISTILL_DATABASE_URL", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(REPO)
    if request.param == "postgres":
        from sqlalchemy import create_engine, text

        from tests.conftest import POSTGRES_URL, postgres_unavailable

        reason = postgres_unavailable()
        if reason:
            pytest.skip(reason)
        schema = f"distill_app_{uuid.uuid4().hex[:10]}"
        admin = create_engine(POSTGRES_URL)
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        monkeypatch.setenv(
            "DISTILL_DATABASE_URL", f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        )
        yield tmp_path / "home"
        _close_cached_stores()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
        return
    yield tmp_path / "home"
    _close_cached_stores()


def _close_cached_stores() -> None:
    """The app caches one store per database URL and process: let each test open its own."""
    import streamlit as st

    st.cache_resource.clear()


def open_page(script: str | None = None, *, timeout: float = 60) -> AppTest:
    """Run app.py (navigation, sidebar) and switch to ``script`` (e.g. "steps/data.py")."""
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=timeout)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if script:
        at.switch_page(script)
        at.run()
    return at


def open_tab(at: AppTest, name: str, key: str = "tab") -> AppTest:
    """Choose the tab ``name`` of a page whose tabs are computed only when chosen (Validate's
    tabs, keyed "tab"; Codebook's, "cb_tab": ``st.tabs(on_change="rerun")``), as a click on it
    does, and run the page."""
    at.session_state[key] = name
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def new_project_page(name: str, script: str) -> AppTest:
    """Create the project ``name`` on the Projects page, then switch to ``script``."""
    at = open_page()
    next(t for t in at.text_input if t.label == "Name").input(name)
    next(b for b in at.button if b.label == "Create project").click()
    at.run()
    at.switch_page(script)
    at.run()
    return at


def texts(at: AppTest) -> str:
    """Every piece of text the page shows, for assertions about what a user reads."""
    parts = []
    for kind in (
        "title",
        "header",
        "subheader",
        "markdown",
        "caption",
        "info",
        "success",
        "warning",
        "error",
        "text",
    ):
        parts += [str(e.value) for e in getattr(at, kind)]
    parts += [e.proto.text for e in at.get("progress")]
    return "\n".join(parts)
