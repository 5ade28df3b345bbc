"""Engine, sessions and migrations for one database."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from distill_core.config import Settings
from distill_core.store.limits import install as install_limits

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
T = TypeVar("T")


class Store:
    """A database: ``with store.session() as s:`` commits on success and rolls back on error.

    ``schema`` (PostgreSQL only) puts every table in that schema, which the tests use to keep
    their own tables apart.
    """

    def __init__(self, url: str, *, schema: str | None = None, echo: bool = False) -> None:
        self.url = url
        self.schema = schema
        kwargs: dict = {"echo": echo, "pool_pre_ping": True}
        if url.startswith("sqlite"):
            path = url.split("///", 1)[-1]
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        elif schema:
            kwargs["connect_args"] = {"options": f"-csearch_path={schema}"}
        self.engine: Engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        install_limits(self.engine)  # the same length rules on SQLite and PostgreSQL
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Store:
        settings = settings or Settings.from_env()
        return cls(settings.database_url)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def migrate(self, revision: str = "head") -> None:
        """Bring the schema to ``revision`` with Alembic (the first schema is a migration too),
        then refresh the query planner's statistics (:func:`analyze`)."""
        from alembic import command

        with self.engine.begin() as connection:
            config = alembic_config()
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
        with self.session() as session:
            analyze(session)

    def current_revision(self) -> str | None:
        from alembic.runtime.migration import MigrationContext

        with self.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()

    def dispose(self) -> None:
        self.engine.dispose()


#: Rows of each index SQLite's ANALYZE reads (``PRAGMA analysis_limit``): statistics good enough
#: for the query planner in milliseconds, whatever the size of the database.
ANALYSIS_LIMIT = 1000


def analyze(session: Session) -> None:
    """Refresh the query planner's statistics after a large write (a corpus saved, a run's
    results, a corpus pass), in the session's transaction. SQLite keeps none until ANALYZE;
    without them it found a 300-text sample's documents by reading all 100,000 of the corpus
    (48 ms, 2 ms with them). PostgreSQL's autovacuum keeps its own, so this is SQLite's alone."""
    if session.get_bind().dialect.name != "sqlite":
        return
    session.execute(text(f"PRAGMA analysis_limit={ANALYSIS_LIMIT}"))
    session.execute(text("ANALYZE"))


def connection_lost(exc: BaseException) -> bool:
    """Whether ``exc`` says the database connection broke (dropped, restarted, timed out, or
    a locked SQLite file): the same write on a fresh connection may well succeed."""
    from sqlalchemy.exc import DBAPIError, OperationalError

    return isinstance(exc, OperationalError) or (
        isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
    )


def retry_lost(fn: Callable[[], T], *, attempts: int = 3, pause_s: float = 0.5) -> T:
    """``fn()``, called again (on a fresh connection from the pool) when the connection was
    lost, up to ``attempts`` times with a growing pause; for idempotent writes only (an upsert,
    a progress update), so that a dropped connection mid-write loses nothing."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt == attempts or not connection_lost(exc):
                raise
            time.sleep(pause_s * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def alembic_config():
    """Alembic configuration pointing at the package's migrations (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()
