"""The concurrent runner and the aggregation of repeated answers."""

from __future__ import annotations

import asyncio
import threading

import pytest

from distill_core.codebook import Codebook, Label
from distill_core.llm import Answer, Endpoint, Teacher, aggregate, run_items_sync
from distill_core.llm.openai_teacher import OpenAITeacher, RetryPolicy
from distill_core.llm.runner import AdaptiveLimit, Progress
from tests.llm_server import LoopbackLLM, ServerConfig

CODEBOOK = Codebook(name="T", labels=(Label("a", "first"), Label("b", "second")))


def ans(label: str | None, status: str = "ok") -> Answer:
    return Answer(label=label, status=status)


# --- aggregate ---------------------------------------------------------------------------------


def test_aggregate_modal_label_and_consistency():
    assert aggregate([ans("a"), ans("b"), ans("a")]) == ("a", pytest.approx(2 / 3), "ok")
    assert aggregate([ans("a")]) == ("a", 1.0, "ok")


def test_aggregate_tie_goes_to_first_occurrence():
    assert aggregate([ans("b"), ans("a"), ans("a"), ans("b")]) == ("b", 0.5, "ok")
    assert aggregate([ans("a"), ans("b"), ans("b"), ans("a")]) == ("a", 0.5, "ok")


def test_aggregate_invalid_disagrees_and_errors_are_left_out():
    answers = [ans("a"), ans(None, "invalid"), ans(None, "error"), ans("a"), ans("b")]
    assert aggregate(answers) == ("a", 0.5, "ok")  # 2 of the 4 answers that came back
    assert aggregate([ans(None, "invalid"), ans(None, "error")]) == (None, 0.0, "invalid")
    assert aggregate([ans(None, "error")]) == (None, None, "error")
    assert aggregate([]) == (None, None, "error")


# --- run_items with a fake teacher -------------------------------------------------------------


class CountingTeacher(Teacher):
    """Answers 'a' after a short pause and tracks how many asks overlap."""

    name = "fake"
    display_name = "Fake"

    def __init__(self, pause: float = 0.005, fail_on: str | None = None) -> None:
        self.pause = pause
        self.fail_on = fail_on
        self.in_flight = 0
        self.max_in_flight = 0
        self.asked: list[tuple[str, int]] = []
        self.concurrency_set: int | None = None

    def params(self) -> dict:
        return {"model": "fake"}

    def set_concurrency(self, concurrency: int) -> None:
        self.concurrency_set = concurrency

    async def ask(self, codebook, text, *, repeat_index=0):
        self.asked.append((text, repeat_index))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.pause)
            if self.fail_on and self.fail_on in text:
                raise RuntimeError("teacher bug")
            return Answer(label="a", status="ok", raw="a", prompt_tokens=10, completion_tokens=2)
        finally:
            self.in_flight -= 1


def test_every_item_and_repeat_is_asked_once_in_item_order():
    teacher = CountingTeacher()
    items = [(f"k{i}", f"text {i}") for i in range(10)]
    delivered = []
    stats = run_items_sync(
        teacher,
        CODEBOOK,
        items,
        repeats=3,
        concurrency=1,
        on_answer=lambda k, r, a: delivered.append((k, r)),
    )
    assert delivered == [(f"k{i}", r) for i in range(10) for r in range(3)]
    assert (stats.requested, stats.ok, stats.errors, stats.stopped) == (30, 30, 0, False)
    assert (stats.prompt_tokens, stats.completion_tokens) == (300, 60)
    assert teacher.concurrency_set == 1


def test_concurrency_limit_is_respected_and_used():
    teacher = CountingTeacher(pause=0.01)
    items = [(str(i), f"t{i}") for i in range(40)]
    stats = run_items_sync(teacher, CODEBOOK, items, concurrency=5)
    assert stats.requested == 40
    assert teacher.max_in_flight == 5


def test_async_on_answer_is_awaited():
    teacher = CountingTeacher()
    stored: list[str] = []

    async def on_answer(key, r, answer):
        await asyncio.sleep(0.001)
        stored.append(key)

    stats = run_items_sync(teacher, CODEBOOK, [("x", "t"), ("y", "u")], on_answer=on_answer)
    assert sorted(stored) == ["x", "y"] and stats.requested == 2


def test_a_raising_teacher_becomes_an_error_answer_and_the_run_goes_on():
    teacher = CountingTeacher(fail_on="bad")
    got = {}
    stats = run_items_sync(
        teacher,
        CODEBOOK,
        [("1", "fine"), ("2", "bad text"), ("3", "fine too")],
        on_answer=lambda k, r, a: got.__setitem__(k, a),
    )
    assert (stats.ok, stats.errors) == (2, 1)
    assert got["2"].status == "error" and "RuntimeError" in got["2"].error


def test_on_answer_failure_stops_the_run_and_is_raised():
    teacher = CountingTeacher()

    def on_answer(key, r, answer):
        if key == "3":
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run_items_sync(
            teacher,
            CODEBOOK,
            [(str(i), f"t{i}") for i in range(50)],
            concurrency=2,
            on_answer=on_answer,
        )
    assert len(teacher.asked) < 50


