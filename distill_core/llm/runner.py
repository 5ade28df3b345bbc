"""Ask a teacher about many texts concurrently, delivering each answer as soon as it arrives.

A pool of ``concurrency`` worker tasks pulls (item, repeat) jobs from a queue — cheaper than
gathering thousands of tasks — and an ``AdaptiveLimit`` decides how many of them may have a
request in flight: it starts at one and grows while answers come back as fast as they did with
one in flight, and halves when they slow down (a server that computes one request at a time
answers the n-th of n queued requests n times later) or time out, so a slow server is not
flooded with requests that time out while it still computes them. The caller's ``on_answer`` stores each answer before it is counted;
``should_stop`` (cancel, budget cap) stops new requests while the ones in flight finish and are
delivered.
"""

from __future__ import annotations

import asyncio
import inspect
import statistics
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass

from distill_core.clock import utcnow
from distill_core.codebook import Codebook
from distill_core.llm.base import Answer, Teacher, aggregate

__all__ = ["AdaptiveLimit", "OnAnswer", "Progress", "aggregate", "run_items", "run_items_sync"]

OnAnswer = Callable[[str, int, Answer], Awaitable[None] | None]

DEFAULT_CONCURRENCY = 16

#: Why the limit was lowered, as the job panel and the command line say it.
SLOWED = "answers slowed down"
TIMED_OUT = "requests timed out"


@dataclass
class Progress:
    """How far a labelling is, the one progress record of every run, job and command.

    ``done`` of ``total`` (text, repeat) answers are stored (``cached`` of them from earlier
    runs); ``requested`` answers were asked for in this run, of which ``ok``, ``invalid`` and
    ``errors``, using the tokens and money shown. ``stopped`` is True when ``should_stop``
    ended the run before every answer was asked for.

    ``in_flight`` requests are out now, of at most ``concurrency`` (the adaptive limit) and
    ``max_concurrency`` (what was asked for); ``backed_off_from`` is the limit before its latest
    lowering (0: never lowered) and ``backoff_reason`` says why (``SLOWED``, ``TIMED_OUT``).
    """

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
    elapsed_s: float = 0.0
    stopped: bool = False
    in_flight: int = 0
    concurrency: int = 0
    max_concurrency: int = 0
    backed_off_from: int = 0
    backoff_reason: str = ""

    def add(self, answer: Answer) -> None:
        """Count one delivered answer."""
        self.requested += 1
        if answer.status == "ok":
            self.ok += 1
        elif answer.status == "invalid":
            self.invalid += 1
        else:
            self.errors += 1
        self.prompt_tokens += answer.prompt_tokens
        self.completion_tokens += answer.completion_tokens

    def concurrency_note(self) -> str:
        """The requests in flight in words ("3 in flight (backed off from 16: answers slowed
        down)"); empty before the run started."""
        if not self.max_concurrency:
            return ""
        note = f"{self.in_flight:,} in flight"
        if self.concurrency >= self.max_concurrency:
            return note
        if self.backed_off_from > self.concurrency:  # not once it has grown back past it
            return f"{note} (backed off from {self.backed_off_from:,}: {self.backoff_reason})"
        return f"{note} (ramping up to {self.max_concurrency:,})"


