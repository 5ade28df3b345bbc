"""The tables. Every artefact a study needs for its report is kept; nothing is updated in place
that a later step depends on (codebook versions are immutable rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from distill_core.clock import utcnow

#: JSON on SQLite, JSONB on PostgreSQL.
JSONType = JSON().with_variant(JSONB(), "postgresql")

#: Roles a user can hold in a project, most powerful first (what each may do: study.access).
ROLES = ("owner", "researcher", "coder", "viewer")


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSONType}


class User(Base):
    """A person. Single-user mode acts as one local user, so sign-in changes no core signature."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[str] = mapped_column(String(200), default="")
    #: The project the user worked on last: a new browser session opens it.
    last_project_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: From the identity provider (OIDC) or given when an account is made; unique when set.
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
    #: An administrator admits users and makes accounts; roles in projects are separate.
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Admitted to the instance (a new OIDC user waits for an administrator).
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: Built-in accounts only: an argon2 hash (never the password), failed sign-ins in a row
    #: and the time until which the account is locked after too many.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Project(Base):
    """One study: a corpus, its codebook versions and, later, labels, codes and models."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    is_demo: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    #: The most the project may spend on LLM answers in all (US$; None: no limit).
    budget_usd: Mapped[float | None] = mapped_column(Float)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="project", cascade="all, delete-orphan", passive_deletes=True
    )


class Membership(Base):
    """A user's role in a project (owner, researcher, coder, viewer)."""

    __tablename__ = "memberships"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(20), default="owner")

    project: Mapped[Project] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship()


class Corpus(Base):
    """An uploaded file as read: its chosen columns, size and the ingest report."""

    __tablename__ = "corpora"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(500))
    file_format: Mapped[str] = mapped_column(String(20))
    text_column: Mapped[str] = mapped_column(String(500))
    id_column: Mapped[str | None] = mapped_column(String(500))
    ids_generated: Mapped[bool] = mapped_column(Boolean, default=False)
    row_count: Mapped[int] = mapped_column(Integer)
    encoding: Mapped[str | None] = mapped_column(String(40))
    sha256: Mapped[str] = mapped_column(String(64))
    report: Mapped[dict[str, Any]] = mapped_column(default=dict)
    uploaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Document(Base):
    """One text of a corpus, with its stable id and the file's other columns."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("corpus_id", "doc_id", name="uq_documents_corpus_doc"),
        Index("ix_documents_corpus_position", "corpus_id", "position"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    corpus_id: Mapped[int] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    doc_id: Mapped[str] = mapped_column(String(500))
    text: Mapped[str] = mapped_column(Text)
    extra: Mapped[dict[str, Any]] = mapped_column(default=dict)


class CodebookVersion(Base):
    """An immutable saved codebook; every save makes a new version number."""

    __tablename__ = "codebook_versions"
    __table_args__ = (
        UniqueConstraint("project_id", "version", name="uq_codebook_project_version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(500))
    content: Mapped[dict[str, Any]] = mapped_column()
    fingerprint: Mapped[str] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    #: Saved after someone had seen a held-out test score: every figure from it is marked.
    after_test_seen: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


#: A job that has not ended yet.
ACTIVE_JOB_STATUSES = ("queued", "running")


class Job(Base):
    """A long task run by a worker (labelling, training, inference): progress, cost, cancel flag.

    Never holds an API key: keys reach a worker in memory only (see ``distill_core.jobs.queue``).
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20), default="queued")
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    done: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class LabelRun(Base):
    """One labelling of a set of texts with one codebook version by one teacher."""

    __tablename__ = "label_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    corpus_id: Mapped[int | None] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"))
    codebook_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("codebook_versions.id", ondelete="SET NULL")
    )
    codebook: Mapped[dict[str, Any]] = mapped_column(default=dict)
    teacher: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    run_key: Mapped[str] = mapped_column(String(64), index=True)
    scope: Mapped[str] = mapped_column(String(40), default="all")
    n_texts: Mapped[int] = mapped_column(Integer, default=0)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class LabelRunItem(Base):
    """A run's result for one document: the (modal) label, confidence and consistency."""

    __tablename__ = "label_run_items"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("label_runs.id", ondelete="CASCADE"), primary_key=True
    )
    doc_id: Mapped[str] = mapped_column(String(500), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(200))
    confidence: Mapped[float | None] = mapped_column(Float)
    consistency: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20))
    answers: Mapped[int] = mapped_column(Integer, default=0)


