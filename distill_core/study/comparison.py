"""The fair comparison: the paper's table for a project, every row scored on the same held-out
human-coded test texts (the LLM's labels, the student on LLM labels, students on human codes,
TF-IDF on LLM labels), with 95% bootstrap intervals.

The comparison is stored with its model (``StudentModel.comparison``) as ``Comparison.to_dict()``
and read back with ``Comparison.from_dict``; rows stored before the record had a version read
as version 1.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from distill_core.agreement import Agreement
from distill_core.store import LabelRun, Store, User
from distill_core.student.args import TrainingArgs
from distill_core.student.card import HeldOut, HeldOutRow, ModelMeta
from distill_core.study import projects, runs, validation
from distill_core.study.scoring import score_labels
from distill_core.study.students import TrainingSet
from distill_core.values import json_safe

#: Fewest human-coded held-out test texts for the comparison.
MIN_EVAL = 10
#: The stored form's version.
COMPARISON_VERSION = 1

#: The rows of the fair comparison, in the order they are shown.
ROWS = {
    "llm": "LLM labels",
    "student_llm": "Student on LLM labels",
    "student_human": "Student on human codes",
    "tfidf_llm": "TF-IDF + logistic regression on LLM labels",
}


@dataclass
class Evaluation:
    """The texts every row is scored on: a part of a sample, with the human labels used."""

    part: str
    n: int
    gold: str
    doc_ids: list[str] = field(default_factory=list)
    truth: list[str] = field(default_factory=list)
    sample_id: int | None = None
    sample_method: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Evaluation:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class ComparisonRow:
    """One classifier on the evaluation texts: its metrics (None when it could not be
    trained), per-class F1 intervals, its predictions in ``Evaluation.doc_ids`` order (or
    fewer, as ``note`` says), and how many texts it was trained on."""

    key: str
    name: str
    n_train: int | None = None
    note: str = ""
    metrics: Agreement | None = None
    class_ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    predictions: list[str | None] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "n_train": self.n_train,
            "note": self.note,
            "metrics": self.metrics.to_dict() if self.metrics else None,
            "class_ci": {k: list(v) for k, v in self.class_ci.items()},
            "predictions": list(self.predictions),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ComparisonRow:
        metrics = data.get("metrics")
        return cls(
            key=str(data["key"]),
            name=str(data.get("name") or ROWS.get(data["key"], data["key"])),
            n_train=data.get("n_train"),
            note=str(data.get("note") or ""),
            metrics=Agreement.from_dict(metrics) if metrics else None,
            class_ci={k: (v[0], v[1]) for k, v in (data.get("class_ci") or {}).items()},
            predictions=list(data.get("predictions") or []),
        )


@dataclass
class Comparison:
    """The fair comparison of one model; ``eval`` is None (and ``reason`` says why) when there
    was too little to compare on."""

    eval: Evaluation | None = None
    rows: list[ComparisonRow] = field(default_factory=list)
    reason: str | None = None
    version: int = COMPARISON_VERSION

    def row(self, key: str) -> ComparisonRow | None:
        """The scored row of ``key`` (None when absent or not scored)."""
        return next((r for r in self.rows if r.key == key and r.metrics is not None), None)

    def heldout(self) -> HeldOut | None:
        """The headline figures a model keeps in its metadata and model card."""
        if self.eval is None:
            return None
        return HeldOut(
            n=self.eval.n,
            rows=[
                HeldOutRow(
                    key=r.key,
                    name=r.name,
                    macro_f1=r.metrics.macro_f1,
                    macro_f1_ci=list(r.metrics.ci["macro_f1"]),
                    accuracy=r.metrics.accuracy,
                    accuracy_ci=list(r.metrics.ci["accuracy"]),
                )
                for r in self.rows
                if r.metrics is not None
            ],
        )

    def to_dict(self) -> dict[str, Any]:
        return json_safe(
            {
                "version": self.version,
                "eval": vars(self.eval).copy() if self.eval else None,
                "rows": [r.to_dict() for r in self.rows],
                **({"reason": self.reason} if self.reason else {}),
            }
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> Comparison:
        """The record from its stored form; an empty or missing one reads as no comparison."""
        data = data or {}
        ev = data.get("eval")
        return cls(
            eval=Evaluation.from_dict(ev) if ev else None,
            rows=[ComparisonRow.from_dict(r) for r in data.get("rows") or []],
            reason=data.get("reason"),
            version=int(data.get("version") or 1),
        )


class Tracker:
    """How a long comparison reports: a progress callback per training phase, a cancel check,
    and a note between phases (the training job's tracker writes them to the job)."""

    def phase(self, name: str) -> Callable[[Any], None] | None:
        return None

    def cancelled(self) -> bool:
        return False

    def note(self, message: str) -> None:
        return None


def fair_comparison(
    store: Store,
    user_id: int,
    project_id: int,
    run_id: int,
    student_dir: Path,
    ts: TrainingSet,
    args: TrainingArgs,
    *,
    human_folds: int = 5,
    tracker: Tracker | None = None,
) -> Comparison:
    """The paper's table for this project, on the held-out test texts a human coded.

    Rows: the LLM's own labels; the student trained on LLM labels; students trained on human
    codes (k-fold over the test texts: each test text is predicted by a student trained on
    every other human-coded text, never on itself); TF-IDF + logistic regression on the same
    LLM labels. Each row has all metrics of ``agreement.compare`` with 95% bootstrap intervals
    and per-class F1 intervals. Without enough to compare on, ``eval`` is None and ``reason``
    says why. Everything is read as the user ``user_id`` (whose training job this is).
    """
    from distill_core.student.baseline import fit_baseline
    from distill_core.student.predict import Predictor

    with store.session() as s:
        user = s.get(User, user_id)
        sample = validation.current_sample(s, user, project_id)
        if sample is None:
            return Comparison(
                reason="No validation sample yet: draw one and code its held-out test part "
                "on the Validate page to compare the student with the LLM."
            )
        gold, _ties = validation.gold_labels(validation.codes_frame(s, user, project_id))
        gold = {d: g for d, g in gold.items() if g in ts.label_names}
        test_ids = [
            d.doc_id for d in validation.sample_docs(s, user, project_id, sample, part="test")
        ]
        eval_ids = [d for d in test_ids if d in gold]
        sample_info = {"sample_id": sample.id, "sample_method": sample.method}
        run = s.get(LabelRun, run_id)
        corpus_id, version_id = run.corpus_id, run.codebook_version_id
        if len(eval_ids) < MIN_EVAL:
            return Comparison(
                reason=f"The held-out test part has {len(eval_ids)} human-coded texts; code "
                f"at least {MIN_EVAL} on the Validate page to compare the student with the LLM."
            )
        texts = projects.get_documents(s, corpus_id, eval_ids)
        in_eval = set(eval_ids)
        found = runs.run_results(s, user, project_id, run_id)
        items = {r.doc_id: r for r in found if r.doc_id in in_eval}
        others = [d for d in gold if d not in in_eval]
        other_texts = projects.get_documents(s, corpus_id, others)
    eval_texts = [texts.get(d, "") for d in eval_ids]
    truth = [gold[d] for d in eval_ids]
    rows: list[ComparisonRow] = []

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
    predictor = Predictor(student_dir)
    student = predictor.predict(eval_texts).labels
    n_train = ModelMeta.from_dict(predictor.metadata).n_train or None
    rows.append(_row("student_llm", truth, student, ts.label_names, n_train, ""))

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
    rows.sort(key=lambda r: list(ROWS).index(r.key))
    with store.session() as s:  # the LLM's held-out score is now seen: later edits overfit
        validation.mark_test_seen(
            s,
            s.get(User, user_id),
            project_id,
            sample_info["sample_id"],
            projects.version_number(s, version_id),
        )
    return Comparison(
        eval=Evaluation(
            part="test",
            n=len(eval_ids),
            gold="majority of coders",
            doc_ids=eval_ids,
            truth=truth,
            sample_id=sample_info["sample_id"],
            sample_method=sample_info["sample_method"],
        ),
        rows=rows,
    )


def _row(
    key: str,
    truth: Sequence[str],
    pred: Sequence[str | None],
    labels: Sequence[str],
    n_train: int | None,
    note: str,
) -> ComparisonRow:
    scored = score_labels(truth, pred, labels)
    return ComparisonRow(
        key=key,
        name=ROWS[key],
        n_train=n_train,
        note=note,
        metrics=scored.agreement,
        class_ci=scored.class_ci,
        predictions=list(pred),
    )


def _human_row(
    eval_ids, eval_texts, truth, others, other_texts, gold, ts, args, folds, tracker
) -> ComparisonRow:
    """Out-of-fold predictions of students trained on human codes only (same recipe)."""
    from distill_core.student.args import TrainingError
    from distill_core.student.predict import Predictor
    from distill_core.student.train import train

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
                return ComparisonRow(
                    key="student_human", name=ROWS["student_human"], note=f"Not trained: {exc}"
                )
            idx = [i for i in range(len(eval_ids)) if fold_of[i] == f]
            got = Predictor(Path(tmp) / "model").predict([eval_texts[i] for i in idx]).labels
            for i, label in zip(idx, got, strict=True):
                pred[i] = label
    note = (
        f"{k} students, each trained on about {round(sum(sizes) / k)} human-coded texts "
        "(all but one fold of the test texts, plus coded texts outside the test part)."
    )
    row = _row("student_human", truth, pred, ts.label_names, round(sum(sizes) / k), note)
    row.name = f"{ROWS['student_human']} ({k}-fold cross-validation)"
    return row
