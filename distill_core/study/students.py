"""Students in a project: the training set drawn from an LLM label run, training as a job,
the fair comparison on held-out human codes, the model zip, and whole-corpus inference.

Model folders live under ``DISTILL_HOME/models/<project id>/<model id>`` (a lab's GPU workers
must see the same folder). The store keeps each model's record (``StudentModel``) with its
training-set counts and comparison, and every prediction of a corpus pass (``Prediction``).
"""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from distill_core.codebook import Codebook
from distill_core.config import Settings
from distill_core.jobs import queue as jobs
from distill_core.store import (
    Document,
    LabelRun,
    Prediction,
    PredictionRun,
    Store,
    StudentModel,
    User,
)
from distill_core.store.models import utcnow
from distill_core.student.train import MIN_EXAMPLES, TrainingArgs, TrainingCancelled
from distill_core.study import labelling as labeling
from distill_core.study import projects, validation

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.orm import Session

#: Name shown for the bundled default student.
DEFAULT_BASE = "all-MiniLM-L6-v2 (bundled)"
#: Fewest human-coded held-out test texts for the comparison.
MIN_EVAL = 10
#: Texts handed to the model per chunk of a corpus pass (stored, then progress is reported).
PREDICT_CHUNK = 2048

#: The rows of the fair comparison, in the order they are shown.
ROWS = {
    "llm": "LLM labels",
    "student_llm": "Student on LLM labels",
    "student_human": "Student on human codes",
    "tfidf_llm": "TF-IDF + logistic regression on LLM labels",
}


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


def training_set(session: Session, project_id: int, label_run_id: int) -> TrainingSet:
    """The run's valid LLM labels minus every document of a held-out test part."""
    run = session.get(LabelRun, label_run_id)
    if run is None or run.project_id != project_id:
        raise StudentError(f"Label run {label_run_id} is not part of this project.")
    label_names = [lab.name for lab in Codebook.from_dict(run.codebook, check=False).labels]
    frame = labeling.results_frame(session, run.id)
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


# ---------------------------------------------------------------- models in a project


def project_models(session: Session, project_id: int) -> list[StudentModel]:
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
            job = session.get(jobs.Job, model.job_id)
            if job is not None and job.status not in jobs.ACTIVE:
                model.status = "failed" if job.status != "cancelled" else "cancelled"
                model.finished_at = job.finished_at or utcnow()
                _remove_leftovers(project_id, model.id)
    session.flush()
    return models


def _remove_leftovers(project_id: int, model_id: int) -> None:
    """Delete a dead training's folder and the partial folders ``train`` writes beside it."""
    folder = models_root() / str(project_id)
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.name == str(model_id) or path.name.startswith(f".{model_id}.partial-"):
            shutil.rmtree(path, ignore_errors=True)


def latest_model(session: Session, project_id: int) -> StudentModel | None:
    """The project's newest ready model."""
    return session.scalar(
        select(StudentModel)
        .where(StudentModel.project_id == project_id, StudentModel.status == "ready")
        .order_by(StudentModel.id.desc())
        .limit(1)
    )


def delete_model(session: Session, user: User, model_id: int) -> None:
    """Remove a model's record, its corpus passes and its folder."""
    model = session.get(StudentModel, model_id)
    if model is None:
        return
    projects.get_project(session, user, model.project_id, at_least="editor")
    folder = model_dir(model) if model.path else None
    session.delete(model)
    session.flush()
    if folder is not None and folder.is_dir():
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- training as a job


def args_from_dict(data: dict[str, Any]) -> TrainingArgs:
    names = {f.name for f in fields(TrainingArgs)}
    return TrainingArgs(**{k: v for k, v in data.items() if k in names})


def start_train_job(
    session: Session,
    *,
    project_id: int,
    label_run_id: int,
    args: TrainingArgs,
    human_folds: int = 5,
    user_id: int | None = None,
) -> tuple[int, int]:
    """Record a model and its queued training job; returns (job id, model id).

    ``human_folds`` ≥ 2 also trains students on the human codes, cross-validated over the
    held-out test texts (that many extra trainings, each on the human-coded texts only).
    """
    ts = training_set(session, project_id, label_run_id)
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
        args=asdict(args),
        training=ts.counts(),
        created_by=user_id,
    )
    session.add(model)
    session.flush()
    job = jobs.create_job(
        session,
        "train",
        project_id=project_id,
        user_id=user_id,
        params={"model_id": model.id, "human_folds": int(human_folds)},
    )
    model.job_id = job.id
    session.flush()
    return job.id, model.id