def test_should_stop_stops_new_requests_and_delivers_those_in_flight():
    teacher = CountingTeacher(pause=0.01)
    delivered = []
    stats = run_items_sync(
        teacher,
        CODEBOOK,
        [(str(i), f"t{i}") for i in range(100)],
        concurrency=4,
        on_answer=lambda k, r, a: delivered.append(k),
        should_stop=lambda: len(delivered) >= 10,
    )
    assert stats.stopped is True
    assert 10 <= len(delivered) < 100
    assert len(teacher.asked) == len(delivered) == stats.requested  # nothing asked was lost
    assert len(delivered) <= 10 + 4  # at most the ones in flight when it stopped


def test_empty_run():
    stats = run_items_sync(CountingTeacher(), CODEBOOK, [])
    assert stats.requested == 0 and stats.stopped is False


# --- run_items against the loopback server -----------------------------------------------------


@pytest.fixture
def server():
    with LoopbackLLM(ServerConfig(latency=0.02)) as srv:
        yield srv


def test_server_sees_at_most_c_requests_in_flight_and_one_per_text(server):
    teacher = OpenAITeacher(
        Endpoint(base_url=server.base_url, model="loopback"), retry=RetryPolicy(base_delay=0.001)
    )
    items = [(str(i), f"text number {i}") for i in range(60)]
    stats = run_items_sync(teacher, CODEBOOK, items, concurrency=6)
    s = server.stats()
    assert stats.ok == 60 and stats.errors == 0
    assert 2 <= s["max_in_flight"] <= 6
    assert s["requests"] == 60 and set(s["per_text"].values()) == {1}


def test_should_stop_against_the_server_delivers_in_flight_answers(server):
    teacher = OpenAITeacher(Endpoint(base_url=server.base_url, model="loopback"))
    delivered = []
    stats = run_items_sync(
        teacher,
        CODEBOOK,
        [(str(i), f"text {i}") for i in range(200)],
        concurrency=8,
        on_answer=lambda k, r, a: delivered.append(a),
        should_stop=lambda: len(delivered) >= 20,
    )
    assert stats.stopped and 20 <= stats.requested < 200
    assert server.stats()["requests"] == stats.requested == len(delivered)  # none lost
    assert all(a.status == "ok" for a in delivered)


def test_the_teacher_can_run_twice_in_fresh_event_loops(server):
    teacher = OpenAITeacher(Endpoint(base_url=server.base_url, model="loopback"))
    first = run_items_sync(teacher, CODEBOOK, [("1", "one")])
    second = run_items_sync(teacher, CODEBOOK, [("2", "two")])
    assert first.ok == second.ok == 1


# --- back-pressure: the adaptive limit ----------------------------------------------------------


def judge(limit: AdaptiveLimit, seconds: float, answer: Answer | None = None) -> None:
    limit.record(limit.epoch, seconds, answer or Answer(label="a", status="ok", attempts=1))


def serial_seconds(limit: AdaptiveLimit, service: float = 1.0) -> float:
    """A server computing one request at a time: ours in flight wait for one another."""
    return service * limit.limit * 1.02


def test_the_limit_grows_to_the_maximum_where_answers_stay_as_fast():
    limit = AdaptiveLimit(16)
    seen = []
    for i in range(400):
        judge(limit, 1.0 + 0.3 * (i % 3))  # some jitter, no queueing
        seen.append(limit.limit)
    assert seen[0] == 1 and max(seen) == 16 and seen[-1] == 16
    assert limit.backed_off_from == 0


def test_the_limit_settles_at_one_or_two_on_a_server_that_computes_one_at_a_time():
    limit = AdaptiveLimit(16)
    seen = []
    for _ in range(400):
        judge(limit, serial_seconds(limit))
        seen.append(limit.limit)
    assert max(seen) <= 4
    assert sum(seen[100:]) / len(seen[100:]) <= 2.0
    assert limit.backed_off_from >= 2 and limit.reason == "answers slowed down"


def test_a_request_whose_every_attempt_timed_out_halves_the_limit_at_once():
    limit = AdaptiveLimit(16, timeout_s=10.0)
    while limit.limit < 16:
        judge(limit, 1.0)
    judge(limit, 61.0, Answer(label=None, status="error", attempts=6, error="timed out"))
    assert limit.limit == 8 and limit.backed_off_from == 16
    assert limit.reason == "requests timed out"
    judge(limit, 8.0, Answer(label=None, status="error", attempts=6, error="refused"))
    judge(limit, 0.01, Answer(label=None, status="error", attempts=1, error="bad request"))
    assert limit.limit == 8  # failures that did not wait for the server say nothing of load


def test_failures_before_any_answer_open_the_limit():
    limit = AdaptiveLimit(16, timeout_s=10.0)
    judge(limit, 8.0, Answer(label=None, status="error", attempts=6, error="refused"))
    assert limit.limit == 16  # a server that is down is found out as fast as without a limit


