"""Team coding: who codes which texts of a validation sample, each coder's queue, and how far
the team has got.

An owner or researcher shares a sample among coders with a :class:`Design`: every text to
``k`` coders, or each text to one coder and a share ``overlap`` of the texts to ``k`` (two or
more), on which agreement among coders is measured. :func:`plan` makes the assignment (pure,
seeded, loads balanced to within one text); :func:`assign` stores it. A coder's
:func:`coding_queue` holds their assigned texts in an order of their own (seeded by the sample
and the coder, so position effects do not line up across coders) with their own codes only:
no other coder's code and no LLM label. :func:`reassign` hands a departed coder's uncoded
texts to others; what they coded stays theirs. :func:`team_progress` is the owner's view.

Coders are named as ``HumanCode.coder``: a user's name on a shared instance (a member whose
role may code), or any name in single-user mode, where coders are named, not signed in.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from distill_core.clock import utcnow
from distill_core.store.models import (
    Assignment,
    AssignmentDesign,
    CodeEvent,
    Document,
    HumanCode,
    SampleItem,
    User,
    ValidationSample,
)
from distill_core.study import activity, validation
from distill_core.study.access import Capability, belongs, can, entry
from distill_core.study.validation import ValidationError

#: The observed agreement :func:`expected_halfwidth` plans with.
PLANNING_AGREEMENT = 0.8
#: A gap between two codes longer than this is a break, not time spent on a text.
MAX_SECONDS_PER_TEXT = 600


# ---------------------------------------------------------------- designs and plans


@dataclass(frozen=True)
class Design:
    """How a sample's texts are shared among ``coders``: every text to ``k`` coders
    (``overlap`` None), or each text to one coder and a share ``overlap`` (0–1] of the texts
    to ``k`` coders (at least two) for agreement. ``seed`` drives which texts and coders."""

    coders: tuple[str, ...]
    k: int = 2
    overlap: float | None = None
    seed: int = 0

    def check(self) -> Design:
        """The design with clean coder names, or a ``ValidationError`` in one sentence."""
        names = tuple(dict.fromkeys(c.strip() for c in self.coders if c and c.strip()))
        if not names:
            raise ValidationError("Name at least one coder.")
        if self.k < 1:
            raise ValidationError("Each text needs at least one coder.")
        if self.k > len(names):
            raise ValidationError(
                f"{self.k} coders per text need at least {self.k} coders; "
                f"{len(names)} {'is' if len(names) == 1 else 'are'} named."
            )
        if self.overlap is not None:
            if not 0.0 < self.overlap <= 1.0:
                raise ValidationError("The overlap share must be above 0% and at most 100%.")
            if self.k < 2:
                raise ValidationError("Overlap texts need at least two coders each.")
        return Design(names, self.k, self.overlap, self.seed)

    def describe(self) -> str:
        """The design in a sentence, as the page and the appendix say it."""
        if self.overlap is None:
            return f"every text to {self.k} of {len(self.coders)} coders"
        return (
            f"each text to one of {len(self.coders)} coders and {self.overlap:.0%} of the texts "
            f"(the overlap) to {self.k} coders each"
        )


@dataclass(frozen=True)
class Plan:
    """An assignment: for every text the coders who get it (``per_text``)."""

    design: Design
    per_text: dict[str, tuple[str, ...]]
    n_categories: int = 0

    @property
    def n_texts(self) -> int:
        return len(self.per_text)

    @property
    def overlap_ids(self) -> list[str]:
        """Texts coded by two or more coders: the n of the agreement among coders."""
        return [d for d, who in self.per_text.items() if len(who) >= 2]

    def per_coder(self) -> dict[str, int]:
        """How many texts each coder gets (every coder of the design listed)."""
        counts = Counter(c for who in self.per_text.values() for c in who)
        return {c: counts.get(c, 0) for c in self.design.coders}

    def overlap_per_coder(self) -> dict[str, int]:
        counts = Counter(c for d in self.overlap_ids for c in self.per_text[d])
        return {c: counts.get(c, 0) for c in self.design.coders}

    def halfwidth(self) -> float | None:
        """The expected half-width of the intercoder interval (:func:`expected_halfwidth`)."""
        return expected_halfwidth(len(self.overlap_ids), self.n_categories)


def plan(doc_ids: Sequence[str], design: Design, n_categories: int = 0) -> Plan:
    """Share ``doc_ids`` among the design's coders.

    The texts are shuffled (``default_rng(seed)``); the first ``round(overlap · N)`` (all with
    ``overlap`` None) go to ``k`` coders each, the rest to one. Each text goes to the coders
    with the fewest texts so far; among those, to coders who have shared the fewest texts with
    the ones already chosen for it (so every pair of coders gets common texts to agree on),
    then at random. So the coders' loads differ by one text at most.
    """
    design = design.check()
    ids = list(dict.fromkeys(doc_ids))
    rng = np.random.default_rng(design.seed)
    order = [ids[i] for i in rng.permutation(len(ids))]
    n_overlap = len(order) if design.overlap is None else round(design.overlap * len(order))
    load: Counter = Counter()
    shared: Counter = Counter()  # frozenset({a, b}) → texts both got
    per_text: dict[str, tuple[str, ...]] = {}
    for i, doc_id in enumerate(order):
        k = design.k if i < n_overlap else 1
        ties = dict(zip(design.coders, rng.random(len(design.coders)), strict=True))
        chosen: list[str] = []
        for _ in range(k):
            best = min(
                (c for c in design.coders if c not in chosen),
                key=lambda c: (load[c], sum(shared[frozenset((c, o))] for o in chosen), ties[c]),
            )
            chosen.append(best)
        for c in chosen:
            load[c] += 1
        for a in chosen:
            for b in chosen:
                if a < b:
                    shared[frozenset((a, b))] += 1
        per_text[doc_id] = tuple(chosen)
    return Plan(design, {d: per_text[d] for d in ids}, n_categories)


def expected_halfwidth(
    n: int, n_categories: int = 0, agreement: float = PLANNING_AGREEMENT, confidence: float = 0.95
) -> float | None:
    """The expected half-width of a 95% interval for κ (and roughly α) on ``n`` texts coded
    by two coders: ``z · sqrt(p_o (1 − p_o) / n) / (1 − p_e)``, the large-sample standard
    error of Cohen's κ with the chance agreement's own variance left out (Fleiss, Cohen &
    Everitt 1969), planned with an observed agreement ``p_o`` of 0.8 and ``p_e = 1 / K`` for K
    categories (equal shares; skewed shares raise p_e and widen the interval, so this is the
    narrowest to expect); ``p_e = 0.5`` when K is not known. None below two texts."""
    if n < 2:
        return None
    from statistics import NormalDist

    z = NormalDist().inv_cdf((1 + confidence) / 2)
    p_e = 1.0 / n_categories if n_categories >= 2 else 0.5
    return z * math.sqrt(agreement * (1 - agreement) / n) / (1 - p_e)


# ---------------------------------------------------------------- storing assignments


@dataclass(frozen=True)
class DesignRecord:
    """A stored design (for pages and the appendix)."""

    design: Design
    n_texts: int
    n_overlap: int
    created_at: datetime

    def sentence(self) -> str:
        return (
            f"The {self.n_texts:,} texts were assigned {self.design.describe()} (seed "
            f"{self.design.seed}): {self.n_overlap:,} texts coded by two or more coders."
        )


@entry(Capability.EDIT)
def assign(
    session: Session,
    user: User,
    project_id: int,
    sample: ValidationSample,
    design: Design,
    *,
    n_categories: int = 0,
) -> Plan:
    """Assign the sample's texts by ``design`` and store it. A coder who is a user must be a
    member whose role may code; any other name is a named coder (single-user mode). An earlier
    design's uncoded texts are withdrawn; a text a coder has coded stays theirs."""
    belongs(sample, project_id, "sample")
    design = design.check()
    users = _coder_users(session, project_id, design.coders)
    doc_ids = [
        d
        for d in session.scalars(
            select(SampleItem.doc_id)
            .where(SampleItem.sample_id == sample.id)
            .order_by(SampleItem.position)
        )
    ]
    made = plan(doc_ids, design, n_categories)
    record = AssignmentDesign(
        project_id=project_id,
        sample_id=sample.id,
        k=design.k,
        overlap=design.overlap,
        coders=list(design.coders),
        seed=design.seed,
        n_texts=made.n_texts,
        n_overlap=len(made.overlap_ids),
        created_by=user.id,
    )
    session.add(record)
    session.flush()
    coded = _coded(session, project_id, doc_ids)
    now = utcnow()
    existing = {
        (a.doc_id, a.coder): a
        for a in session.scalars(select(Assignment).where(Assignment.sample_id == sample.id))
    }
    wanted = {(d, c) for d, who in made.per_text.items() for c in who}
    for key, row in existing.items():
        if key not in wanted and row.withdrawn_at is None and key not in coded:
            row.withdrawn_at = now
    for doc_id, coder in sorted(wanted):
        row = existing.get((doc_id, coder))
        if row is None:
            session.add(
                Assignment(
                    project_id=project_id,
                    sample_id=sample.id,
                    design_id=record.id,
                    doc_id=doc_id,
                    coder=coder,
                    user_id=users.get(coder),
                )
            )
        else:
            row.withdrawn_at, row.design_id, row.reassigned_from = None, record.id, None
    session.flush()
    activity.record(
        session,
        user,
        project_id,
        "assigned texts",
        sample_id=sample.id,
        coders=list(design.coders),
        k=design.k,
        overlap=design.overlap,
    )
    return made


