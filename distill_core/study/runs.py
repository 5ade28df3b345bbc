"""Reading label runs: a project's runs, their per-document results, the columns every export
and the command line write, a run's one title, and its audit log (every prompt and answer)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from distill_core.codebook import Codebook
from distill_core.store.models import (
    Document,
    LabelRun,
    LabelRunItem,
    LLMResponse,
    StudentModel,
    User,
)
from distill_core.study import memo, projects
from distill_core.study.access import Capability, belongs, entry

if TYPE_CHECKING:
    import pandas as pd

#: Statuses a label can have in a run's results and in exported files.
STATUSES = ("ok", "invalid", "error")
#: The LLM columns of a labelled file, in order (the command line and every export).
LLM_COLUMNS = ("llm_label", "llm_confidence", "llm_consistency", "llm_status")
_CHUNK = 500
#: Rows of a run's results shown at a time, and the characters of each text shown in them.
PAGE_ROWS = 100
SHOWN_CHARS = 1000


@entry(Capability.READ)
def project_runs(
    session: Session, user: User, project_id: int, *, with_results: bool = False
) -> list[LabelRun]:
    """The project's label runs, newest first (only those with results, if asked)."""
    stmt = select(LabelRun).where(LabelRun.project_id == project_id).order_by(LabelRun.id.desc())
    if with_results:
        has_items = select(LabelRunItem.run_id).where(LabelRunItem.run_id == LabelRun.id).exists()
        stmt = stmt.where(has_items)
    return list(session.scalars(stmt))


@entry(Capability.READ)
def run_results(session: Session, user: User, project_id: int, run_id: int) -> list[LabelRunItem]:
    """The run's per-document results."""
    belongs(session.get(LabelRun, run_id), project_id, "label run")
    return items(session, run_id)


def items(session: Session, run_id: int) -> list[LabelRunItem]:
    """A run's per-document results, of any run (the command line's runs have no project);
    project code reads them through ``run_results``."""
    return list(session.scalars(select(LabelRunItem).where(LabelRunItem.run_id == run_id)))


def items_for(session: Session, run_id: int, doc_ids: Sequence[str]) -> dict[str, LabelRunItem]:
    """A run's results for these documents only (doc id → result; a coded sample of a
    100,000-text run reads its few hundred rows, not the run)."""
    wanted = list(dict.fromkeys(doc_ids))
    found: dict[str, LabelRunItem] = {}
    for start in range(0, len(wanted), _CHUNK):
        stmt = select(LabelRunItem).where(
            LabelRunItem.run_id == run_id,
            LabelRunItem.doc_id.in_(wanted[start : start + _CHUNK]),
        )
        found.update((r.doc_id, r) for r in session.scalars(stmt))
    return found


@entry(Capability.READ)
def results_for(
    session: Session, user: User, project_id: int, run_id: int, doc_ids: Sequence[str]
) -> dict[str, LabelRunItem]:
    """The run's results for these documents only (``items_for``; a sample's, not the run's)."""
    belongs(session.get(LabelRun, run_id), project_id, "label run")
    return items_for(session, run_id, doc_ids)


@entry(Capability.READ)
def results_frame(
    session: Session, user: User, project_id: int, run_id: int, *, with_text: bool = True
) -> pd.DataFrame:
    """A run's per-document results (``doc_id``, ``label``, ``confidence``, ``consistency``,
    ``status``), with each document's ``text`` after its id, as a pandas frame in corpus order."""
    belongs(session.get(LabelRun, run_id), project_id, "label run")
    return items_frame(session, run_id, with_text=with_text)


def items_frame(session: Session, run_id: int, *, with_text: bool = True) -> pd.DataFrame:
    """``results_frame`` of any run (``with_text=False`` for the command line's runs, which
    have no project)."""
    import pandas as pd

    columns = ["doc_id", "label", "confidence", "consistency", "status"]
    values = [getattr(LabelRunItem, c) for c in columns]
    stmt = select(*values).where(LabelRunItem.run_id == run_id)
    if with_text:
        run = session.get(LabelRun, run_id)
        columns.insert(1, "text")
        values.insert(1, Document.text)
        stmt = (
            select(*values)
            .join(
                Document,
                (Document.doc_id == LabelRunItem.doc_id) & (Document.corpus_id == run.corpus_id),
            )
            .where(LabelRunItem.run_id == run_id)
            .order_by(Document.position)
        )
    return pd.DataFrame(session.execute(stmt).all(), columns=columns)


@dataclass(frozen=True)
class ResultsPage:
    """One page of a run's results as filtered (``rows``: the columns of ``results_frame``,
    each text cut at ``SHOWN_CHARS`` characters), with how many rows match the filters
    (``matching``), how many the run has (``total``), and the page shown of how many."""

    rows: pd.DataFrame
    matching: int
    total: int
    page: int
    pages: int
    per_page: int

    @property
    def first(self) -> int:
        """The 1-based number of the page's first row among the matching (0 when none)."""
        return (self.page - 1) * self.per_page + 1 if self.matching else 0


