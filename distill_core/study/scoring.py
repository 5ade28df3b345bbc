"""Scoring a label run against the human codes on one part of a validation sample: the one
scorer behind the Validate page, the Results page, the methods appendix and the comparison.

A text is scored when a human coded it (the majority of its coders, or one coder's code) with a
label of the run's codebook and the run has a result for it; an invalid or failed answer counts
as wrong. Human codes outside the run's codebook (a label renamed after coding) are left out
and counted, never passed to the metrics. Every interval is ``agreement.compare``'s over the
texts with ``N_BOOT`` resamples and seed ``BOOT_SEED``, so the page and the appendix agree.

A stratified sample over-represents the rare LLM labels it was stratified by, so its figures
describe the sample, not the corpus. Its parts also get a :class:`CorpusEstimate`: the
design-weighted figures (``agreement.weighted_compare``), each scored text weighing the
corpus's non-empty texts with its stratum's LLM label over the scored texts with it, and a
warning naming every stratum with no scored text (whose texts the estimate cannot speak for).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from distill_core import agreement
from distill_core.agreement import Agreement, WeightedAgreement
from distill_core.codebook import Codebook
from distill_core.store.models import Document, LabelRun, User, ValidationSample
from distill_core.study import runs, shares, validation
from distill_core.study.access import Capability, belongs, entry

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.orm import Session

#: Bootstrap settings of every interval shown.
N_BOOT = 1000
BOOT_SEED = 0
#: Fewest scored texts for a score.
MIN_SCORED = 2


@dataclass(frozen=True)
class Scored:
    """Agreement of predictions with the truth, and every class's F1 interval."""

    agreement: Agreement
    class_ci: dict[str, tuple[float, float]]


def score_labels(
    truth: Sequence[str],
    pred: Sequence[str | None],
    labels: Sequence[str],
    *,
    positive_label: str | None = None,
) -> Scored:
    """``agreement.compare`` and each class's F1 interval (from the same resamples)."""
    result = agreement.compare(
        truth, pred, labels=labels, positive_label=positive_label, n_boot=N_BOOT, seed=BOOT_SEED
    )
    nan = (float("nan"), float("nan"))
    class_ci = {c: result.per_class_ci.get(c, {}).get("f1", nan) for c in labels}
    return Scored(result, class_ci)


@dataclass(frozen=True)
class CorpusEstimate:
    """A stratified sample's part scored for the corpus: the design-weighted figures (None
    when the label run the sample was stratified by is gone) and the warnings to show with
    them, whole sentences."""

    strata_run_id: int | None
    agreement: WeightedAgreement | None
    warnings: list[str]

    @property
    def method(self) -> str:
        """How the figures were made, in two sentences."""
        return (
            f"Each scored text weighs the corpus's texts with its LLM label (run "
            f"{self.strata_run_id}, which the sample was stratified by) over the scored texts "
            "with it, the inverse of its chance of being drawn. 95% intervals: a stratified "
            f"bootstrap ({N_BOOT:,} resamples within the strata) widened to hold a weak-prior "
            "posterior drawn stratum by stratum."
        )


@dataclass(frozen=True)
class PartScore:
    """A label run scored on one part of a sample: the texts scored (in coding order), the
    figures, the coded texts left out and why, and, for a stratified sample, the corpus
    estimate (``corpus``; None for the other samples)."""

    run_id: int
    part: str
    doc_ids: list[str]
    agreement: Agreement
    class_ci: dict[str, tuple[float, float]]
    off_codebook: int  # human code not one of the run's labels
    not_labelled: int  # the run has no result for the text
    corpus: CorpusEstimate | None = None

    @property
    def n(self) -> int:
        return self.agreement.n


def run_labels(run: LabelRun) -> list[str]:
    """The label names of the codebook a run was asked with, in order."""
    return Codebook.from_dict(run.codebook, check=False).label_names


