"""Distill against a real OpenAI-compatible server: llama-cpp-python's ``llama_cpp.server``
serving SmolLM2-135M-Instruct (see ``llama_server.py``), through Distill's own code paths and the
real ``openai`` client: the codebook reaches the model, Test connection, a 20-text label job with
structured output and logprobs, a re-ask, and a server killed mid-run (the job resumes and no
text is paid twice).

The model is tiny and often wrong: every assertion is about validity and bookkeeping (answers
are codebook labels or honestly invalid, confidences are probabilities, requests are counted at
the server), never about accuracy. Skipped with the reason where the server is not installed,
failed instead under ``DISTILL_REQUIRE_REAL_LLM=1`` (CI).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter

import openai
import pytest
from sqlalchemy import select

from distill_core.codebook import Codebook, parse_answer, render_messages
from distill_core.jobs import kinds
from distill_core.llm import Endpoint
from distill_core.llm.openai_teacher import (
    LOGPROBS_SLOWDOWN_LIMIT,
    OpenAITeacher,
    test_connection,
)
from distill_core.store import LabelRun, LLMResponse, Store
from distill_core.study import demo
from tests.integration.llama_server import MODEL_ALIAS, LlamaServer, skip_or_fail, unavailable
from tests.unit.jobs.test_queue import demo_job, job_of

pytestmark = pytest.mark.real_llm

#: One request's limit: the server computes one answer at a time, so a request queued behind
#: fifteen others waits for them.
TIMEOUT_S = 180.0


@pytest.fixture(scope="module")
def llama(tmp_path_factory):
    """The real server, started once for the module, killed at the end."""
    reason = unavailable()
    if reason:
        skip_or_fail(reason)
    server = LlamaServer(tmp_path_factory.mktemp("llama") / "server.log")
    with server:
        yield server


@pytest.fixture(autouse=True)
def _local_mode(no_key_settings):
    """Single-user mode: loopback base URLs are allowed, no server key is sent anywhere."""


@pytest.fixture
def store(tmp_path):
    s = Store(f"sqlite:///{tmp_path / 'distill.db'}")
    s.migrate()
    yield s
    s.dispose()


def endpoint(server: LlamaServer, **kw) -> Endpoint:
    return Endpoint(base_url=server.base_url, model=MODEL_ALIAS, timeout_s=TIMEOUT_S, **kw)


def demo_codebook() -> Codebook:
    return Codebook.from_json((demo.DEMO_DIR / "codebook.json").read_text(encoding="utf-8"))


def demo_texts(n: int) -> list[str]:
    import pandas as pd

    return list(pd.read_csv(demo.DEMO_DIR / "corpus.csv")["text"][:n])


def answers_of(store: Store, run_id: int) -> list[LLMResponse]:
    """The stored answers (the answer cache rows) behind a run."""
    with store.session() as s:
        key = s.get(LabelRun, run_id).run_key
        rows = list(s.scalars(select(LLMResponse).where(LLMResponse.run_key == key)))
        s.expunge_all()
        return rows


def reasked(row: LLMResponse) -> bool:
    """Whether a stored answer took a second question: an invalid one always does; a corrected
    one's request carries more messages than the codebook's own."""
    plain = len(render_messages(demo_codebook(), ""))
    return row.status == "invalid" or len(row.request.get("messages", ())) > plain


class RequestSpy:
    """Records every question ``OpenAITeacher.complete`` sends and how it ended, in the real
    method (the HTTP request goes out as usual): text, request body, content or error, time."""

    def __init__(self, monkeypatch) -> None:
        self.calls: list[dict] = []
        self._lock = threading.Lock()
        real = OpenAITeacher.complete
        spy = self

        async def complete(teacher, codebook, text, **kw):
            entry = {"text": text, "at": time.monotonic(), "bodies": []}
            try:
                done = await real(teacher, codebook, text, **kw)
            except Exception as exc:
                entry.update(ok=False, error=str(exc), request=getattr(exc, "request", None))
                raise
            else:
                entry.update(ok=True, content=done.content, request=done.request)
                return done
            finally:
                entry["ended"] = time.monotonic()
                with spy._lock:
                    spy.calls.append(entry)

        monkeypatch.setattr(OpenAITeacher, "complete", complete)


# --------------------------------------------------------------------------------------------


def test_the_codebook_in_the_system_message_reaches_the_model(llama) -> None:
    """The chat format keeps the system message: the prompt grows by the codebook's tokens when
    it is sent (a format that drops it, as the issue's Gemma file did, would not grow)."""
    messages = render_messages(demo_codebook(), demo_texts(1)[0])
    client = openai.OpenAI(base_url=llama.base_url, api_key="not-needed", timeout=TIMEOUT_S)
    try:
        with_system = client.chat.completions.create(
            model=MODEL_ALIAS, messages=messages, max_tokens=1, temperature=0
        )
        without = client.chat.completions.create(
            model=MODEL_ALIAS, messages=messages[1:], max_tokens=1, temperature=0
        )
    finally:
        client.close()
    system_tokens = llama.count_tokens(messages[0]["content"])
    assert system_tokens > 500  # the demo codebook: instructions and eight definitions
    grown = with_system.usage.prompt_tokens - without.usage.prompt_tokens
    assert grown >= system_tokens - 2, (grown, system_tokens, llama.tail())


def test_test_connection_succeeds_and_reports_what_was_settled(llama) -> None:
    """llama-cpp-python answers OpenAI's json_schema form with a 500 naming the field; Test
    connection moves on to the form it accepts and says so, with the time per answer, whether
    logprobs stay on, and that the server ignores the model name."""
    codebook = demo_codebook()
    result = test_connection(endpoint(llama), codebook, demo_texts(1)[0])
    assert result.ok, (result.message, result.notes, llama.tail())
    assert result.label in codebook.label_names  # the grammar allows only the codebook's labels
    assert json.loads(result.raw)["label"] == result.label
    assert result.latency_s > 0 and "per answer" in result.message
    caps = result.capabilities
    assert caps.structured == "json_object_schema"
    assert "structured output: json_object schema" in result.features, result.features
    assert caps.logprobs is not None and caps.logprobs_slowdown is not None
    if not caps.logprobs:  # measured to slow this server down by more than the stated factor
        assert caps.logprobs_off == "slow" and caps.logprobs_slowdown > LOGPROBS_SLOWDOWN_LIMIT
        assert "logprobs: off (slow on this server" in result.features
    assert caps.ignores_model_name is True  # it serves its one model, whatever name is asked
    print(f"\n{result.message} {result.features}; notes: {' '.join(result.notes)}")


def test_a_20_text_label_job_with_structured_output_and_logprobs(llama, store) -> None:
    codebook = demo_codebook()
    before = llama.completed()
    job_id, run_id = demo_job(store, endpoint(llama), n=20)
    started = time.perf_counter()
    kinds.execute(store, job_id)
    seconds = time.perf_counter() - started
    job = job_of(store, job_id)
    assert job.status == "done", (job.message, llama.tail())
    assert job.done == job.total == 20 and job.errors == 0, job.message

    rows = answers_of(store, run_id)
    assert len(rows) == 20
    names = set(codebook.label_names)
    system_tokens = llama.count_tokens(render_messages(codebook, "")[0]["content"])
    for r in rows:
        assert r.status in ("ok", "invalid"), (r.status, r.error)
        if r.status == "ok":
            assert r.label in names
            assert json.loads(r.raw)["label"] == r.label  # valid JSON, the label as answered
        else:  # honestly invalid: no label, the answer kept as it came
            assert r.label is None and r.raw is not None
        assert r.structured and r.request["response_format"]["type"] == "json_object"
        assert r.request.get("logprobs") is True
        if r.confidence is not None:
            assert 0.0 <= r.confidence <= 1.0
        assert r.prompt_tokens >= system_tokens  # the codebook was in every prompt
    assert sum(r.confidence is not None for r in rows if r.status == "ok") >= 1
    # One computed answer per text, plus one per re-ask: counted at the server.
    n_reasked = sum(reasked(r) for r in rows)
    assert llama.completed() - before == 20 + n_reasked
    print(f"\n20 texts in {seconds:.1f} s ({seconds / 20:.2f} s per text), {n_reasked} re-asked")


def test_an_off_codebook_answer_is_asked_again_as_a_correction(llama, monkeypatch) -> None:
    """Plain answers (as from a server without structured output) with labels the model does
    not spell by itself: the first answer is off the codebook, the re-ask names the allowed
    labels, and the outcome is a codebook label or honestly invalid, never a coerced guess."""
    codebook = Codebook.from_dict(
        {
            "name": "Topics",
            "instructions": "Assign the one topic of the news text.",
            "labels": [
                {"name": "TOPIC_ECON", "definition": "The economy, taxes, jobs, prices."},
                {"name": "TOPIC_HEALTH", "definition": "Hospitals, doctors, medicines."},
                {"name": "TOPIC_DEFENSE", "definition": "The military and armed forces."},
                {"name": "TOPIC_OTHER", "definition": "Anything else."},
            ],
        }
    )
    spy = RequestSpy(monkeypatch)
    teacher = OpenAITeacher(
        endpoint(llama, max_tokens=12), structured=False, logprobs=False, concurrency=1
    )
    texts = demo_texts(3)

    async def ask_all():
        try:
            return [await teacher.ask(codebook, t) for t in texts]
        finally:
            await teacher.aclose()

    before = llama.completed()
    answers = asyncio.run(ask_all())
    assert llama.completed() - before == len(spy.calls)  # every question reached the server
    by_text: dict[str, list[dict]] = {}
    for call in spy.calls:
        by_text.setdefault(call["text"], []).append(call)
    reasked = 0
    for text, answer in zip(texts, answers, strict=True):
        calls = by_text[text]
        first = calls[0]
        assert first["ok"] and "response_format" not in first["request"]
        if parse_answer(first["content"], codebook.label_names) is not None:
            assert len(calls) == 1 and answer.status == "ok"
            continue
        reasked += 1
        assert len(calls) == 2, calls  # asked again once
        second = calls[1]["request"]
        # The correction: the invalid answer and a message naming every allowed label.
        assert len(second["messages"]) > len(first["request"]["messages"])
        assert any(
            m["role"] == "assistant" and m["content"] == first["content"]
            for m in second["messages"]
        )
        correction = second["messages"][-1]
        assert correction["role"] == "user"
        assert all(name in correction["content"] for name in codebook.label_names)
        assert second["temperature"] > first["request"]["temperature"] == 0
        if answer.status == "ok":  # corrected: the second answer itself names the label
            assert parse_answer(calls[1]["content"], codebook.label_names) == answer.label
        else:
            assert answer.status == "invalid" and answer.label is None
            assert answer.raw == calls[1]["content"]
    assert reasked >= 1, [c["content"] for c in spy.calls]
    print(f"\n{reasked} of {len(texts)} re-asked:", [c["content"] for c in spy.calls])


def test_a_server_killed_mid_run_is_resumed_without_paying_a_text_twice(
    tmp_path, store, monkeypatch
) -> None:
    """SIGKILL the server while a 20-text job runs and restart it on the same port: what was
    answered before the kill is kept and never asked again; the questions in flight are asked
    again (the job's retries reach the restarted server, or they end in error), and a second
    job for these texts and four more asks only for what is still missing."""
    reason = unavailable()
    if reason:
        skip_or_fail(reason)
    spy = RequestSpy(monkeypatch)
    server = LlamaServer(tmp_path / "server.log").start()
    try:
        ep = endpoint(server)
        job1, run1 = demo_job(store, ep, n=20, logprobs=False)  # faster; not the point
        worker = threading.Thread(target=kinds.execute, args=(store, job1), daemon=True)
        worker.start()
        deadline = time.monotonic() + 300
        while sum(c["ok"] for c in spy.calls) < 5:  # five answers received
            assert worker.is_alive() and time.monotonic() < deadline, server.tail()
            time.sleep(0.05)
        server.kill()
        killed_at = time.monotonic()
        computed_before_kill = server.completed()
        before_kill = {c["text"] for c in spy.calls if c["ok"] and c["ended"] <= killed_at}
        assert 5 <= len(before_kill) < 20  # mid-run
        time.sleep(1.0)  # questions in flight fail and wait to be retried
        server.start()  # the same port: the endpoint's base URL is unchanged
        worker.join(timeout=600)
        assert not worker.is_alive()
        first = job_of(store, job1)
        assert first.done + first.errors == 20, first.message

        # A second job over these texts and four more, as a user starts after a run that
        # ended with errors or to extend it: it asks only for what is not answered yet.
        job2_at = time.monotonic()
        job2, run2 = demo_job(store, ep, n=24, logprobs=False)
        kinds.execute(store, job2)
        second = job_of(store, job2)
        assert second.status == "done", (second.message, server.tail())
        assert second.done == 24 and second.errors == 0, second.message
        rows = answers_of(store, run2)
        assert len(rows) == 24 and {r.status for r in rows} <= {"ok", "invalid"}
        asked_by_job2 = {c["text"] for c in spy.calls if c["at"] >= job2_at}
        assert asked_by_job2 >= set(demo_texts(24)[20:])
        assert len(asked_by_job2) == 4 + first.errors

        # Nothing answered before the kill was asked again, in either job.
        after_kill = {c["text"] for c in spy.calls if c["at"] > killed_at}
        assert not after_kill & before_kill
        # No text paid twice: one first-ask answer per text over both jobs (a re-ask, which
        # carries the correction, is the only second answer a text can get).
        plain = len(render_messages(demo_codebook(), ""))
        first_asks = Counter(
            c["text"] for c in spy.calls if c["ok"] and len(c["request"]["messages"]) == plain
        )
        assert set(first_asks) == set(demo_texts(24)) and set(first_asks.values()) == {1}
        # At the server, over both lives: one computed answer per text and re-ask, and at most
        # one more (an answer that finished as the kill came, never received).
        computed = 24 + sum(reasked(r) for r in rows)
        assert computed <= server.completed() <= computed + 1, server.tail()
        assert computed_before_kill >= len(before_kill)
        print(
            f"\nkilled after {len(before_kill)} answers; the first job ended with "
            f"{first.errors} errors ({first.message}); the second asked {len(asked_by_job2)}"
        )
    finally:
        server.kill()
