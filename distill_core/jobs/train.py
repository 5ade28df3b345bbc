"""Training a student as a job: the model record and its queued job, then, in the worker, the
training, the fair comparison and the model card; cancel and failure leave no folder."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from distill_core.clock import fmt_done, utcnow
from distill_core.config import Settings
from distill_core.jobs import records
from distill_core.jobs.records import JobOutcome
from distill_core.store import (
    Job,
    LabelRun,
    Store,
    StudentModel,
)
from distill_core.store.models import User
from distill_core.student.args import TrainingArgs, TrainingCancelled, TrainingError
from distill_core.student.card import METADATA_FILE, ModelMeta, write_metadata
from distill_core.student.recipes import as_full
from distill_core.student.timing import JobEstimate, PhaseEstimate, Training, estimate
from distill_core.student.train import MIN_EXAMPLES
from distill_core.study import activity, projects
from distill_core.study.access import Capability, check, entry
from distill_core.study.comparison import (
    ROWS,
    Comparison,
    EvaluationSet,
    Tracker,
    assign_folds,
    evaluation_set,
    fair_comparison,
    fold_phase,
    fold_rows,
    human_args,
    llm_training,
    seed_phase,
    student_texts,
)
from distill_core.study.students import (
    DEFAULT_BASE,
    StudentError,
    TrainingSet,
    models_root,
    training_set,
)
from distill_core.values import json_safe

if TYPE_CHECKING:
    from sqlalchemy.orm import Session
# ---------------------------------------------------------------- training as a job


@entry(Capability.EDIT)
def start_train_job(
    session: Session,
    user: User,
    project_id: int,
    *,
    label_run_id: int,
    args: TrainingArgs,
    human_folds: int = 5,
) -> tuple[int, int]:
    """Record a model and its queued training job; returns (job id, model id).

    ``human_folds`` ≥ 2 also trains students on the human codes, cross-validated over the
    held-out test texts (that many extra trainings, each on the human-coded texts only).
    """
    busy = _running(session, project_id)
    if busy is not None:
        raise StudentError(busy.reason())
    ts = _trainable(session, user, project_id, label_run_id, args)
    run = session.get(LabelRun, label_run_id)
    model = StudentModel(
        project_id=project_id,
        corpus_id=run.corpus_id,
        label_run_id=run.id,
        codebook_version_id=run.codebook_version_id,
        status="queued",
        base_model=args.base_model or DEFAULT_BASE,
        args=args.to_dict(),
        training=ts.counts(),
        created_by=user.id,
    )
    session.add(model)
    session.flush()
    job = records.create_job(
        session,
        "train",
        project_id=project_id,
        user_id=user.id,
        params={
            "model_id": model.id,
            "human_folds": int(human_folds),
            "evaluation": _frozen(evaluation_set(session, user, project_id, ts.label_names)),
        },
    )
    model.job_id = job.id
    session.flush()
    activity.record(session, user, project_id, "started training", job_id=job.id, model_id=model.id)
    return job.id, model.id


def _trainable(session, user, project_id: int, label_run_id: int, args: TrainingArgs):
    """The run's training set, or a StudentError saying why a student cannot learn from it."""
    ts = training_set(session, user, project_id, label_run_id)
    kept = ts.kept_by(args.min_confidence, args.min_consistency)
    if kept < MIN_EXAMPLES:
        raise StudentError(
            f"Only {kept} usable LLM labels remain (of {ts.n_llm}: {ts.excluded_test} held out "
            f"for testing, {ts.invalid} invalid, {len(ts.texts) - kept} below the filters); "
            f"a student needs at least {MIN_EXAMPLES}."
        )
    if len(set(ts.labels)) < 2:
        raise StudentError("The LLM labels hold only one category; a classifier needs two.")
    return ts


@dataclass(frozen=True)
class RunningTraining:
    """A project's train job that is queued or running: one at a time per project."""

    job_id: int
    status: str
    since: datetime
    by: str

    def reason(self) -> str:
        """Why no second training can start, in one sentence."""
        when = f"{self.since:%H:%M} UTC by {self.by}"
        if self.status == "queued":
            return (
                f"A training job is waiting for a worker (queued {when}); wait for it or cancel it."
            )
        return f"A training job is running (started {when}); wait for it or cancel it."


