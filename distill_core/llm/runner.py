"""Ask a teacher about many texts concurrently, delivering each answer as soon as it arrives.

A fixed pool of ``concurrency`` worker tasks pulls (item, repeat) jobs from a queue — cheaper
than gathering thousands of tasks — so at most ``concurrency`` requests are in flight. The
caller's ``on_answer`` stores each answer before it is counted; ``should_stop`` (cancel, budget
cap) stops new requests while the ones in flight finish and are delivered.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass

from distill_core.clock import utcnow
from distill_core.codebook import Codebook
from distill_core.llm.base import Answer, Teacher, aggregate

__all__ = ["OnAnswer", "Progress", "aggregate", "run_items", "run_items_sync"]

OnAnswer = Callable[[str, int, Answer], Awaitable[None] | None]

DEFAULT_CONCURRENCY = 16


@dataclass
class Progress:
    """How far a labelling is, the one progress record of every run, job and command.

    ``done`` of ``total`` (text, repeat) answers are stored (``cached`` of them from earlier
    runs); ``requested`` answers were asked for in this run, of which ``ok``, ``invalid`` and
    ``errors``, using the tokens and money shown. ``stopped`` is True when ``should_stop``
    ended the run before every answer was asked for.
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
) -> Progress:
    """Ask ``teacher`` about every ``(key, text)`` item ``repeats`` times.

    ``skip`` holds ``(key, repeat_index)`` pairs answered before (a resumed run asks only the
    rest). Answers are counted into ``progress`` (a new record when None), which is returned.

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
    failure: list[BaseException] = []

    async def worker() -> None:
        while jobs and not failure and not stats.stopped:
            if should_stop is not None and should_stop():
                stats.stopped = True
                return
            key, text, r = jobs.popleft()
            try:
                answer = await teacher.ask(codebook, text, repeat_index=r)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a teacher should not raise; keep the run going anyway
                from distill_core.llm.errors import describe_error

                answer = Answer(label=None, status="error", error=describe_error(exc))
                answer.finished_at = utcnow()
            try:
                if on_answer is not None:
                    result = on_answer(key, r, answer)
                    if inspect.isawaitable(result):
                        await result
            except Exception as exc:
                failure.append(exc)
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
