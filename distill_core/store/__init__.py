"""Storage: SQLAlchemy 2 models, a session layer and Alembic migrations.

SQLite under ``DISTILL_HOME`` by default; PostgreSQL when ``DISTILL_DATABASE_URL`` says so.
"""

from distill_core.store.db import Store
from distill_core.store.models import (
    Base,
    CodebookVersion,
    Corpus,
    Document,
    Membership,
    Project,
    User,
)

__all__ = [
    "Base",
    "CodebookVersion",
    "Corpus",
    "Document",
    "Membership",
    "Project",
    "Store",
    "User",
]