def _coder_users(session: Session, project_id: int, names: Sequence[str]) -> dict[str, int]:
    """coder name → user id, for the names that are users; a user who may not code here is a
    ``ValidationError``."""
    found = {u.username: u for u in session.scalars(select(User).where(User.username.in_(names)))}
    for name, person in found.items():
        if not can(session, person, project_id, Capability.CODE):
            raise ValidationError(
                f"'{name}' may not code in this project: give them the coder role first."
            )
    return {name: person.id for name, person in found.items()}


def _coded(session: Session, project_id: int, doc_ids: Sequence[str]) -> set[tuple[str, str]]:
    """(doc_id, coder) of every code of these texts."""
    wanted = set(doc_ids)
    return {
        (d, c)
        for d, c in session.execute(
            select(HumanCode.doc_id, HumanCode.coder).where(HumanCode.project_id == project_id)
        )
        if d in wanted
    }


def _active(session: Session, sample_id: int, coder: str | None = None) -> list[Assignment]:
    stmt = select(Assignment).where(
        Assignment.sample_id == sample_id, Assignment.withdrawn_at.is_(None)
    )
    if coder is not None:
        stmt = stmt.where(Assignment.coder == coder)
    return list(session.scalars(stmt))


@entry(Capability.MEMBER)
def is_assigned(session: Session, user: User, project_id: int, sample: ValidationSample) -> bool:
    """Whether the sample's texts have been assigned to coders (then coders code a queue)."""
    belongs(sample, project_id, "sample")
    return bool(
        session.scalar(select(Assignment.id).where(Assignment.sample_id == sample.id).limit(1))
    )