def _running(session, project_id: int) -> RunningTraining | None:
    records.mark_stale(session)  # a job whose worker died blocks nothing
    job = session.scalars(
        select(Job)
        .where(
            Job.project_id == project_id,
            Job.kind == "train",
            Job.status.in_(records.ACTIVE),
        )
        .order_by(Job.id)
        .limit(1)
    ).first()
    if job is None:
        return None
    person = session.get(User, job.created_by) if job.created_by else None
    since = job.started_at or job.created_at
    return RunningTraining(
        job_id=job.id,
        status=job.status,
        since=since.astimezone(UTC) if since.tzinfo else since,  # stored in UTC
        by=(person.display_name or person.username) if person else "someone",
    )


@entry(Capability.READ)
def running_training(session: Session, user: User, project_id: int) -> RunningTraining | None:
    """The project's queued or running train job, if any (a second one cannot start)."""
    return _running(session, project_id)


def job_trainings(
    ts: TrainingSet,
    args: TrainingArgs,
    eval_texts: Sequence[str],
    eval_truth: Sequence[str],
    human_folds: int,
) -> list[Training]:
    """Every training a train job runs, in its order and under its progress phases: the
    student on LLM labels (each seed, each predicting the held-out texts), then with
    ``human_folds`` ≥ 2 and held-out texts the students on human codes, one per fold, each
    predicting its fold, with the job's settings less the floors (as ``fair_comparison``
    trains them: ``comparison.human_args``)."""
    out = [
        llm_training(ts, setting, seed_phase(i, args.seeds), eval_texts)
        for i, setting in enumerate(args.seed_settings(), start=1)
    ]
    if human_folds >= 2 and eval_texts:
        folds = fold_rows(assign_folds(eval_texts, human_folds, args.seed))
        for f, (rows, predicted) in enumerate(folds):
            out.append(
                Training(
                    fold_phase(f, len(folds)),
                    [eval_texts[i] for i in rows],
                    [eval_truth[i] for i in rows],
                    human_args(args),
                    label_names=ts.label_names,
                    predicts=[eval_texts[i] for i in predicted],
                )
            )
    return out


def _evaluation_texts(session, run: LabelRun, evaluation: EvaluationSet | str):
    """(texts, human labels) of the frozen held-out texts still in the corpus."""
    if isinstance(evaluation, str):
        return [], []
    texts = projects.get_documents(session, run.corpus_id, evaluation.doc_ids)
    pairs = [
        (texts[d], y)
        for d, y in zip(evaluation.doc_ids, evaluation.truth, strict=True)
        if d in texts
    ]
    return [t for t, _ in pairs], [y for _, y in pairs]


#: The TF-IDF baseline is timed on at most this many training texts, then scaled by the
#: ratio of texts to the power BASELINE_GROWTH (measured on tweets, 2 cores: 0.25 s for 250
#: texts, 1.8 s for 1,000, 4.4 s for 2,000).
BASELINE_SAMPLE = 300
BASELINE_GROWTH = 1.4


def _time_baseline(ts: TrainingSet, args: TrainingArgs) -> PhaseEstimate:
    """The TF-IDF baseline's fit, timed on its first texts and scaled to all of them (the
    texts the student fits on: ``comparison.student_texts``)."""
    import sklearn.feature_extraction.text  # noqa: F401  (imports are not the fit's time)
    import sklearn.linear_model  # noqa: F401
    import sklearn.pipeline  # noqa: F401

    from distill_core.student.baseline import fit_baseline

    rows = student_texts(ts, args).rows
    n = min(len(rows), BASELINE_SAMPLE)
    t0 = time.perf_counter()
    with contextlib.suppress(ValueError):  # one class among the first texts: still timed
        fit_baseline([ts.texts[i] for i in rows[:n]], [ts.labels[i] for i in rows[:n]], args.seed)
    seconds = (time.perf_counter() - t0) * (len(rows) / max(1, n)) ** BASELINE_GROWTH
    return PhaseEstimate(ROWS["tfidf_llm"], 0, seconds)


