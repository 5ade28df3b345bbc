"""Corrected category shares of a project's corpus pass: the student's predictions over the
corpus, corrected with the human codes of the held-out test part (``estimate.estimate_shares``,
prediction-powered inference), with the warnings a reader needs."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import func, literal, select
from sqlalchemy.orm import Session

from distill_core.estimate import FEW_CODED, Shares, estimate_shares
from distill_core.store.models import (
    Document,
    LabelRun,
    LabelRunItem,
    Prediction,
    PredictionRun,
    StudentModel,
    User,
)
from distill_core.study import memo, runs, students, validation
from distill_core.study.access import Capability, entry
from distill_core.values import is_blank


@dataclass(frozen=True)
class SharesReport(Shares):
    """:class:`Shares` of a project's corpus pass, with where they came from and what to
    keep in mind when reading them (``warnings``, whole sentences)."""

    run_id: int | None = None
    model_id: int | None = None
    sample_id: int | None = None
    sample_method: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def warning(self) -> str | None:
        """All warnings as one paragraph (None when there is none)."""
        return " ".join(self.warnings) or None


_WEIGHTED = (
    "The validation sample was stratified by LLM label, so the estimate is weighted by "
    "inverse inclusion probabilities."
)
_UNWEIGHTED = (
    "The validation sample was stratified, but the label run it was stratified by is gone: "
    "the estimate is not weighted and may be biased."
)
#: Texts longer than this are never checked for being blank (whitespace-only) in the store.
_BLANK_CHECK_CHARS = 1000
#: What an empty or white-space text begins with: nothing, or a character ``str.strip``
#: removes (none is above U+3000).
_FIRST_OF_BLANK = ["", *(c for c in map(chr, range(0x3001)) if c.isspace())]


@entry(Capability.READ)
def corrected_shares(
    session: Session,
    user: User,
    project_id: int,
    run_id: int | None = None,
    *,
    confidence: float = 0.95,
) -> SharesReport | None:
    """Corrected shares of a project's corpus pass, from the held-out test codes.

    The corpus pass is ``run_id`` or the project's latest finished one; its predictions on the
    non-empty texts are the corpus (empty texts cannot be drawn into a sample and have no
    category). The coded sample is the test part of the project's current validation sample,
    restricted to texts with a gold label (majority of coders; ties left out): the student was
    never trained on the test part, while development texts may have been in its training
    set. A stratified sample is weighted by inverse inclusion probabilities ``N_h / n_h`` of
    its strata (the LLM labels it was stratified by; ``n_h`` counts the coded test texts) and
    gets the stratified variance; a stratum with no coded test text stays in the population
    of N texts, counted by the predictions alone with widened intervals, and a warning names
    it. Categories the coded texts show no variation on get exact bounds and a warning.
    Returns None when there is no finished corpus pass, no sample of the pass's corpus, or
    fewer than 2 coded test texts.
    """
    run = (
        students.latest_prediction_run(session, user, project_id)
        if run_id is None
        else session.get(PredictionRun, run_id)
    )
    if run is None or run.project_id != project_id or run.status != "done":
        return None
    return memo.remembered(
        session,
        project_id,
        "corrected_shares",
        (run.id, confidence),
        lambda: _corrected_shares(session, user, project_id, run, confidence),
    )


def _corrected_shares(
    session: Session, user: User, project_id: int, run: PredictionRun, confidence: float
) -> SharesReport | None:
    sample = validation.current_sample(session, user, project_id)
    if sample is None or sample.corpus_id != run.corpus_id:
        return None
    labels = list((run.labels or {}).get("labels", []))
    codes = validation.codes_frame(session, user, project_id)
    gold, _ = validation.gold_labels(codes)
    test_ids = [
        d.doc_id for d in validation.sample_docs(session, user, project_id, sample, part="test")
    ]
    by_doc = students.predicted_labels(session, run.id, [d for d in test_ids if d in gold])
    coded = [d for d in test_ids if d in gold and d in by_doc]
    outside = [d for d in coded if gold[d] not in labels]
    coded = [d for d in coded if gold[d] in labels]
    stratified = sample.method == "stratified" and _strata_run(session, sample) is not None
    tally = _corpus_tally(session, run, sample.strata_run_id if stratified else None)
    corpus_pred = [pred for (_, pred), n in tally.items() for _ in range(n)]
    if len(coded) < 2 or len(corpus_pred) < 2:
        return None
    warnings = _sample_warnings(session, run, sample, len(coded))
    tied = set(codes["doc_id"]) & (set(test_ids) - set(gold))
    if tied:
        warnings.append(f"{_texts(len(tied))} where the coders tied are left out.")
    if outside:
        warnings.append(
            f"{_texts(len(outside))} whose human code is not one of the model's categories "
            "are left out."
        )
    strata = corpus_strata = None
    if stratified:
        llm = runs.items_for(session, sample.strata_run_id, coded)
        strata = [_stratum(llm[d].label) if d in llm else None for d in coded]
        corpus_strata = [key for (key, _), n in tally.items() for _ in range(n)]
        warnings.insert(0, _WEIGHTED)
    elif sample.method == "stratified":
        warnings.insert(0, _UNWEIGHTED)
    shares = estimate_shares(
        corpus_pred,
        [by_doc[d] for d in coded],
        [gold[d] for d in coded],
        labels,
        strata=strata,
        corpus_strata=corpus_strata,
        confidence=confidence,
    )
    if shares.uncovered:
        warnings.insert(1, _uncovered_warning(shares))
    warnings.extend(_bound_warnings(shares))
    return SharesReport(
        **{k: getattr(shares, k) for k in Shares.__dataclass_fields__},
        run_id=run.id,
        model_id=run.model_id,
        sample_id=sample.id,
        sample_method=sample.method,
        warnings=warnings,
    )


def _sample_warnings(session, run, sample, n_coded: int) -> list[str]:
    """Warnings about the coded sample: too small, not drawn at random, drawn after training."""
    out = []
    if n_coded < FEW_CODED:
        out.append(f"Only {n_coded} test texts are coded: few coded texts give wide intervals.")
    if sample.method == "imported":
        out.append(
            "The coded texts were imported: the correction assumes they are a random sample "
            "of the corpus."
        )
    model = session.get(StudentModel, run.model_id)
    if model is not None and _utc(sample.created_at) > _utc(model.created_at):
        out.append(
            "The validation sample was drawn after the model was trained, so its test texts "
            "may have been in the training set; the correction assumes they were not."
        )
    return out


def _strata(session, sample, corpus_ids, coded):
    """The strata (LLM labels) of the coded test texts and of every corpus text of a stratified
    sample, for weights ``N_h / n_h`` over all N corpus texts, and the sentence that says so
    (or, when its label run is gone, no strata and a warning)."""
    if sample.strata_run_id is None or session.get(LabelRun, sample.strata_run_id) is None:
        return None, None, _UNWEIGHTED
    frame = runs.items_frame(session, sample.strata_run_id, with_text=False)
    llm = {
        d: (None if is_blank(x) else x)
        for d, x in zip(frame["doc_id"], frame["label"], strict=True)
    }
    return [llm.get(d) for d in coded], [llm.get(d) for d in corpus_ids], _WEIGHTED


def _strata_run(session: Session, sample) -> LabelRun | None:
    """The label run a stratified sample was stratified by (None when it is gone)."""
    return session.get(LabelRun, sample.strata_run_id) if sample.strata_run_id else None


def _stratum(label: str | None) -> str | None:
    return None if is_blank(label) else label


def _corpus_tally(
    session: Session, run: PredictionRun, strata_run_id: int | None
) -> Counter[tuple[str | None, str]]:
    """The corpus pass's predictions over the non-empty texts, counted in the database:
    (stratum, predicted label) → texts, the stratum being the LLM label of ``strata_run_id``
    (None without it, or for a text it has no label for), in the order of the strata's names
    (no label last)."""
    stratum = LabelRunItem.label if strata_run_id is not None else literal(None)
    stmt = select(stratum, Prediction.label, func.count()).where(Prediction.run_id == run.id)
    if strata_run_id is not None:
        stmt = stmt.outerjoin(
            LabelRunItem,
            (LabelRunItem.run_id == strata_run_id) & (LabelRunItem.doc_id == Prediction.doc_id),
        )
    tally: Counter[tuple[str | None, str]] = Counter()
    for key, pred, n in session.execute(stmt.group_by(stratum, Prediction.label)).tuples():
        tally[(_stratum(key), pred)] += int(n)
    blank = sorted(_blank_doc_ids(session, run.corpus_id))
    for start in range(0, len(blank), 500):
        chunk = stmt.where(Prediction.doc_id.in_(blank[start : start + 500]))
        for key, pred, n in session.execute(chunk.group_by(stratum, Prediction.label)).tuples():
            tally[(_stratum(key), pred)] -= int(n)
    order = sorted(tally, key=lambda k: (k[0] is None, str(k[0]), str(k[1])))
    return Counter({k: tally[k] for k in order if tally[k] > 0})


def _uncovered_warning(shares: Shares) -> str:
    """Which strata have no coded test text, how many corpus texts they hold, and what that
    does to the estimate."""
    named = [
        (f"'{key}'" if key is not None else "no LLM label")
        + f" ({size:,} corpus text{'' if size == 1 else 's'})"
        for key, size in shares.uncovered
    ]
    k = len(named)
    return (
        f"{k} {'stratum' if k == 1 else 'strata'} of the sample "
        f"{'has' if k == 1 else 'have'} no coded test text: {_join(named)}. "
        f"{'Its' if k == 1 else 'Their'} "
        f"{shares.n_uncovered:,} texts are counted by the model's predictions alone, with "
        "no correction, and every interval is widened to allow any share among them."
    )


def _bound_warnings(shares: Shares) -> list[str]:
    """Sentences for the categories the coded texts carry no information on (exact bounds)."""
    rows = [r for r in shares.rows if r.bound_only]
    absent = [r for r in rows if r.naive == 0 and r.sample_only == 0]
    others = [r for r in rows if all(r is not a for a in absent)]
    out = []
    if absent:
        top = max(r.corrected_ci[1] for r in absent)
        out.append(
            f"For {_join([r.label for r in absent])}, none of the {shares.n_sample:,} coded test "
            f"texts is in {'this category' if len(absent) == 1 else 'these categories'} and "
            f"the model never predicts {'it' if len(absent) == 1 else 'them'}, so the share "
            f"is not estimated, only bounded: at most {top:.1%} (an exact bound; 0 does not "
            "mean absent)."
        )
    if others:
        out.append(
            f"For {_join([r.label for r in others])}, the coded test texts show no variation "
            "(no disagreement to measure), so the interval adds an exact bound on what "
            f"{shares.n_sample:,} coded texts could have missed."
        )
    return out


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _blank_doc_ids(session: Session, corpus_id: int) -> set[str]:
    """Documents whose text is empty or whitespace (the sample is drawn from the others).
    Only texts that are empty or begin with white space are read."""
    stmt = select(Document.doc_id, Document.text).where(
        Document.corpus_id == corpus_id,
        func.length(Document.text) <= _BLANK_CHECK_CHARS,
        func.substr(Document.text, 1, 1).in_(_FIRST_OF_BLANK),
    )
    return {d for d, t in session.execute(stmt).tuples() if not (t or "").strip()}


def _utc(moment: datetime) -> datetime:
    """A naive UTC time (SQLite gives naive times, PostgreSQL aware ones)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment


def _texts(n: int) -> str:
    return f"{n:,} coded text" + ("" if n == 1 else "s")
