"""A label run: the texts of a corpus (or a sample) labelled by a teacher with one codebook.

Nothing is paid twice and nothing is lost: every answer goes through the answer cache
(``llm.cache``, kept in the store) before it counts towards progress, so re-running the same
labelling sends no request and a run killed half-way asks only for what is missing. With K
repeats the run's label is the modal answer and consistency the share of answers that agree
with it (Pangakis et al. 2023), see ``llm.base.aggregate``. Reading runs is ``study.runs``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from distill_core import sampling
from distill_core.codebook import Codebook
from distill_core.llm.base import Answer, Teacher, aggregate
from distill_core.llm.cache import FINAL, CacheWriter, answer_row, run_key, text_hash
from distill_core.llm.cost import Estimate, Price, estimate
from distill_core.llm.runner import DEFAULT_CONCURRENCY, Progress, run_items_sync
from distill_core.store import Store
from distill_core.store.answers import StoreAnswerCache
from distill_core.store.bulk import insert_many
from distill_core.store.db import analyze
from distill_core.store.limits import fit
from distill_core.store.models import Corpus, Document, LabelRun, LabelRunItem, User
from distill_core.study import memo, projects
from distill_core.study.access import Capability, entry
from distill_core.study.projects import CorpusIds
from distill_core.study.runs import STATUSES
from distill_core.values import is_blank

#: A run whose first this-many answers all failed stops: the endpoint is down or refuses us.
FAIL_FAST_ERRORS = 8


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
    retry_errors: bool = True,
) -> LabelOutcome:
    """Label ``items`` (document id, text) for the run ``run_id``; resume where answers exist
    (a text whose stored answer is an error is asked again, unless not ``retry_errors``: a
    job's later turn, whose first turn asked it again already).

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

    cache = StoreAnswerCache(store)
    cached = cache.answered(key, list(distinct), FINAL if retry_errors else (*FINAL, "error"))
    progress = Progress(total=len(distinct) * repeats, cached=len(cached), done=len(cached))
    pending = [
        (h, t) for h, t in distinct.items() if any((h, r) not in cached for r in range(repeats))
    ]

    writer = CacheWriter(cache, progress, on_progress)
    model = str(teacher.params().get("model", teacher.name))
    stop_reason: list[str] = []
    first_error: list[str] = []

    def on_answer(h: str, r: int, answer: Answer) -> None:
        # counted into ``progress`` by the runner once stored here
        if cost_of is not None:
            progress.cost_usd += cost_of(answer.prompt_tokens, answer.completion_tokens)
        if answer.status == "error":
            first_error[:] = first_error or [answer.error or "The request failed."]
        writer.put(answer_row(key, h, r, teacher.name, model, answer))

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
                progress=progress,
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
        key = s.get(LabelRun, run_id).run_key
    answers = StoreAnswerCache(store).lookup(key, sorted(set(hashes)))
    with store.session() as s:
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
        insert_many(s, LabelRunItem.__table__, [fit(LabelRunItem.__table__, r) for r in rows])
        analyze(s)
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


#: What a label run can cover.
SCOPES = ("sample", "subset", "all")


def choose_texts(
    ids: CorpusIds,
    scope: str,
    *,
    n: int = 0,
    seed: int = 0,
    sample_ids: Sequence[str] = (),
) -> list[str]:
    """The document ids a label run of ``scope`` covers: the validation sample's, ``n``
    non-empty texts drawn at random (``sampling.simple_random``, in corpus order), or all
    (``ids``: ``projects.corpus_ids``)."""
    if scope == "sample":
        return list(sample_ids)
    if scope == "subset":
        return sampling.simple_random(list(ids.nonempty), int(n), int(seed))
    if scope == "all":
        return list(ids.ids)
    raise ValueError(f"Unknown scope '{scope}': use one of {', '.join(SCOPES)}.")


@entry(Capability.READ)
def scope_estimate(
    session: Session,
    user: User,
    project_id: int,
    codebook: Codebook,
    scope: str,
    *,
    model: str,
    price: Price,
    repeats: int = 1,
    n: int = 0,
    seed: int = 0,
    sample_ids: Sequence[str] = (),
) -> Estimate:
    """``llm.cost.estimate`` of labelling the texts of ``scope`` (as :func:`choose_texts`
    chooses them; blank texts are never asked) with ``model`` at ``price``: the texts are read
    once per codebook, choice and state of the project (``memo``), not on every rerun."""

    def compute() -> Estimate:
        chosen = set(
            choose_texts(
                projects.corpus_ids(session, user, project_id),
                scope,
                n=n,
                seed=seed,
                sample_ids=sample_ids,
            )
        )
        rows = session.execute(
            select(Document.doc_id, Document.text)
            .join(Corpus, Corpus.id == Document.corpus_id)
            .where(Corpus.project_id == project_id)
            .order_by(Document.position)
        )
        texts = (t for d, t in rows if d in chosen and not is_blank(t))
        return estimate(codebook, texts, model, repeats, {model: price})

    args = (codebook.fingerprint(), scope, model, price, int(repeats), int(n), int(seed))
    return memo.remembered(
        session, project_id, "scope_estimate", (*args, tuple(sample_ids)), compute
    )
