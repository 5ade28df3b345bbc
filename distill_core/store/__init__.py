"""Storage: SQLAlchemy 2 models, a session layer and Alembic migrations.

SQLite under ``DISTILL_HOME`` by default; PostgreSQL when ``DISTILL_DATABASE_URL`` says so.
"""

from distill_core.store.db import Store
from distill_core.store.models import (
    Base,
    CodebookVersion,
    Corpus,
    Document,
    Job,
    LabelRun,
    LabelRunItem,
    LLMResponse,
    Membership,
    Project,
    User,
)

__all__ = [
    "Base",
    "CodebookVersion",
    "Corpus",
    "Document",
    "Job",
    "LLMResponse",
    "LabelRun",
    "LabelRunItem",
    "Membership",
    "Project",
    "Store",
    "User",
]
