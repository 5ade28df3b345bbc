"""Training a student as a job: the model record and its queued job, then, in the worker, the
training, the fair comparison and the model card; cancel and failure leave no folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill_core.clock import utcnow
from distill_core.jobs import records
from distill_core.jobs.records import JobOutcome
from distill_core.store import (
    Job,
    LabelRun,
    Store,
    StudentModel,
)
from distill_core.store.models import User
from distill_core.student.args import TrainingArgs, TrainingCancelled
from distill_core.student.card import METADATA_FILE, ModelMeta, write_metadata
from distill_core.student.train import MIN_EXAMPLES
from distill_core.study import activity, projects
from distill_core.study.access import Capability, check, entry
from distill_core.study.comparison import (
    Comparison,
    EvaluationSet,
    Tracker,
    evaluation_set,
    fair_comparison,
    seed_phase,
)
from distill_core.study.students import (
    DEFAULT_BASE,
    StudentError,
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
    tracker = _Tracker(store, job_id)
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
            human_folds=params.get("human_folds", 5),
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
    meta = _record_heldout(out, comparison)
    _set_model(
        store,
        model_id,
        status="ready",
        comparison=comparison.to_dict(),
        meta=json_safe(meta.to_dict()),
        finished_at=utcnow(),
    )
    summary = f"Trained on {result.n_train:,} texts in {result.train_seconds:,.0f} s"
    best = comparison.row("student_llm")
    if best is not None:
        summary += (
            f"; macro-F1 {best.metrics.macro_f1:.3f} on {best.metrics.n} held-out human-coded texts"
        )
    spread = comparison.seeds.spread("macro_f1") if comparison.seeds else None
    if spread is not None:
        summary += f" (across {comparison.seeds.n_seeds} seeds: {spread.text()})"
    return JobOutcome({"model_id": model_id}, message=summary + ".")


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


class _Tracker(Tracker):
    """Job progress across phases (the student, then each cross-validation fold): step/total,
    loss and the validation macro-F1 of each finished epoch; polls the cancel flag."""

    def __init__(self, store: Store, job_id: int) -> None:
        self.store, self.job_id = store, job_id
        self.stop = False
        self.curves: dict[str, list[dict]] = {}

    def cancelled(self) -> bool:
        return self.stop

    def phase(self, name: str):
        curve = self.curves.setdefault(name, [])

        def on_progress(p) -> None:
            if p.val_macro_f1 is not None and "done" in p.message:
                curve.append({"epoch": p.epoch, "loss": p.loss, "val_macro_f1": p.val_macro_f1})
            loss = f" · loss {p.loss:.3f}" if p.loss is not None else ""
            self.stop = records.update_job(
                self.store,
                self.job_id,
                done=p.step,
                total=p.total_steps,
                message=f"{name}: {p.message}{loss}",
                result={"phase": name, "curves": self.curves},
            )

        return on_progress

    def note(self, message: str) -> None:
        self.stop = records.update_job(self.store, self.job_id, message=message)
