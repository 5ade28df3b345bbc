"""Storage: SQLAlchemy 2 models, a session layer and Alembic migrations.

SQLite under ``DISTILL_HOME`` by default; PostgreSQL when ``DISTILL_DATABASE_URL`` says so.
"""

from distill_core.store.db import Store
from distill_core.store.limits import TooLong
from distill_core.store.models import (
    Activity,
    Base,
    CodebookVersion,
    CodeEvent,
    Corpus,
    Document,
    HumanCode,
    Job,
    LabelRun,
    LabelRunItem,
    LLMResponse,
    Membership,
    Prediction,
    PredictionRun,
    Project,
    SampleItem,
    StudentModel,
    User,
    ValidationSample,
)

__all__ = [
    "Activity",
    "Base",
    "CodebookVersion",
    "CodeEvent",
    "Corpus",
    "Document",
    "HumanCode",
    "Job",
    "LLMResponse",
    "LabelRun",
    "LabelRunItem",
    "Membership",
    "Prediction",
    "PredictionRun",
    "Project",
    "SampleItem",
    "Store",
    "StudentModel",
    "TooLong",
    "User",
    "ValidationSample",
]
