"""Students in a project: the training set drawn from an LLM label run, the project's models
and their folders, and the predictions of their passes over the corpus.

Model folders live under ``DISTILL_HOME/models/<project id>/<model id>`` (a lab's GPU workers
must see the same folder). The store keeps each model's record (``StudentModel``) with its
training-set counts and comparison, and every prediction of a corpus pass (``Prediction``).
Training and corpus passes run as jobs (``jobs.train``, ``jobs.predict``); the comparison on
held-out human codes is ``study.comparison``.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from distill_core.clock import utcnow
from distill_core.codebook import Codebook
from distill_core.config import Settings
from distill_core.store import (
    Job,
    LabelRun,
    Prediction,
    PredictionRun,
    StudentModel,
    User,
)
from distill_core.store.models import ACTIVE_JOB_STATUSES
from distill_core.study import memo, runs, validation
from distill_core.study.access import Capability, belongs, entry

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.orm import Session

#: Name shown for the bundled default student.
DEFAULT_BASE = "all-MiniLM-L6-v2 (bundled)"


class StudentError(ValueError):
    """A problem the user can fix, told in one sentence."""


def models_root(settings: Settings | None = None) -> Path:
    return (settings or Settings.from_env()).models_dir


def model_dir(model: StudentModel, settings: Settings | None = None) -> Path:
    """The folder of a ready model (``save_pretrained`` layout plus distill.json)."""
    if not model.path:
        raise StudentError(f"Model {model.id} has no saved folder (it is {model.status}).")
    return models_root(settings) / model.path


# ---------------------------------------------------------------- the training set


@dataclass
class TrainingSet:
    """LLM-labelled texts a student may learn from, and what was left out and why."""

    doc_ids: list[str]
    texts: list[str]
    labels: list[str]
    confidences: list[float | None]
    consistencies: list[float | None]
    label_names: list[str]
    n_llm: int  # documents the label run has a result for
    excluded_test: int  # of those, in a held-out test part: never trained on
    invalid: int  # of the rest, without a valid label (invalid answers, errors)

    def counts(self) -> dict[str, Any]:
        from collections import Counter

        return {
            "n_llm": self.n_llm,
            "excluded_test": self.excluded_test,
            "invalid": self.invalid,
            "n_available": len(self.texts),
            "label_counts": dict(Counter(self.labels)),
        }

    def kept_by(self, min_confidence: float | None, min_consistency: float | None) -> int:
        """How many rows the confidence and consistency floors keep (``train``'s own rule)."""
        from distill_core.student.train import below_floor

        return sum(
            not below_floor(c, min_confidence) and not below_floor(k, min_consistency)
            for c, k in zip(self.confidences, self.consistencies, strict=True)
        )


@entry(Capability.READ)
def training_set(session: Session, user: User, project_id: int, label_run_id: int) -> TrainingSet:
    """The run's valid LLM labels minus every document of a held-out test part."""
    run = session.get(LabelRun, label_run_id)
    if run is None or run.project_id != project_id:
        raise StudentError(f"Label run {label_run_id} is not part of this project.")
    label_names = [lab.name for lab in Codebook.from_dict(run.codebook, check=False).labels]
    frame = runs.results_frame(session, user, project_id, run.id)
    held_out = validation.training_exclusions(session, project_id)
    in_test = frame["doc_id"].isin(held_out)
    rest = frame[~in_test]
    valid = (rest["status"] == "ok") & rest["label"].isin(label_names)
    use = rest[valid]

    def floats(col: str) -> list[float | None]:
        return [None if v != v or v is None else float(v) for v in use[col].tolist()]

    return TrainingSet(
        doc_ids=use["doc_id"].tolist(),
        texts=use["text"].fillna("").astype(str).tolist(),
        labels=use["label"].astype(str).tolist(),
        confidences=floats("confidence"),
        consistencies=floats("consistency"),
        label_names=label_names,
        n_llm=len(frame),
        excluded_test=int(in_test.sum()),
        invalid=int((~valid).sum()),
    )


@dataclass(frozen=True)
class TrainingCounts:
    """``TrainingSet``'s counts, counted in the database: documents the run has a result for,
    those held out for testing, those of the rest without a valid label, those left
    (``n_available``) and how many of them the confidence and consistency floors keep."""

    n_llm: int
    excluded_test: int
    invalid: int
    n_available: int
    kept: int


@entry(Capability.READ)
def training_counts(
    session: Session,
    user: User,
    project_id: int,
    label_run_id: int,
    *,
    min_confidence: float | None = None,
    min_consistency: float | None = None,
) -> TrainingCounts:
    """What ``training_set(...)`` and its ``kept_by(min_confidence, min_consistency)`` count,
    without reading a text: the run's results are counted in SQL, once over the run and once
    over its held-out documents, which are taken away."""
    run = session.get(LabelRun, label_run_id)
    if run is None or run.project_id != project_id:
        raise StudentError(f"Label run {label_run_id} is not part of this project.")
    floors = (min_confidence, min_consistency)
    return memo.remembered(
        session,
        project_id,
        "training_counts",
        (run.id, floors),
        lambda: _counts(session, run, *floors),
    )


def _counts(
    session: Session, run: LabelRun, min_confidence: float | None, min_consistency: float | None
) -> TrainingCounts:
    from sqlalchemy import and_, case, or_

    from distill_core.store import Document, LabelRunItem

    names = [lab.name for lab in Codebook.from_dict(run.codebook, check=False).labels]
    valid = and_(LabelRunItem.status == "ok", LabelRunItem.label.in_(names))
    kept = valid
    for column, floor in (
        (LabelRunItem.confidence, min_confidence),
        (LabelRunItem.consistency, min_consistency),
    ):
        if floor is not None:
            kept = and_(kept, or_(column.is_(None), column >= floor))
    stmt = (
        select(
            func.count(),
            func.coalesce(func.sum(case((valid, 1), else_=0)), 0),
            func.coalesce(func.sum(case((kept, 1), else_=0)), 0),
        )
        .select_from(LabelRunItem)
        .join(
            Document,
            (Document.doc_id == LabelRunItem.doc_id) & (Document.corpus_id == run.corpus_id),
        )
        .where(LabelRunItem.run_id == run.id)
    )
    every = session.execute(stmt).one()
    held = sorted(validation.training_exclusions(session, run.project_id))
    out = [0, 0, 0]
    for start in range(0, len(held), 500):
        part = session.execute(stmt.where(LabelRunItem.doc_id.in_(held[start : start + 500])))
        out = [a + int(b) for a, b in zip(out, part.one(), strict=True)]
    n, n_valid, n_kept = (int(a) - b for a, b in zip(every, out, strict=True))
    return TrainingCounts(
        n_llm=int(every[0]),
        excluded_test=out[0],
        invalid=n - n_valid,
        n_available=n_valid,
        kept=n_kept,
    )


# ---------------------------------------------------------------- models in a project


@entry(Capability.READ)
def project_models(session: Session, user: User, project_id: int) -> list[StudentModel]:
    """The project's models, newest first. A model whose job ended without it (the worker was
    killed, the job went stale) is marked failed, and what its training left on disk removed."""
    stmt = (
        select(StudentModel)
        .where(StudentModel.project_id == project_id)
        .order_by(StudentModel.id.desc())
    )
    models = list(session.scalars(stmt))
    for model in models:
        if model.status in ("queued", "training") and model.job_id is not None:
            job = session.get(Job, model.job_id)
            if job is not None and job.status not in ACTIVE_JOB_STATUSES:
                model.status = "failed" if job.status != "cancelled" else "cancelled"
                model.finished_at = job.finished_at or utcnow()
                _remove_leftovers(project_id, model.id)
    session.flush()
    return models


def _remove_leftovers(project_id: int, model_id: int) -> None:
    """Delete a dead training's folder and what ``train`` writes beside it (partial folders,
    the checkpoint a resumed training would have continued from)."""
    from distill_core.student.checkpoint import folder_for

    folder = models_root() / str(project_id)
    if not folder.is_dir():
        return
    saved_at = folder_for(folder / str(model_id)).name
    for path in folder.iterdir():
        if path.name in (str(model_id), saved_at) or path.name.startswith(f".{model_id}.partial-"):
            shutil.rmtree(path, ignore_errors=True)


@entry(Capability.READ)
def latest_model(session: Session, user: User, project_id: int) -> StudentModel | None:
    """The project's newest ready model."""
    return session.scalar(
        select(StudentModel)
        .where(StudentModel.project_id == project_id, StudentModel.status == "ready")
        .order_by(StudentModel.id.desc())
        .limit(1)
    )


@entry(Capability.EDIT)
def delete_model(session: Session, user: User, project_id: int, model_id: int) -> None:
    """Remove a model's record, its corpus passes and its folder."""
    model = belongs(session.get(StudentModel, model_id), project_id, "model")
    folder = model_dir(model) if model.path else None
    session.delete(model)
    session.flush()
    if folder is not None and folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- reading predictions


@entry(Capability.READ)
def latest_prediction_run(session: Session, user: User, project_id: int) -> PredictionRun | None:
    """The project's most recent finished corpus pass of a student (None when there is none)."""
    return session.scalar(
        select(PredictionRun)
        .where(PredictionRun.project_id == project_id, PredictionRun.status == "done")
        .order_by(PredictionRun.id.desc())
        .limit(1)
    )


@entry(Capability.READ)
def predictions_frame(
    session: Session, user: User, project_id: int, run_id: int, *, probabilities: bool = True
) -> pd.DataFrame:
    """One row per document of a corpus pass: ``doc_id``, ``pred_label``, ``pred_confidence``
    and, with ``probabilities``, one ``prob_<label>`` column per class (codebook order)."""
    import numpy as np
    import pandas as pd

    run = belongs(session.get(PredictionRun, run_id), project_id, "corpus pass")
    labels = list((run.labels or {}).get("labels", [])) if run else []
    rows = session.execute(
        select(Prediction.doc_id, Prediction.label, Prediction.confidence, Prediction.probs).where(
            Prediction.run_id == run_id
        )
    ).all()
    frame = pd.DataFrame(
        {
            "doc_id": [r[0] for r in rows],
            "pred_label": [r[1] for r in rows],
            "pred_confidence": np.array([r[2] for r in rows], dtype=float),
        }
    )
    if probabilities and labels:
        probs = np.array([r[3] for r in rows], dtype=float).reshape(len(rows), len(labels))
        for j, label in enumerate(labels):
            frame[f"prob_{label}"] = probs[:, j]
    return frame


@entry(Capability.READ)
def prediction_counts(session: Session, user: User, project_id: int, run_id: int) -> dict[str, int]:
    """How many documents of a corpus pass the student put in each category (label → count,
    counted in the database once per state of the project: ``memo``)."""
    belongs(session.get(PredictionRun, run_id), project_id, "corpus pass")

    def count() -> dict[str, int]:
        rows = session.execute(
            select(Prediction.label, func.count())
            .where(Prediction.run_id == run_id)
            .group_by(Prediction.label)
        ).tuples()
        return {label: int(n) for label, n in rows}

    return dict(memo.remembered(session, project_id, "prediction_counts", run_id, count))


def predicted_labels(session: Session, run_id: int, doc_ids: Sequence[str]) -> dict[str, str]:
    """A corpus pass's labels of these documents only (doc id → label; those it predicted)."""
    wanted = list(dict.fromkeys(doc_ids))
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        stmt = select(Prediction.doc_id, Prediction.label).where(
            Prediction.run_id == run_id, Prediction.doc_id.in_(wanted[start : start + 500])
        )
        found.update((d, label) for d, label in session.execute(stmt).tuples())
    return found


@entry(Capability.READ)
def model_record(session: Session, user: User, project_id: int, model_id: int) -> StudentModel:
    """One of the project's models."""
    return belongs(session.get(StudentModel, model_id), project_id, "model")


@entry(Capability.READ)
def prediction_count(session: Session, user: User, project_id: int, run_id: int) -> int:
    """How many documents a corpus pass has predicted so far."""
    belongs(session.get(PredictionRun, run_id), project_id, "corpus pass")
    return session.scalar(
        select(func.count()).select_from(Prediction).where(Prediction.run_id == run_id)
    )
