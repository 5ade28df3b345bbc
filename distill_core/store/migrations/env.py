"""Alembic environment: runs on the connection the Store hands over, or on DISTILL_DATABASE_URL."""

from alembic import context
from sqlalchemy import create_engine

from distill_core.config import Settings
from distill_core.store.models import Base

config = context.config
target_metadata = Base.metadata


def run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = create_engine(Settings.from_env().database_url)
    with engine.begin() as conn:
        run(conn)