@entry(Capability.EDIT)
def estimate_train_job(
    session: Session,
    user: User,
    project_id: int,
    *,
    label_run_id: int,
    args: TrainingArgs,
    human_folds: int = 5,
    settings: Settings | None = None,
) -> JobEstimate:
    """How long ``start_train_job`` with these settings would take: a few real training steps
    on the run's own texts, timed here (a few seconds), projected over the whole job (every
    seed, the students on human codes, the TF-IDF baseline, the held-out predictions). Where
    jobs go to a worker on another machine (``DISTILL_REDIS_URL``), it says it was measured
    here. Refuses in one sentence what ``start_train_job`` would refuse."""
    ts = _trainable(session, user, project_id, label_run_id, args)
    run = session.get(LabelRun, label_run_id)
    evaluation = evaluation_set(session, user, project_id, ts.label_names)
    texts, truth = _evaluation_texts(session, run, evaluation)
    remote = (settings or Settings.from_env()).redis_url is not None
    where = "this machine, not the worker that will train" if remote else "this machine"
    try:
        return estimate(  # of full fine-tuning, whatever the recipe (recipes.estimate_sentence)
            job_trainings(ts, as_full(args), texts, truth, human_folds),
            extra=[_time_baseline(ts, args)],
            where=where,
        )
    except TrainingError as exc:
        raise StudentError(str(exc)) from exc


def _set_model(store: Store, model_id: int, **values: Any) -> None:
    with store.session() as s:
        model = s.get(StudentModel, model_id)
        for key, value in values.items():
            setattr(model, key, value)


def run_train_job(store: Store, job_id: int, secret: str | None = None) -> JobOutcome:
    """Worker side: train the student, then the fair comparison; the model record follows."""
    from distill_core.student.train import train

    with store.session() as s:
        job = s.get(Job, job_id)
        user = s.get(User, job.created_by) if job.created_by else None
        check(s, user, job.project_id, Capability.EDIT)
        user_id = user.id
        params = dict(job.params)
        model = s.get(StudentModel, params["model_id"])
        model_id, project_id, run_id = model.id, model.project_id, model.label_run_id
        args = TrainingArgs.from_dict(model.args)
        ts = training_set(s, user, project_id, run_id)
        stored = params.get("evaluation")  # frozen when the job was queued
        if stored is None:  # a job queued before evaluation sets were frozen
            evaluation = evaluation_set(s, user, project_id, ts.label_names)
        else:
            evaluation = stored.get("reason") or EvaluationSet.from_dict(stored)
        run = s.get(LabelRun, run_id)
        eval_texts, eval_truth = _evaluation_texts(s, run, evaluation)
        version = run.codebook_version_id
        extra = {
            "project_id": project_id,
            "label_run_id": run_id,
            "codebook_version_id": version,
            "codebook_version": projects.version_number(s, version),
            "codebook": run.codebook,
            "teacher": {"kind": run.teacher, "model": run.model},
            "training_set": ts.counts(),
        }
    human_folds = params.get("human_folds", 5)
    args, choice = _recipe(store, job_id, ts, args, eval_texts, eval_truth, human_folds)
    extra["recipe_choice"] = choice.to_dict()
    trainings = job_trainings(ts, args, eval_texts, eval_truth, human_folds)
    plans = {t.phase: _plan(t) for t in trainings}  # each training's shape, worked out once
    tracker = _Tracker(store, job_id, [(ph, p.steps if p else 0) for ph, p in plans.items()])
    tracker.n_train = {ph: p.n_train if p else None for ph, p in plans.items()}
    relative = Path(str(project_id)) / str(model_id)
    out = models_root() / relative
    if out.exists():  # left by a worker killed while renaming: nothing to keep
        shutil.rmtree(out, ignore_errors=True)
    # the training set as trained (a sample drawn since the job was queued holds out more)
    _set_model(store, model_id, status="training", training=ts.counts())
    try:
        result = train(
            ts.texts,
            ts.labels,
            out,
            args,
            label_names=ts.label_names,
            confidences=ts.confidences,
            consistencies=ts.consistencies,
            on_progress=tracker.phase(seed_phase(1, args.seeds)),
            should_stop=tracker.cancelled,
            extra_metadata=extra,
        )
        _set_model(store, model_id, path=str(relative), meta=json_safe(result.metadata.to_dict()))
        comparison = fair_comparison(
            store,
            user_id,
            project_id,
            run_id,
            out,
            ts,
            args,
            evaluation,
            human_folds=human_folds,
            tracker=tracker,
        )
    except TrainingCancelled:
        _set_model(store, model_id, status="cancelled", finished_at=utcnow())
        shutil.rmtree(out, ignore_errors=True)
        raise records.JobCancelled from None
    except Exception:
        _set_model(store, model_id, status="failed", finished_at=utcnow())
        shutil.rmtree(out, ignore_errors=True)
        raise
    tracker.finish()
    meta = _record_heldout(out, comparison)
    _set_model(
        store,
        model_id,
        status="ready",
        comparison=comparison.to_dict(),
        meta=json_safe(meta.to_dict()),
        finished_at=utcnow(),
    )
    summary = f"Trained on {fmt_done(result.n_train, 'texts', result.train_seconds)}"
    best = comparison.row("student_llm")
    if best is not None:
        summary += (
            f"; macro-F1 {best.metrics.macro_f1:.3f} on {best.metrics.n} held-out human-coded texts"
        )
    spread = comparison.seeds.spread("macro_f1") if comparison.seeds else None
    if spread is not None:
        summary += f" (across {comparison.seeds.n_seeds} seeds: {spread.text()})"
    return JobOutcome({"model_id": model_id}, message=summary + ".")


