"""Settling coders' disagreements: the texts on which they differ (ties included), an expert's
gold code with its reason, and which categories humans and the LLM confuse.

The gold label of a text is ``validation.gold_rule``'s: the adjudicated code where there is
one, else the majority of the coders' blind codes; a tie nobody adjudicated has none and is
listed. Adjudicating is an owner's or researcher's (``Capability.ADJUDICATE``); the
disagreements and the confusion matrices are results (``Capability.READ``), never a coder's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from distill_core.clock import utcnow
from distill_core.store.models import (
    Adjudication,
    CodebookVersion,
    HumanCode,
    LabelRun,
    User,
    ValidationSample,
)
from distill_core.study import activity, projects, runs, validation
from distill_core.study.access import Capability, belongs, entry
from distill_core.study.validation import ValidationError


@dataclass(frozen=True)
class Dispute:
    """A text whose coders gave different codes."""

    doc_id: str
    text: str
    part: str
    #: coder → blind code, and coder → note ("unsure because…") where they left one.
    codes: dict[str, str]
    notes: dict[str, str] = field(default_factory=dict)
    #: The most frequent code (None: the most frequent codes tie).
    majority: str | None = None
    adjudicated: str | None = None
    reason: str = ""
    adjudicator: str | None = None

    @property
    def tie(self) -> bool:
        return self.majority is None

    @property
    def gold(self) -> str | None:
        """The text's gold label (``validation.gold_rule``)."""
        return self.adjudicated or self.majority

    @property
    def pairs(self) -> set[tuple[str, str]]:
        """The pairs of different codes it holds (each pair sorted)."""
        return {tuple(sorted(p)) for p in combinations(set(self.codes.values()), 2)}


@entry(Capability.READ)
def disputes(
    session: Session, user: User, project_id: int, sample: ValidationSample
) -> list[Dispute]:
    """The sample's texts whose coders differ (every tie among them), in coding order, with
    every coder's blind code and note and the expert's code where there is one."""
    belongs(sample, project_id, "sample")
    docs = validation.sample_docs(session, user, project_id, sample)
    codes = validation.codes_frame(session, user, project_id)
    out = []
    by_doc = {d: g for d, g in codes.groupby("doc_id")} if not codes.empty else {}
    for doc in docs:
        rows = by_doc.get(doc.doc_id)
        if rows is None or rows["blind_label"].nunique() < 2:
            continue
        first = rows.iloc[0]
        adjudicated = first["adjudicated"] if pd.notna(first["adjudicated"]) else None
        counts = Counter(rows["blind_label"]).most_common()
        tie = counts[0][1] == counts[1][1]
        out.append(
            Dispute(
                doc_id=doc.doc_id,
                text=doc.text,
                part=doc.part,
                codes=dict(zip(rows["coder"], rows["blind_label"], strict=True)),
                notes={c: n for c, n in zip(rows["coder"], rows["note"], strict=True) if n},
                majority=None if tie else counts[0][0],
                adjudicated=adjudicated,
                reason=first["adjudication_reason"] if adjudicated else "",
                adjudicator=first["adjudicated_by"] if adjudicated else None,
            )
        )
    return out


def with_pair(found: Iterable[Dispute], pair: tuple[str, str] | None) -> list[Dispute]:
    """The disputes holding both codes of ``pair`` (all of them for None)."""
    if pair is None:
        return list(found)
    wanted = tuple(sorted(pair))
    return [d for d in found if wanted in d.pairs]


@entry(Capability.ADJUDICATE)
def adjudicate(
    session: Session, user: User, project_id: int, doc_id: str, label: str, reason: str = ""
) -> None:
    """Make ``label`` the gold code of a coded text, with an optional ``reason``; replaces an
    earlier adjudication of it. The label must be one of the newest codebook's."""
    version = projects.latest_codebook(session, user, project_id)
    names = projects.as_codebook(version).label_names if version else []
    if label not in names:
        raise ValidationError(f"'{label}' is not a label of the codebook.")
    coded = session.scalar(
        select(func.count()).where(HumanCode.project_id == project_id, HumanCode.doc_id == doc_id)
    )
    if not coded:
        raise ValidationError(f"The text {doc_id} has no human code to adjudicate.")
    row = session.scalar(
        select(Adjudication).where(
            Adjudication.project_id == project_id, Adjudication.doc_id == doc_id
        )
    )
    if row is None:
        row = Adjudication(project_id=project_id, doc_id=doc_id)
        session.add(row)
    row.label, row.reason, row.at = label, (reason or "").strip(), utcnow()
    row.adjudicator, row.user_id = user.username, user.id
    row.codebook_version = session.scalar(
        select(func.max(CodebookVersion.version)).where(CodebookVersion.project_id == project_id)
    )
    session.flush()
    activity.record(session, user, project_id, "adjudicated a code", doc_id=doc_id, label=label)


