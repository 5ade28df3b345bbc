"""The fair comparison: the paper's table for a project, every row scored on the same held-out
human-coded test texts (the LLM's labels, the student on LLM labels, students on human codes,
TF-IDF on LLM labels), with 95% bootstrap intervals.

The comparison is stored with its model (``StudentModel.comparison``) as ``Comparison.to_dict()``
and read back with ``Comparison.from_dict``; rows stored before the record had a version read
as version 1.
"""

from __future__ import annotations

import math
import random
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from distill_core import agreement
from distill_core.agreement import Agreement
from distill_core.store import LabelRun, Store, User
from distill_core.student.args import TrainingArgs, TrainingError
from distill_core.student.card import HeldOut, HeldOutRow, ModelMeta, SeedRuns, SeedScore
from distill_core.study import projects, runs, validation
from distill_core.study.scoring import score_labels
from distill_core.study.students import TrainingSet
from distill_core.values import content_key, json_safe

#: Fewest human-coded held-out test texts for the comparison.
MIN_EVAL = 10
#: The stored form's version. 2: the TF-IDF baseline on LLM labels is fitted on the student's
#: own training texts (after its floors and validation split; in version 1 on every text of the
#: training set) and the students on human codes are trained without the confidence and
#: consistency floors (in version 1 a training with a floor lost their row).
COMPARISON_VERSION = 2

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


#: What the comparison says about training, sentence by sentence, on the page and in the
#: appendix; a test checks each against the stored data (tests/unit/study/test_students.py).
TRAINING_CLAIMS = {
    "scored_untrained": "No model was trained on a text it is scored on.",
    "llm_students": "The students on LLM labels and the TF-IDF baseline never saw a held-out "
    "text or a copy of one.",
    "human_students": "Each student on human codes was trained only on the other folds of "
    "these texts (copies of a text share a fold) and predicts only its own fold.",
}


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
    #: Cross-validated rows: the fold each text was predicted in (``Evaluation.doc_ids`` order).
    folds: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "folds": list(self.folds),
            "key": self.key,
            "name": self.name,
            "n_train": self.n_train,
            "note": self.note,
            "metrics": self.metrics.to_dict() if self.metrics else None,
            # a class absent from the texts has no interval: None in JSON (PostgreSQL's json
            # type refuses NaN), NaN again when read
            "class_ci": {k: [json_safe(x) for x in v] for k, v in self.class_ci.items()},
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
            class_ci={
                k: tuple(math.nan if x is None else x for x in v[:2])
                for k, v in (data.get("class_ci") or {}).items()
            },
            predictions=list(data.get("predictions") or []),
            folds=[int(f) for f in data.get("folds") or []],
        )


@dataclass(frozen=True)
class PairedDifferences:
    """One classifier against another on the same evaluation texts."""

    a: str
    b: str
    macro_f1: agreement.PairedDifference
    accuracy: agreement.PairedDifference


@dataclass
class Comparison:
    """The fair comparison of one model; ``eval`` is None (and ``reason`` says why) when there
    was too little to compare on."""

    eval: Evaluation | None = None
    rows: list[ComparisonRow] = field(default_factory=list)
    reason: str | None = None
    version: int = COMPARISON_VERSION
    #: The student on LLM labels trained with several seeds, each scored on ``eval``'s texts
    #: (None: one seed; comparisons stored before seeds could be asked for read as None).
    seeds: SeedRuns | None = None

    def row(self, key: str) -> ComparisonRow | None:
        """The scored row of ``key`` (None when absent or not scored)."""
        return next((r for r in self.rows if r.key == key and r.metrics is not None), None)

    #: The differences a study reports: the student against its teacher, and against
    #: students trained on the human codes (the paper's question).
    PAIRS = (("student_llm", "llm"), ("student_llm", "student_human"))

    def differences(self, labels: Sequence[str] | None = None) -> list[PairedDifferences]:
        """Paired differences of macro-F1 and accuracy (with McNemar's exact test) for each
        of ``PAIRS`` whose rows both hold predictions of every evaluation text."""
        if self.eval is None:
            return []
        truth = self.eval.truth
        out = []
        for key_a, key_b in self.PAIRS:
            a, b = self.row(key_a), self.row(key_b)
            same = len(a.predictions) == len(b.predictions) == len(truth) if a and b else False
            if not truth or not same:  # rows stored before predictions were kept, say
                continue
            out.append(
                PairedDifferences(
                    a.name,
                    b.name,
                    *(
                        agreement.paired_difference(
                            truth, a.predictions, b.predictions, metric=m, labels=labels
                        )
                        for m in ("macro_f1", "accuracy")
                    ),
                )
            )
        return out

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
                    n_train=r.n_train,
                    note=r.note,
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
                **({"seeds": self.seeds.to_dict()} if self.seeds else {}),
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
            seeds=SeedRuns.from_dict(data["seeds"]) if data.get("seeds") else None,
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