@entry(Capability.READ)
def score_run(
    session: Session,
    user: User,
    project_id: int,
    run: LabelRun,
    part: str,
    *,
    sample: ValidationSample | None = None,
    codes: pd.DataFrame | None = None,
    coder: str | None = None,
    positive_label: str | None = None,
) -> PartScore | None:
    """The run against the human codes (``coder``'s, or the majority of coders) on ``part``
    ("dev" or "test") of ``sample`` (default: the project's current one); None when fewer
    than ``MIN_SCORED`` texts can be scored."""
    belongs(run, project_id, "label run")
    sample = sample or validation.current_sample(session, user, project_id)
    if sample is None:
        return None
    if codes is None:
        codes = validation.codes_frame(session, user, project_id)
    gold, _ties = validation.gold_labels(codes, coder)
    labels = run_labels(run)
    known = set(labels)
    coded = [
        d.doc_id
        for d in validation.sample_docs(session, user, project_id, sample, part=part)
        if d.doc_id in gold
    ]
    items = runs.items_for(session, run.id, coded)
    in_codebook = [d for d in coded if gold[d] in known]
    ids = [d for d in in_codebook if d in items]
    if len(ids) < MIN_SCORED:
        return None
    pred = [items[d].label if items[d].status == "ok" else None for d in ids]
    truth = [gold[d] for d in ids]
    scored = score_labels(
        truth, pred, labels, positive_label=positive_label if positive_label in known else None
    )
    corpus = None
    if sample.method == "stratified":
        corpus = _corpus_estimate(session, sample, ids, truth, pred, labels)
    return PartScore(
        run_id=run.id,
        part=part,
        doc_ids=ids,
        agreement=scored.agreement,
        class_ci=scored.class_ci,
        off_codebook=len(coded) - len(in_codebook),
        not_labelled=len(in_codebook) - len(ids),
        corpus=corpus,
    )


def _corpus_estimate(
    session: Session,
    sample: ValidationSample,
    doc_ids: Sequence[str],
    truth: Sequence[str],
    pred: Sequence[str | None],
    labels: Sequence[str],
) -> CorpusEstimate:
    """The design-weighted figures of texts ``doc_ids`` of a stratified ``sample`` (their
    human labels ``truth``, predictions ``pred``): strata and their sizes ``N_h`` are the LLM
    labels of the run the sample was stratified by over the corpus's non-empty texts, as the
    draw saw them."""
    run_id = sample.strata_run_id
    blank = shares._blank_doc_ids(session, sample.corpus_id)
    every = session.scalars(select(Document.doc_id).where(Document.corpus_id == sample.corpus_id))
    corpus_ids = [d for d in every if d not in blank]
    strata, corpus_strata, _note = shares._strata(session, sample, corpus_ids, list(doc_ids))
    if strata is None:
        return CorpusEstimate(run_id, None, [_GONE])
    population: dict[str | None, int] = {}
    for key in corpus_strata:
        population[key] = population.get(key, 0) + 1
    weighted = agreement.weighted_compare(
        truth, pred, strata, population, labels=labels, n_boot=N_BOOT, seed=BOOT_SEED
    )
    return CorpusEstimate(run_id, weighted, [_uncovered(weighted)] if weighted.uncovered else [])


_GONE = (
    "The label run this sample was stratified by is gone, so the sizes of its strata are not "
    "known and no corpus estimate can be made: the figures describe the sample, in which rare "
    "LLM labels are over-represented."
)


def _uncovered(weighted: WeightedAgreement) -> str:
    """The warning for strata with no scored text: which, how large, what it means."""
    named = [
        (f"'{s.key}'" if s.key is not None else "no LLM label")
        + f" ({s.population:,} corpus text{'' if s.population == 1 else 's'})"
        for s in weighted.uncovered
    ]
    one = len(named) == 1
    total = weighted.population + sum(s.population for s in weighted.uncovered)
    return (
        f"{len(named)} {'stratum' if one else 'strata'} of the corpus {'has' if one else 'have'} "
        f"no scored text here: {', '.join(named)}. The corpus estimate speaks for the other "
        f"{weighted.population:,} of {total:,} texts only; code texts with "
        f"{'this LLM label' if one else 'these LLM labels'} to cover them."
    )
