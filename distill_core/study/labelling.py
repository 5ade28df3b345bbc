"""A label run: the texts of a corpus (or a sample) labelled by a teacher with one codebook.

Nothing is paid twice and nothing is lost:

* identical texts are asked once (answers are keyed by the SHA-256 of the text);
* every answer is written to ``llm_responses`` before it counts towards progress; answers are
  keyed by ``run_key`` = hash(teacher model and parameters, codebook fingerprint), the text's
  hash and the repeat index, so re-running the same labelling sends no request and a run
  killed half-way asks only for what is missing;
* with K repeats the run's label is the modal answer and consistency the share of answers that
  agree with it (Pangakis et al. 2023), see ``distill_core.llm.base.aggregate``.

The API key never reaches this module's records: teachers report ``params()`` without it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from distill_core.codebook import Codebook
from distill_core.llm.base import Answer, Teacher, aggregate
from distill_core.llm.runner import DEFAULT_CONCURRENCY, run_items_sync
from distill_core.store import Store
from distill_core.store.models import LabelRun, LabelRunItem, LLMResponse, utcnow

#: Statuses a label can have in a run's results and in exported files.
STATUSES = ("ok", "invalid", "error")
#: Answers that count as done (an ``error`` is asked again on the next run).
_FINAL = ("ok", "invalid")
#: A writer thread stores answers as they arrive, in batches of at most this many.
_WRITE_BATCH = 256
#: Pause between commits (seconds): the most a killed run can lose of what it was paid for.
_WRITE_PAUSE = 0.05
#: Progress is reported at most this often (seconds), and once at the end.
_PROGRESS_EVERY = 0.3
_CHUNK = 500
#: A run whose first this-many answers all failed stops: the endpoint is down or refuses us.
FAIL_FAST_ERRORS = 8


def text_hash(text: str) -> str:
    """SHA-256 of the text: identical texts share answers."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_key(teacher_params: dict, codebook: Codebook) -> str:
    """What makes two answers interchangeable: the same teacher settings and the same codebook."""
    payload = json.dumps(
        {"teacher": teacher_params, "codebook": codebook.fingerprint()},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class Progress:
    """How far a run is: ``done`` of ``total`` (text, repeat) answers, and what it cost."""

    done: int = 0
    total: int = 0
    cached: int = 0
    requested: int = 0
    ok: int = 0
    invalid: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass
class LabelOutcome:
    """The end of a run: counts per status, what was asked and paid, and why it stopped early."""

    run_id: int
    n_texts: int
    n_distinct: int
    progress: Progress
    stopped: str | None = None  # "cancelled", "budget", "failing" or None when complete
    first_error: str | None = None
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


def create_run(
    session: Session,
    *,
    teacher: Teacher,
    codebook: Codebook,
    n_texts: int,
    project_id: int | None = None,
    corpus_id: int | None = None,
    codebook_version_id: int | None = None,
    scope: str = "all",
    repeats: int = 1,
    job_id: int | None = None,
    user_id: int | None = None,
) -> LabelRun:
    """Record a label run (before it starts, so a killed run can be found and resumed)."""
    params = dict(teacher.params(), repeats=repeats)
    run = LabelRun(
        project_id=project_id,
        corpus_id=corpus_id,
        codebook_version_id=codebook_version_id,
        codebook=codebook.to_dict(),
        teacher=teacher.name,
        model=str(params.get("model", teacher.name)),
        params=params,
        run_key=run_key(teacher.params(), codebook),
        scope=scope,
        n_texts=n_texts,
        job_id=job_id,
        created_by=user_id,
    )
    session.add(run)
    session.flush()
    return run


def label_texts(
    store: Store,
    run_id: int,
    teacher: Teacher,
    items: Sequence[tuple[str, str]],
    *,
    repeats: int = 1,
    concurrency: int = DEFAULT_CONCURRENCY,
    cost_of: Callable[[int, int], float] | None = None,
    budget_usd: float | None = None,
    should_cancel: Callable[[], bool] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> LabelOutcome:
    """Label ``items`` (document id, text) for the run ``run_id``; resume where answers exist.

    ``cost_of(prompt_tokens, completion_tokens)`` prices new answers; the run stops cleanly
    (no new requests, answers in flight are stored) when their cost reaches ``budget_usd`` or
    ``should_cancel()`` turns true. ``on_progress`` is called after every stored batch.
    """
    with store.session() as s:
        run = s.get(LabelRun, run_id)
        key, codebook = run.run_key, Codebook.from_dict(run.codebook)
    repeats = max(1, int(repeats))
    hashes = [text_hash(t) for _, t in items]
    distinct: dict[str, str] = {}
    for (_, t), h in zip(items, hashes, strict=True):
        if t.strip() and h not in distinct:
            distinct[h] = t

    with store.session() as s:
        cached = _stored(s, key, list(distinct), final_only=True)
    progress = Progress(total=len(distinct) * repeats, cached=len(cached), done=len(cached))
    pending = [
        (h, t) for h, t in distinct.items() if any((h, r) not in cached for r in range(repeats))
    ]

    writer = _AnswerWriter(store, progress, on_progress)
    model = str(teacher.params().get("model", teacher.name))
    stop_reason: list[str] = []
    first_error: list[str] = []

    def on_answer(h: str, r: int, answer: Answer) -> None:
        progress.requested += 1
        progress.prompt_tokens += answer.prompt_tokens
        progress.completion_tokens += answer.completion_tokens
        if cost_of is not None:
            progress.cost_usd += cost_of(answer.prompt_tokens, answer.completion_tokens)
        if answer.status == "ok":
            progress.ok += 1
        elif answer.status == "invalid":
            progress.invalid += 1
        else:
            progress.errors += 1
            first_error[:] = first_error or [answer.error or "The request failed."]
        writer.put(_response_row(key, h, r, teacher.name, model, answer))

    def should_stop() -> bool:
        if stop_reason:
            return True
        if progress.errors >= FAIL_FAST_ERRORS and progress.ok + progress.invalid == 0:
            stop_reason.append("failing")
        elif budget_usd is not None and progress.cost_usd >= budget_usd:
            stop_reason.append("budget")
        elif should_cancel is not None and should_cancel():
            stop_reason.append("cancelled")
        return bool(stop_reason)

    if on_progress is not None:
        on_progress(progress)
    if pending:
        writer.start()
        try:
            run_items_sync(
                teacher,
                codebook,
                pending,
                repeats=repeats,
                concurrency=concurrency,
                on_answer=on_answer,
                should_stop=should_stop,
                skip=cached,
            )
        finally:
            writer.close()
    if progress.requested and progress.errors == progress.requested and not stop_reason:
        stop_reason.append("failing")  # every request failed: the endpoint is down or refuses us
    counts = summarise_run(store, run_id, items, hashes=hashes, repeats=repeats)
    return LabelOutcome(
        run_id=run_id,
        n_texts=len(items),
        n_distinct=len(distinct),
        progress=progress,
        stopped=stop_reason[0] if stop_reason else None,
        first_error=first_error[0] if first_error else None,
        counts=counts,
    )


def summarise_run(
    store: Store,
    run_id: int,
    items: Sequence[tuple[str, str]],
    *,
    hashes: Sequence[str] | None = None,
    repeats: int = 1,
) -> dict[str, int]:
    """Write the run's per-document results from the stored answers; counts per status.

    A document never asked (a stopped run) gets no result row; one with only some of its
    repeats answered is aggregated over those.
    """
    hashes = list(hashes) if hashes is not None else [text_hash(t) for _, t in items]
    with store.session() as s:
        run = s.get(LabelRun, run_id)
        answers = _answers_by_hash(s, run.run_key, sorted(set(hashes)))
        s.execute(delete(LabelRunItem).where(LabelRunItem.run_id == run_id))
        rows, counts = [], dict.fromkeys(STATUSES, 0)
        for (doc_id, text), h in zip(items, hashes, strict=True):
            if not text.strip():
                row = {
                    "label": None,
                    "confidence": None,
                    "consistency": None,
                    "status": "error",
                    "answers": 0,
                }
            else:
                got = {r: a for r, a in answers.get(h, {}).items() if r < repeats}
                if not got:
                    continue  # never asked: the run stopped before this text
                row = _item_from_answers([got[r] for r in sorted(got)])
            counts[row["status"]] += 1
            rows.append({"run_id": run_id, "doc_id": doc_id, "text_hash": h, **row})
        insert_many(s, LabelRunItem.__table__, rows)
    return counts


def _item_from_answers(answers: list[Answer]) -> dict:
    label, consistency, status = aggregate(answers)
    confs = [a.confidence for a in answers if a.label == label and a.confidence is not None]
    return {
        "label": label,
        "confidence": sum(confs) / len(confs) if confs else None,
        "consistency": consistency,
        "status": status,
        "answers": len(answers),
    }


def run_results(session: Session, run_id: int) -> list[LabelRunItem]:
    """The run's per-document results."""
    return list(session.scalars(select(LabelRunItem).where(LabelRunItem.run_id == run_id)))


def audit_log(session: Session, run_id: int) -> Iterator[dict]:
    """Every stored answer behind a run, one JSON-ready dict each (no API key anywhere).

    Each record names the documents it answered for (identical texts share one answer).
    """
    run = session.get(LabelRun, run_id)
    docs: dict[str, list[str]] = defaultdict(list)
    for doc_id, h in session.execute(
        select(LabelRunItem.doc_id, LabelRunItem.text_hash).where(LabelRunItem.run_id == run_id)
    ):
        docs[h].append(doc_id)
    hashes = sorted(docs)
    for start in range(0, len(hashes), _CHUNK):
        stmt = (
            select(LLMResponse)
            .where(
                LLMResponse.run_key == run.run_key,
                LLMResponse.text_hash.in_(hashes[start : start + _CHUNK]),
            )
            .order_by(LLMResponse.text_hash, LLMResponse.repeat_index)
        )
        for r in session.scalars(stmt):
            yield {
                "run_id": run_id,
                "doc_ids": docs[r.text_hash],
                "text_sha256": r.text_hash,
                "repeat_index": r.repeat_index,
                "teacher": r.teacher,
                "model": r.model,
                "request": r.request,
                "raw": r.raw,
                "label": r.label,
                "status": r.status,
                "confidence": r.confidence,
                "prompt_tokens": r.prompt_tokens,
                "completion_tokens": r.completion_tokens,
                "attempts": r.attempts,
                "structured": r.structured,
                "error": r.error,
                "started_at": r.started_at.isoformat() if r.started_at else None,
                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            }


def write_audit_log(session: Session, run_id: int, fh) -> int:
    """Write the run's audit log as JSON Lines to ``fh``; returns the number of records."""
    n = 0
    for record in audit_log(session, run_id):
        fh.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        n += 1
    return n


# ---------------------------------------------------------------- internals


class _AnswerWriter:
    """Stores answers from the event loop in a thread, each within milliseconds of arriving.

    An answer counts towards ``progress.done`` only once its row is committed. Batches form by
    themselves under load (everything waiting is written in one transaction), so the event loop
    never waits for the database and a killed run loses at most the answers of one commit.
    """

    def __init__(self, store: Store, progress: Progress, on_progress) -> None:
        import queue
        import threading

        self.store, self.progress, self.on_progress = store, progress, on_progress
        self.queue: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name="distill-answers", daemon=True)
        self.error: BaseException | None = None
        self.last_report = 0.0

    def start(self) -> None:
        self.thread.start()

    def put(self, row: dict) -> None:
        if self.error is not None:
            raise RuntimeError("Answers could not be stored; the run stops.") from self.error
        self.queue.put(row)

    def close(self) -> None:
        if self.thread.is_alive():
            self.queue.put(None)
            self.thread.join()
        if self.on_progress is not None:
            self.on_progress(self.progress)
        if self.error is not None:
            raise self.error

    def _loop(self) -> None:
        import queue

        done = False
        while not done:
            rows = [self.queue.get()]
            while len(rows) < _WRITE_BATCH:
                try:
                    rows.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            if rows[-1] is None:
                rows.pop()
                done = True
            if not rows or self.error is not None:
                continue
            try:
                with self.store.session() as s:
                    _upsert(s, rows)
            except BaseException as exc:  # surfaced in put() and close()
                self.error = exc
                continue
            self.progress.done += sum(1 for row in rows if row["status"] in _FINAL)
            now = time.monotonic()
            if self.on_progress is not None and now - self.last_report >= _PROGRESS_EVERY:
                self.last_report = now
                self.on_progress(self.progress)
            if not done:
                time.sleep(_WRITE_PAUSE)  # let answers gather: fewer, larger commits


def _response_row(key: str, h: str, r: int, teacher: str, model: str, answer: Answer) -> dict:
    return {
        "run_key": key,
        "text_hash": h,
        "repeat_index": r,
        "teacher": teacher,
        "model": model,
        "request": answer.request,
        "raw": answer.raw,
        "label": answer.label,
        "status": answer.status,
        "confidence": answer.confidence,
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "attempts": answer.attempts,
        "structured": answer.structured,
        "error": answer.error,
        "started_at": answer.started_at or utcnow(),
        "finished_at": answer.finished_at or utcnow(),
    }


_KEY_COLUMNS = ("run_key", "text_hash", "repeat_index")
_sql_cache: dict[str, tuple[str, list]] = {}


def _upsert(session: Session, rows: list[dict]) -> None:
    """Insert answers; an answer for the same key replaces an earlier failed one."""
    insert_many(session, LLMResponse.__table__, rows, conflict=_KEY_COLUMNS)


def insert_many(session: Session, table, rows: list[dict], conflict: tuple[str, ...] = ()) -> None:
    """One driver-level ``executemany`` with the columns' own bind processors: the rows the ORM
    would write, with far less Python work per row (this runs beside a busy event loop).
    With ``conflict`` columns, a row whose key exists replaces the stored one."""
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    columns = list(rows[0])
    cache_key = f"{dialect.name}:{table.name}:{','.join(columns)}:{','.join(conflict)}"
    if cache_key not in _sql_cache:
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        values, processors = [], []
        for c in columns:
            type_ = table.c[c].type.dialect_impl(dialect)
            processors.append(type_.bind_processor(dialect))
            is_json = "JSON" in type(type_).__name__.upper()
            values.append(marker + ("::jsonb" if dialect.name == "postgresql" and is_json else ""))
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(values)})"
        if conflict:
            updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in conflict)
            sql += f" ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {updates}"
        _sql_cache[cache_key] = (sql, processors)
    sql, processors = _sql_cache[cache_key]
    params = [
        tuple(p(row[c]) if p else row[c] for c, p in zip(columns, processors, strict=True))
        for row in rows
    ]
    connection.exec_driver_sql(sql, params)