@dataclass(frozen=True)
class EvaluationSet:
    """The held-out texts a training job is compared on, frozen when the job starts: later
    samples or codes change nothing about a running job's comparison."""

    sample_id: int
    sample_method: str
    doc_ids: list[str]
    truth: list[str]

    def to_dict(self) -> dict[str, Any]:
        return vars(self).copy()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationSet:
        return cls(
            int(data["sample_id"]),
            str(data["sample_method"]),
            list(data["doc_ids"]),
            list(data["truth"]),
        )


def evaluation_set(
    session, user, project_id: int, label_names: Sequence[str]
) -> EvaluationSet | str:
    """The coded texts of the current sample's held-out test part whose human label (majority
    of coders) is a codebook label, or the sentence saying why there are too few."""
    sample = validation.current_sample(session, user, project_id)
    if sample is None:
        return (
            "No validation sample yet: draw one and code its held-out test part on the "
            "Validate page to compare the student with the LLM."
        )
    gold, _ties = validation.gold_labels(validation.codes_frame(session, user, project_id))
    known = set(label_names)
    test = validation.sample_docs(session, user, project_id, sample, part="test")
    ids = [d.doc_id for d in test if gold.get(d.doc_id) in known]
    if len(ids) < MIN_EVAL:
        return (
            f"The held-out test part has {len(ids)} human-coded texts; code at least "
            f"{MIN_EVAL} on the Validate page to compare the student with the LLM."
        )
    return EvaluationSet(sample.id, sample.method, ids, [gold[d] for d in ids])


def fair_comparison(
    store: Store,
    user_id: int,
    project_id: int,
    run_id: int,
    student_dir: Path,
    ts: TrainingSet,
    args: TrainingArgs,
    evaluation: EvaluationSet | str,
    *,
    human_folds: int = 5,
    tracker: Tracker | None = None,
) -> Comparison:
    """The paper's table for this project, on the frozen held-out test texts a human coded
    (``evaluation``; a string is the reason there is no comparison).

    Rows: the LLM's own labels; the student trained on LLM labels; students trained on human
    codes (k-fold cross-validation within the evaluation texts: each text is predicted by a
    student trained on the other folds only, with the job's settings less the confidence and
    consistency floors, which human codes cannot meet: ``human_args``); TF-IDF + logistic
    regression fitted on exactly the texts the student on LLM labels fitted on
    (``student_texts``: after its floors and validation split). Each row's ``n_train`` is the
    texts its model fitted on. Every row is scored on the same texts: when the label run did not label every
    evaluation text, all rows are scored on the ones it labelled (and the comparison says so).
    Each row has all metrics of ``agreement.compare`` with 95% intervals and per-class F1
    intervals. Everything is read as the user ``user_id`` (whose training job this is).
    """
    from distill_core.student.baseline import fit_baseline
    from distill_core.student.predict import Predictor

    if isinstance(evaluation, str):
        return Comparison(reason=evaluation)
    with store.session() as s:
        user = s.get(User, user_id)
        run = s.get(LabelRun, run_id)
        corpus_id, version_id = run.corpus_id, run.codebook_version_id
        frozen = set(evaluation.doc_ids)
        items = {
            r.doc_id: r for r in runs.run_results(s, user, project_id, run_id) if r.doc_id in frozen
        }
        texts = projects.get_documents(s, corpus_id, evaluation.doc_ids)
    truth_of = dict(zip(evaluation.doc_ids, evaluation.truth, strict=True))
    covered = [d for d in evaluation.doc_ids if d in items and d in texts]
    note = ""
    if len(covered) < len(evaluation.doc_ids):
        if len(covered) >= MIN_EVAL:
            note = (
                f"The label run labelled {len(covered)} of the {len(evaluation.doc_ids)} "
                "held-out texts: every row is scored on those."
            )
            eval_ids = covered
        else:
            eval_ids = [d for d in evaluation.doc_ids if d in texts]
            note = (
                f"The label run labelled only {len(covered)} of the held-out texts: it is left "
                "out of the comparison."
            )
    else:
        eval_ids = covered
    eval_texts = [texts[d] for d in eval_ids]
    truth = [truth_of[d] for d in eval_ids]
    rows: list[ComparisonRow] = []
    if set(eval_ids) <= set(items):
        llm = [items[d].label if items[d].status == "ok" else None for d in eval_ids]
        rows.append(_row("llm", truth, llm, ts.label_names, None, note))

    if tracker:
        tracker.note("Scoring the student on the held-out test texts…")
    predictor = Predictor(student_dir)
    student = predictor.predict(eval_texts).labels
    meta = ModelMeta.from_dict(predictor.metadata)
    flag = meta.below_tfidf_sentence() or ""  # below TF-IDF on its own validation texts
    rows.append(_row("student_llm", truth, student, ts.label_names, meta.n_train or None, flag))
    seeds = _seed_runs(rows[-1], eval_texts, truth, ts, args, tracker) if args.seeds > 1 else None

    if human_folds >= 2:
        rows.append(_human_row(eval_texts, truth, ts, args, human_folds, tracker))

    fitted = student_texts(ts, args)  # the very texts the student on LLM labels fitted on
    baseline = fit_baseline(
        [ts.texts[i] for i in fitted.rows], [ts.labels[i] for i in fitted.rows], seed=args.seed
    ).predict(eval_texts)[0]
    rows.append(
        _row("tfidf_llm", truth, baseline, ts.label_names, len(fitted.rows), fitted.sentence())
    )
    rows.sort(key=lambda r: list(ROWS).index(r.key))
    with store.session() as s:  # the LLM's held-out score is now seen: later edits overfit
        validation.mark_test_seen(
            s,
            s.get(User, user_id),
            project_id,
            evaluation.sample_id,
            projects.version_number(s, version_id),
        )
    return Comparison(
        eval=Evaluation(
            part="test",
            n=len(eval_ids),
            gold="majority of coders",
            doc_ids=eval_ids,
            truth=truth,
            sample_id=evaluation.sample_id,
            sample_method=evaluation.sample_method,
        ),
        rows=rows,
        seeds=seeds,
    )