def _set_model(store: Store, model_id: int, **values: Any) -> None:
    with store.session() as s:
        model = s.get(StudentModel, model_id)
        for key, value in values.items():
            setattr(model, key, value)


@jobs.runner("train")
def run_train_job(store: Store, job_id: int, secret: str | None = None) -> dict:
    """Worker side: train the student, then the fair comparison; the model record follows."""
    from distill_core.student.train import train

    with store.session() as s:
        params = dict(s.get(jobs.Job, job_id).params)
        model = s.get(StudentModel, params["model_id"])
        model_id, project_id, run_id = model.id, model.project_id, model.label_run_id
        args = args_from_dict(model.args)
        ts = training_set(s, project_id, run_id)
        run = s.get(LabelRun, run_id)
        version = run.codebook_version_id
        extra = {
            "project_id": project_id,
            "label_run_id": run_id,
            "codebook_version_id": version,
            "codebook_version": _version_number(s, version),
            "codebook": run.codebook,
            "teacher": {"kind": run.teacher, "model": run.model},
            "training_set": ts.counts(),
        }
    tracker = _Tracker(store, job_id)
    relative = Path(str(project_id)) / str(model_id)
    out = models_root() / relative
    if out.exists():  # left by a worker killed while renaming: nothing to keep
        shutil.rmtree(out, ignore_errors=True)
    _set_model(store, model_id, status="training")
    try:
        result = train(
            ts.texts,
            ts.labels,
            out,
            args,
            label_names=ts.label_names,
            confidences=ts.confidences,
            consistencies=ts.consistencies,
            on_progress=tracker.phase("Student on LLM labels"),
            should_stop=tracker.cancelled,
            extra_metadata=extra,
        )
        _set_model(store, model_id, path=str(relative), meta=_json_safe(result.metadata))
        comparison = fair_comparison(
            store,
            project_id,
            run_id,
            out,
            ts,
            args,
            human_folds=params.get("human_folds", 5),
            tracker=tracker,
        )
    except TrainingCancelled:
        _set_model(store, model_id, status="cancelled", finished_at=utcnow())
        shutil.rmtree(out, ignore_errors=True)
        raise jobs.JobCancelled from None
    except Exception:
        _set_model(store, model_id, status="failed", finished_at=utcnow())
        shutil.rmtree(out, ignore_errors=True)
        raise
    meta = _record_heldout(out, comparison)
    _set_model(
        store, model_id, status="ready", comparison=comparison, meta=meta, finished_at=utcnow()
    )
    summary = f"Trained on {result.n_train:,} texts in {result.train_seconds:,.0f} s"
    best = next((r for r in comparison.get("rows", []) if r["key"] == "student_llm"), None)
    if best is not None:
        summary += (
            f"; macro-F1 {best['metrics']['macro_f1']:.3f} on "
            f"{best['metrics']['n']} held-out human-coded texts"
        )
    return {"model_id": model_id, "_message": summary + "."}


def _record_heldout(folder: Path, comparison: dict) -> dict:
    """Add the held-out scores to the model's ``distill.json`` and model card; returns the
    updated metadata."""
    import json

    from distill_core.student.train import METADATA_FILE, model_card

    path = folder / METADATA_FILE
    meta = json.loads(path.read_text(encoding="utf-8"))
    if comparison.get("eval"):
        meta["heldout"] = {
            "n": comparison["eval"]["n"],
            "rows": [
                {
                    "key": r["key"],
                    "name": r["name"],
                    "macro_f1": r["metrics"]["macro_f1"],
                    "macro_f1_ci": r["metrics"]["ci"]["macro_f1"],
                    "accuracy": r["metrics"]["accuracy"],
                    "accuracy_ci": r["metrics"]["ci"]["accuracy"],
                }
                for r in comparison["rows"]
                if r.get("metrics")
            ],
        }
    for target, text in (
        (path, json.dumps(meta, indent=2, ensure_ascii=False, default=str)),
        (folder / "README.md", model_card(meta)),
    ):
        partial = target.with_suffix(target.suffix + ".partial")
        partial.write_text(text, encoding="utf-8")
        partial.replace(target)
    return _json_safe(meta)


