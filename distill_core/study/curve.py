"""Should I label more texts? The fast recipe's learning curve on a project's LLM labels
(student/curve.py: nested 25/50/100% shares, each scored with 95% intervals) and what
labelling more texts would cost with the run's endpoint (llm/cost.py).

The curve is scored on the human-coded texts of the current sample's *development* part, the
part meant for decisions like this one (the held-out test part stays unseen), and those texts
are left out of every share it trains on. With fewer than ``MIN_DEV`` of them it is scored on
a seeded fifth of the LLM-labelled texts, against the LLM's labels, and says so.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from distill_core.codebook import Codebook
from distill_core.store import LabelRun, User
from distill_core.student.args import TrainingArgs, TrainingError
from distill_core.student.curve import CURVE_VERSION, DEFAULT_SHARES, CurvePoint, head_curve
from distill_core.study import projects, validation
from distill_core.study.access import Capability, entry
from distill_core.study.students import StudentError, training_set

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: Fewest human-coded development texts the curve is scored on (else: held-back LLM labels).
MIN_DEV = 30
#: Texts whose prompts price one more labelled text.
COST_SAMPLE = 200


@dataclass
class LearningCurve:
    """The curve's points, what they were scored on, and the price of one more labelled text
    with the label run's teacher (None: the model's price is not known)."""

    points: list[CurvePoint]
    scored_on: str
    n_scored: int
    n_available: int
    teacher: str
    model: str
    cost_per_text_usd: float | None
    version: int = CURVE_VERSION
    notes: list[str] = field(default_factory=list)

    def gain_sentence(self) -> str:
        """What the last step of the curve added, with the intervals' say on it."""
        got = [p for p in self.points if p.macro_f1 is not None]
        if len(got) < 2:
            return "Too few points to tell whether more texts help."
        a, b = got[-2], got[-1]
        change = b.macro_f1 - a.macro_f1
        overlap = (
            a.macro_f1_ci[1] is not None
            and b.macro_f1_ci[0] is not None
            and b.macro_f1_ci[0] <= a.macro_f1_ci[1]
        )
        verdict = (
            "the intervals overlap, so the data cannot tell this change from noise"
            if overlap
            else "beyond the intervals: more texts are likely to help further"
        )
        return (
            f"Going from {a.n:,} to {b.n:,} training texts changed macro-F1 by {change:+.3f} "
            f"({a.macro_f1:.3f} → {b.macro_f1:.3f}); {verdict}."
        )

    def cost_sentence(self, more: Sequence[int] = (500, 1000, 2000)) -> str:
        """What labelling more texts would cost with this run's teacher."""
        if self.teacher == "local":
            return "The offline baseline labels more texts at no cost (and weakly)."
        if self.cost_per_text_usd is None:
            return (
                f"The price of {self.model} is not known: set it on the LLM labels page to "
                "see what more texts would cost."
            )
        each = ", ".join(f"{n:,} more: about ${n * self.cost_per_text_usd:,.2f}" for n in more)
        return f"Labelling more texts with {self.model} (list price, estimated): {each}."


@entry(Capability.EDIT)
def learning_curve(
    session: Session,
    user: User,
    project_id: int,
    label_run_id: int,
    *,
    args: TrainingArgs | None = None,
    shares: Sequence[float] = DEFAULT_SHARES,
    on_progress: Callable[[str], None] | None = None,
) -> LearningCurve:
    """The fast recipe's learning curve on the label run's training set (seconds to a minute
    on a CPU: each text is embedded once); StudentError in one sentence when it cannot be
    drawn."""
    from distill_core.llm.cost import estimate, price_for

    args = args or TrainingArgs(recipe="head")
    ts = training_set(session, user, project_id, label_run_id)
    run = session.get(LabelRun, label_run_id)
    known = set(ts.label_names)
    gold, _ = validation.gold_labels(validation.codes_frame(session, user, project_id))
    sample = validation.current_sample(session, user, project_id)
    dev = (
        [
            d.doc_id
            for d in validation.sample_docs(session, user, project_id, sample, part="dev")
            if gold.get(d.doc_id) in known
        ]
        if sample is not None
        else []
    )
    notes = []
    if len(dev) >= MIN_DEV:
        texts_of = projects.get_documents(session, run.corpus_id, dev)
        dev = [d for d in dev if d in texts_of]
        eval_texts = [texts_of[d] for d in dev]
        truth = [gold[d] for d in dev]
        left_out = set(dev)
        keep = [i for i, d in enumerate(ts.doc_ids) if d not in left_out]
        scored_on = f"{len(dev):,} human-coded development texts (never trained on)"
    else:
        order = list(range(len(ts.texts)))
        random.Random(args.seed).shuffle(order)
        held = set(order[: len(order) // 5])
        keep = [i for i in order if i not in held]
        eval_texts = [ts.texts[i] for i in sorted(held)]
        truth = [ts.labels[i] for i in sorted(held)]
        scored_on = f"{len(held):,} held-back LLM-labelled texts, against the LLM's labels"
        notes.append(
            f"The development part has {len(dev)} human-coded texts (fewer than {MIN_DEV}): "
            "the curve is scored against the LLM's own labels, which says how well the student "
            "imitates its teacher, not how right it is."
        )
    try:
        points = head_curve(
            [ts.texts[i] for i in keep],
            [ts.labels[i] for i in keep],
            ts.label_names,
            eval_texts,
            truth,
            args=args,
            shares=shares,
            confidences=[ts.confidences[i] for i in keep],
            consistencies=[ts.consistencies[i] for i in keep],
            on_progress=on_progress,
        )
    except TrainingError as exc:
        raise StudentError(str(exc)) from exc
    cost = None
    if run.teacher != "local" and price_for(run.model) is not None:
        book = Codebook.from_dict(run.codebook, check=False)
        sample_texts = ts.texts[:COST_SAMPLE]
        repeats = int((run.params or {}).get("repeats") or 1)
        found = estimate(book, sample_texts, run.model, repeats)
        cost = found.cost_usd / max(1, len(sample_texts))
    return LearningCurve(
        points=points,
        scored_on=scored_on,
        n_scored=len(truth),
        n_available=len(keep),
        teacher=run.teacher,
        model=run.model,
        cost_per_text_usd=cost,
        notes=notes,
    )