def _seed_runs(kept: ComparisonRow, eval_texts, truth, ts, args, tracker) -> SeedRuns:
    """The student on LLM labels again with seeds 2 … N (same training rows, same validation
    split), each scored on the same evaluation texts as ``kept``, the first seed's model, which
    stays the kept one whatever the others score."""
    from distill_core.student.predict import Predictor
    from distill_core.student.train import train_other_seeds

    def score(folder: Path, result) -> SeedScore:
        pred = Predictor(folder).predict(eval_texts).labels
        scored = agreement.compare(truth, pred, labels=ts.label_names, n_boot=0)
        seed = TrainingArgs.from_dict(result.metadata.args).seed
        return SeedScore(seed, scored.macro_f1, scored.accuracy, list(pred))

    others = train_other_seeds(
        ts.texts,
        ts.labels,
        args,
        score,
        on_progress=(lambda i, n: tracker.phase(seed_phase(i, n))) if tracker else None,
        should_stop=tracker.cancelled if tracker else None,
        label_names=ts.label_names,
        confidences=ts.confidences,
        consistencies=ts.consistencies,
    )
    first = SeedScore(args.seed, kept.metrics.macro_f1, kept.metrics.accuracy, kept.predictions)
    return SeedRuns([first, *others], n=len(truth))


def seed_phase(i: int, n: int) -> str:
    """The progress phase of the student on LLM labels of seed ``i`` of ``n``."""
    return ROWS["student_llm"] + (f", seed {i} of {n}" if n > 1 else "")


@dataclass(frozen=True)
class StudentTexts:
    """The texts the student on LLM labels fits on, as ``train()`` picks them: the training
    set's rows (``rows``, indices into ``TrainingSet.texts``) left by the confidence and
    consistency floors, less the ``n_val`` held back for its validation."""

    rows: list[int]
    n_val: int
    n_available: int
    filters: dict[str, Any]

    def sentence(self) -> str:
        """What the TF-IDF baseline on LLM labels was fitted on, with its n."""
        f = self.filters
        less = [
            f"{f.get(dropped) or 0:,} below the {name} floor {f[floor]:g}"
            for floor, dropped, name in (
                ("min_confidence", "dropped_low_confidence", "confidence"),
                ("min_consistency", "dropped_low_consistency", "consistency"),
            )
            if f.get(floor) is not None
        ]
        less.append(f"{self.n_val:,} held back for the student's validation")
        return (
            f"Fitted on the same {len(self.rows):,} texts as the student on LLM labels: the "
            f"{self.n_available:,} LLM-labelled training texts less {_and(less)}."
        )


