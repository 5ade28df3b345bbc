"""Label runs as background jobs: start one from the app, run it in a worker, resume it.

The job's params hold what the run needs except the API key (the endpoint's public settings
and, for a saved endpoint, its id; the documents, repeats, concurrency, per-request timeout,
give-up time per text, whether to ask for logprobs, prices, budget). The
key is a saved endpoint's, decrypted by the worker when the job runs, or one typed for the
session that arrives in the local worker's memory; else the server's own where the URL policy
(``llm.policy``) allows it. The base URL is checked against the policy when the job is started
and again in the worker.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from distill_core.codebook import Codebook
from distill_core.jobs import records
from distill_core.jobs.records import JobOutcome
from distill_core.llm import Endpoint, make_teacher, runner
from distill_core.llm.cost import Price, cost_of
from distill_core.llm.policy import UrlPolicy
from distill_core.store import Document, Job, LabelRun, Store
from distill_core.store.models import User
from distill_core.study import activity, endpoints, labelling
from distill_core.study.access import AccessDenied, Capability, ProjectError, check, entry


@dataclass(frozen=True)
class LabelRequest:
    """What the user asked for on the LLM labels page (no key here): ``endpoint_id`` names one
    of the project's saved endpoints (its settings replace ``endpoint``). ``timeout_s`` bounds
    one request (``None``: the endpoint's own), ``give_up_s`` all the requests and pauses for
    one text (``None``: the default, 0: no limit); ``logprobs`` False asks for no token
    probabilities (no confidence; much faster on some local servers)."""

    provider: str  # "openai" or "local"
    endpoint: Endpoint | None
    repeats: int = 1
    concurrency: int = 16
    budget_usd: float | None = None
    price: Price | None = None
    scope: str = "all"  # "sample", "subset", "all"
    endpoint_id: int | None = None
    timeout_s: float | None = None
    give_up_s: float | None = None
    logprobs: bool = True


@entry(Capability.EDIT)
def start_label_job(
    session: Session,
    user: User,
    project_id: int,
    *,
    corpus_id: int,
    codebook_version_id: int,
    codebook: Codebook,
    doc_ids: Sequence[str] | None,
    request: LabelRequest,
) -> tuple[int, int]:
    """Record a run and its queued job; returns (job id, run id). Submit the job afterwards.
    A base URL the policy refuses is a ``ValueError`` with one sentence, and nothing is
    recorded."""
    endpoint = request.endpoint
    endpoint_id = request.endpoint_id if request.provider == "openai" else None
    if endpoint_id is not None:
        endpoint = endpoints.get_endpoint(session, user, project_id, endpoint_id).endpoint()
    if request.provider == "openai":
        UrlPolicy.from_env().check_url((endpoint or Endpoint.from_env()).base_url)
    teacher = _teacher(request.provider, endpoint)
    n = len(doc_ids) if doc_ids is not None else _count_docs(session, corpus_id)
    budget = request.budget_usd
    left = activity.remaining_budget(session, project_id) if request.provider != "local" else None
    if left is not None:
        if left <= 0:
            raise ProjectError(
                "The project's LLM budget is spent; an owner can raise it on the Projects page."
            )
        budget = left if budget is None else min(budget, left)
    job = records.create_job(
        session,
        "label",
        project_id=project_id,
        user_id=user.id,
        total=n * max(1, request.repeats),
        params={
            "provider": request.provider,
            "endpoint": endpoint.public_dict() if endpoint else None,
            "endpoint_id": endpoint_id,
            "corpus_id": corpus_id,
            "doc_ids": list(doc_ids) if doc_ids is not None else None,
            "repeats": request.repeats,
            "concurrency": request.concurrency,
            "timeout_s": request.timeout_s,
            "give_up_s": request.give_up_s,
            "logprobs": request.logprobs,
            "budget_usd": budget,
            "price": [request.price.input_per_million, request.price.output_per_million]
            if request.price
            else None,
        },
    )
    run = labelling.create_run(
        session,
        teacher=teacher,
        codebook=codebook,
        n_texts=n,
        project_id=project_id,
        corpus_id=corpus_id,
        codebook_version_id=codebook_version_id,
        scope=request.scope,
        repeats=request.repeats,
        job_id=job.id,
        user_id=user.id,
    )
    job.params = dict(job.params, run_id=run.id)
    session.flush()
    activity.record(session, user, project_id, "started labelling", job_id=job.id, texts=n)
    return job.id, run.id


#: A label job's params: what its earlier turns asked and paid (:class:`Turns`).
TURNS = "label_turns"
#: The job's params key of how many answers earlier runs had given when it first started: a
#: job going on after its worker died finds its own answers stored too, which are not earlier
#: runs' ("33,294 from earlier runs" was said of the job's own answers after a restart).
EARLIER = "label_earlier_answers"


#: The counters of a turn's ``runner.Progress`` that add up over a job's turns.
ADDED_UP = (
    "requested",
    "ok",
    "invalid",
    "errors",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
)


@dataclass
class Turns:
    """What a label job's earlier turns on the worker did (it hands the worker back when
    another job waits, ``records.TurnOver``): their progress counters added up (``asked``:
    answers asked for and their outcomes, tokens, cost), the answers found from earlier runs at
    its first turn (``asked.cached``) and the first error, so that its figures, budget and
    message add up as if it had run in one go; and the seconds its last turn's start and end
    took (texts read, answers looked up, results written: the next turn lasts at least
    ``records.TURN_PER_FIXED_COST`` times that)."""

    turns: int = 0
    asked: runner.Progress = field(default_factory=runner.Progress)
    first_error: str | None = None
    fixed_s: float = 0.0
    version: int = 1

    def to_dict(self) -> dict[str, Any]:
        asked = {k: getattr(self.asked, k) for k in ("cached", *ADDED_UP)}
        return {**asdict(self), "asked": asked}

    @classmethod
    def of(cls, data: Mapping[str, Any] | None) -> Turns:
        if not isinstance(data, Mapping):
            return cls()
        asked = data.get("asked") if isinstance(data.get("asked"), Mapping) else {}
        return cls(
            turns=int(data.get("turns") or 0),
            asked=runner.Progress(**{k: asked[k] for k in ("cached", *ADDED_UP) if k in asked}),
            first_error=data.get("first_error"),
            fixed_s=float(data.get("fixed_s") or 0.0),
        )

    def cached_of(self, p: runner.Progress) -> int:
        """The answers from earlier runs (not from this job's earlier turns)."""
        return self.asked.cached if self.turns else p.cached

    def figures(self, p: runner.Progress, names: Sequence[str] = ADDED_UP) -> dict[str, Any]:
        """The counters ``names`` so far: these turns' and the one at ``p``."""
        return {k: getattr(self.asked, k) + getattr(p, k) for k in names}

    def plus(self, p: runner.Progress, first_error: str | None, fixed_s: float) -> Turns:
        """These turns and one more that ended at ``p``, its start and end taking ``fixed_s``."""
        asked = runner.Progress(cached=self.cached_of(p), **self.figures(p))
        return Turns(self.turns + 1, asked, self.first_error or first_error, fixed_s)


#: The job's columns a label job's progress fills (beside done and total).
JOB_FIGURES = ("errors", "prompt_tokens", "completion_tokens", "cost_usd")


def run_label_job(store: Store, job_id: int, secret: str | None) -> JobOutcome:
    """Worker side: label the job's documents, reporting progress; resumable. Within a worker's
    turn (``records.current_turn``), it hands the worker back when the turn is over and another
    job waits (``records.TurnOver``); its next turn asks only what is not answered yet."""
    began = time.monotonic()
    with store.session() as s:
        job = s.get(Job, job_id)
        check(
            s,
            s.get(User, job.created_by) if job.created_by else None,
            job.project_id,
            Capability.EDIT,
        )
        params = dict(job.params)
        run = s.get(LabelRun, params["run_id"])
        run_id = run.id
        items = _items(s, params["corpus_id"], params.get("doc_ids"))
    endpoint = _worker_endpoint(store, job_id, params, secret)
    if params["provider"] == "openai":
        UrlPolicy.from_env().check_url((endpoint or Endpoint.from_env()).base_url)
    known = _saved_capabilities(store, job_id, params)
    teacher = _worker_teacher(params, endpoint, known)
    price = Price(*params["price"]) if params.get("price") else None
    model = str(teacher.params().get("model", ""))
    cancel = [False]
    started = time.monotonic()
    before = Turns.of(params.get(TURNS))
    turn, turn_over, ready, stopped = records.current_turn(), [False], [0.0], [0.0]
    earlier = [params.get(EARLIER)]
    if turn is not None:
        turn.cover(before.fixed_s)

    def on_progress(p: runner.Progress) -> None:
        if not ready[0]:  # the first report comes before the first request
            ready[0] = time.monotonic()
            if earlier[0] is None:  # the job's first start: what earlier runs had answered
                earlier[0] = before.cached_of(p)
                records.merge_params(store, job_id, **{EARLIER: earlier[0]})
            if turn is not None:
                turn.cover(2 * (ready[0] - began))  # its end costs about what its start did
        # The bar counts what the message counts (answers), with the time left at the rate of
        # this turn's requests so far.
        seconds = time.monotonic() - started
        rate = p.requested / seconds if p.requested and seconds > 0 else None
        left = (p.total - p.done) / rate if rate else None
        cancel[0] = records.update_job(
            store,
            job_id,
            result={"progress": records.JobProgress(unit="answers", eta_s=left).to_dict()},
            done=p.done,
            total=p.total,
            **before.figures(p, JOB_FIGURES),
            message=f"{p.done:,} of {p.total:,} answers ({earlier[0]:,} from earlier "
            "runs)" + (f"; {note}." if (note := p.concurrency_note()) else "."),
        )

    def should_stop() -> bool:
        if not cancel[0] and not turn_over[0] and turn is not None and turn.over():
            turn_over[0], stopped[0] = True, time.monotonic()
        return cancel[0] or turn_over[0]

    budget = params.get("budget_usd")
    outcome = labelling.label_texts(
        store,
        run_id,
        teacher,
        items,
        repeats=params.get("repeats") or 1,
        concurrency=params.get("concurrency") or 16,
        cost_of=(lambda pt, ct: cost_of(pt, ct, model, {model: price})) if price else None,
        budget_usd=None if budget is None else max(0.0, budget - before.cost_usd),
        should_cancel=should_stop,
        on_progress=on_progress,
        retry_errors=not before.turns,  # a later turn does not ask this job's errors again
    )
    _remember_capabilities(store, job_id, params, teacher)
    p = outcome.progress
    asked_all = p.cached + p.requested >= p.total  # nothing is left to ask
    if outcome.stopped == "cancelled" and turn_over[0] and not cancel[0] and not asked_all:
        records.update_job(  # no time left while it waits: its rate resumes with its turn
            store,
            job_id,
            result={"progress": records.JobProgress("waiting its turn", "answers").to_dict()},
            done=p.done,
            total=p.total,
            **before.figures(p, JOB_FIGURES),
        )
        fixed_s = (ready[0] - began) + (time.monotonic() - stopped[0])
        turns = before.plus(p, outcome.first_error, round(fixed_s, 3))
        records.merge_params(store, job_id, **{TURNS: turns.to_dict()})
        raise records.TurnOver(
            f"Waiting its turn: {p.done:,} of {p.total:,} answers; another job is running."
        )
    if outcome.stopped == "cancelled" and not cancel[0]:
        outcome.stopped = None  # its turn ended just as the last answer came
    if outcome.stopped == "failing" and before.asked.ok + before.asked.invalid and asked_all:
        outcome.stopped = None  # its last turn's requests all failed, not every request
    outcome = _with_earlier_turns(outcome, before)
    failed, empty = failed_texts(outcome, items)
    counts = outcome.counts
    summary = (
        f"{counts.get('ok', 0):,} labelled, {counts.get('invalid', 0):,} invalid, "
        f"{failed:,} failed"
        + (f", {empty:,} empty {'text' if empty == 1 else 'texts'} not sent." if empty else ".")
    )
    if outcome.n_distinct < len(items) - empty:
        summary += f" {outcome.n_distinct:,} distinct texts were asked; identical texts share their answer."
    result = outcome.to_dict()
    if outcome.stopped == "cancelled":
        raise records.JobCancelled
    # The bar ends in texts, as the summary counts them (while running it counts answers, as
    # the running message does): its done is the texts labelled, invalid or empty.
    records.update_job(
        store,
        job_id,
        done=counts.get("ok", 0) + counts.get("invalid", 0) + empty,
        total=len(items),
    )
    if outcome.stopped == "failing":
        return JobOutcome(
            result, status="failed", message=f"Stopped: every request failed. {outcome.first_error}"
        )
    status = records.FINISHED_WITH_ERRORS if failed else "done"
    if failed and outcome.first_error:
        summary += f" First error: {outcome.first_error}"
    if outcome.stopped == "budget":
        return JobOutcome(
            result,
            status=status,
            message=f"Stopped at the budget cap. {summary} Raise the cap and start again to continue.",
        )
    return JobOutcome(result, status=status, message=summary)


def _with_earlier_turns(outcome: labelling.LabelOutcome, before: Turns) -> labelling.LabelOutcome:
    """The outcome of a job's last turn with its earlier turns' requests, tokens, cost and first
    error added: what the job did in all."""
    if not before.turns:
        return outcome
    p = outcome.progress
    total = replace(p, cached=before.asked.cached, **before.figures(p))
    return replace(outcome, progress=total, first_error=before.first_error or outcome.first_error)


def failed_texts(
    outcome: labelling.LabelOutcome, items: Sequence[tuple[str, str]]
) -> tuple[int, int]:
    """(texts whose every answer was an error, empty texts): an empty text is never sent, so it
    counts as an error of the run's results but not as a failure."""
    empty = sum(1 for _, text in items if not text.strip())
    return outcome.counts.get("error", 0) - empty, empty


def teacher_options(*, logprobs: bool = True, give_up_s: float | None = None) -> dict:
    """The LLM teacher's run options (for ``make_teacher``): whether to ask for logprobs, and
    the seconds one text may take, every request and pause together (``None``: the default
    ``RetryPolicy``; 0: no limit)."""
    options: dict = {"logprobs": logprobs}
    if give_up_s is not None:
        from distill_core.llm import RetryPolicy

        options["retry"] = RetryPolicy(give_up_s=float(give_up_s) or None)
    return options


def _worker_teacher(params: dict, endpoint: Endpoint | None, known=None):
    """The job's teacher, with the run's options: per-request timeout, give-up time, logprobs,
    and what a saved endpoint already settled with its server (``known``: no re-negotiation)."""
    if params["provider"] != "openai":
        return make_teacher(params["provider"], endpoint)
    endpoint = endpoint or Endpoint.from_env()
    if params.get("timeout_s"):
        endpoint = replace(endpoint, timeout_s=float(params["timeout_s"]))
    options = teacher_options(
        logprobs=params.get("logprobs", True), give_up_s=params.get("give_up_s")
    )
    if known is not None:
        options["capabilities"] = known
    return make_teacher("openai", endpoint, **options)


def _job_owner(session, job_id: int):
    job = session.get(Job, job_id)
    return job, (session.get(User, job.created_by) if job.created_by else None)


def _saved_capabilities(store: Store, job_id: int, params: dict):
    """The capabilities a saved endpoint remembers (None for a typed endpoint, or untested)."""
    if params.get("provider") != "openai" or params.get("endpoint_id") is None:
        return None
    with store.session() as s:
        job, owner = _job_owner(s, job_id)
        saved = endpoints.get_endpoint(s, owner, job.project_id, params["endpoint_id"])
        return saved.capabilities


def _remember_capabilities(store: Store, job_id: int, params: dict, teacher) -> None:
    """Keep what the run settled with a saved endpoint's server, for the next job."""
    caps = getattr(teacher, "capabilities", None)
    if params.get("endpoint_id") is None or caps is None or caps.structured is None:
        return
    with store.session() as s:
        job, owner = _job_owner(s, job_id)
        # the endpoint may have been deleted meanwhile: nothing to remember it on
        with contextlib.suppress(ProjectError):
            endpoints.remember_capabilities(s, owner, job.project_id, params["endpoint_id"], caps)


def _worker_endpoint(
    store: Store, job_id: int, params: dict, secret: str | None
) -> Endpoint | None:
    """The job's endpoint as recorded, with its key: the saved endpoint's, decrypted here (a
    key typed for the session, ``secret``, comes first); a saved endpoint whose base URL was
    changed since the job was started is refused, so its key never goes to the old URL."""
    recorded = params.get("endpoint")
    endpoint = Endpoint(**recorded, api_key=secret) if recorded else None
    endpoint_id = params.get("endpoint_id")
    if endpoint_id is None:
        return endpoint
    with store.session() as s:
        job, owner = _job_owner(s, job_id)
        try:
            saved = endpoints.endpoint_with_key(s, owner, job.project_id, endpoint_id)
        except AccessDenied:
            raise
        except ProjectError:
            raise ProjectError(
                "The saved endpoint this job uses was deleted; start the job again with another."
            ) from None
    if endpoint is None:
        return saved
    if saved.base_url != endpoint.base_url:
        raise ProjectError(
            "The saved endpoint's base URL was changed after this job was started; start it again."
        )
    return replace(endpoint, api_key=secret or saved.api_key)


def _teacher(provider: str, endpoint: Endpoint | None):
    """A teacher for its identity (``params()``); constructing one loads no model."""
    return make_teacher(provider, endpoint)


def _count_docs(session, corpus_id: int) -> int:
    from sqlalchemy import func

    return session.scalar(
        select(func.count()).select_from(Document).where(Document.corpus_id == corpus_id)
    )


def _items(session, corpus_id: int, doc_ids: Sequence[str] | None) -> list[tuple[str, str]]:
    stmt = (
        select(Document.doc_id, Document.text)
        .where(Document.corpus_id == corpus_id)
        .order_by(Document.position)
    )
    rows = session.execute(stmt).tuples().all()
    if doc_ids is None:
        return list(rows)
    wanted = set(doc_ids)
    return [(d, t) for d, t in rows if d in wanted]