class AdaptiveLimit:
    """How many requests may be in flight: slow start, then additive increase and
    multiplicative decrease (AIMD), on the time per answer.

    Answers are judged in rounds: ``min_round`` answers in slow start, then ``max(limit,
    min_round)``, all to requests sent at the current limit (answers to requests sent before
    the latest change are not judged: they measure the old limit; fresh requests queue behind
    them, so a few answers show a queue). A round's median seconds per request attempt is
    compared with the *baseline*, the median of a round at limit 1 (nothing of ours queued;
    the lowest round median until there is one): above ``slow`` times the baseline, the limit
    halves; else it grows by one — or doubles while in slow start, which lasts until the first
    round above ``quick`` times the baseline. A request that failed with every attempt taking at least
    ``timeout_s`` (each timed out) halves the limit at once. Other failures say nothing about
    load and are not judged, except that failures before any answer open the limit to
    ``maximum``: there is nothing to judge by, and a server that is down is found out as fast
    as without a limit. The limit never exceeds ``maximum`` nor falls below 1.
    ``adaptive=False`` keeps it at ``maximum``.

    A server that computes one request at a time answers each of ``n`` queued requests about
    ``n`` times slower than one alone, so the limit settles at 1–2 there; a server with room
    for more answers as fast at any limit, so it grows to ``maximum``.
    """

    def __init__(
        self,
        maximum: int,
        *,
        adaptive: bool = True,
        timeout_s: float | None = None,
        slow: float = 2.0,
        quick: float = 1.5,
        min_round: int = 3,
    ) -> None:
        self.maximum = max(1, int(maximum))
        self.adaptive = adaptive
        self.limit = 1 if adaptive else self.maximum
        self.slow, self.quick, self.min_round = slow, quick, min_round
        self.timeout_s = timeout_s
        self.answered = False
        self.baseline: float | None = None
        self.slow_start = True
        self.epoch = 0  # bumped at every change of the limit
        self.backed_off_from = 0
        self.reason = ""
        self._round: list[float] = []

    def record(self, epoch: int, seconds: float, answer: Answer) -> None:
        """Judge one answer to a request sent in ``epoch`` that took ``seconds``."""
        if not self.adaptive or epoch != self.epoch:
            return
        per_attempt = seconds / max(1, answer.attempts)
        if answer.status == "error":
            if not self.answered:
                self.slow_start = False
                self._set(self.maximum)
            elif self.timeout_s and answer.attempts and per_attempt >= self.timeout_s:
                self._lower(TIMED_OUT)
            return
        self.answered = True
        self._round.append(per_attempt)
        size = self.min_round if self.slow_start else max(self.limit, self.min_round)
        if len(self._round) < size:
            return
        median = statistics.median(self._round)
        if self.limit == 1 or self.baseline is None or median < self.baseline:
            self.baseline = median
        if median > self.slow * self.baseline:
            self._lower(SLOWED)
        elif self.slow_start and median <= self.quick * self.baseline:
            self._set(min(self.maximum, self.limit * 2))
        else:
            self.slow_start = False
            self._set(min(self.maximum, self.limit + 1))

    def _lower(self, reason: str) -> None:
        self.slow_start = False
        if self.limit > 1:
            self.backed_off_from, self.reason = self.limit, reason
        self._set(max(1, self.limit // 2))

    def _set(self, limit: int) -> None:
        self._round = []
        if limit != self.limit:
            self.limit = limit
            self.epoch += 1


async def run_items(
    teacher: Teacher,
    codebook: Codebook,
    items: Sequence[tuple[str, str]],
    *,
    repeats: int = 1,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_answer: OnAnswer | None = None,
    should_stop: Callable[[], bool] | None = None,
    skip: Collection[tuple[str, int]] = (),
    progress: Progress | None = None,
    adaptive: bool | None = None,
) -> Progress:
    """Ask ``teacher`` about every ``(key, text)`` item ``repeats`` times.

    ``skip`` holds ``(key, repeat_index)`` pairs answered before (a resumed run asks only the
    rest). Answers are counted into ``progress`` (a new record when None), which is returned.

    At most ``concurrency`` requests are in flight, fewer while an ``AdaptiveLimit`` finds the
    server slowing down (``adaptive``; by default on for every teacher but the offline
    baseline, which batches the questions in flight in this process, so more is faster).

    Jobs go item by item (all repeats of an item before the next item), so a stopped run leaves
    whole items. ``on_answer(key, repeat_index, answer)`` (sync or async) runs for every answer
    before it is counted; if it raises, no new requests start, the ones in flight finish, and
    the exception is re-raised. ``should_stop()`` is checked before each new request.
    """
    started = time.perf_counter()
    stats = progress if progress is not None else Progress()
    jobs: deque[tuple[str, str, int]] = deque(
        (key, text, r)
        for key, text in items
        for r in range(max(1, int(repeats)))
        if (key, r) not in skip
    )
    concurrency = max(1, int(concurrency))
    teacher.set_concurrency(concurrency)
    limit = AdaptiveLimit(
        concurrency,
        adaptive=teacher.name != "local" if adaptive is None else adaptive,
        timeout_s=getattr(getattr(teacher, "endpoint", None), "timeout_s", None),
    )
    stats.max_concurrency, stats.concurrency, stats.in_flight = concurrency, limit.limit, 0
    gate = asyncio.Condition()
    failure: list[BaseException] = []

    def running() -> bool:
        return bool(jobs) and not failure and not stats.stopped

    async def worker() -> None:
        while running():
            async with gate:
                await gate.wait_for(lambda: stats.in_flight < limit.limit or not running())
                if not running():
                    return
                if should_stop is not None and should_stop():
                    stats.stopped = True
                    gate.notify_all()
                    return
                key, text, r = jobs.popleft()
                stats.in_flight += 1
            epoch, asked = limit.epoch, time.perf_counter()
            try:
                answer = await teacher.ask(codebook, text, repeat_index=r)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a teacher should not raise; keep the run going anyway
                from distill_core.llm.errors import describe_error

                answer = Answer(label=None, status="error", error=describe_error(exc))
                answer.finished_at = utcnow()
            async with gate:
                stats.in_flight -= 1
                limit.record(epoch, time.perf_counter() - asked, answer)
                stats.concurrency = limit.limit
                stats.backed_off_from, stats.backoff_reason = limit.backed_off_from, limit.reason
                gate.notify_all()
            try:
                if on_answer is not None:
                    result = on_answer(key, r, answer)
                    if inspect.isawaitable(result):
                        await result
            except Exception as exc:
                failure.append(exc)
                async with gate:
                    gate.notify_all()
                return
            stats.add(answer)

    n_workers = min(concurrency, len(jobs))
    await asyncio.gather(*(worker() for _ in range(n_workers)))
    stats.elapsed_s += time.perf_counter() - started
    if failure:
        raise failure[0]
    return stats


def run_items_sync(
    teacher: Teacher,
    codebook: Codebook,
    items: Sequence[tuple[str, str]],
    *,
    repeats: int = 1,
    concurrency: int = DEFAULT_CONCURRENCY,
    on_answer: OnAnswer | None = None,
    should_stop: Callable[[], bool] | None = None,
    skip: Collection[tuple[str, int]] = (),
    progress: Progress | None = None,
    adaptive: bool | None = None,
) -> Progress:
    """``run_items`` for callers without an event loop; closes the teacher's connections after."""

    async def main() -> Progress:
        try:
            return await run_items(
                teacher,
                codebook,
                items,
                repeats=repeats,
                concurrency=concurrency,
                on_answer=on_answer,
                should_stop=should_stop,
                skip=skip,
                progress=progress,
                adaptive=adaptive,
            )
        finally:
            await teacher.aclose()

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    # Called from inside a running loop (a notebook, a sync Playwright session): run in a thread.
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()