@entry(Capability.READ)
def assigned_pairs(
    session: Session, user: User, project_id: int, sample: ValidationSample
) -> set[tuple[str, str]]:
    """(doc_id, coder) of every text in a coder's queue of the sample."""
    belongs(sample, project_id, "sample")
    return {(a.doc_id, a.coder) for a in _active(session, sample.id)}


@entry(Capability.READ)
def current_design(
    session: Session, user: User, project_id: int, sample: ValidationSample
) -> DesignRecord | None:
    """The sample's newest assignment design (None: not assigned)."""
    belongs(sample, project_id, "sample")
    row = session.scalar(
        select(AssignmentDesign)
        .where(AssignmentDesign.sample_id == sample.id)
        .order_by(AssignmentDesign.id.desc())
        .limit(1)
    )
    if row is None:
        return None
    design = Design(tuple(row.coders), row.k, row.overlap, row.seed)
    return DesignRecord(design, row.n_texts, row.n_overlap, row.created_at)


@dataclass(frozen=True)
class Reassignment:
    """What :func:`reassign` did: texts moved per new coder, the departed coder's coded texts
    kept, and texts no named coder could take (each already had it)."""

    moved: dict[str, int]
    kept: int
    unplaced: list[str] = field(default_factory=list)

    def sentence(self, coder: str) -> str:
        moved = ", ".join(f"{n} to {c}" for c, n in self.moved.items() if n) or "none"
        text = f"{coder}'s uncoded texts moved: {moved}; the {self.kept} texts {coder} coded stay."
        if self.unplaced:
            text += f" {len(self.unplaced)} could not move: each new coder already has them."
        return text