@entry(Capability.READ)
def results_page(
    session: Session,
    user: User,
    project_id: int,
    run_id: int,
    *,
    labels: Sequence[str] = (),
    statuses: Sequence[str] = (),
    min_confidence: float = 0.0,
    search: str = "",
    page: int = 1,
    per_page: int = PAGE_ROWS,
) -> ResultsPage:
    """Page ``page`` (1-based, kept within the pages there are) of the run's results in corpus
    order, filtered in the database as ``filter_results`` filters a frame, and to the texts or
    ids that hold ``search`` (any case): a 100,000-text run is never read whole for a page."""
    import pandas as pd

    run = belongs(session.get(LabelRun, run_id), project_id, "label run")
    conditions = [LabelRunItem.run_id == run_id]
    if labels:
        conditions.append(LabelRunItem.label.in_(list(labels)))
    if statuses:
        conditions.append(LabelRunItem.status.in_(list(statuses)))
    if min_confidence > 0:
        conditions.append(func.coalesce(LabelRunItem.confidence, 0.0) >= min_confidence)
    if search.strip():
        like = "%" + projects.escape_like(search.strip()) + "%"
        conditions.append(
            or_(Document.text.ilike(like, escape="\\"), Document.doc_id.ilike(like, escape="\\"))
        )
    joined = (Document.doc_id == LabelRunItem.doc_id) & (Document.corpus_id == run.corpus_id)
    total = sum(label_counts(session, user, project_id, run_id, with_unlabelled=True).values())
    matching = (
        session.scalar(
            select(func.count()).select_from(LabelRunItem).join(Document, joined).where(*conditions)
        )
        if len(conditions) > 1
        else total
    )
    pages = max(1, math.ceil(matching / per_page))
    page = min(max(1, int(page)), pages)
    columns = ["doc_id", "text", "label", "confidence", "consistency", "status"]
    stmt = (
        select(
            LabelRunItem.doc_id,
            func.substr(Document.text, 1, SHOWN_CHARS),
            LabelRunItem.label,
            LabelRunItem.confidence,
            LabelRunItem.consistency,
            LabelRunItem.status,
        )
        .join(Document, joined)
        .where(*conditions)
        .order_by(Document.position)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    rows = pd.DataFrame(session.execute(stmt).all(), columns=columns)
    return ResultsPage(rows, int(matching), int(total), page, pages, per_page)


@entry(Capability.READ)
def label_counts(
    session: Session,
    user: User,
    project_id: int,
    run_id: int,
    *,
    statuses: Sequence[str] = (),
    with_unlabelled: bool = False,
) -> dict[str | None, int]:
    """How many of the run's results have each label (of ``statuses``; all when empty), counted
    in the database once per state of the project (``memo``); with ``with_unlabelled`` the
    results without a label too (under ``None``)."""
    belongs(session.get(LabelRun, run_id), project_id, "label run")

    def count() -> dict[str | None, int]:
        stmt = (
            select(LabelRunItem.label, LabelRunItem.status, func.count())
            .where(LabelRunItem.run_id == run_id)
            .group_by(LabelRunItem.label, LabelRunItem.status)
        )
        return {(label, status): int(n) for label, status, n in session.execute(stmt).tuples()}

    counts = memo.remembered(session, project_id, "label_counts", run_id, count)
    found: dict[str | None, int] = {}
    for (label, status), n in counts.items():
        if (label is not None or with_unlabelled) and (not statuses or status in statuses):
            found[label] = found.get(label, 0) + n
    return found


def audit_log(session: Session, run_id: int) -> Iterator[dict]:
    """Every stored answer behind a run, one JSON-ready dict each (no API key anywhere).

    Each record names the documents it answered for (identical texts share one answer).
    """
    run = session.get(LabelRun, run_id)
    docs: dict[str, list[str]] = defaultdict(list)
    for doc_id, h in session.execute(
        select(LabelRunItem.doc_id, LabelRunItem.text_hash).where(LabelRunItem.run_id == run_id)
    ):
        docs[h].append(doc_id)
    hashes = sorted(docs)
    for start in range(0, len(hashes), _CHUNK):
        stmt = (
            select(LLMResponse)
            .where(
                LLMResponse.run_key == run.run_key,
                LLMResponse.text_hash.in_(hashes[start : start + _CHUNK]),
            )
            .order_by(LLMResponse.text_hash, LLMResponse.repeat_index)
        )
        for r in session.scalars(stmt):
            yield {
                "run_id": run_id,
                "doc_ids": docs[r.text_hash],
                "text_sha256": r.text_hash,
                "repeat_index": r.repeat_index,
                "teacher": r.teacher,
                "model": r.model,
                "request": r.request,
                "raw": r.raw,
                "label": r.label,
                "status": r.status,
                "confidence": r.confidence,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "attempts": r.attempts,
                "structured": r.structured,
                "error": r.error,
                "started_at": r.started_at.isoformat() if r.started_at else None,
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            }


def write_audit_log(session: Session, run_ids: Sequence[int], fh: IO[bytes]) -> int:
    """Write the audit log of these runs (in this order) to a binary file as JSON Lines, each
    record naming its run; returns the number of records. Records hold the request body and
    the raw answer, never a key."""
    n = 0
    for run_id in run_ids:
        for record in audit_log(session, run_id):
            fh.write((json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8"))
            n += 1
    return n


def run_title(run: LabelRun, version: int | None) -> str:
    """How a label run is named everywhere: ``Run 3: gpt-4o-mini, codebook v2`` (with the mark
    of a codebook saved after the held-out score was seen, ``projects.VersionNumber``)."""
    return f"Run {run.id}: {run.model}, codebook {projects.version_label(version)}"


@entry(Capability.READ)
def after_seen_note(
    session: Session, user: User, project_id: int, run_id: int | None
) -> str | None:
    """The warning every figure from ``run_id`` carries when its codebook was saved after the
    held-out score was seen (None otherwise)."""
    run = session.get(LabelRun, run_id) if run_id is not None else None
    if run is None or run.project_id != project_id:
        return None
    version = projects.version_number(session, run.codebook_version_id)
    if version is None or not version.after_seen:
        return None
    return (
        f"{run_title(run, version)}: codebook v{int(version)} was saved {projects.AFTER_SEEN}, "
        "so its figures on the held-out texts are not an untouched evaluation (the codebook may "
        "have been tuned to them)."
    )


@entry(Capability.READ)
def provenance_run(session: Session, user: User, project_id: int, corpus_id: int | None = None):
    """The label run a project reports: the one its newest ready student was trained on, else
    the newest run with results (None when the project has no labelled run of its corpus)."""
    model = session.scalar(
        select(StudentModel)
        .where(StudentModel.project_id == project_id, StudentModel.status == "ready")
        .order_by(StudentModel.id.desc())
        .limit(1)
    )
    if model is not None and model.label_run_id is not None:
        run = session.get(LabelRun, model.label_run_id)
        if run is not None and (corpus_id is None or run.corpus_id == corpus_id):
            return run
    for run in project_runs(session, user, project_id, with_results=True):
        if corpus_id is None or run.corpus_id == corpus_id:
            return run
    return None


@entry(Capability.MEMBER)
def label_names(
    session: Session, user: User, project_id: int, run: LabelRun | None = None
) -> list[str]:
    """The codebook's labels in order: the run's codebook, else the latest saved version."""
    if run is not None and run.codebook:
        return Codebook.from_dict(run.codebook, check=False).label_names
    version = projects.latest_codebook(session, user, project_id)
    return projects.as_codebook(version).label_names if version is not None else []


def llm_columns(
    ids: pd.Series, results: pd.DataFrame, *, missing_status: str | None = None
) -> dict[str, pd.Series]:
    """The ``LLM_COLUMNS`` of a labelled file for documents ``ids``, from a run's results
    (``results_frame``): label, confidence, consistency and status; a document the run has no
    result for gets ``missing_status``."""
    items = results.set_index("doc_id")
    status = ids.map(items["status"])
    if missing_status is not None:
        status = status.fillna(missing_status)
    return {
        "llm_label": ids.map(items["label"]),
        "llm_confidence": ids.map(items["confidence"]).astype(float),
        "llm_consistency": ids.map(items["consistency"]).astype(float),
        "llm_status": status,
    }


@entry(Capability.READ)
def latest_labels(
    session: Session, user: User, project_id: int, doc_ids: set[str]
) -> dict[str, str]:
    """The LLM's labels for these documents from the project's newest run that labelled any
    of them (doc id → label)."""
    for run in project_runs(session, user, project_id, with_results=True):
        found = {
            r.doc_id: r.label
            for r in items(session, run.id)
            if r.doc_id in doc_ids and r.label is not None
        }
        if found:
            return found
    return {}


def filter_results(
    results: pd.DataFrame,
    *,
    labels: Sequence[str] = (),
    statuses: Sequence[str] = (),
    min_confidence: float = 0.0,
) -> pd.DataFrame:
    """The rows of ``results_frame`` with one of ``labels`` and ``statuses`` (all when empty)
    and a confidence of at least ``min_confidence`` (a missing confidence counts as 0)."""
    shown = results
    if labels:
        shown = shown[shown["label"].isin(labels)]
    if statuses:
        shown = shown[shown["status"].isin(statuses)]
    if min_confidence > 0:
        shown = shown[shown["confidence"].fillna(0) >= min_confidence]
    return shown