def _and(parts: Sequence[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def llm_training(ts: TrainingSet, args: TrainingArgs, phase: str = "", predicts=()):
    """The student on LLM labels as a ``timing.Training``: the training set's texts, labels,
    confidences and consistencies under ``args``."""
    from distill_core.student.timing import Training

    return Training(
        phase or seed_phase(1, 1),
        ts.texts,
        ts.labels,
        args,
        label_names=ts.label_names,
        confidences=ts.confidences,
        consistencies=ts.consistencies,
        predicts=predicts,
    )


def student_texts(ts: TrainingSet, args: TrainingArgs) -> StudentTexts:
    """The rows of ``ts`` the student on LLM labels trained with ``args`` fits on (every seed
    of a seed spread fits on the same ones): ``train()``'s own filters and validation split,
    as the job plans them (``timing.Training``). Raises TrainingError where ``train()`` would
    refuse the training."""
    prep, train_idx, val_idx = llm_training(ts, args).split()
    return StudentTexts(
        rows=[prep.rows[i] for i in train_idx],
        n_val=len(val_idx),
        n_available=len(ts.texts),
        filters=dict(prep.filters),
    )


def human_args(args: TrainingArgs) -> TrainingArgs:
    """The settings of the students on human codes: the job's own, without the confidence and
    consistency floors, which judge the LLM's labels (human codes carry neither)."""
    return replace(args, min_confidence=None, min_consistency=None)


def _floors_note(args: TrainingArgs) -> str:
    """What the students on human codes leave out of the job's settings (empty without floors)."""
    floors = [
        f"{name} floor {value:g}"
        for name, value in (
            ("confidence", args.min_confidence),
            ("consistency", args.min_consistency),
        )
        if value is not None
    ]
    if not floors:
        return ""
    return (
        f" The {_and(floors)} picked the LLM labels only: human codes carry no confidence or "
        "consistency, so these students were trained on every text of their folds."
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


def _human_row(eval_texts, truth, ts, args, folds, tracker) -> ComparisonRow:
    """Out-of-fold predictions of students trained on human codes only (same recipe and
    settings, without the floors: ``human_args``), each on the evaluation texts of the other
    folds: no other text, held out or not, is trained on."""
    from distill_core.student.predict import Predictor
    from distill_core.student.train import train

    fold_of = assign_folds(eval_texts, folds, args.seed)
    k = max(fold_of.values()) + 1
    pred: list[str | None] = [None] * len(eval_texts)
    fitted, validated = [], []
    for f, (rows, idx) in enumerate(fold_rows(fold_of)):
        x = [eval_texts[i] for i in rows]
        y = [truth[i] for i in rows]
        with tempfile.TemporaryDirectory(prefix="distill-cv-") as tmp:
            try:
                result = train(
                    x,
                    y,
                    Path(tmp) / "model",
                    human_args(args),
                    label_names=ts.label_names,
                    on_progress=tracker.phase(fold_phase(f, k)) if tracker else None,
                    should_stop=tracker.cancelled if tracker else None,
                )
            except TrainingError as exc:
                return ComparisonRow(
                    key="student_human", name=ROWS["student_human"], note=f"Not trained: {exc}"
                )
            fitted.append(result.n_train)
            validated.append(result.n_val)
            got = Predictor(Path(tmp) / "model").predict([eval_texts[i] for i in idx]).labels
            for i, label in zip(idx, got, strict=True):
                pred[i] = label
    n_fit, n_val = round(sum(fitted) / k), round(sum(validated) / k)
    note = (
        f"{k} students, each fitted on about {n_fit} of these human-coded texts"
        + (f" and validated on about {n_val} more" if n_val else "")
        + " (all folds but the one it predicts)."
        + _floors_note(args)
    )
    row = _row("student_human", truth, pred, ts.label_names, n_fit, note)
    row.name = f"{ROWS['student_human']} ({k}-fold cross-validation)"
    row.folds = [fold_of[i] for i in range(len(eval_texts))]
    return row


def fold_phase(f: int, k: int) -> str:
    """The progress phase of the student on human codes of fold ``f`` (0-based) of ``k``."""
    return f"Student on human codes, fold {f + 1} of {k}"


def fold_rows(fold_of: Mapping[int, int]) -> list[tuple[list[int], list[int]]]:
    """Per fold of :func:`assign_folds`' answer: (the text indices its student trains on, the
    ones it predicts), in text order."""
    order = sorted(fold_of)
    return [
        ([i for i in order if fold_of[i] != f], [i for i in order if fold_of[i] == f])
        for f in range(max(fold_of.values(), default=-1) + 1)
    ]


def assign_folds(texts: Sequence[str], folds: int, seed: int) -> dict[int, int]:
    """Text index → fold for cross-validation within the evaluation texts: a seeded shuffle
    dealt round the folds, copies of a text (``values.content_key``) always in the same fold,
    so no student on human codes is trained on a copy of a text it predicts."""
    groups: dict[str, list[int]] = {}
    for i, text in enumerate(texts):
        groups.setdefault(content_key(text), []).append(i)
    order = list(groups.values())
    random.Random(seed).shuffle(order)
    k = max(2, min(int(folds), len(order)))
    return {i: n % k for n, group in enumerate(order) for i in group}