@entry(Capability.EDIT)
def reassign(
    session: Session,
    user: User,
    project_id: int,
    sample: ValidationSample,
    coder: str,
    to: Sequence[str],
) -> Reassignment:
    """Move ``coder``'s uncoded texts of the sample to the coders ``to`` (each text to the one
    of them with the fewest texts who does not have it yet); the texts ``coder`` coded stay
    assigned to them, with their codes."""
    belongs(sample, project_id, "sample")
    to = [c.strip() for c in to if c and c.strip() and c.strip() != coder]
    if not to:
        raise ValidationError("Choose at least one other coder to take the texts.")
    users = _coder_users(session, project_id, to)
    mine = _active(session, sample.id, coder)
    coded = _coded(session, project_id, [a.doc_id for a in mine])
    pending = sorted((a for a in mine if (a.doc_id, coder) not in coded), key=lambda a: a.doc_id)
    everyone = _active(session, sample.id)
    load = Counter(a.coder for a in everyone if a.coder in to)
    has = {
        (a.doc_id, a.coder)
        for a in session.scalars(select(Assignment).where(Assignment.sample_id == sample.id))
    }
    active = {(a.doc_id, a.coder) for a in everyone}
    moved: Counter = Counter()
    unplaced = []
    now = utcnow()
    for row in pending:
        free = [c for c in to if (row.doc_id, c) not in active]
        if not free:
            unplaced.append(row.doc_id)
            continue
        target = min(free, key=lambda c: (load[c], to.index(c)))
        row.withdrawn_at = now
        if (row.doc_id, target) in has:  # withdrawn from them earlier: theirs again
            old = session.scalar(
                select(Assignment).where(
                    Assignment.sample_id == sample.id,
                    Assignment.doc_id == row.doc_id,
                    Assignment.coder == target,
                )
            )
            old.withdrawn_at, old.reassigned_from = None, coder
        else:
            session.add(
                Assignment(
                    project_id=project_id,
                    sample_id=sample.id,
                    design_id=row.design_id,
                    doc_id=row.doc_id,
                    coder=target,
                    user_id=users.get(target),
                    reassigned_from=coder,
                )
            )
        active.add((row.doc_id, target))
        load[target] += 1
        moved[target] += 1
    session.flush()
    activity.record(
        session,
        user,
        project_id,
        "reassigned texts",
        sample_id=sample.id,
        coder=coder,
        to=list(to),
        moved=sum(moved.values()),
    )
    return Reassignment({c: moved.get(c, 0) for c in to}, len(mine) - len(pending), unplaced)


# ---------------------------------------------------------------- a coder's queue


@dataclass(frozen=True)
class QueueItem:
    doc_id: str
    text: str
    #: The coder's own code and note (None: not coded yet); never anyone else's.
    label: str | None = None
    note: str = ""


@dataclass(frozen=True)
class Queue:
    """One coder's assigned texts of a sample, in their own order."""

    coder: str
    items: list[QueueItem]

    @property
    def done(self) -> int:
        return sum(1 for i in self.items if i.label is not None)

    @property
    def total(self) -> int:
        return len(self.items)

    def next_open(self, after: int = -1) -> int | None:
        """The position of the next uncoded text after ``after`` (wrapping round to texts
        skipped earlier); None when every text is coded."""
        n = len(self.items)
        for step in range(1, n + 1):
            i = (after + step) % n
            if self.items[i].label is None:
                return i
        return None


def queue_order(sample: ValidationSample, coder: str, doc_ids: Sequence[str]) -> list[str]:
    """The order in which ``coder`` sees these texts of ``sample``: a shuffle seeded by the
    sample (its seed and id) and the coder, the same on every visit, different per coder."""

    def key(doc_id: str) -> str:
        seed = f"{sample.seed or 0}:{sample.id}:{coder}:{doc_id}"
        return hashlib.sha256(seed.encode()).hexdigest()

    return sorted(doc_ids, key=key)


@entry(Capability.CODE)
def coding_queue(
    session: Session,
    user: User,
    project_id: int,
    sample: ValidationSample,
    coder: str | None = None,
) -> Queue | None:
    """``coder``'s queue (the acting user's own by default; another's needs a researcher's
    role): their assigned texts with their own codes only. None when nothing is assigned to
    them in this sample."""
    belongs(sample, project_id, "sample")
    coder = coder or user.username
    validation._as_coder(session, user, project_id, coder)
    ids = [a.doc_id for a in _active(session, sample.id, coder)]
    if not ids:
        return None
    texts = dict(
        session.execute(
            select(Document.doc_id, Document.text).where(
                Document.corpus_id == sample.corpus_id, Document.doc_id.in_(ids)
            )
        )
        .tuples()
        .all()
    )
    own = {
        d: (label, note)
        for d, label, note in session.execute(
            select(HumanCode.doc_id, HumanCode.label, HumanCode.note).where(
                HumanCode.project_id == project_id,
                HumanCode.coder == coder,
                HumanCode.doc_id.in_(ids),
            )
        )
    }
    items = [
        QueueItem(d, texts.get(d, ""), *own.get(d, (None, "")))
        for d in queue_order(sample, coder, ids)
    ]
    return Queue(coder, items)