@entry(Capability.ADJUDICATE)
def withdraw(session: Session, user: User, project_id: int, doc_id: str) -> None:
    """Take back the adjudication of a text: its gold label is the coders' majority again."""
    session.execute(
        delete(Adjudication).where(
            Adjudication.project_id == project_id, Adjudication.doc_id == doc_id
        )
    )
    activity.record(session, user, project_id, "withdrew an adjudication", doc_id=doc_id)


# ---------------------------------------------------------------- what gets confused


def human_pairs(codes: pd.DataFrame, labels: Sequence[str]) -> pd.DataFrame:
    """Which codes pairs of coders give the same text: for every text and every two of its
    coders, one count in the cell of their two codes (both cells off the diagonal, so the
    matrix is symmetric; the diagonal counts agreeing pairs). Blind codes; ``labels`` in
    order, then any other code seen."""
    column = "blind_label" if "blind_label" in codes.columns else "label"
    seen = list(labels) + sorted(set(codes[column]) - set(labels)) if not codes.empty else []
    matrix = pd.DataFrame(0, index=seen, columns=seen, dtype=int)
    for _, rows in codes.groupby("doc_id"):
        for a, b in combinations(list(rows[column]), 2):
            matrix.loc[a, b] += 1
            if a != b:
                matrix.loc[b, a] += 1
    return matrix


def llm_pairs(
    gold: dict[str, str], llm: dict[str, str | None], labels: Sequence[str]
) -> pd.DataFrame:
    """Gold label (rows) against the LLM's label (columns) on the texts with both."""
    ids = [d for d in gold if llm.get(d) is not None]
    seen = set(gold[d] for d in ids) | set(llm[d] for d in ids)
    order = list(labels) + sorted(seen - set(labels))
    matrix = pd.DataFrame(0, index=order, columns=order, dtype=int)
    for d in ids:
        matrix.loc[gold[d], llm[d]] += 1
    return matrix


@dataclass(frozen=True)
class PairCount:
    """Two categories and how often humans (pairs of coders) and the LLM (against the gold
    label, either way round) confused them."""

    a: str
    b: str
    humans: int
    llm: int


def confused_pairs(humans: pd.DataFrame, llm: pd.DataFrame | None) -> list[PairCount]:
    """Every pair of categories confused at least once, most confused first."""
    out = []
    names = list(humans.index)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            h = int(humans.loc[a, b])
            m = 0
            if llm is not None and a in llm.index and b in llm.index:
                m = int(llm.loc[a, b] + llm.loc[b, a])
            if h or m:
                out.append(PairCount(a, b, h, m))
    return sorted(out, key=lambda p: (-(p.humans + p.llm), p.a, p.b))


@dataclass(frozen=True)
class Confusions:
    """What humans and the LLM confuse on a sample's texts, beside the codebook."""

    labels: list[str]
    definitions: dict[str, str]
    humans: pd.DataFrame
    llm: pd.DataFrame | None
    run_id: int | None
    pairs: list[PairCount]


@entry(Capability.READ)
def confusions(
    session: Session,
    user: User,
    project_id: int,
    sample: ValidationSample,
    run_id: int | None = None,
) -> Confusions:
    """Pairs of coders' codes on the sample's texts, and the gold label against the LLM run
    ``run_id`` (none without one), with the newest codebook's definitions."""
    belongs(sample, project_id, "sample")
    version = projects.latest_codebook(session, user, project_id)
    codebook = projects.as_codebook(version) if version else None
    labels = codebook.label_names if codebook else []
    definitions = {lab.name: lab.definition for lab in codebook.labels} if codebook else {}
    in_sample = {d.doc_id for d in validation.sample_docs(session, user, project_id, sample)}
    codes = validation.codes_frame(session, user, project_id)
    codes = codes[codes["doc_id"].isin(in_sample)]
    humans = human_pairs(codes, labels)
    llm = None
    if run_id is not None:
        belongs(session.get(LabelRun, run_id), project_id, "label run")
        said = {
            d: (i.label if i.status == "ok" else None)
            for d, i in runs.items_for(session, run_id, sorted(in_sample)).items()
        }
        llm = llm_pairs(validation.gold_rule(codes).labels, said, labels)
    return Confusions(labels, definitions, humans, llm, run_id, confused_pairs(humans, llm))