def _stored(
    session: Session, key: str, hashes: list[str], *, final_only: bool
) -> set[tuple[str, int]]:
    """(text hash, repeat) pairs already answered for ``key``."""
    found: set[tuple[str, int]] = set()
    for start in range(0, len(hashes), _CHUNK):
        stmt = select(LLMResponse.text_hash, LLMResponse.repeat_index).where(
            LLMResponse.run_key == key, LLMResponse.text_hash.in_(hashes[start : start + _CHUNK])
        )
        if final_only:
            stmt = stmt.where(LLMResponse.status.in_(_FINAL))
        found.update(session.execute(stmt).tuples())
    return found


def _answers_by_hash(session: Session, key: str, hashes: list[str]) -> dict[str, dict[int, Answer]]:
    out: dict[str, dict[int, Answer]] = defaultdict(dict)
    for start in range(0, len(hashes), _CHUNK):
        stmt = select(
            LLMResponse.text_hash,
            LLMResponse.repeat_index,
            LLMResponse.label,
            LLMResponse.status,
            LLMResponse.confidence,
        ).where(
            LLMResponse.run_key == key, LLMResponse.text_hash.in_(hashes[start : start + _CHUNK])
        )
        for h, r, label, status, confidence in session.execute(stmt):
            out[h][r] = Answer(label=label, status=status, confidence=confidence)
    return out


