"""Fixtures shared by the whole suite: stores on SQLite and PostgreSQL, the shared data sets."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from distill_core.store import Store

REPO = Path(__file__).resolve().parents[1]
#: Real human-labelled data sets next to the repository (never copied into it).
SHARED_DATA = REPO.parent / "shared" / "data"
POSTGRES_URL = os.environ.get(
    "DISTILL_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

_pg_reason: str | None = None


def pytest_collection_modifyitems(config, items):
    """Browser tests last: the quick tests report first, and the browser session starts once."""
    items.sort(key=lambda item: "tests/e2e/" in item.nodeid.replace("\\", "/"))


def postgres_unavailable() -> str | None:
    """Why PostgreSQL cannot be used (None when it can); asked once per run."""
    global _pg_reason
    if _pg_reason is None:
        from sqlalchemy import create_engine, text

        try:
            engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
            with engine.connect() as conn:
                conn.execute(text("select 1"))
            engine.dispose()
            _pg_reason = ""
        except Exception as exc:  # any failure to connect means: skip, and say why
            _pg_reason = f"PostgreSQL is not reachable at {POSTGRES_URL}: {type(exc).__name__}"
    return _pg_reason or None


def make_postgres_store() -> tuple[Store, callable]:
    """A migrated store in a fresh schema of the test database, and a function that drops it."""
    from sqlalchemy import create_engine, text

    schema = f"distill_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    store = Store(POSTGRES_URL, schema=schema)
    store.migrate()

    def drop() -> None:
        store.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()

    return store, drop


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path):
    """A migrated, empty store on SQLite (a file in tmp_path) and on PostgreSQL (own schema)."""
    if request.param == "sqlite":
        s = Store(f"sqlite:///{tmp_path / 'distill.db'}")
        s.migrate()
        yield s
        s.dispose()
        return
    reason = postgres_unavailable()
    if reason:
        pytest.skip(reason)
    s, drop = make_postgres_store()
    try:
        yield s
    finally:
        drop()


#: Settings that decide where an API key may go: cleared for the tests of keys and endpoints,
#: so that the machine running the tests cannot change their outcome.
KEY_SETTINGS = (
    "DISTILL_AUTH",
    "DISTILL_SERVER_KEY_URLS",
    "DISTILL_ALLOWED_PRIVATE_URLS",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)


@pytest.fixture
def no_key_settings(monkeypatch):
    """None of ``KEY_SETTINGS`` set; returns ``monkeypatch`` to set what a test needs."""
    for name in KEY_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def shared_data() -> Path:
    """The folder of real data sets, or a skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data sets not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _fresh_kept_figures():
    """Figures kept between page loads (``study.memo``) start empty in every test, so a test
    that edits stored rows by hand never reads another test's figures."""
    from distill_core.study import memo

    memo.clear()
    yield