def _recipe(store, job_id, ts, args, eval_texts, eval_truth, human_folds):
    """(the job's settings with its recipe, why: student/recipes.py). "auto" on a CPU times a
    few real steps of full fine-tuning of this very job (every seed and fold) and keeps it
    when it fits the time budget, else takes the head recipe; every training of the job then
    uses the same recipe."""
    from distill_core.student.recipes import resolve

    if args.recipe == "auto":
        records.update_job(store, job_id, message="Choosing the recipe: timing a few steps…")
    folds = human_folds if human_folds >= 2 and eval_texts else 0
    planned = job_trainings(ts, as_full(args), eval_texts, eval_truth, human_folds)
    return resolve(
        args,
        lambda full: estimate(planned, extra=[_time_baseline(ts, args)]),
        n_texts=len(set(ts.texts) | set(eval_texts)),
        trainings=1 + folds,
        steps=sum(t.steps() for t in planned),
    )


def _frozen(evaluation: EvaluationSet | str) -> dict:
    """The evaluation set as the job keeps it (or the reason there is none)."""
    return {"reason": evaluation} if isinstance(evaluation, str) else evaluation.to_dict()


def _record_heldout(folder: Path, comparison: Comparison) -> ModelMeta:
    """Add the held-out scores (and the spread over seeds) to the model's ``distill.json`` and
    model card; returns the updated metadata."""
    path = folder / METADATA_FILE
    meta = ModelMeta.from_dict(json.loads(path.read_text(encoding="utf-8")))
    meta.heldout = comparison.heldout()
    meta.seeds = comparison.seeds.without_predictions() if comparison.seeds else None
    write_metadata(folder, meta)
    return meta


def _plan(training):
    """A training's shape (``timing.Plan``: its steps, and the texts it fits on after its
    filters and validation split, what its live chart's n says); None when ``train()`` would
    refuse it (the job reports it untrained, with 0 steps)."""
    try:
        return training.plan()
    except TrainingError:
        return None


class _Tracker(Tracker):
    """Job progress across phases (each seed's student, then each cross-validation fold): one
    done/total over all phases' planned steps (``records.Phases``) with the phase and the time
    left, the loss and the validation macro-F1 of each finished epoch; polls the cancel flag."""

    def __init__(self, store: Store, job_id: int, planned: Sequence[tuple[str, int]] = ()) -> None:
        self.store, self.job_id = store, job_id
        self.stop = False
        self.curves: dict[str, list[dict]] = {}
        self.n_train: dict[str, int | None] = {}  # texts trained on, per phase
        self.phases = records.Phases(planned)
        self.progress = records.JobProgress()

    def cancelled(self) -> bool:
        return self.stop

    def phase(self, name: str):
        curve = self.curves.setdefault(name, [])

        def on_progress(p) -> None:
            if p.val_macro_f1 is not None and "done" in p.message:
                curve.append({"epoch": p.epoch, "loss": p.loss, "val_macro_f1": p.val_macro_f1})
            loss = f" · loss {p.loss:.3f}" if p.loss is not None else ""
            self.progress = self.phases.at(name, p.step, p.total_steps)
            self._write(message=f"{name}: {p.message}{loss}")

        return on_progress

    def _write(self, **fields: Any) -> None:
        self.stop = records.update_job(
            self.store,
            self.job_id,
            done=self.phases.done,
            total=self.phases.total,
            result={
                "phase": self.progress.phase,
                "curves": self.curves,
                "n_train": self.n_train,
                "progress": self.progress.to_dict(),
            },
            **fields,
        )

    def note(self, message: str) -> None:
        self.stop = records.update_job(self.store, self.job_id, message=message)

    def finish(self) -> None:
        """Every training is over: the bar is full (early stopping may have skipped steps)."""
        self.phases.finish()
        self.progress = records.JobProgress(phase="Scoring", eta_s=0.0)
        self._write(message="Every training is done; storing the comparison.")
