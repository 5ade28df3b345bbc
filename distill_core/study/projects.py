"""Projects and what they hold: members, the corpus, codebook versions, the workflow's state.

Every function that reads or writes a project takes the acting ``user`` and is an entry point
(``study.access``): in single-user mode that is the one local user, on a lab's shared instance
the signed-in person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from distill_core.codebook import Codebook
from distill_core.corpus import PreparedCorpus, Table
from distill_core.store import limits
from distill_core.store.db import analyze
from distill_core.store.models import (
    ROLES,
    Activity,
    CodebookVersion,
    Corpus,
    Document,
    HumanCode,
    LabelRun,
    LabelRunItem,
    Membership,
    PredictionRun,
    Project,
    SampleItem,
    StudentModel,
    User,
    ValidationSample,
)
from distill_core.study import activity, memo, replacement
from distill_core.study.access import AccessDenied, Capability, ProjectError, entry, role_of
from distill_core.values import content_key, is_blank

#: The user every single-user install acts as.
LOCAL_USERNAME = "local"


#: Rows written per INSERT batch when a corpus is stored.
_INSERT_BATCH = 5000


# ProjectError and AccessDenied live in study.access; they are named here too for callers.
__all__ = ["AccessDenied", "ProjectError"]


# ---------------------------------------------------------------- users and projects


def ensure_user(session: Session, username: str = LOCAL_USERNAME, display_name: str = "") -> User:
    """The user with this name, created on first sight."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        user = User(username=username, display_name=display_name or username)
        session.add(user)
        session.flush()
    return user


def create_project(session: Session, user: User, name: str, description: str = "") -> Project:
    """A new project owned by ``user`` (an admitted user)."""
    if user is None or not user.active:
        raise AccessDenied("An administrator must admit you before you can create projects.")
    name = (name or "").strip()
    if not name:
        raise ProjectError("A project needs a name.")
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise ProjectError(f"A project named '{name}' exists already; choose another name.")
    project = Project(name=name, description=description.strip(), created_by=user.id)
    session.add(project)
    session.flush()
    session.add(Membership(project_id=project.id, user_id=user.id, role="owner"))
    session.flush()
    return project


def list_projects(session: Session, user: User) -> list[Project]:
    """Projects the user is a member of, newest first."""
    stmt = (
        select(Project)
        .join(Membership, Membership.project_id == Project.id)
        .where(Membership.user_id == user.id)
        .order_by(Project.created_at.desc(), Project.id.desc())
    )
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class ProjectSummary:
    """A project as the project list shows it."""

    id: int
    name: str
    texts: int
    codebook_version: int | None
    created_at: object
    description: str
    role: str | None = None
    budget_usd: float | None = None


def overview(session: Session, user: User) -> list[ProjectSummary]:
    """The user's projects with their corpus size and latest codebook version."""
    out = []
    for p in list_projects(session, user):
        corpus = session.scalar(select(Corpus).where(Corpus.project_id == p.id))
        latest = _latest_version(session, p.id)
        out.append(
            ProjectSummary(
                id=p.id,
                name=p.name,
                texts=corpus.row_count if corpus else 0,
                codebook_version=latest.version if latest else None,
                created_at=p.created_at,
                description=p.description,
                role=role_of(session, user, p.id),
                budget_usd=p.budget_usd,
            )
        )
    return out


