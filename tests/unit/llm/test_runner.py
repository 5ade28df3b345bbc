"""The concurrent runner and the aggregation of repeated answers."""

from __future__ import annotations

import asyncio

import pytest

from distill_core.codebook import Codebook, Label
from distill_core.llm import Answer, Endpoint, Teacher, aggregate, run_items_sync
from distill_core.llm.openai_teacher import OpenAITeacher, RetryPolicy
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
