"""The fair comparison: the paper's table for a project, every row scored on the same held-out
human-coded test texts (the LLM's labels, the student on LLM labels, students on human codes,
TF-IDF on LLM labels), with 95% bootstrap intervals."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distill_core.store import (
    LabelRun,
    Store,
)
from distill_core.student.train import TrainingArgs
from distill_core.study import projects, runs, validation
from distill_core.study.students import TrainingSet
from distill_core.values import json_safe

if TYPE_CHECKING:
    pass

#: Fewest human-coded held-out test texts for the comparison.
MIN_EVAL = 10

#: The rows of the fair comparison, in the order they are shown.
ROWS = {
    "llm": "LLM labels",
    "student_llm": "Student on LLM labels",
    "student_human": "Student on human codes",
    "tfidf_llm": "TF-IDF + logistic regression on LLM labels",
}


# ---------------------------------------------------------------- the fair comparison


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
    project_id: int,
    run_id: int,
    student_dir: Path,
    ts: TrainingSet,
    args: TrainingArgs,
    *,
    human_folds: int = 5,
    tracker: Tracker | None = None,
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
        items = {r.doc_id: r for r in runs.run_results(s, run_id) if r.doc_id in in_eval}
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
        validation.mark_test_seen(
            s, sample_info["sample_id"], projects.version_number(s, version_id)
        )
    return json_safe(
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
    class_ci = agreement.class_f1_intervals(truth, pred, labels)
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