class LLMResponse(Base):
    """Every answer a teacher gave, stored before it counts: the cache and the audit log.

    One row per (run_key, text_hash, repeat_index): the same texts asked the same way with the
    same codebook are answered from here and never paid twice. A failed request (status error)
    is kept until a later attempt replaces it.
    """

    __tablename__ = "llm_responses"
    __table_args__ = (
        UniqueConstraint("run_key", "text_hash", "repeat_index", name="uq_llm_responses_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_key: Mapped[str] = mapped_column(String(64))
    text_hash: Mapped[str] = mapped_column(String(64))
    repeat_index: Mapped[int] = mapped_column(Integer, default=0)
    teacher: Mapped[str] = mapped_column(String(40))
    model: Mapped[str] = mapped_column(String(200))
    request: Mapped[dict[str, Any]] = mapped_column(default=dict)
    raw: Mapped[str | None] = mapped_column(Text)
    label: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    confidence: Mapped[float | None] = mapped_column(Float)
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    structured: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ValidationSample(Base):
    """Texts drawn for human coding, split into a development part and a held-out test part."""

    __tablename__ = "validation_samples"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    corpus_id: Mapped[int] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(40))  # "random", "stratified", "imported"
    n: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int | None] = mapped_column(Integer)
    test_share: Mapped[float] = mapped_column(Float, default=0.5)
    strata_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("label_runs.id", ondelete="SET NULL")
    )
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    test_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    test_seen_codebook_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class SampleItem(Base):
    """One text of a validation sample, in the development or the (locked) test part."""

    __tablename__ = "sample_items"

    sample_id: Mapped[int] = mapped_column(
        ForeignKey("validation_samples.id", ondelete="CASCADE"), primary_key=True
    )
    doc_id: Mapped[str] = mapped_column(String(500), primary_key=True)
    part: Mapped[str] = mapped_column(String(10))  # "dev" or "test"
    position: Mapped[int] = mapped_column(Integer)
    #: ``values.content_key`` of the text when it was drawn: what was held out stays held out,
    #: whatever later uploads hold under this id.
    content_key: Mapped[str | None] = mapped_column(String(64))


class HumanCode(Base):
    """A coder's label for a document; each coder's codes are kept apart."""

    __tablename__ = "human_codes"
    __table_args__ = (
        UniqueConstraint("project_id", "doc_id", "coder", name="uq_human_codes_doc_coder"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    doc_id: Mapped[str] = mapped_column(String(500))
    coder: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200), default="browser")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: The code given before the coder could see the LLM's label (None on rows older than it:
    #: then ``label``); agreement is scored on it, so a revision after the reveal changes none.
    blind_label: Mapped[str | None] = mapped_column(String(200))
    revised_after_reveal: Mapped[bool] = mapped_column(Boolean, default=False)
    #: The first code this coder gave the text, kept whatever they changed since (None on
    #: rows older than it had no history: then the earliest ``CodeEvent``, else ``label``).
    first_label: Mapped[str | None] = mapped_column(String(200))
    #: The coder's note with the code ("unsure because…"; empty: none).
    note: Mapped[str] = mapped_column(Text, default="")
    #: The project's newest codebook version when the code was last given (None: unknown).
    codebook_version: Mapped[int | None] = mapped_column(Integer)