def _version_number(session: Session, version_id: int | None) -> int | None:
    from distill_core.store import CodebookVersion

    row = session.get(CodebookVersion, version_id) if version_id else None
    return row.version if row else None


def _json_safe(value: Any) -> Any:
    """``value`` as JSON can store it: NaN and infinities become None, tuples lists, and
    anything else that is not JSON its string."""
    import math

    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


class _Tracker:
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
            self.stop = jobs.update_job(
                self.store,
                self.job_id,
                done=p.step,
                total=p.total_steps,
                message=f"{name}: {p.message}{loss}",
                result={"phase": name, "curves": self.curves},
            )

        return on_progress

    def note(self, message: str) -> None:
        self.stop = jobs.update_job(self.store, self.job_id, message=message)


# ---------------------------------------------------------------- the fair comparison


def fair_comparison(
    store: Store,
    project_id: int,
    run_id: int,
    student_dir: Path,
    ts: TrainingSet,
    args: TrainingArgs,
    *,
    human_folds: int = 5,
    tracker: _Tracker | None = None,
) -> dict[str, Any]:
    """The paper's table for this project, on the held-out test texts a human coded.

    Rows: the LLM's own labels; the student trained on LLM labels; students trained on human
    codes (k-fold over the test texts: each test text is predicted by a student trained on
    every other human-coded text, never on itself); TF-IDF + logistic regression on the same
    LLM labels. Each row has all metrics of ``agreement.compare`` with 95% bootstrap intervals
    and per-class F1 intervals. Returns ``{"eval": None, "reason": ...}`` when there is too little
    to compare on.
    """
    from distill_core.student.baseline import fit_baseline
    from distill_core.student.predict import Predictor

    with store.session() as s:
        sample = validation.current_sample(s, project_id)
        if sample is None:
            return {
                "eval": None,
                "rows": [],
                "reason": "No validation sample yet: draw one and code its held-out test part "
                "on the Validate page to compare the student with the LLM.",
            }
        gold, _ties = validation.gold_labels(validation.codes_frame(s, project_id))
        gold = {d: g for d, g in gold.items() if g in ts.label_names}
        test_ids = [d.doc_id for d in validation.sample_docs(s, sample, part="test")]
        eval_ids = [d for d in test_ids if d in gold]
        sample_info = {"sample_id": sample.id, "sample_method": sample.method}
        run = s.get(LabelRun, run_id)
        corpus_id, version_id = run.corpus_id, run.codebook_version_id
        if len(eval_ids) < MIN_EVAL:
            return {
                "eval": None,
                "rows": [],
                "reason": f"The held-out test part has {len(eval_ids)} human-coded texts; code "
                f"at least {MIN_EVAL} on the Validate page to compare the student with the LLM.",
            }
        texts = projects.get_documents(s, corpus_id, eval_ids)
        in_eval = set(eval_ids)
        items = {r.doc_id: r for r in labeling.run_results(s, run_id) if r.doc_id in in_eval}
        others = [d for d in gold if d not in in_eval]
        other_texts = projects.get_documents(s, corpus_id, others)
    eval_texts = [texts.get(d, "") for d in eval_ids]
    truth = [gold[d] for d in eval_ids]
    rows: list[dict[str, Any]] = []

    covered = [i for i, d in enumerate(eval_ids) if d in items]
    if covered:
        llm = [
            items[eval_ids[i]].label if items[eval_ids[i]].status == "ok" else None for i in covered
        ]
        note = ""
        if len(covered) < len(eval_ids):
            note = f"The label run covers {len(covered)} of the {len(eval_ids)} test texts."
        rows.append(_row("llm", [truth[i] for i in covered], llm, ts.label_names, None, note))

    if tracker:
        tracker.note("Scoring the student on the held-out test texts…")
    student = Predictor(student_dir).predict(eval_texts).labels
    rows.append(_row("student_llm", truth, student, ts.label_names, _n_train(student_dir), ""))

    if human_folds >= 2:
        rows.append(
            _human_row(
                eval_ids,
                eval_texts,
                truth,
                others,
                other_texts,
                gold,
                ts,
                args,
                human_folds,
                tracker,
            )
        )

    baseline = fit_baseline(ts.texts, ts.labels, seed=args.seed).predict(eval_texts)[0]
    rows.append(_row("tfidf_llm", truth, baseline, ts.label_names, len(ts.texts), ""))
    rows.sort(key=lambda r: list(ROWS).index(r["key"]))
    with store.session() as s:  # the LLM's held-out score is now seen: later edits overfit
        validation.mark_test_seen(s, sample_info["sample_id"], _version_number(s, version_id))
    return _json_safe(
        {
            "eval": {
                "part": "test",
                "n": len(eval_ids),
                "gold": "majority of coders",
                "doc_ids": eval_ids,
                "truth": truth,
                **sample_info,
            },
            "rows": rows,
        }
    )


