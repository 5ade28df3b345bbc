"""AppTest helpers: a fresh DISTILL_HOME per test and a way to open one page of the app."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh, empty DISTILL_HOME (SQLite): what a newcomer's first start sees."""
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DISTILL_DATABASE_URL", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(REPO)
    return tmp_path / "home"


def open_page(script: str | None = None, *, timeout: float = 60) -> AppTest:
    """Run app.py (navigation, sidebar) and switch to ``script`` (e.g. "pages/data.py")."""
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=timeout)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    if script:
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
