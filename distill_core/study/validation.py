"""Human validation in the store: samples (development and held-out test parts), coders'
codes (each with its history, first code, note and codebook version), imports of existing
codes, and the one rule for the gold labels agreement is computed against (``gold_rule``: an
expert's adjudicated code, else the coders' majority; ties listed). Who codes which texts is
``study.assignments``; settling disagreements is ``study.adjudication``.

The held-out test part is locked: ``training_exclusions`` lists its documents so no student is
ever trained on them, and ``mark_test_seen`` records when its score was first looked at so the
app can warn about codebook edits made afterwards (re-scoring the same texts overfits).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from distill_core import agreement, sampling
from distill_core.clock import utcnow
from distill_core.codebook import match_label
from distill_core.corpus import id_text, is_blank, named_as_id
from distill_core.store.models import (
    Adjudication,
    CodebookVersion,
    CodeEvent,
    Corpus,
    Document,
    HumanCode,
    LabelRunItem,
    SampleItem,
    User,
    ValidationSample,
)
from distill_core.study import activity, memo
from distill_core.study.access import AccessDenied, Capability, belongs, can, entry
from distill_core.study.projects import after_seen_question, first_look, get_corpus, part_keys
from distill_core.values import content_key

PARTS = ("dev", "test")
#: Bootstrap resamples of the intervals of agreement among coders.
INTERCODER_BOOT = 1000


class ValidationError(ValueError):
    """A user-caused problem (no corpus, a sample larger than the corpus...); one sentence."""


# ---------------------------------------------------------------- samples


@entry(Capability.EDIT)
def draw_sample(
    session: Session,
    user: User,
    project_id: int,
    *,
    n: int,
    seed: int,
    test_share: float = 0.5,
    method: str = "random",
    strata_run_id: int | None = None,
    min_per_stratum: int = 0,
) -> ValidationSample:
    """Draw a validation sample of ``n`` non-empty texts and split it into dev and test parts.

    ``method`` "random" is a simple random sample; "stratified" allocates by the LLM labels of
    ``strata_run_id`` (proportionally, at least ``min_per_stratum`` per label) so rare
    categories appear — its shares are then not the corpus's shares. ``seed`` drives the draw
    (``default_rng(seed)``, so a seed gives the same texts as before) and, through an
    independent child stream of the same seed (``sampling.split_stream``), the dev/test split.
    """
    corpus = get_corpus(session, user, project_id)
    if corpus is None:
        raise ValidationError("Upload a corpus before drawing a sample.")
    ids = [
        d
        for d, t in session.execute(
            select(Document.doc_id, Document.text)
            .where(Document.corpus_id == corpus.id)
            .order_by(Document.position)
        )
        if t.strip()
    ]
    if n < 2:
        raise ValidationError("A sample needs at least 2 texts.")
    if n > len(ids):
        raise ValidationError(
            f"The corpus has {len(ids):,} non-empty texts; the sample cannot be larger."
        )
    if not 0.0 < test_share < 1.0:
        raise ValidationError("The held-out share must be between 0 and 1.")
    strata = None
    if method == "stratified":
        if strata_run_id is None:
            raise ValidationError("A stratified sample needs a label run to stratify by.")
        by_doc = dict(
            session.execute(
                select(LabelRunItem.doc_id, LabelRunItem.label).where(
                    LabelRunItem.run_id == strata_run_id
                )
            )
            .tuples()
            .all()
        )
        strata = [by_doc.get(d) for d in ids]
        try:
            chosen = sampling.stratified(ids, strata, n, seed, min_per_stratum=min_per_stratum)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        chosen_strata = [by_doc.get(d) for d in chosen]
    elif method == "random":
        chosen = sampling.simple_random(ids, n, seed)
        chosen_strata = None
    else:
        raise ValidationError(f"Unknown sampling method '{method}'.")
    split = sampling.split_dev_test(chosen, test_share, seed, strata=chosen_strata)
    return _store_sample(
        session,
        user,
        project_id,
        corpus.id,
        split,
        method=method,
        seed=seed,
        test_share=test_share,
        strata_run_id=strata_run_id,
        details={"min_per_stratum": min_per_stratum} if method == "stratified" else {},
    )


@entry(Capability.EDIT)
def sample_from_ids(
    session: Session,
    user: User,
    project_id: int,
    doc_ids: Sequence[str],
    *,
    seed: int,
    test_share: float = 0.5,
    details: dict | None = None,
) -> ValidationSample:
    """A sample of given documents (e.g. texts coded before Distill), split into dev and test
    (the split's stream is ``sampling.split_stream(seed)``)."""
    corpus = get_corpus(session, user, project_id)
    split = sampling.split_dev_test(list(doc_ids), test_share, seed)
    return _store_sample(
        session,
        user,
        project_id,
        corpus.id,
        split,
        method="imported",
        seed=seed,
        test_share=test_share,
        strata_run_id=None,
        details=details or {},
    )


def _store_sample(session, user, project_id, corpus_id, split, **fields) -> ValidationSample:
    sample = ValidationSample(
        project_id=project_id,
        corpus_id=corpus_id,
        n=len(split.dev) + len(split.test),
        created_by=user.id,
        **fields,
    )
    session.add(sample)
    session.flush()
    order = sorted(split.dev + split.test, key=_shuffle_key(sample.seed or 0))
    parts = {d: "dev" for d in split.dev} | {d: "test" for d in split.test}
    # Held out once, held out for good (copies of a text included); a text used for
    # development never becomes a test text.
    texts = dict(
        session.execute(
            select(Document.doc_id, Document.text).where(
                Document.corpus_id == corpus_id, Document.doc_id.in_(order)
            )
        )
        .tuples()
        .all()
    )
    keys = {d: content_key(texts.get(d)) for d in order}
    held, developed = part_keys(session, project_id, "test"), part_keys(session, project_id, "dev")
    for d in order:  # earlier samples decide first
        if keys[d] in held:
            parts[d] = "test"
        elif keys[d] in developed:
            parts[d] = "dev"
    new_test = {keys[d] for d in order if parts[d] == "test"} - (developed - held)
    for d in order:  # then copies within this sample share their part
        if keys[d] in new_test:
            parts[d] = "test"
    session.add_all(
        SampleItem(sample_id=sample.id, doc_id=d, part=parts[d], position=i, content_key=keys[d])
        for i, d in enumerate(order)
    )
    session.flush()
    activity.record(
        session,
        user,
        project_id,
        "drew a sample",
        sample_id=sample.id,
        n=sample.n,
        method=sample.method,
    )
    return sample


def _shuffle_key(seed: int):
    """Coding order: a seeded shuffle, so coders do not see the texts in file order."""
    import hashlib

    return lambda d: hashlib.sha256(f"{seed}:{d}".encode()).hexdigest()


@entry(Capability.MEMBER)
def current_sample(session: Session, user: User, project_id: int) -> ValidationSample | None:
    """The project's newest validation sample."""
    return session.scalar(
        select(ValidationSample)
        .where(ValidationSample.project_id == project_id)
        .order_by(ValidationSample.id.desc())
        .limit(1)
    )


@dataclass
class SampleDoc:
    doc_id: str
    text: str
    part: str


@entry(Capability.MEMBER)
def sample_docs(
    session: Session,
    user: User,
    project_id: int,
    sample: ValidationSample,
    part: str | None = None,
) -> list[SampleDoc]:
    """The sample's documents in coding order (optionally only one part)."""
    belongs(sample, project_id, "sample")
    stmt = (
        select(SampleItem.doc_id, Document.text, SampleItem.part)
        .join(
            Document,
            (Document.doc_id == SampleItem.doc_id) & (Document.corpus_id == sample.corpus_id),
        )
        .where(SampleItem.sample_id == sample.id)
        .order_by(SampleItem.position)
    )
    if part:
        stmt = stmt.where(SampleItem.part == part)
    return [SampleDoc(*row) for row in session.execute(stmt)]


@entry(Capability.MEMBER)
def part_counts(
    session: Session, user: User, project_id: int, sample: ValidationSample
) -> dict[str, int]:
    """How many of the sample's documents are in each part (every part listed)."""
    belongs(sample, project_id, "sample")
    stmt = (
        select(SampleItem.part, func.count())
        .where(SampleItem.sample_id == sample.id)
        .group_by(SampleItem.part)
    )
    found = dict(session.execute(stmt).tuples().all())
    return {p: int(found.get(p, 0)) for p in PARTS}


def training_exclusions(session: Session, project_id: int) -> frozenset[str]:
    """Documents of the project's corpus whose text is, by content, a text of any held-out
    test part: never used to train a student, duplicates included (every text is read and
    hashed, so the answer is kept while the project's corpus and samples stay the same)."""
    return memo.remembered(
        session, project_id, "training_exclusions", (), lambda: _exclusions(session, project_id)
    )


def _exclusions(session: Session, project_id: int) -> frozenset[str]:
    held = part_keys(session, project_id, "test")
    if not held:
        return frozenset()
    corpus = session.scalar(select(Corpus.id).where(Corpus.project_id == project_id))
    rows = session.execute(
        select(Document.doc_id, Document.text).where(Document.corpus_id == corpus)
    )
    return frozenset(d for d, t in rows if content_key(t) in held)


@entry(Capability.READ)
def mark_test_seen(
    session: Session, user: User, project_id: int, sample_id: int, codebook_version: int | None
) -> None:
    """Record the first look at the held-out test score (and the codebook version scored)."""
    sample = belongs(session.get(ValidationSample, sample_id), project_id, "sample")
    if sample.test_seen_at is None:
        sample.test_seen_at = utcnow()
        sample.test_seen_codebook_version = codebook_version
        activity.record(
            session,
            user,
            project_id,
            "saw the held-out score",
            sample_id=sample.id,
            codebook_version=codebook_version,
        )
        session.flush()


@entry(Capability.READ)
def test_seen_warning(session: Session, user: User, project_id: int) -> str | None:
    """The question a codebook edit must answer once a held-out test score was seen (None
    before any look)."""
    seen = first_look(session, project_id)
    return None if seen is None else after_seen_question(seen)


# ---------------------------------------------------------------- codes


@entry(Capability.CODE)
def save_code(
    session: Session,
    user: User,
    project_id: int,
    doc_id: str,
    coder: str,
    label: str,
    *,
    source: str = "browser",
    note: str = "",
    opened_at: datetime | None = None,
) -> None:
    """Store (or change) ``coder``'s label for a document. A coder codes as themselves only;
    codes under another name (an import, local mode's typed names) need a researcher's role.

    Every code is kept as an event, with the coder's ``note`` ("unsure because…"), the time
    the text was ``opened_at`` on their screen and the project's newest codebook version; the
    coder's first code stays in ``first_label`` whatever they change later. A change in the
    browser by someone who could see the LLM's label of a text they had coded is a revision
    after the reveal: the code shown changes, but the blind one (``blind_label``) stays the
    one agreement is scored on.

    Coders coding at once lose nothing: the row is inserted with ON CONFLICT DO NOTHING (two
    tabs of one coder on one text cannot both insert it), then changed when it existed."""
    coder = (coder or "").strip()
    if not coder:
        raise ValidationError("Type your name as a coder first.")
    _as_coder(session, user, project_id, coder)
    note = (note or "").strip()
    version = session.scalar(
        select(func.max(CodebookVersion.version)).where(CodebookVersion.project_id == project_id)
    )
    key = {"project_id": project_id, "doc_id": doc_id, "coder": coder}
    fields = {"label": label, "source": source, "user_id": user.id}
    fields |= {"note": note, "codebook_version": version}
    insert = _insert_ignoring_conflict(session, HumanCode)
    inserted = session.execute(
        insert.values(**key, **fields, blind_label=label, first_label=label).returning(HumanCode.id)
    ).first()
    revealed = False
    if inserted is None:
        row = session.scalar(
            select(HumanCode).where(*(getattr(HumanCode, k) == v for k, v in key.items()))
        )
        revealed = source == "browser" and can(  # a coder never sees LLM labels
            session, user, project_id, Capability.READ
        )
        blind = row.blind_label or row.label
        for name, value in fields.items():
            setattr(row, name, value)
        row.updated_at = utcnow()
        row.first_label = row.first_label or blind
        if revealed:
            row.blind_label = blind
            row.revised_after_reveal = label != blind
        else:
            row.blind_label, row.revised_after_reveal = label, False
    session.add(CodeEvent(**key, **fields, after_reveal=revealed, opened_at=opened_at))
    session.flush()


def _insert_ignoring_conflict(session: Session, table):
    """An INSERT that does nothing where the row's unique key exists (SQLite, PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(table.__table__).on_conflict_do_nothing()


@entry(Capability.CODE)
def delete_code(session: Session, user: User, project_id: int, doc_id: str, coder: str) -> None:
    """Remove ``coder``'s code of a document (one's own, or any with a researcher's role)."""
    _as_coder(session, user, project_id, coder)
    session.execute(
        delete(HumanCode).where(
            HumanCode.project_id == project_id, HumanCode.doc_id == doc_id, HumanCode.coder == coder
        )
    )


def _as_coder(session: Session, user: User, project_id: int, coder: str) -> None:
    if coder != user.username and not can(session, user, project_id, Capability.EDIT):
        raise AccessDenied("A coder codes as themselves only.")


@entry(Capability.READ)
def codes_frame(session: Session, user: User, project_id: int) -> pd.DataFrame:
    """Every human code of the project: ``CODE_COLUMNS`` (each coder's code, first code, blind
    code, note and codebook version) and, on every row of a text an expert adjudicated,
    ``ADJUDICATION_COLUMNS`` (the gold code, its reason and who gave it): what ``gold_rule``
    reads."""
    return _codes(session, project_id, adjudicated=True)


@entry(Capability.CODE)
def own_codes(
    session: Session, user: User, project_id: int, coder: str | None = None
) -> pd.DataFrame:
    """One coder's codes (the acting user's own by default; another coder's need a
    researcher's role), as ``codes_frame`` without any adjudication (another's judgement)."""
    coder = coder or user.username
    _as_coder(session, user, project_id, coder)
    codes = _codes(session, project_id, adjudicated=False)
    return codes[codes["coder"] == coder].reset_index(drop=True)


#: The columns of ``codes_frame`` (one row per coder and text).
CODE_COLUMNS = [
    "doc_id",
    "coder",
    "label",
    "source",
    "created_at",
    "updated_at",
    "blind_label",
    "revised_after_reveal",
    "first_label",
    "note",
    "codebook_version",
]
#: The adjudication of the row's text (empty where there is none).
ADJUDICATION_COLUMNS = ["adjudicated", "adjudication_reason", "adjudicated_by"]


def _codes(session: Session, project_id: int, *, adjudicated: bool) -> pd.DataFrame:
    columns = [
        HumanCode.doc_id,
        HumanCode.coder,
        HumanCode.label,
        HumanCode.source,
        HumanCode.created_at,
        HumanCode.updated_at,
        func.coalesce(HumanCode.blind_label, HumanCode.label),
        HumanCode.revised_after_reveal,
        func.coalesce(HumanCode.first_label, HumanCode.blind_label, HumanCode.label),
        HumanCode.note,
        HumanCode.codebook_version,
    ]
    names = list(CODE_COLUMNS)
    stmt = select(*columns).where(HumanCode.project_id == project_id)
    if adjudicated:
        stmt = stmt.add_columns(
            Adjudication.label, Adjudication.reason, Adjudication.adjudicator
        ).outerjoin(
            Adjudication,
            (Adjudication.project_id == HumanCode.project_id)
            & (Adjudication.doc_id == HumanCode.doc_id),
        )
        names += ADJUDICATION_COLUMNS
    frame = pd.DataFrame(session.execute(stmt).all(), columns=names)
    frame["codebook_version"] = frame["codebook_version"].astype("Int64")
    return frame


@entry(Capability.READ)
def coders(session: Session, user: User, project_id: int) -> list[str]:
    stmt = (
        select(HumanCode.coder, func.count())
        .where(HumanCode.project_id == project_id)
        .group_by(HumanCode.coder)
        .order_by(func.count().desc())
    )
    return [c for c, _ in session.execute(stmt)]


#: Where a text's gold label comes from (``Gold.source``); "tie": none, coders tie.
GOLD_SOURCES = ("adjudicated", "unanimous", "majority", "one coder", "tie")


@dataclass(frozen=True)
class Gold:
    """One human label per text, by the one rule every figure uses (``gold_rule``)."""

    labels: dict[str, str]
    #: doc_id → one of ``GOLD_SOURCES`` (every coded text, ties included).
    source: dict[str, str]
    #: Texts whose coders tie and that no expert adjudicated: no gold label, listed.
    ties: list[str]

    def count(self, source: str) -> int:
        return sum(1 for s in self.source.values() if s == source)


def gold_rule(codes: pd.DataFrame, coder: str | None = None) -> Gold:
    """The gold label of each text: the expert's adjudicated code where there is one (column
    ``adjudicated``), else the most frequent of its coders' blind codes (those given before
    the LLM's label was seen; ``label`` in a frame without them). A text whose most frequent
    codes tie, and that nobody adjudicated, has none and is listed in ``ties``. With
    ``coder``: that coder's own codes, and no adjudication.
    """
    if codes.empty:
        return Gold({}, {}, [])
    column = "blind_label" if "blind_label" in codes.columns else "label"
    if coder is not None:
        own = codes[codes["coder"] == coder]
        labels = dict(zip(own["doc_id"], own[column], strict=True))
        return Gold(labels, dict.fromkeys(labels, "one coder"), [])
    settled = {}
    if "adjudicated" in codes.columns:
        done = codes.dropna(subset=["adjudicated"])
        settled = dict(zip(done["doc_id"], done["adjudicated"], strict=True))
    labels, source, ties = {}, {}, []
    for doc_id, given in codes.groupby("doc_id", sort=True)[column]:
        counts = Counter(given).most_common()
        if doc_id in settled:
            labels[doc_id], source[doc_id] = settled[doc_id], "adjudicated"
        elif len(counts) > 1 and counts[0][1] == counts[1][1]:
            source[doc_id] = "tie"
            ties.append(doc_id)
        else:
            labels[doc_id] = counts[0][0]
            source[doc_id] = (
                "one coder" if len(given) == 1 else "unanimous" if len(counts) == 1 else "majority"
            )
    return Gold(labels, source, ties)


def gold_labels(codes: pd.DataFrame, coder: str | None = None) -> tuple[dict[str, str], int]:
    """``gold_rule``'s labels and how many texts it leaves out because their coders tie."""
    gold = gold_rule(codes, coder)
    return gold.labels, len(gold.ties)


# ---------------------------------------------------------------- import


@dataclass
class ImportReport:
    """What an import of existing codes would do; nothing wrong is imported silently."""

    rows: int = 0
    matched: int = 0
    unmatched_ids: list[str] = field(default_factory=list)
    unknown_labels: dict[str, int] = field(default_factory=dict)
    empty: int = 0
    codes: list[tuple[str, str, str]] = field(default_factory=list)  # (doc_id, coder, label)

    def lines(self) -> list[str]:
        out = [f"{self.rows:,} rows read; {len(self.codes):,} codes can be imported."]
        if self.unmatched_ids:
            sample = ", ".join(self.unmatched_ids[:5])
            out.append(
                f"{len(self.unmatched_ids):,} ids are not in the corpus and are skipped (e.g. {sample})."
            )
        if self.unknown_labels:
            listed = ", ".join(f"'{k}' ({v})" for k, v in list(self.unknown_labels.items())[:8])
            out.append(
                f"{sum(self.unknown_labels.values()):,} rows have labels not in the codebook and are skipped: {listed}."
            )
        if self.empty:
            out.append(f"{self.empty:,} rows have no label and are skipped.")
        return out


#: Column names (lower case) that hold the label in a file of codes, best first.
LABEL_COLUMN_NAMES = ("code", "label", "category", "gold", "human", "topic", "class")


def guess_code_columns(columns: Sequence) -> tuple[str, str]:
    """The likely id and label columns of a file of codes: the first column named as an id
    (else the first), and the first named like a label (:data:`LABEL_COLUMN_NAMES`; else the
    next one). A filled sample file (``id``, ``text``, ``code``) gives ``("id", "code")``."""
    names = [str(c) for c in columns]
    if not names:
        return "", ""
    id_column = next((c for c in names if named_as_id(c)), names[0])
    rest = [c for c in names if c != id_column] or names
    by_name = {c.strip().lower(): c for c in reversed(rest)}
    label = next((by_name[n] for n in LABEL_COLUMN_NAMES if n in by_name), rest[0])
    return id_column, label


@entry(Capability.EDIT)
def plan_import(
    session: Session,
    user: User,
    project_id: int,
    frame: pd.DataFrame,
    *,
    id_column: str,
    label_column: str,
    label_names: Sequence[str],
    coder_column: str | None = None,
    coder: str | None = None,
) -> ImportReport:
    """Match a table of codes to the corpus by id and to the codebook's labels (exactly, or
    ignoring case and spaces — never by guesswork); report what does not match."""
    for column in [id_column, label_column] + ([coder_column] if coder_column else []):
        if column not in frame.columns:
            raise ValidationError(
                f"The column '{column}' is not in the file (columns: {', '.join(map(str, frame.columns))})."
            )
    if not coder_column and not (coder or "").strip():
        raise ValidationError("Name the coder of these codes, or choose a coder column.")
    corpus = get_corpus(session, user, project_id)
    known = set(session.scalars(select(Document.doc_id).where(Document.corpus_id == corpus.id)))
    report = ImportReport(rows=len(frame))
    unmatched: dict[str, None] = {}
    unknown: Counter = Counter()
    for _, row in frame.iterrows():
        doc_id = id_text(row[id_column])
        if doc_id not in known and doc_id.startswith("'") and doc_id[1:] in known:
            doc_id = doc_id[1:]  # an id our CSV and Excel files protected from formulas
        raw = row[label_column]
        if is_blank(raw):
            report.empty += 1
            continue
        label = match_label(str(raw), label_names)
        who = str(row[coder_column]).strip() if coder_column else coder.strip()
        if doc_id not in known:
            unmatched[doc_id] = None
            continue
        if label is None:
            unknown[str(raw)] += 1
            continue
        report.codes.append((doc_id, who, label))
    report.unmatched_ids = list(unmatched)
    report.unknown_labels = dict(unknown.most_common())
    report.matched = len(report.codes)
    return report


@entry(Capability.EDIT)
def apply_import(
    session: Session, user: User, project_id: int, report: ImportReport, source: str
) -> int:
    """Store the matched codes of a planned import; returns how many."""
    for doc_id, coder, label in report.codes:
        save_code(session, user, project_id, doc_id, coder, label, source=source)
    activity.record(session, user, project_id, "imported codes", n=len(report.codes), source=source)
    return len(report.codes)


@entry(Capability.CODE)
def coded_counts(
    session: Session, user: User, project_id: int, sample: ValidationSample, coder: str
) -> dict[str, int]:
    """How many of the sample's documents ``coder`` has coded, per part."""
    _as_coder(session, user, project_id, coder)
    belongs(sample, project_id, "sample")
    stmt = (
        select(SampleItem.part, func.count())
        .join(
            HumanCode,
            (HumanCode.doc_id == SampleItem.doc_id) & (HumanCode.project_id == sample.project_id),
        )
        .where(SampleItem.sample_id == sample.id, HumanCode.coder == coder)
        .group_by(SampleItem.part)
    )
    counts = defaultdict(int, dict(session.execute(stmt).tuples().all()))
    return {p: counts[p] for p in PARTS}


def intercoder_agreement(
    codes: pd.DataFrame,
    labels: Sequence[str] | None = None,
    *,
    n_boot: int = INTERCODER_BOOT,
    seed: int = 0,
) -> agreement.IntercoderAgreement | None:
    """Agreement among the human coders on their blind codes (``agreement.
    intercoder_agreement``: percent agreement, Krippendorff's α, Fleiss' κ and Gwet's AC1 with
    BCa intervals over the texts coded by two or more, per category, and Cohen's κ per pair);
    None with fewer than two coders. ``labels``: the codebook's, in order (a code outside them
    is added after them)."""
    if codes.empty or codes["coder"].nunique() < 2:
        return None
    per_coder = coder_codes(codes)
    order = None
    if labels:
        seen = {str(c) for own in per_coder.values() for c in own.values()}
        order = list(labels) + sorted(seen - set(labels))
    return agreement.intercoder_agreement(per_coder, labels=order, n_boot=n_boot, seed=seed)


def coder_codes(codes: pd.DataFrame) -> dict[str, dict[str, str]]:
    """coder → doc_id → blind code (``label`` in a frame without blind codes): what agreement
    among coders is computed on."""
    column = "blind_label" if "blind_label" in codes.columns else "label"
    return {c: dict(zip(g["doc_id"], g[column], strict=True)) for c, g in codes.groupby("coder")}


def compare_runs(
    gold: dict[str, str], predictions: dict[str, dict[str, str | None]], doc_ids: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Several label runs (e.g. codebook versions) scored on the same documents.

    ``predictions`` maps a run's name to its doc → label. Returns (a summary with n, accuracy
    and macro-F1 per run, on the documents every run labelled; a per-document table marking
    which runs got each document right), so a codebook edit's wins and losses are visible.
    """
    common = [d for d in doc_ids if d in gold and all(d in p for p in predictions.values())]
    rows, per_doc = [], {"doc_id": common, "human": [gold[d] for d in common]}
    for name, pred in predictions.items():
        if len(common) < 2:
            break
        p = [pred[d] for d in common]
        g = [gold[d] for d in common]
        rows.append(
            {
                "run": name,
                "n": len(common),
                "accuracy": agreement.accuracy(g, p),
                "macro_f1": agreement.macro_f1(g, p),  # over the categories that occur
            }
        )
        per_doc[name] = ["✓" if pred[d] == gold[d] else f"✗ {pred[d]}" for d in common]
    return pd.DataFrame(rows), pd.DataFrame(per_doc)


def disagreements(
    texts: dict[str, str],
    codes: pd.DataFrame,
    gold: dict[str, str],
    results: dict,
    doc_ids: Sequence[str],
) -> pd.DataFrame:
    """Texts where the LLM's label differs from the human one, with every coder's code and the
    LLM's confidence and consistency: the cases to read when sharpening the codebook.

    ``results`` maps doc_id → a run item (``label``, ``confidence``, ``consistency``).
    """
    by_doc = (
        codes.groupby("doc_id").apply(
            lambda g: "; ".join(
                f"{c}: {lab}" for c, lab in zip(g["coder"], g["label"], strict=True)
            ),
            include_groups=False,
        )
        if not codes.empty
        else pd.Series(dtype=str)
    )
    rows = [
        {
            "doc_id": d,
            "text": texts.get(d, ""),
            "human": gold[d],
            "coders": by_doc.get(d, ""),
            "LLM": results[d].label,
            "confidence": results[d].confidence,
            "consistency": results[d].consistency,
        }
        for d in doc_ids
        if d in gold and d in results and results[d].label != gold[d]
    ]
    columns = ["doc_id", "text", "human", "coders", "LLM", "confidence", "consistency"]
    return pd.DataFrame(rows, columns=columns)