def _n_train(model_path: Path) -> int | None:
    import json

    meta = model_path / "distill.json"
    return json.loads(meta.read_text(encoding="utf-8")).get("n_train") if meta.is_file() else None


def _row(
    key: str,
    truth: Sequence[str],
    pred: Sequence[str | None],
    labels: Sequence[str],
    n_train: int | None,
    note: str,
) -> dict[str, Any]:
    from distill_core import agreement

    result = agreement.compare(truth, pred, labels=labels, n_boot=1000, seed=0)
    class_ci = validation.class_f1_intervals(truth, pred, labels)
    return {
        "key": key,
        "name": ROWS[key],
        "n_train": n_train,
        "note": note,
        "metrics": result.to_dict(),
        "class_ci": {k: list(v) for k, v in class_ci.items()},
        "predictions": list(pred),
    }


def _human_row(
    eval_ids, eval_texts, truth, others, other_texts, gold, ts, args, folds, tracker
) -> dict[str, Any]:
    """Out-of-fold predictions of students trained on human codes only (same recipe)."""
    from distill_core.student.predict import Predictor
    from distill_core.student.train import TrainingError, train

    k = max(2, min(int(folds), len(eval_ids)))
    order = list(range(len(eval_ids)))
    random.Random(args.seed).shuffle(order)
    fold_of = {i: n % k for n, i in enumerate(order)}
    pred: list[str | None] = [None] * len(eval_ids)
    sizes = []
    base_texts = [other_texts.get(d, "") for d in others]
    base_labels = [gold[d] for d in others]
    for f in range(k):
        x = base_texts + [eval_texts[i] for i in order if fold_of[i] != f]
        y = base_labels + [truth[i] for i in order if fold_of[i] != f]
        sizes.append(len(x))
        with tempfile.TemporaryDirectory(prefix="distill-cv-") as tmp:
            try:
                train(
                    x,
                    y,
                    Path(tmp) / "model",
                    args,
                    label_names=ts.label_names,
                    on_progress=tracker.phase(f"Student on human codes, fold {f + 1} of {k}")
                    if tracker
                    else None,
                    should_stop=tracker.cancelled if tracker else None,
                )
            except TrainingError as exc:
                return {
                    "key": "student_human",
                    "name": ROWS["student_human"],
                    "n_train": None,
                    "note": f"Not trained: {exc}",
                    "metrics": None,
                    "class_ci": {},
                    "predictions": [],
                }
            idx = [i for i in range(len(eval_ids)) if fold_of[i] == f]
            got = Predictor(Path(tmp) / "model").predict([eval_texts[i] for i in idx]).labels
            for i, label in zip(idx, got, strict=True):
                pred[i] = label
    row = _row("student_human", truth, pred, ts.label_names, round(sum(sizes) / k), "")
    row["name"] = f"{ROWS['student_human']} ({k}-fold cross-validation)"
    row["note"] = (
        f"{k} students, each trained on about {round(sum(sizes) / k)} human-coded texts "
        "(all but one fold of the test texts, plus coded texts outside the test part)."
    )
    return row


# ---------------------------------------------------------------- reading predictions


def latest_prediction_run(session: Session, project_id: int) -> PredictionRun | None:
    """The project's most recent finished corpus pass of a student (None when there is none)."""
    return session.scalar(
        select(PredictionRun)
        .where(PredictionRun.project_id == project_id, PredictionRun.status == "done")
        .order_by(PredictionRun.id.desc())
        .limit(1)
    )