@entry(Capability.READ)
def members(session: Session, user: User, project_id: int) -> list[tuple[User, str]]:
    """The project's members and their roles, owners first."""
    rows = session.execute(
        select(User, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .where(Membership.project_id == project_id)
    ).all()
    return sorted(((u, r) for u, r in rows), key=lambda ur: (ROLES.index(ur[1]), ur[0].username))


@entry(Capability.MANAGE)
def set_member(session: Session, user: User, project_id: int, username: str, role: str) -> None:
    """Give the user named ``username`` a role in the project (owners only). The last owner
    cannot be demoted: a project always has one."""
    if role not in ROLES:
        raise ProjectError(f"Unknown role '{role}'; choose one of {', '.join(ROLES)}.")
    member = session.scalar(select(User).where(User.username == (username or "").strip()))
    if member is None:
        raise ProjectError(f"There is no user named '{username}'.")
    existing = session.get(Membership, (project_id, member.id))
    if existing is not None and existing.role == "owner" and role != "owner":
        _keep_an_owner(session, project_id, member)
    if existing is None:
        session.add(Membership(project_id=project_id, user_id=member.id, role=role))
    else:
        existing.role = role
    activity.record(session, user, project_id, "set a role", member=member.username, role=role)
    session.flush()


@entry(Capability.MANAGE)
def remove_member(session: Session, user: User, project_id: int, username: str) -> None:
    """Take a user out of the project (owners only; not the last owner)."""
    member = session.scalar(select(User).where(User.username == (username or "").strip()))
    existing = session.get(Membership, (project_id, member.id)) if member else None
    if existing is None:
        raise ProjectError(f"'{username}' is not a member of this project.")
    if existing.role == "owner":
        _keep_an_owner(session, project_id, member)
    session.delete(existing)
    activity.record(session, user, project_id, "removed a member", member=member.username)
    session.flush()


def _keep_an_owner(session: Session, project_id: int, leaving: User) -> None:
    owners = session.scalar(
        select(func.count())
        .select_from(Membership)
        .where(
            Membership.project_id == project_id,
            Membership.role == "owner",
            Membership.user_id != leaving.id,
        )
    )
    if not owners:
        raise ProjectError("A project needs an owner: make someone else owner first.")


@entry(Capability.MANAGE)
def delete_project(session: Session, user: User, project_id: int) -> None:
    """Delete a project and everything in it (owners only)."""
    session.delete(session.get(Project, project_id))
    session.flush()


# ---------------------------------------------------------------- corpus


@entry(Capability.READ)
def plan_replacement(
    session: Session, user: User, project_id: int, prepared: PreparedCorpus
) -> replacement.Replacement | None:
    """What saving ``prepared`` over the project's corpus would do to its human codes and
    samples (None when there is no corpus yet)."""
    old = session.scalar(select(Corpus).where(Corpus.project_id == project_id))
    return None if old is None else replacement.plan(session, project_id, old.id, prepared)


@entry(Capability.EDIT)
def save_corpus(
    session: Session,
    user: User,
    project_id: int,
    table: Table,
    prepared: PreparedCorpus,
    *,
    delete_orphaned_codes: bool = False,
) -> Corpus:
    """Store a validated corpus as the project's corpus, replacing an earlier one.

    Human codes and samples follow their texts into the new file by content
    (``study.replacement``); if the file lacks a coded or sampled text, the save is refused with
    a sentence naming it, unless ``delete_orphaned_codes`` says to delete those codes. Runs
    inside the caller's transaction: if anything fails, nothing of it is kept.
    """
    old = session.scalar(select(Corpus).where(Corpus.project_id == project_id))
    plan = None
    if old is not None:
        plan = replacement.plan(session, project_id, old.id, prepared)
        if plan.orphaned and not delete_orphaned_codes:
            raise ProjectError(plan.refusal())
    corpus = Corpus(
        project_id=project_id,
        filename=table.filename,
        file_format=table.file_format,
        text_column=prepared.text_column,
        id_column=prepared.id_column,
        ids_generated=prepared.report.ids_generated,
        row_count=len(prepared.ids),
        encoding=table.encoding,
        sha256=table.sha256,
        report=prepared.report.to_dict(),
        uploaded_by=user.id,
    )
    session.add(corpus)
    session.flush()
    rows = [
        {"corpus_id": corpus.id, "position": i, "doc_id": d, "text": t, "extra": e}
        for i, (d, t, e) in enumerate(
            zip(prepared.ids, prepared.texts, prepared.extras, strict=True)
        )
    ]
    limits.check_rows(Document.__table__, rows)  # a long id: its row, before any batch
    for start in range(0, len(rows), _INSERT_BATCH):
        session.execute(insert(Document), rows[start : start + _INSERT_BATCH])
    session.flush()
    if old is not None:
        replacement.apply(session, project_id, plan, corpus.id, delete_orphaned=True)
        session.execute(delete(Document).where(Document.corpus_id == old.id))
        session.delete(old)
        session.flush()
    facts = {"file": table.filename, "n": len(prepared.ids)}
    if plan is not None:
        facts |= {"moved": len(plan.moved), "deleted_codes": plan.orphaned_codes}
    activity.record(session, user, project_id, "uploaded a corpus", **facts)
    analyze(session)
    return corpus


@entry(Capability.MEMBER)
def get_corpus(session: Session, user: User, project_id: int) -> Corpus | None:
    """The project's corpus, or None before an upload."""
    return session.scalar(select(Corpus).where(Corpus.project_id == project_id))


@entry(Capability.READ)
def load_documents(
    session: Session, user: User, project_id: int, *, with_extra: bool = True
) -> pd.DataFrame:
    """The project's corpus as a frame: ``doc_id``, ``text`` and, if asked, the file's other
    columns (empty before an upload). For a whole file (an export); a page reads
    :func:`documents_page`."""
    corpus_id = _corpus_id(session, project_id)
    cols = [Document.doc_id, Document.text] + ([Document.extra] if with_extra else [])
    result = session.execute(
        select(*cols).where(Document.corpus_id == corpus_id).order_by(Document.position)
    ).all()
    return _documents_frame(result, with_extra)


def _corpus_id(session: Session, project_id: int) -> int | None:
    return session.scalar(select(Corpus.id).where(Corpus.project_id == project_id))


def _documents_frame(rows: Sequence, with_extra: bool) -> pd.DataFrame:
    """Rows of (doc_id, text[, extra]) as a frame, the file's other columns spread out."""
    frame = pd.DataFrame({"doc_id": [r[0] for r in rows], "text": [r[1] for r in rows]})
    if with_extra and rows:
        extra = pd.DataFrame.from_records([r[2] or {} for r in rows])
        extra = extra[[c for c in extra.columns if c not in ("doc_id", "text")]]
        frame = pd.concat([frame, extra], axis=1)
    return frame


@dataclass(frozen=True)
class DocumentsPage:
    """The first ``len(rows)`` documents in corpus order that match a search (``rows``: the
    columns of ``load_documents``), of ``matching`` that match and ``total`` in the corpus."""

    rows: pd.DataFrame
    matching: int
    total: int


@entry(Capability.READ)
def documents_page(
    session: Session,
    user: User,
    project_id: int,
    *,
    search: str = "",
    limit: int = 500,
    with_extra: bool = True,
) -> DocumentsPage:
    """Up to ``limit`` documents in corpus order holding ``search`` in their text (any case),
    searched and counted in the database: a page never holds the whole corpus."""
    corpus_id = _corpus_id(session, project_id)
    conditions = [Document.corpus_id == corpus_id]
    total = session.scalar(select(func.count()).where(*conditions))
    if search:
        like = "%" + escape_like(search) + "%"
        conditions.append(Document.text.ilike(like, escape="\\"))
    matching = session.scalar(select(func.count()).where(*conditions)) if search else total
    cols = [Document.doc_id, Document.text] + ([Document.extra] if with_extra else [])
    rows = session.execute(
        select(*cols).where(*conditions).order_by(Document.position).limit(limit)
    ).all()
    return DocumentsPage(_documents_frame(rows, with_extra), int(matching), int(total))


@entry(Capability.READ)
def first_texts(session: Session, user: User, project_id: int, limit: int) -> pd.DataFrame:
    """``doc_id`` and ``text`` of the corpus's first ``limit`` texts that are not blank (the
    texts a label run asks), in corpus order."""
    rows = session.execute(
        select(Document.doc_id, Document.text)
        .where(Document.corpus_id == _corpus_id(session, project_id))
        .order_by(Document.position)
        .execution_options(yield_per=max(1, limit))
    )
    found = []
    for row in rows:
        if not is_blank(row[1]):
            found.append(row)
            if len(found) >= limit:
                break
    rows.close()
    return _documents_frame(found, with_extra=False)


def escape_like(text: str) -> str:
    """``text`` as a literal inside a LIKE pattern with backslash as the escape character."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True)
class CorpusIds:
    """The corpus's document ids in corpus order, and those whose text is not blank."""

    ids: tuple[str, ...]
    nonempty: tuple[str, ...]


@entry(Capability.READ)
def corpus_ids(session: Session, user: User, project_id: int) -> CorpusIds:
    """Every document id of the corpus, and those with a text (read once per corpus and kept:
    ``memo``)."""

    def read() -> CorpusIds:
        rows = session.execute(
            select(Document.doc_id, Document.text)
            .where(Document.corpus_id == _corpus_id(session, project_id))
            .order_by(Document.position)
        ).all()
        return CorpusIds(tuple(r[0] for r in rows), tuple(r[0] for r in rows if not is_blank(r[1])))

    return memo.remembered(session, project_id, "corpus_ids", (), read)


def get_documents(session: Session, corpus_id: int, doc_ids: Sequence[str]) -> dict[str, str]:
    """Texts of the given documents, by id."""
    stmt = select(Document.doc_id, Document.text).where(
        Document.corpus_id == corpus_id, Document.doc_id.in_(list(doc_ids))
    )
    return dict(session.execute(stmt).tuples().all())


# ---------------------------------------------------------------- codebooks


@dataclass(frozen=True)
class SavedCodebook:
    """Result of saving: the version row and whether it is new (an unchanged codebook is not)."""

    version: CodebookVersion
    created: bool


def part_keys(session: Session, project_id: int, part: str) -> set[str]:
    """Content keys (``values.content_key``) of every text in ``part`` of any of the project's
    samples, as they were when drawn (texts since gone from the corpus included): held out (or
    used for development) for the project's life, by content."""
    stmt = (
        select(SampleItem.content_key)
        .join(ValidationSample, ValidationSample.id == SampleItem.sample_id)
        .where(ValidationSample.project_id == project_id, SampleItem.part == part)
    )
    keys = {k for k in session.scalars(stmt) if k}
    details = session.scalars(
        select(ValidationSample.details).where(ValidationSample.project_id == project_id)
    )
    for d in details:
        keys |= replacement.retired_keys(d, part)
    return keys


@entry(Capability.EDIT)
def save_codebook(
    session: Session,
    user: User,
    project_id: int,
    codebook: Codebook,
    note: str = "",
    *,
    after_seen_confirmed: bool = False,
) -> SavedCodebook:
    """Save ``codebook`` as the next immutable version; an unchanged one keeps the latest. A
    few-shot example that is a held-out test text (by content) is refused: the LLM would be
    shown the answer to a question it is scored on. Once a held-out score was seen, a new
    version needs ``after_seen_confirmed`` and is marked: every figure from it says so."""
    codebook.validate()
    held = part_keys(session, project_id, "test")
    for example in codebook.examples:
        if content_key(example.text) in held:
            raise ProjectError(
                f"The example '{example.text[:60]}' is a text of the held-out test part; "
                "choose an example from outside it."
            )
    latest = latest_codebook(session, user, project_id)
    fingerprint = codebook.fingerprint()
    if latest is not None and latest.fingerprint == fingerprint:
        return SavedCodebook(latest, created=False)
    seen = first_look(session, project_id)
    if seen is not None and not after_seen_confirmed:
        raise ProjectError(after_seen_question(seen))
    number = (latest.version if latest else 0) + 1
    row = CodebookVersion(
        project_id=project_id,
        version=number,
        name=codebook.name,
        content=codebook.to_dict(),
        fingerprint=fingerprint,
        note=note.strip(),
        after_test_seen=seen is not None,
        created_by=user.id,
    )
    session.add(row)
    session.flush()
    activity.record(session, user, project_id, "saved a codebook version", version=number)
    return SavedCodebook(row, created=True)


@entry(Capability.MEMBER)
def codebook_versions(session: Session, user: User, project_id: int) -> list[CodebookVersion]:
    """Every saved version, newest first."""
    stmt = (
        select(CodebookVersion)
        .where(CodebookVersion.project_id == project_id)
        .order_by(CodebookVersion.version.desc())
    )
    return list(session.scalars(stmt))


@entry(Capability.MEMBER)
def latest_codebook(session: Session, user: User, project_id: int) -> CodebookVersion | None:
    """The newest saved version (None before the first save)."""
    return _latest_version(session, project_id)


def _latest_version(session: Session, project_id: int) -> CodebookVersion | None:
    stmt = (
        select(CodebookVersion)
        .where(CodebookVersion.project_id == project_id)
        .order_by(CodebookVersion.version.desc())
        .limit(1)
    )
    return session.scalar(stmt)


#: How a figure from a codebook saved after a held-out score was seen is marked, everywhere.
AFTER_SEEN = "after the held-out score was seen"


class VersionNumber(int):
    """A codebook version's number (v1, v2…), marked when the version was saved after someone
    had seen a held-out test score: figures from it are no untouched held-out evaluation."""

    after_seen: bool

    def __new__(cls, number: int, after_seen: bool = False) -> VersionNumber:
        obj = super().__new__(cls, number)
        obj.after_seen = bool(after_seen)
        return obj

    @property
    def label(self) -> str:
        """``v3``, or ``v3 (after the held-out score was seen)``."""
        return f"v{int(self)}" + (f" ({AFTER_SEEN})" if self.after_seen else "")


@entry(Capability.READ)
def version_numbers(session: Session, user: User, project_id: int) -> dict[int, VersionNumber]:
    """Codebook version id → its number (v1, v2…) for the project, marked where it was saved
    after the held-out score was seen."""
    stmt = select(
        CodebookVersion.id, CodebookVersion.version, CodebookVersion.after_test_seen
    ).where(CodebookVersion.project_id == project_id)
    return {vid: VersionNumber(number, seen) for vid, number, seen in session.execute(stmt)}


def version_number(session: Session, version_id: int | None) -> VersionNumber | None:
    """The number of one codebook version (None when there is none)."""
    if version_id is None:
        return None
    row = session.get(CodebookVersion, version_id)
    return VersionNumber(row.version, row.after_test_seen) if row else None


def version_label(version: int | None) -> str:
    """How a codebook version is named in figures: ``v3``, marked when saved after the
    held-out score was seen, ``v?`` when unknown."""
    if version is None:
        return "v?"
    return version.label if isinstance(version, VersionNumber) else f"v{version}"


def after_seen_question(seen: ValidationSample) -> str:
    """What saving a changed codebook after the held-out score was seen means, as a sentence
    that asks for confirmation."""
    version = seen.test_seen_codebook_version
    scored = f" with codebook v{version}" if version is not None else ""
    return (
        f"The held-out test score was seen on {seen.test_seen_at:%Y-%m-%d}{scored}. A changed "
        "codebook saved now is tuned on seen texts: every figure from it will be marked "
        f"“{AFTER_SEEN}”. Confirm to save it, or draw a fresh test sample."
    )


def first_look(session: Session, project_id: int) -> ValidationSample | None:
    """The sample whose held-out test score was looked at first (None before any look)."""
    return session.scalar(
        select(ValidationSample)
        .where(
            ValidationSample.project_id == project_id, ValidationSample.test_seen_at.is_not(None)
        )
        .order_by(ValidationSample.test_seen_at)
        .limit(1)
    )


def as_codebook(version: CodebookVersion) -> Codebook:
    """Rebuild the codebook a stored version holds."""
    return Codebook.from_dict(version.content)


# ---------------------------------------------------------------- workflow state


#: The workflow steps in order, as the sidebar and the pages name them.
STEPS = ("Projects", "Data", "Codebook", "LLM labels", "Validate", "Fine-tune", "Results", "Export")
#: The exports that complete the Export step: the labelled corpus (any format) or the methods
#: appendix (not the codes, the audit log, the model or a sample for outside coders alone).
EXPORT_STEP_FORMATS = frozenset({"csv", "xlsx", "parquet", "dta", "appendix-md", "appendix-html"})


@entry(Capability.MEMBER)
def steps_done(session: Session, user: User, project_id: int) -> dict[str, bool]:
    """Which workflow steps hold results for this project."""
    has_corpus = (
        session.scalar(select(Corpus.id).where(Corpus.project_id == project_id)) is not None
    )
    n_codebooks = session.scalar(
        select(func.count())
        .select_from(CodebookVersion)
        .where(CodebookVersion.project_id == project_id)
    )
    done = dict.fromkeys(STEPS, False)
    done["Projects"] = True
    done["Data"] = has_corpus
    done["Codebook"] = bool(n_codebooks)
    done["LLM labels"] = (
        session.scalar(
            select(func.count())
            .select_from(LabelRunItem)
            .join(LabelRun, LabelRun.id == LabelRunItem.run_id)
            .where(LabelRun.project_id == project_id)
            .limit(1)
        )
        > 0
    )
    done["Validate"] = (
        session.scalar(
            select(func.count())
            .select_from(HumanCode)
            .where(HumanCode.project_id == project_id)
            .limit(1)
        )
        > 0
    )
    done["Fine-tune"] = (
        session.scalar(
            select(func.count())
            .select_from(StudentModel)
            .where(StudentModel.project_id == project_id, StudentModel.status == "ready")
        )
        > 0
    )
    done["Results"] = (
        session.scalar(
            select(func.count())
            .select_from(PredictionRun)
            .where(PredictionRun.project_id == project_id, PredictionRun.status == "done")
        )
        > 0
    )
    exports = session.scalars(
        select(Activity.details).where(
            Activity.project_id == project_id, Activity.action == "exported"
        )
    )
    done["Export"] = any((d or {}).get("format") in EXPORT_STEP_FORMATS for d in exports)
    return done
