"""Replacing a project's corpus without losing what people coded or what was held out.

Human codes are stored by document id and samples by the corpus they were drawn from, so a new
upload could silently re-attach a code to whatever new text reuses an old id. Instead every
coded or sampled text is followed by its content (``values.content_key``) into the new file:
kept under its id where the text is unchanged, moved to the id the text has now where it is not,
and, where the new file lacks the text, reported by id. Nothing is orphaned unless the person
replacing the corpus asks for those codes to be deleted, and the held-out texts among them stay
held out should they return in a later upload.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from distill_core.corpus import PreparedCorpus
from distill_core.store.models import (
    Adjudication,
    Assignment,
    CodeEvent,
    Document,
    HumanCode,
    LabelRun,
    SampleItem,
    StudentModel,
    ValidationSample,
)
from distill_core.study.access import ProjectError
from distill_core.values import content_key

#: How many orphaned ids a sentence names.
_NAMED = 5
#: What hangs on a project's text by its id: follows it to its new id, goes with it if orphaned.
FOLLOW = (HumanCode, CodeEvent, Adjudication, Assignment)


@dataclass(frozen=True)
class Replacement:
    """What replacing the corpus does to the codes and samples tied to the old one."""

    #: Human codes on the project's texts, and sample texts, before the replacement.
    codes: int = 0
    sample_texts: int = 0
    #: Old id → new id for every coded or sampled text found in the new file.
    mapping: dict[str, str] = field(default_factory=dict)
    #: Ids (coded or sampled) whose text the new file does not hold, and what hangs on them.
    orphaned: tuple[str, ...] = ()
    orphaned_codes: int = 0
    orphaned_sample_texts: int = 0
    #: LLM label runs and students made on the old texts (removed with it).
    runs: int = 0
    students: int = 0

    @property
    def moved(self) -> dict[str, str]:
        """The texts that have another id in the new file."""
        return {old: new for old, new in self.mapping.items() if old != new}

    def lines(self) -> list[str]:
        """What will happen, in sentences for the page."""
        out = []
        if self.codes or self.sample_texts:
            kept = self.codes - self.orphaned_codes
            line = (
                f"{kept:,} of {self.codes:,} human codes and "
                f"{self.sample_texts - self.orphaned_sample_texts:,} of {self.sample_texts:,} "
                "sample texts keep their text"
            )
            if self.moved:
                line += f" ({len(self.moved):,} texts have a new id in this file and move with it)"
            out.append(line + ".")
        if self.orphaned:
            out.append(self.refusal())
        if self.runs or self.students:
            out.append(
                f"{self.runs:,} LLM label runs and {self.students:,} trained students were made "
                "on the old texts and are removed with them."
            )
        return out

    def refusal(self) -> str:
        named = ", ".join(self.orphaned[:_NAMED]) + (", …" if len(self.orphaned) > _NAMED else "")
        return (
            f"The new file lacks {len(self.orphaned):,} texts that were coded or sampled "
            f"({named}): {self.orphaned_codes:,} human codes and {self.orphaned_sample_texts:,} "
            "sample texts would lose their text. Keep those texts in the file, or choose to "
            "delete their codes (download them first on the Export page)."
        )


def plan(
    session: Session, project_id: int, old_corpus_id: int, prepared: PreparedCorpus
) -> Replacement:
    """Follow every coded or sampled text of the old corpus into ``prepared`` by content."""
    codes = dict(
        session.execute(
            select(HumanCode.doc_id, func.count())
            .where(HumanCode.project_id == project_id)
            .group_by(HumanCode.doc_id)
        )
        .tuples()
        .all()
    )
    items = session.execute(
        select(SampleItem.doc_id, SampleItem.content_key)
        .join(ValidationSample, ValidationSample.id == SampleItem.sample_id)
        .where(ValidationSample.project_id == project_id)
    ).all()
    sampled: dict[str, int] = {}
    keys: dict[str, str] = {}
    for doc_id, key in items:
        sampled[doc_id] = sampled.get(doc_id, 0) + 1
        if key:
            keys[doc_id] = key
    needed = list(dict.fromkeys([*codes, *sampled]))
    missing = [d for d in needed if d not in keys]
    for doc_id, text in _old_texts(session, old_corpus_id, missing):
        keys[doc_id] = content_key(text)
    mapping, orphaned = _follow(needed, keys, prepared.ids, prepared.texts)
    return Replacement(
        codes=sum(codes.values()),
        sample_texts=sum(sampled.values()),
        mapping=mapping,
        orphaned=tuple(orphaned),
        orphaned_codes=sum(codes.get(d, 0) for d in orphaned),
        orphaned_sample_texts=sum(sampled.get(d, 0) for d in orphaned),
        runs=_count(session, LabelRun, old_corpus_id),
        students=_count(session, StudentModel, old_corpus_id),
    )


def _old_texts(session: Session, corpus_id: int, doc_ids: Sequence[str]) -> Iterable[tuple]:
    for start in range(0, len(doc_ids), 900):
        chunk = list(doc_ids[start : start + 900])
        yield from session.execute(
            select(Document.doc_id, Document.text).where(
                Document.corpus_id == corpus_id, Document.doc_id.in_(chunk)
            )
        ).tuples()


def _count(session: Session, model, corpus_id: int) -> int:
    return int(
        session.scalar(select(func.count()).select_from(model).where(model.corpus_id == corpus_id))
        or 0
    )


def _follow(
    needed: Sequence[str], keys: dict[str, str], new_ids: Sequence[str], new_texts: Sequence[str]
) -> tuple[dict[str, str], list[str]]:
    """Old id → new id by content: the same id where its text is unchanged, else the first
    unclaimed copy of the text; an id whose text is unknown or has no unclaimed copy is orphaned
    (two coded copies are never merged into one text)."""
    by_id = {d: content_key(t) for d, t in zip(new_ids, new_texts, strict=True)}
    by_key: dict[str, list[str]] = {}
    for d, k in by_id.items():
        by_key.setdefault(k, []).append(d)
    mapping: dict[str, str] = {}
    for old in needed:
        if old in keys and by_id.get(old) == keys[old]:
            mapping[old] = old
    taken = set(mapping.values())
    orphaned = []
    for old in needed:
        if old in mapping:
            continue
        free = [d for d in by_key.get(keys.get(old, ""), []) if d not in taken]
        if free:
            mapping[old] = free[0]
            taken.add(free[0])
        else:
            orphaned.append(old)
    return mapping, orphaned


def apply(
    session: Session,
    project_id: int,
    replacement: Replacement,
    new_corpus_id: int,
    *,
    delete_orphaned: bool,
) -> None:
    """Move codes and samples onto the new corpus (call before the old one is deleted)."""
    orphaned = list(replacement.orphaned)
    if orphaned and not delete_orphaned:
        raise ProjectError(replacement.refusal())
    samples = list(
        session.scalars(select(ValidationSample).where(ValidationSample.project_id == project_id))
    )
    sample_ids = [s.id for s in samples]
    if orphaned:
        _retire(session, samples, orphaned)
        for model in FOLLOW:
            session.execute(
                delete(model).where(model.project_id == project_id, model.doc_id.in_(orphaned))
            )
        if sample_ids:
            session.execute(
                delete(SampleItem).where(
                    SampleItem.sample_id.in_(sample_ids), SampleItem.doc_id.in_(orphaned)
                )
            )
    _rename(session, project_id, sample_ids, replacement.moved)
    for sample in samples:
        sample.corpus_id = new_corpus_id
    session.flush()


def _retire(session: Session, samples: list[ValidationSample], orphaned: list[str]) -> None:
    """Keep the content keys of orphaned sample texts on their sample: held out (or used for
    development) once, they stay so if a later upload brings them back."""
    rows = session.execute(
        select(SampleItem.sample_id, SampleItem.part, SampleItem.content_key).where(
            SampleItem.sample_id.in_([s.id for s in samples]),
            SampleItem.doc_id.in_(orphaned),
        )
    ).all()
    by_sample: dict[int, dict[str, list[str]]] = {}
    for sample_id, part, key in rows:
        if key:
            by_sample.setdefault(sample_id, {}).setdefault(part, []).append(key)
    for sample in samples:
        retired = by_sample.get(sample.id)
        if retired:
            details = dict(sample.details or {})
            earlier = details.get("retired_keys", {})
            details["retired_keys"] = {
                part: sorted(set(earlier.get(part, [])) | set(retired.get(part, [])))
                for part in set(earlier) | set(retired)
            }
            sample.details = details


def retired_keys(details: dict | None, part: str) -> set[str]:
    """Content keys a sample keeps for texts no longer in the corpus."""
    return set(((details or {}).get("retired_keys") or {}).get(part, []))


def _rename(
    session: Session, project_id: int, sample_ids: list[int], moved: dict[str, str]
) -> None:
    """Give codes, code events, adjudications, assignments and sample items their text's new
    id, in two steps so that ids trading places never collide."""
    if not moved:
        return
    import uuid

    tag = uuid.uuid4().hex  # no id in a file is this
    temporary = {old: f"moving-{tag}-{i}" for i, old in enumerate(moved)}
    for step in (temporary, {temporary[old]: new for old, new in moved.items()}):
        for source, target in step.items():
            for model in FOLLOW:
                session.execute(
                    update(model)
                    .where(model.project_id == project_id, model.doc_id == source)
                    .values(doc_id=target)
                )
            if sample_ids:
                session.execute(
                    update(SampleItem)
                    .where(SampleItem.sample_id.in_(sample_ids), SampleItem.doc_id == source)
                    .values(doc_id=target)
                )