def predictions_frame(session: Session, run_id: int, *, probabilities: bool = True) -> pd.DataFrame:
    """One row per document of a corpus pass: ``doc_id``, ``pred_label``, ``pred_confidence``
    and, with ``probabilities``, one ``prob_<label>`` column per class (codebook order)."""
    import numpy as np
    import pandas as pd

    run = session.get(PredictionRun, run_id)
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


def model_record(session: Session, model_id: int) -> StudentModel | None:
    return session.get(StudentModel, model_id)


# ---------------------------------------------------------------- the whole corpus


def start_predict_job(
    session: Session, *, project_id: int, model_id: int, user_id: int | None = None
) -> tuple[int, int]:
    """Queue a pass of a ready model over the project's corpus; returns (job id, run id).

    An unfinished pass of the same model over the same corpus (cancelled, or its worker was
    killed) is continued: the documents it already predicted are not predicted again.
    """
    model = session.get(StudentModel, model_id)
    if model is None or model.project_id != project_id or model.status != "ready":
        raise StudentError("Choose a trained model of this project first.")
    corpus = projects.get_corpus(session, project_id)
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
            created_by=user_id,
        )
        session.add(run)
    run.status = "running"
    session.flush()
    job = jobs.create_job(
        session,
        "predict",
        project_id=project_id,
        user_id=user_id,
        total=corpus.row_count,
        params={"prediction_run_id": run.id},
    )
    run.job_id = job.id
    session.flush()
    return job.id, run.id


@jobs.runner("predict")
def run_predict_job(store: Store, job_id: int, secret: str | None = None) -> dict:
    """Worker side: predict every document not yet predicted, longest-last in chunks that are
    stored as they finish (a killed pass resumes where it stopped)."""
    from distill_core.student.predict import PredictionCancelled, Predictor

    with store.session() as s:
        run = s.get(PredictionRun, s.get(jobs.Job, job_id).params["prediction_run_id"])
        run_id, corpus_id = run.id, run.corpus_id
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
    started = time.perf_counter()
    stop = jobs.update_job(store, job_id, done=len(done), total=total, message="Loading the model…")
    predictor = Predictor(folder)
    finished = len(done)
    flag = {"stop": stop, "at": 0.0}

    def report(n_done: int, message: str | None = None, force: bool = False) -> None:
        now = time.perf_counter()
        if force or now - flag["at"] >= 0.5:
            flag["at"] = now
            rate = (n_done - len(done)) / max(1e-9, now - started)
            flag["stop"] = jobs.update_job(
                store,
                job_id,
                done=n_done,
                message=message or f"{n_done:,} of {total:,} texts labelled ({rate:,.0f} texts/s).",
            )

    try:
        for start in range(0, len(docs), PREDICT_CHUNK):
            chunk = docs[start : start + PREDICT_CHUNK]
            out = predictor.predict(
                [t for _, t in chunk],
                on_progress=lambda i, _n, base=finished: report(base + i),
                should_stop=lambda: flag["stop"],
            )
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
                labeling.insert_many(s, Prediction.__table__, rows)
            finished += len(chunk)
            report(finished, force=True)
            if flag["stop"]:
                raise PredictionCancelled
    except PredictionCancelled:
        _set_run(store, run_id, status="cancelled", n=finished)
        raise jobs.JobCancelled from None
    except Exception:
        _set_run(store, run_id, status="failed", n=finished)
        raise
    seconds = time.perf_counter() - started
    _set_run(
        store,
        run_id,
        status="done",
        n=finished,
        seconds=round(seconds, 3),
        device=predictor.device,
        finished_at=utcnow(),
    )
    return {
        "prediction_run_id": run_id,
        "_message": f"Labelled {finished:,} texts with the student in {seconds:,.0f} s.",
    }


def _set_run(store: Store, run_id: int, **values: Any) -> None:
    with store.session() as s:
        run = s.get(PredictionRun, run_id)
        for key, value in values.items():
            setattr(run, key, value)


def prediction_count(session: Session, run_id: int) -> int:
    return session.scalar(
        select(func.count()).select_from(Prediction).where(Prediction.run_id == run_id)
    )