def project_runs(
    session: Session, project_id: int, *, with_results: bool = False
) -> list[LabelRun]:
    """The project's label runs, newest first (only those with results, if asked)."""
    stmt = select(LabelRun).where(LabelRun.project_id == project_id).order_by(LabelRun.id.desc())
    if with_results:
        has_items = select(LabelRunItem.run_id).where(LabelRunItem.run_id == LabelRun.id).exists()
        stmt = stmt.where(has_items)
    return list(session.scalars(stmt))


def results_frame(session: Session, run_id: int):
    """A run's per-document results with each document's text, as a pandas frame."""
    import pandas as pd

    from distill_core.store.models import Document

    run = session.get(LabelRun, run_id)
    stmt = (
        select(
            LabelRunItem.doc_id,
            Document.text,
            LabelRunItem.label,
            LabelRunItem.confidence,
            LabelRunItem.consistency,
            LabelRunItem.status,
        )
        .join(
            Document,
            (Document.doc_id == LabelRunItem.doc_id) & (Document.corpus_id == run.corpus_id),
        )
        .where(LabelRunItem.run_id == run_id)
        .order_by(Document.position)
    )
    columns = ["doc_id", "text", "label", "confidence", "consistency", "status"]
    return pd.DataFrame(session.execute(stmt).all(), columns=columns)


def random_subset(doc_ids: Sequence[str], n: int, seed: int = 0) -> list[str]:
    """``n`` of the ids drawn uniformly without replacement, reproducible with ``seed``,
    in their original order."""
    import random

    if n >= len(doc_ids):
        return list(doc_ids)
    chosen = set(random.Random(seed).sample(range(len(doc_ids)), n))
    return [d for i, d in enumerate(doc_ids) if i in chosen]