# ---------------------------------------------------------------- the team's progress


@dataclass(frozen=True)
class CoderProgress:
    coder: str
    assigned: int
    #: Assigned texts the coder has coded, and all the sample's texts they coded.
    done: int
    coded: int
    #: Median seconds from opening a text to its first code (None: no timed code).
    median_seconds: float | None
    #: Codes compared with another coder's code of the same text, and the share identical.
    overlap_pairs: int
    agreement: float | None


@dataclass(frozen=True)
class TeamProgress:
    """How far the team has got on a sample."""

    coders: list[CoderProgress]
    n_texts: int
    #: Texts assigned to at least one coder, and those whose every assigned coder has coded.
    assigned_texts: int
    complete_texts: int
    #: Texts with at least two codes (the overlap coded so far).
    overlap_texts: int
    design: DesignRecord | None


@entry(Capability.READ)
def team_progress(
    session: Session, user: User, project_id: int, sample: ValidationSample
) -> TeamProgress:
    """Per coder: texts assigned, done, the median seconds per text and agreement with the
    others on the texts both coded so far; per sample: texts with all their codes."""
    belongs(sample, project_id, "sample")
    doc_ids = list(
        session.scalars(select(SampleItem.doc_id).where(SampleItem.sample_id == sample.id))
    )
    in_sample = set(doc_ids)
    codes = validation.codes_frame(session, user, project_id)
    codes = codes[codes["doc_id"].isin(in_sample)]
    per_coder = validation.coder_codes(codes)
    assigned: dict[str, set[str]] = defaultdict(set)
    for a in _active(session, sample.id):
        assigned[a.coder].add(a.doc_id)
    by_text: dict[str, dict[str, str]] = defaultdict(dict)
    for c, own in per_coder.items():
        for d, label in own.items():
            by_text[d][c] = label
    seconds = _seconds(session, project_id, in_sample)
    rows = []
    for c in sorted(set(assigned) | set(per_coder)):
        own = per_coder.get(c, {})
        pairs = [own[d] == other for d in own for o, other in by_text[d].items() if o != c]
        times = seconds.get(c, [])
        rows.append(
            CoderProgress(
                coder=c,
                assigned=len(assigned.get(c, ())),
                done=len(assigned.get(c, set()) & set(own)),
                coded=len(own),
                median_seconds=statistics.median(times) if times else None,
                overlap_pairs=len(pairs),
                agreement=sum(pairs) / len(pairs) if pairs else None,
            )
        )
    wanted: dict[str, set[str]] = defaultdict(set)
    for c, ds in assigned.items():
        for d in ds:
            wanted[d].add(c)
    complete = sum(1 for d, who in wanted.items() if who <= set(by_text.get(d, {})))
    return TeamProgress(
        coders=rows,
        n_texts=len(doc_ids),
        assigned_texts=len(wanted),
        complete_texts=complete,
        overlap_texts=sum(1 for who in by_text.values() if len(who) >= 2),
        design=current_design(session, user, project_id, sample),
    )


def _seconds(session: Session, project_id: int, doc_ids: set[str]) -> dict[str, list[float]]:
    """coder → seconds each of their texts took to code the first time: from the moment the
    text was opened when that was recorded, else from the coder's previous code (a gap over
    ``MAX_SECONDS_PER_TEXT`` is a break and is left out)."""
    events = session.execute(
        select(CodeEvent.coder, CodeEvent.doc_id, CodeEvent.at, CodeEvent.opened_at)
        .where(CodeEvent.project_id == project_id, CodeEvent.source == "browser")
        .order_by(CodeEvent.coder, CodeEvent.at, CodeEvent.id)
    ).all()
    out: dict[str, list[float]] = defaultdict(list)
    seen: set[tuple[str, str]] = set()
    previous: dict[str, datetime] = {}
    limit = timedelta(seconds=MAX_SECONDS_PER_TEXT)
    for coder, doc_id, at, opened in events:
        start = opened or previous.get(coder)
        previous[coder] = at
        if (coder, doc_id) in seen or doc_id not in doc_ids:
            continue
        seen.add((coder, doc_id))
        if start is not None and timedelta(0) <= _aware(at) - _aware(start) <= limit:
            out[coder].append((_aware(at) - _aware(start)).total_seconds())
    return out


def _aware(t: datetime) -> datetime:
    """SQLite hands back naive datetimes (stored as UTC)."""
    from datetime import UTC

    return t if t.tzinfo else t.replace(tzinfo=UTC)
