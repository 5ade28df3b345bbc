"""Scoring a label run against the human codes on one part of a validation sample: the one
scorer behind the Validate page, the Results page, the methods appendix and the comparison.

A text is scored when a human coded it (the majority of its coders, or one coder's code) with a
label of the run's codebook and the run has a result for it; an invalid or failed answer counts
as wrong. Human codes outside the run's codebook (a label renamed after coding) are left out
and counted, never passed to the metrics. Every interval is ``agreement.compare``'s over the
texts with ``N_BOOT`` resamples and seed ``BOOT_SEED``, so the page and the appendix agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from distill_core import agreement
from distill_core.agreement import Agreement
from distill_core.codebook import Codebook
from distill_core.store.models import LabelRun, User, ValidationSample
from distill_core.study import runs, validation
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
class PartScore:
    """A label run scored on one part of a sample: the texts scored (in coding order), the
    figures, and the coded texts left out and why."""

    run_id: int
    part: str
    doc_ids: list[str]
    agreement: Agreement
    class_ci: dict[str, tuple[float, float]]
    off_codebook: int  # human code not one of the run's labels
    not_labelled: int  # the run has no result for the text

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
    items = {r.doc_id: r for r in runs.items(session, run.id)}
    in_codebook = [d for d in coded if gold[d] in known]
    ids = [d for d in in_codebook if d in items]
    if len(ids) < MIN_SCORED:
        return None
    pred = [items[d].label if items[d].status == "ok" else None for d in ids]
    scored = score_labels(
        [gold[d] for d in ids],
        pred,
        labels,
        positive_label=positive_label if positive_label in known else None,
    )
    return PartScore(
        run_id=run.id,
        part=part,
        doc_ids=ids,
        agreement=scored.agreement,
        class_ci=scored.class_ci,
        off_codebook=len(coded) - len(in_codebook),
        not_labelled=len(in_codebook) - len(ids),
    )