class CodeEvent(Base):
    """Every code a coder gave, in order: the history behind a ``HumanCode``."""

    __tablename__ = "code_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    doc_id: Mapped[str] = mapped_column(String(500))
    coder: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(200), default="browser")
    #: Given after the coder could see the LLM's label for this text.
    after_reveal: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: The coder's note with this code ("unsure because…").
    note: Mapped[str] = mapped_column(Text, default="")
    #: The project's newest codebook version at the time of coding (None: unknown).
    codebook_version: Mapped[int | None] = mapped_column(Integer)
    #: When the coder's screen showed the text (None: not known, e.g. an import): the time a
    #: text took is ``at - opened_at``.
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AssignmentDesign(Base):
    """How a sample's texts were shared among coders: every text to ``k`` coders
    (``overlap`` None), or each text to one coder and a share ``overlap`` of them to ``k``."""

    __tablename__ = "assignment_designs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    sample_id: Mapped[int] = mapped_column(
        ForeignKey("validation_samples.id", ondelete="CASCADE"), index=True
    )
    k: Mapped[int] = mapped_column(Integer)
    overlap: Mapped[float | None] = mapped_column(Float)
    coders: Mapped[list[str]] = mapped_column(JSONType, default=list)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    n_texts: Mapped[int] = mapped_column(Integer, default=0)
    n_overlap: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Assignment(Base):
    """One text of a sample in one coder's queue. Withdrawn (``withdrawn_at``) when a new
    design or a reassignment takes an uncoded text away; a coded one is never withdrawn."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("sample_id", "doc_id", "coder", name="uq_assignments_sample_doc_coder"),
        Index("ix_assignments_sample_coder", "sample_id", "coder"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    sample_id: Mapped[int] = mapped_column(ForeignKey("validation_samples.id", ondelete="CASCADE"))
    design_id: Mapped[int | None] = mapped_column(
        ForeignKey("assignment_designs.id", ondelete="SET NULL")
    )
    doc_id: Mapped[str] = mapped_column(String(500))
    #: A user's name (hosted) or a named coder (single-user mode), as ``HumanCode.coder``.
    coder: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    #: The coder whose text this was before a reassignment (None: assigned by a design).
    reassigned_from: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Adjudication(Base):
    """An expert's gold code for a text the coders disagree on, with the reason: the text's
    gold label (``validation.gold_rule``) whatever the coders' majority says."""

    __tablename__ = "adjudications"
    __table_args__ = (UniqueConstraint("project_id", "doc_id", name="uq_adjudications_doc"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    doc_id: Mapped[str] = mapped_column(String(500))
    label: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text, default="")
    adjudicator: Mapped[str] = mapped_column(String(200))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    codebook_version: Mapped[int | None] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class StudentModel(Base):
    """A fine-tuned student: where its folder lies, what it was trained on, how it compares.

    ``path`` is relative to the models folder (``DISTILL_HOME/models``); ``training`` holds the
    training-set counts (LLM-labelled, held-out test items excluded, invalid answers, filtered,
    used); ``comparison`` the fair comparison on the held-out human codes.
    """

    __tablename__ = "student_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    corpus_id: Mapped[int | None] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"))
    label_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("label_runs.id", ondelete="SET NULL")
    )
    codebook_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("codebook_versions.id", ondelete="SET NULL")
    )
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default="training")
    base_model: Mapped[str] = mapped_column(String(500))
    path: Mapped[str | None] = mapped_column(String(1000))
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)
    training: Mapped[dict[str, Any]] = mapped_column(default=dict)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)
    comparison: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class PredictionRun(Base):
    """One pass of a student over a whole corpus."""

    __tablename__ = "prediction_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    model_id: Mapped[int] = mapped_column(ForeignKey("student_models.id", ondelete="CASCADE"))
    corpus_id: Mapped[int] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default="running")
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {"labels": [...]}
    n: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    device: Mapped[str] = mapped_column(String(20), default="cpu")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class Prediction(Base):
    """A student's label for one document, its probability and every class's probability."""

    __tablename__ = "predictions"

    run_id: Mapped[int] = mapped_column(
        ForeignKey("prediction_runs.id", ondelete="CASCADE"), primary_key=True
    )
    doc_id: Mapped[str] = mapped_column(String(500), primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    confidence: Mapped[float] = mapped_column(Float)
    probs: Mapped[list[float]] = mapped_column(JSONType, default=list)


class Activity(Base):
    """Who did what in a project, when: sampling, seeing the held-out score, training,
    exporting, changing members (visible to owners; never holds a key)."""

    __tablename__ = "activities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(60))
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ProjectEndpoint(Base):
    """An LLM endpoint saved in a project by an owner or researcher: where and how to ask, and
    its key encrypted at rest (a Fernet token under ``DISTILL_SECRET_KEY``: ``keys.encrypt``;
    ``key_hint`` such as ``sk-…abcd`` is all that is ever shown of it). Jobs refer to it by id;
    the worker decrypts the key when the job runs."""

    __tablename__ = "project_endpoints"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_project_endpoints_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    base_url: Mapped[str] = mapped_column(String(1000))
    model: Mapped[str] = mapped_column(String(200))
    #: temperature, max_tokens, seed
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    key_encrypted: Mapped[str | None] = mapped_column(Text)
    key_hint: Mapped[str | None] = mapped_column(String(40))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
