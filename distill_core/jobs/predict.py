"""A student's pass over the whole corpus as a job: length-sorted chunks, stored as they finish,
resumable after a cancel or a killed worker."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from distill_core.clock import fmt_done, utcnow
from distill_core.jobs import records
from distill_core.jobs.records import JobOutcome
from distill_core.store import (
    Document,
    Job,
    Prediction,
    PredictionRun,
    Store,
    StudentModel,
    bulk,
)
from distill_core.store.db import analyze
from distill_core.store.models import User
from distill_core.study import activity, projects
from distill_core.study.access import Capability, check, entry
from distill_core.study.students import StudentError, model_dir

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
# ---------------------------------------------------------------- the whole corpus


#: The pass's clock (seconds; a test gives it a stand-in).
clock = time.perf_counter
#: The most texts handed to the model per chunk of a corpus pass. Each chunk is stored as it
#: finishes, and only stored texts count as done, so the bar never goes back after a restart.
PREDICT_CHUNK = 2048
#: The least texts per chunk (one batch of ``Predictor.predict``).
MIN_CHUNK = 64
#: Seconds of work a chunk aims at: what a killed pass does again at most, and how often the
#: bar moves.
CHUNK_S = 2.0


def chunk_size(rate: float | None) -> int:
    """Texts in the next chunk at ``rate`` texts/s (None: not measured yet): about
    ``CHUNK_S`` seconds of work, a whole number of batches, from ``MIN_CHUNK`` to
    ``PREDICT_CHUNK``."""
    if not rate or rate <= 0:
        return MIN_CHUNK * 4
    batches = max(1, int(rate * CHUNK_S) // MIN_CHUNK)
    return max(MIN_CHUNK, min(PREDICT_CHUNK, batches * MIN_CHUNK))


@entry(Capability.EDIT)
def start_predict_job(
    session: Session, user: User, project_id: int, *, model_id: int
) -> tuple[int, int]:
    """Queue a pass of a ready model over the project's corpus; returns (job id, run id).

    An unfinished pass of the same model over the same corpus (cancelled, or its worker was
    killed) is continued: the documents it already predicted are not predicted again.
    """
    model = session.get(StudentModel, model_id)
    if model is None or model.project_id != project_id or model.status != "ready":
        raise StudentError("Choose a trained model of this project first.")
    corpus = projects.get_corpus(session, user, project_id)
    if corpus is None:
        raise StudentError("The project has no corpus to label.")
    run = session.scalar(
        select(PredictionRun)
        .where(
            PredictionRun.model_id == model_id,
            PredictionRun.corpus_id == corpus.id,
            PredictionRun.status != "done",
        )
        .order_by(PredictionRun.id.desc())
        .limit(1)
    )
    labels = list(model.meta.get("labels") or [])
    if run is None:
        run = PredictionRun(
            project_id=project_id,
            model_id=model_id,
            corpus_id=corpus.id,
            labels={"labels": labels},
            created_by=user.id,
        )
        session.add(run)
    run.status = "running"
    session.flush()
    job = records.create_job(
        session,
        "predict",
        project_id=project_id,
        user_id=user.id,
        total=corpus.row_count,
        params={"prediction_run_id": run.id},
    )
    run.job_id = job.id
    session.flush()
    activity.record(session, user, project_id, "started labelling the corpus", job_id=job.id)
    return job.id, run.id


def run_predict_job(store: Store, job_id: int, secret: str | None = None) -> JobOutcome:
    """Worker side: predict every document not yet predicted, longest-last in chunks that are
    stored as they finish (a killed pass resumes where it stopped)."""
    from distill_core.student.predict import PredictionCancelled, Predictor

    with store.session() as s:
        job = s.get(Job, job_id)
        check(
            s,
            s.get(User, job.created_by) if job.created_by else None,
            job.project_id,
            Capability.EDIT,
        )
        run = s.get(PredictionRun, job.params["prediction_run_id"])
        run_id, corpus_id = run.id, run.corpus_id
        earlier = float(run.seconds or 0.0)  # what the pass took before a restart
        folder = model_dir(s.get(StudentModel, run.model_id))
        done = set(s.scalars(select(Prediction.doc_id).where(Prediction.run_id == run_id)))
        docs = [
            (d, t)
            for d, t in s.execute(
                select(Document.doc_id, Document.text).where(Document.corpus_id == corpus_id)
            ).tuples()
            if d not in done
        ]
    total = len(done) + len(docs)
    docs.sort(key=lambda dt: len(dt[1] or ""))
    started = clock()
    stop = records.update_job(
        store,
        job_id,
        done=len(done),
        total=total,
        result={"progress": records.JobProgress(phase="loading the model", unit="texts").to_dict()},
        message="Loading the model…"
        if not done
        else f"Loading the model to go on: {len(done):,} of {total:,} texts are labelled.",
    )
    predictor = Predictor(folder)
    finished = len(done)
    loaded = clock()  # the rate counts predicting, not loading the model
    rate: float | None = None  # of the last chunk: the texts ahead are as long or longer
    start = 0
    try:
        while start < len(docs) and not stop:
            chunk = docs[start : start + chunk_size(rate)]
            began = clock()
            out = predictor.predict([t for _, t in chunk])
            rows = [
                {
                    "run_id": run_id,
                    "doc_id": d,
                    "label": label,
                    "confidence": float(conf),
                    "probs": [round(float(p), 6) for p in probs],
                }
                for (d, _), label, conf, probs in zip(
                    chunk, out.labels, out.confidence, out.probabilities, strict=True
                )
            ]
            with store.session() as s:
                bulk.insert_many(s, Prediction.__table__, rows)
                s.get(PredictionRun, run_id).seconds = round(earlier + clock() - started, 3)
            start += len(chunk)
            finished += len(chunk)
            now = clock()
            rate = len(chunk) / max(1e-9, now - began)
            so_far = (finished - len(done)) / max(1e-9, now - loaded)
            stop = records.update_job(
                store,
                job_id,
                done=finished,
                result={"progress": progress(finished, total, rate).to_dict()},
                message=f"{finished:,} of {total:,} texts labelled ({so_far:,.0f} texts/s).",
            )
        if stop and start < len(docs):  # cancelled: what is stored is kept
            raise PredictionCancelled
    except PredictionCancelled:
        _set_run(store, run_id, status="cancelled", n=finished)
        raise records.JobCancelled from None
    except Exception:
        _set_run(store, run_id, status="failed", n=finished)
        raise
    seconds = earlier + clock() - started
    _set_run(
        store,
        run_id,
        status="done",
        n=finished,
        seconds=round(seconds, 3),
        device=predictor.device,
        finished_at=utcnow(),
    )
    with store.session() as s:  # the planner's statistics for the pass's rows (SQLite)
        analyze(s)
    return JobOutcome(
        {"prediction_run_id": run_id},
        message=f"Labelled {fmt_done(finished, 'texts', seconds)} with the student.",
    )


def progress(done: int, total: int, rate: float) -> records.JobProgress:
    """The bar's text beside done and total: texts, and the time left at ``rate`` texts/s."""
    left = (total - done) / rate if rate > 0 and done < total else None
    return records.JobProgress(unit="texts", eta_s=None if left is None else round(left, 1))


def _set_run(store: Store, run_id: int, **values: Any) -> None:
    with store.session() as s:
        run = s.get(PredictionRun, run_id)
        for key, value in values.items():
            setattr(run, key, value)