def test_answers_to_requests_sent_before_a_change_are_not_judged():
    limit = AdaptiveLimit(16)
    old = limit.epoch
    for _ in range(4):
        judge(limit, 1.0)
    assert limit.limit == 2 and limit.epoch != old
    for _ in range(20):  # stragglers of the old limit, however slow, change nothing
        limit.record(old, 100.0, Answer(label="a", status="ok", attempts=1))
    assert limit.limit == 2


def test_the_limit_stays_between_one_and_the_maximum():
    limit = AdaptiveLimit(3)
    for _ in range(100):
        judge(limit, 1.0)
    assert limit.limit == 3
    limit.timeout_s = 1.0
    failed = Answer(label=None, status="error", attempts=2)
    for _ in range(10):
        judge(limit, 5.0, failed)
    assert limit.limit == 1
    fixed = AdaptiveLimit(7, adaptive=False)
    for _ in range(10):
        judge(fixed, 100.0, failed)
    assert fixed.limit == 7


def test_progress_says_how_many_are_in_flight_and_why_fewer():
    p = Progress(in_flight=16, concurrency=16, max_concurrency=16)
    assert p.concurrency_note() == "16 in flight"
    p = Progress(in_flight=3, concurrency=3, max_concurrency=16, backed_off_from=6)
    p.backoff_reason = "answers slowed down"
    assert p.concurrency_note() == "3 in flight (backed off from 6: answers slowed down)"
    p.concurrency = p.in_flight = 9  # grown back past the limit it backed off from
    assert p.concurrency_note() == "9 in flight (ramping up to 16)"
    assert Progress(in_flight=2, concurrency=2, max_concurrency=16).concurrency_note() == (
        "2 in flight (ramping up to 16)"
    )
    assert Progress().concurrency_note() == ""


class SerialTeacher(CountingTeacher):
    """A fake teacher in front of a server that computes one question at a time."""

    def __init__(self, pause: float) -> None:
        super().__init__(pause)
        self.lock = asyncio.Lock()

    async def ask(self, codebook, text, *, repeat_index=0):
        async with self.lock:
            return await super().ask(codebook, text, repeat_index=repeat_index)


def test_the_runner_backs_off_and_says_so_in_progress():
    teacher = SerialTeacher(pause=0.01)
    progress, seen = Progress(), []
    stats = run_items_sync(
        teacher,
        CODEBOOK,
        [(str(i), f"t{i}") for i in range(60)],
        concurrency=16,
        on_answer=lambda k, r, a: seen.append(progress.concurrency),
        progress=progress,
    )
    assert stats is progress and stats.requested == 60 and stats.max_concurrency == 16
    assert max(seen) <= 4 and stats.concurrency <= 3 and stats.in_flight == 0
    assert stats.backed_off_from and stats.backoff_reason == "answers slowed down"


def test_the_offline_baseline_keeps_every_request_in_flight():
    teacher = CountingTeacher(pause=0.01)
    teacher.name = "local"  # batches what is in flight in this process: more is faster
    run_items_sync(teacher, CODEBOOK, [(str(i), f"t{i}") for i in range(20)], concurrency=8)
    assert teacher.max_in_flight == 8


# --- back-pressure against a stand-in server that computes one request at a time ---------------


class SerialLLM(LoopbackLLM):
    """The stand-in server with one slot, like llama.cpp's server on a CPU: a request waits for
    every one before it, and one whose client gave up (timed out) is still computed."""

    def __init__(self, config: ServerConfig) -> None:
        super().__init__(config)
        slot = threading.Lock()
        handler = self._server.RequestHandlerClass
        self.arrived = 0

        def chat(handler_self, body):
            self.arrived += 1
            with slot:
                handler._chat(handler_self, body)

        self._server.RequestHandlerClass = type("SerialHandler", (handler,), {"_chat": chat})


def label_on_one_slot(adaptive: bool) -> tuple[Progress, list[Answer]]:
    answers: list[Answer] = []
    with SerialLLM(ServerConfig(latency=0.03)) as server:
        teacher = OpenAITeacher(
            Endpoint(base_url=server.base_url, model="loopback", timeout_s=0.25),
            retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05),
            transport="httpx",
        )
        stats = run_items_sync(
            teacher,
            CODEBOOK,
            [(str(i), f"text number {i}") for i in range(40)],
            concurrency=16,
            adaptive=adaptive,
            on_answer=lambda k, r, a: answers.append(a),
        )
    return stats, answers


def test_adaptive_concurrency_spares_a_one_slot_server_the_timeouts_of_a_fixed_16():
    fixed, fixed_answers = label_on_one_slot(adaptive=False)
    adaptive, answers = label_on_one_slot(adaptive=True)
    fixed_retries = sum(a.attempts for a in fixed_answers) - len(fixed_answers)
    retries = sum(a.attempts for a in answers) - len(answers)
    assert fixed_retries >= 10, fixed_retries  # timed out, asked again: computed for nobody
    assert retries <= 2 and adaptive.errors == 0 and adaptive.ok == 40
    assert adaptive.concurrency <= 3  # ~1-2 in flight at the end, of 16 allowed
