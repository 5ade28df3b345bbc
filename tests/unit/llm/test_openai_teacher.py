"""The OpenAI-compatible teacher against the project's loopback server, with the real client."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import time

import httpx2
import openai
import pytest

from distill_core.codebook import Codebook, Example, Label
from distill_core.llm import Answer, Endpoint, aggregate, run_items
from distill_core.llm import openai_teacher as ot
from distill_core.llm.base import Capabilities
from distill_core.llm.openai_teacher import (
    OpenAITeacher,
    RetryPolicy,
    describe_error,
    retry_after_seconds,
    retry_delay,
)
from tests.llm_server import LoopbackLLM, ServerConfig, request_form

FAKE_KEY = "sk-test-NEVER-LEAK-7f3a9c1e5b"
KEYWORDS = {"vaccine": "health", "hospital": "health", "tax": "economy", "army": "defense"}
TINY = RetryPolicy(max_attempts=4, base_delay=0.001, max_delay=0.005)


@pytest.fixture(autouse=True, params=["aiohttp", "httpx"])
def transport(request, monkeypatch):
    """Every test runs on both HTTP layers the teacher can pick ("auto" picks one of them)."""
    if request.param == "aiohttp":
        pytest.importorskip("aiohttp")
    monkeypatch.setattr(ot, "aiohttp_usable", lambda: request.param == "aiohttp")
    return request.param


@pytest.fixture
def codebook() -> Codebook:
    return Codebook(
        name="Policy topics",
        instructions="Assign the one topic that best fits the text.",
        labels=(
            Label("health", "Health care, disease, hospitals, vaccines."),
            Label("economy", "Taxes, jobs, trade, prices."),
            Label("defense", "The army, weapons, wars."),
        ),
        examples=(Example("Cut the income tax for families", "economy"),),
    )


@pytest.fixture
def server():
    with LoopbackLLM(ServerConfig(keywords=dict(KEYWORDS))) as srv:
        yield srv


class Sleeps:
    """Stands in for asyncio.sleep: records the delays and does not wait."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def make_teacher(server: LoopbackLLM, **kwargs) -> tuple[OpenAITeacher, Sleeps]:
    endpoint = kwargs.pop("endpoint", None) or Endpoint(
        base_url=server.base_url, model="loopback", api_key=FAKE_KEY, timeout_s=5
    )
    sleeps = Sleeps()
    kwargs.setdefault("retry", TINY)
    return OpenAITeacher(endpoint, sleep=sleeps, **kwargs), sleeps


def ask(teacher: OpenAITeacher, codebook: Codebook, *texts: str) -> list[Answer]:
    async def main() -> list[Answer]:
        try:
            return [await teacher.ask(codebook, t) for t in texts]
        finally:
            await teacher.aclose()

    return asyncio.run(main())


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- asking -------------------------------------------------------------------------------------


def test_structured_answer_is_a_label_with_confidence(server, codebook):
    teacher, _ = make_teacher(server)
    (answer,) = ask(teacher, codebook, "A new vaccine for the flu")
    assert answer.status == "ok" and answer.label == "health"
    assert answer.structured is True
    assert json.loads(answer.raw) == {"label": "health"}
    assert answer.attempts == 1 and answer.error is None
    assert answer.prompt_tokens > 0 and answer.completion_tokens > 0
    assert answer.confidence == pytest.approx(0.8, abs=1e-3)  # the server encodes 0.8
    assert answer.started_at.tzinfo is not None and answer.finished_at >= answer.started_at
    sent = server.bodies[0]
    assert sent["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"] == [
        "health",
        "economy",
        "defense",
    ]
    assert sent["logprobs"] is True and sent["top_logprobs"] == 5
    assert answer.request == sent  # the record is exactly what was sent


def test_rejected_response_format_falls_back_to_plain_prompt_for_the_rest_of_the_run(
    server, codebook
):
    server.config.reject_response_format = True
    teacher, _ = make_teacher(server)
    first, second = ask(teacher, codebook, "Raise the tax on fuel", "Send the army home")
    assert (first.label, second.label) == ("economy", "defense")
    assert first.status == second.status == "ok"
    assert first.structured is False and "response_format" not in first.request
    assert first.raw == "economy"  # the bare name
    assert teacher.use_structured is False
    assert teacher.params() == {  # stable: a fallback does not change what keys a cache
        "base_url": server.base_url,
        "model": "loopback",
        "temperature": 0.0,
        "max_tokens": 50,
        "seed": None,
    }
    # The first text was asked in every structured form (each rejected) and then plainly; the
    # second only plainly.
    assert server.stats()["per_text"] == {"Raise the tax on fuel": 4, "Send the army home": 1}
    assert [b.get("response_format", {}).get("type") for b in server.bodies[:3]] == [
        "json_schema",
        "json_object",
        None,
    ]
    assert "guided_json" in server.bodies[2]
    assert "Answer with the label name only" in second.request["messages"][0]["content"]
    assert teacher.capabilities.structured == "none"
    assert [what for what, _ in teacher.rejections] == [
        "structured output as json_schema",
        "structured output as json_object schema",
        "structured output as guided_json",
    ]
    assert "400: response_format is not supported by this server" in teacher.rejections[0][1]


def test_off_codebook_answer_is_asked_again_once_then_invalid_with_raw(server, codebook):
    server.config.off_codebook_marker = "[odd]"
    teacher, _ = make_teacher(server)
    (answer,) = ask(teacher, codebook, "[odd] something vague")
    assert answer.status == "invalid" and answer.label is None
    assert json.loads(answer.raw) == {"label": "unsure"}
    assert answer.attempts == 2
    assert server.stats()["requests"] == 2
    assert "not one of the codebook's labels" in answer.error


def test_off_codebook_only_on_the_first_try_is_ok_after_a_correction(server, codebook):
    server.config.off_codebook_first = True
    teacher, _ = make_teacher(server)
    (answer,) = ask(teacher, codebook, "The hospital is closing")
    assert answer.status == "ok" and answer.label == "health"
    assert answer.attempts == 2 and answer.reasked is True
    assert server.stats()["per_text"] == {"The hospital is closing": 2}
    first, again = server.bodies
    assert again["messages"][:-2] == first["messages"]  # the same question, then the correction
    assert again["messages"][-2] == {"role": "assistant", "content": '{"label": "unsure"}'}
    assert again["messages"][-1]["role"] == "user"
    assert answer.request == again


def test_a_reask_names_the_answer_and_the_exact_labels_and_raises_the_temperature(server, codebook):
    server.config.near_miss = {"defense": "defence"}  # wrong at first, right when corrected
    teacher, _ = make_teacher(server)
    (answer,) = ask(teacher, codebook, "Send the army home")
    assert answer.status == "ok" and answer.label == "defense" and answer.reasked is True
    first, again = server.bodies
    assert first["temperature"] == 0.0 and again["temperature"] == ot.REASK_TEMPERATURE
    correction = again["messages"][-1]["content"]
    assert correction.startswith('"defence" is not one of the labels.')
    assert 'The labels are exactly: "health", "economy", "defense".' in correction
    assert ot.STRUCTURED_ANSWER_INSTRUCTION in correction


def test_a_reask_keeps_a_temperature_above_zero(server, codebook):
    server.config.off_codebook_first = True
    endpoint = Endpoint(base_url=server.base_url, model="loopback", temperature=0.2)
    teacher, _ = make_teacher(server, endpoint=endpoint)
    ask(teacher, codebook, "tax")
    assert [b["temperature"] for b in server.bodies] == [0.2, 0.2]


@pytest.mark.parametrize(
    ("answers", "status", "label"),
    [
        (["defence", "defence"], "invalid", None),  # a near-miss is never coerced
        (["Defense.", "x"], "ok", "defense"),  # case and a final period are the same label
        (["economy policy", "economics"], "invalid", None),
    ],
)
def test_only_an_exact_label_counts(server, codebook, answers, status, label):
    server.config.scripted = {"a text": answers}
    teacher, _ = make_teacher(server, structured=False)
    (answer,) = ask(teacher, codebook, "a text")
    assert (answer.status, answer.label) == (status, label)
    assert answer.reasked is (status == "invalid")


def test_429_honours_retry_after_then_succeeds(server, codebook):
    server.config.fail_429_first = 2
    server.config.retry_after = "0"
    server.config.retry_after_ms = "20"
    teacher, sleeps = make_teacher(server, retry=RetryPolicy(base_delay=50, max_delay=50))
    (answer,) = ask(teacher, codebook, "A vaccine")
    assert answer.status == "ok" and answer.attempts == 3
    assert sleeps.delays == [0.02, 0.02]  # retry-after-ms wins over the (huge) backoff


def test_retry_after_in_seconds_and_as_a_date():
    assert retry_after_seconds({"retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert (
        retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}, now=1445412480) == 10
    )
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_backoff_is_full_jitter_capped():
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    err = ValueError("no response attribute")
    for i in range(8):
        delays = [retry_delay(err, i, policy) for _ in range(50)]
        assert all(0 <= d <= min(5.0, 2**i) for d in delays)
    assert max(retry_delay(err, 10, policy) for _ in range(200)) > 2.5  # spread, not constant


def test_500_is_retried_then_succeeds(server, codebook):
    server.config.fail_500_first = 2
    teacher, sleeps = make_teacher(server)
    (answer,) = ask(teacher, codebook, "Army pay rise")
    assert answer.status == "ok" and answer.label == "defense" and answer.attempts == 3
    assert len(sleeps.delays) == 2
    assert all(0 <= d <= TINY.max_delay for d in sleeps.delays)


def test_persistent_500_is_an_error_sentence_and_the_run_continues(server, codebook):
    server.config.fail_500_marker = "[boom]"
    teacher, _ = make_teacher(server)
    delivered: dict[str, Answer] = {}

    async def main():
        try:
            return await run_items(
                teacher,
                codebook,
                [("a", "tax cut"), ("b", "[boom] broken"), ("c", "vaccine drive")],
                concurrency=2,
                on_answer=lambda key, r, ans: delivered.__setitem__(key, ans),
            )
        finally:
            await teacher.aclose()

    stats = asyncio.run(main())
    assert (stats.ok, stats.errors, stats.requested) == (2, 1, 3)
    assert delivered["b"].status == "error"
    assert delivered["b"].error == (
        "The server failed with an internal error (500): The server had an error while "
        "processing your request; gave up after 4 attempts."
    )
    assert delivered["b"].attempts == TINY.max_attempts
    assert server.stats()["per_text"]["[boom] broken"] == TINY.max_attempts
    assert delivered["a"].label == "economy" and delivered["c"].label == "health"


def test_400_other_than_fallbacks_is_not_retried(server, codebook):
    server.config.models = ["other-model"]  # 404 for ours
    teacher, sleeps = make_teacher(server)
    (answer,) = ask(teacher, codebook, "tax")
    assert answer.status == "error" and answer.attempts == 1 and sleeps.delays == []
    assert answer.error == "The model 'loopback' was not found on the server (404)."


def test_malformed_json_is_retried_then_an_error(server, codebook):
    server.config.malformed_first = 1
    teacher, _ = make_teacher(server)
    (ok,) = ask(teacher, codebook, "tax")
    assert ok.status == "ok" and ok.attempts == 2

    server.config.malformed_marker = "[garbled]"
    teacher, _ = make_teacher(server)
    (bad,) = ask(teacher, codebook, "[garbled] tax")
    assert bad.status == "error" and bad.attempts == TINY.max_attempts
    assert bad.error.startswith("The server sent a response that is not a valid chat completion")


def test_dropped_connection_is_retried(server, codebook):
    server.config.drop_first = 2
    teacher, _ = make_teacher(server)
    (answer,) = ask(teacher, codebook, "army")
    assert answer.status == "ok" and answer.label == "defense" and answer.attempts == 3

    server.reset()
    server.config.drop_first = 100
    teacher, _ = make_teacher(server)
    (dropped,) = ask(teacher, codebook, "army")
    assert dropped.status == "error" and dropped.attempts == TINY.max_attempts
    assert dropped.error == (
        f"Could not reach {server.base_url}/chat/completions: the server closed the connection "
        "without answering; gave up after 4 attempts."
    )


def test_rejected_logprobs_are_dropped_and_confidence_is_none(server, codebook):
    server.config.reject_logprobs = True
    teacher, _ = make_teacher(server)
    first, second = ask(teacher, codebook, "tax", "army")
    assert first.status == second.status == "ok"
    assert first.confidence is None and second.confidence is None
    assert teacher.use_logprobs is False and teacher.use_structured is True
    assert "logprobs" not in second.request and second.attempts == 1


def test_repeats_at_temperature_aggregate_to_modal_label_and_consistency(server, codebook):
    text = "An ambiguous bill"
    server.config.scripted = {text: ["economy", "health", "economy", "defense", "economy"]}
    endpoint = Endpoint(
        base_url=server.base_url, model="loopback", api_key=FAKE_KEY, temperature=1.0
    )
    teacher, _ = make_teacher(server, endpoint=endpoint)
    answers: list[tuple[int, Answer]] = []

    async def main():
        try:
            await run_items(
                teacher,
                codebook,
                [("k", text)],
                repeats=5,
                concurrency=1,
                on_answer=lambda key, r, a: answers.append((r, a)),
            )
        finally:
            await teacher.aclose()

    asyncio.run(main())
    assert sorted(r for r, _ in answers) == [0, 1, 2, 3, 4]
    assert all(a.request["temperature"] == 1.0 for _, a in answers)
    label, consistency, status = aggregate([a for _, a in sorted(answers, key=lambda x: x[0])])
    assert (label, consistency, status) == ("economy", 0.6, "ok")


def test_negotiation_goes_one_request_at_a_time_then_the_rest_go_together(codebook):
    """llama-cpp-python's server: 16 texts at concurrency 8 cost one rejected request, not 8."""
    with LoopbackLLM(
        ServerConfig(profile="llamacpp", keywords=dict(KEYWORDS), latency=0.02)
    ) as srv:
        teacher, _ = make_teacher(srv)
        texts = [(str(i), f"tax number {i}") for i in range(16)]

        async def main():
            try:
                return await run_items(teacher, codebook, texts, concurrency=8)
            finally:
                await teacher.aclose()

        stats = asyncio.run(main())
        assert stats.ok == 16
        assert srv.stats()["statuses"] == {"500": 1, "200": 16}
        assert srv.stats()["max_in_flight"] > 1
        assert teacher.capabilities.structured == "json_object_schema"


def test_a_remembered_form_the_server_now_rejects_moves_on_to_the_others(server, codebook):
    server.config.profile = "openai"  # rejects guided_json with a 400 naming it
    known = Capabilities(structured="guided_json", logprobs=True)
    teacher, _ = make_teacher(server, capabilities=known)
    (answer,) = ask(teacher, codebook, "tax")
    assert answer.status == "ok" and teacher.capabilities.structured == "json_schema"
    assert [request_form(b) for b in server.bodies] == ["guided_json", "json_schema"]
    assert "Unrecognized request argument supplied: guided_json" in teacher.rejections[0][1]


def test_logprobs_switched_off_are_never_asked_for(server, codebook):
    teacher, _ = make_teacher(server, logprobs=False)
    (answer,) = ask(teacher, codebook, "tax")
    assert answer.status == "ok" and answer.confidence is None
    assert "logprobs" not in server.bodies[0]
    caps = teacher.capabilities
    assert (caps.logprobs, caps.logprobs_off) == (False, "switched off")
    # A switch is no property of the server: remembered, it does not turn them off later.
    later, _ = make_teacher(server, capabilities=caps)
    assert later.use_logprobs and not later.negotiated


def test_capabilities_slow_logprobs_stay_off_in_a_later_teacher(server, codebook):
    known = Capabilities(structured="json_schema", logprobs=False, logprobs_off="slow")
    teacher, _ = make_teacher(server, capabilities=known)
    assert teacher.negotiated and not teacher.use_logprobs
    (answer,) = ask(teacher, codebook, "tax")
    assert answer.status == "ok" and "logprobs" not in server.bodies[0]


def test_a_text_gives_up_when_its_time_is_spent(server, codebook):
    server.config.fail_500_marker = "[boom]"
    server.config.latency = 0.15
    policy = RetryPolicy(max_attempts=100, base_delay=0.001, max_delay=0.002, give_up_s=0.5)
    teacher, _ = make_teacher(server, retry=policy)
    t0 = time.monotonic()
    (answer,) = ask(teacher, codebook, "[boom] x")
    assert time.monotonic() - t0 < 3.0
    assert answer.status == "error" and 2 <= answer.attempts <= 5
    assert "; gave up after " in answer.error
    assert answer.error.endswith("(the time allowed per text is 0.5 s).")


def test_a_request_never_waits_past_the_time_left(server, codebook):
    server.config.latency = 2.0
    policy = RetryPolicy(max_attempts=3, base_delay=0.001, give_up_s=0.4)
    endpoint = Endpoint(base_url=server.base_url, model="loopback", timeout_s=30)
    teacher, _ = make_teacher(server, retry=policy, endpoint=endpoint)
    t0 = time.monotonic()
    (answer,) = ask(teacher, codebook, "tax")
    assert time.monotonic() - t0 < 3.0
    assert answer.status == "error" and answer.attempts == 1
    assert answer.error.startswith(
        "The server did not answer in the time left for this text; gave up after 1 attempt in 0."
    )
    assert answer.error.endswith(" s (the time allowed per text is 0.4 s).")


def test_capabilities_read_old_and_unknown_records():
    caps = Capabilities(
        structured="json_object_schema",
        logprobs=False,
        logprobs_off="slow",
        logprobs_slowdown=12.1,
        ignores_model_name=True,
    )
    assert Capabilities.from_dict(caps.to_dict()) == caps
    assert caps.describe() == (
        "structured output: json_object schema; logprobs: off (slow on this server: 12× slower)"
    )
    assert Capabilities.from_dict(None) is None
    assert Capabilities.from_dict({"version": 99, "structured": "json_schema"}) is None
    odd = Capabilities.from_dict({"version": 1, "structured": "telepathy", "logprobs": "yes"})
    assert odd == Capabilities() and not odd.settled


# --- connection test and error sentences ----------------------------------------------------------


def test_connection_ok(server, codebook):
    server.config.models = ["loopback"]
    result = ot.test_connection(
        Endpoint(base_url=server.base_url, model="loopback", api_key=FAKE_KEY),
        codebook,
        "A vaccine",
    )
    assert result.ok and result.label == "health"
    assert result.message.startswith("Connected: loopback answered 'health' in ")
    assert result.message.endswith(" s per answer.")
    caps = result.capabilities
    assert caps.structured == "json_schema" and caps.logprobs is True
    assert caps.ignores_model_name is False and caps.reported_model == "loopback"
    assert caps.logprobs_slowdown is not None and caps.seconds_per_answer == result.latency_s > 0
    assert result.features.startswith("structured output: json_schema; logprobs: on (")
    assert result.notes == ()
    bodies = server.bodies
    # One answer, then without and with logprobs in turn, then the made-up model name.
    assert [bool(b.get("logprobs")) for b in bodies[:3]] == [True, False, True]
    assert bodies[-1]["model"] == ot.PROBE_MODEL and server.stats()["statuses"]["404"] == 1


def test_connection_turns_slow_logprobs_off_and_says_so(server, codebook):
    server.config.latency = 0.01
    server.config.logprobs_latency = 0.25
    result = ot.test_connection(Endpoint(base_url=server.base_url, model="m"), codebook, "tax")
    caps = result.capabilities
    assert result.ok and caps.logprobs is False and caps.logprobs_off == "slow"
    assert caps.logprobs_slowdown > ot.LOGPROBS_SLOWDOWN_LIMIT
    assert caps.seconds_per_answer < 0.2  # the time per answer without them
    assert "logprobs: off (slow on this server: " in result.features
    assert any(
        n.startswith("Logprobs are turned off: with them an answer took") for n in result.notes
    )
    assert any("ignores the model name" in n for n in result.notes)  # any name is answered here


def test_connection_with_logprobs_switched_off_measures_nothing(server, codebook):
    result = ot.test_connection(
        Endpoint(base_url=server.base_url, model="m"), codebook, "tax", logprobs=False
    )
    assert result.ok and result.capabilities.logprobs is False
    assert result.capabilities.logprobs_off == "switched off"
    assert result.capabilities.describe().endswith("logprobs: switched off")
    assert not any(b.get("logprobs") for b in server.bodies)
    assert len(server.bodies) == 2  # the answer and the made-up model name


def test_connection_failure_keeps_the_servers_reason(server, codebook):
    server.config.fail_500_marker = "broken"
    result = ot.test_connection(Endpoint(base_url=server.base_url, model="m"), codebook, "broken")
    assert not result.ok
    assert result.message == (
        "The server failed with an internal error (500): The server had an error while "
        "processing your request."
    )


def test_connection_wrong_key(server, codebook):
    server.config.api_key = "the-right-key"
    result = ot.test_connection(
        Endpoint(base_url=server.base_url, model="loopback", api_key=FAKE_KEY), codebook, "x"
    )
    assert not result.ok and result.message == "The server rejected the API key (401)."


def test_connection_unknown_model(server, codebook):
    server.config.models = ["llama3"]
    result = ot.test_connection(Endpoint(base_url=server.base_url, model="x"), codebook, "t")
    assert not result.ok and result.message == "The model 'x' was not found on the server (404)."


def test_connection_unreachable(codebook):
    port = closed_port()
    result = ot.test_connection(
        Endpoint(base_url=f"http://127.0.0.1:{port}/v1", model="m", api_key=FAKE_KEY),
        codebook,
        "t",
    )
    assert not result.ok
    assert result.message == (
        f"Could not reach http://127.0.0.1:{port}/v1/chat/completions: connection refused."
    )


def test_connection_timeout(server, codebook):
    server.config.latency = 1.0
    endpoint = Endpoint(base_url=server.base_url, model="loopback", timeout_s=0.2)
    result = ot.test_connection(endpoint, codebook, "t")
    assert not result.ok and result.message == "The server did not answer within 0.2 s."


def test_connection_wrong_path_is_not_called_an_unknown_model(server, codebook):
    base = server.base_url.removesuffix("/v1") + "/api"
    result = ot.test_connection(Endpoint(base_url=base, model="loopback"), codebook, "t")
    assert not result.ok
    assert result.message.startswith("The server has no chat-completions endpoint at ")
    assert "/v1" in result.message


def test_describe_error_is_one_sentence_for_anything():
    request = httpx2.Request("POST", "http://127.0.0.1:1/v1/chat/completions?api-version=1")
    cases = {
        openai.APITimeoutError(request=request): "The server did not answer in time.",
        openai.APIConnectionError(request=request): (
            "Could not reach http://127.0.0.1:1/v1/chat/completions: the connection failed."
        ),
        ValueError("bad thing"): "The request failed unexpectedly (ValueError: bad thing).",
    }
    for exc, sentence in cases.items():
        assert describe_error(exc) == sentence
    response = httpx2.Response(
        429,
        request=request,
        json={
            "error": {"code": "insufficient_quota", "message": "You exceeded your current quota."}
        },
    )
    exc = openai.RateLimitError(
        "quota",
        response=response,
        body={"code": "insufficient_quota", "message": "You exceeded your current quota."},
    )
    assert (
        describe_error(exc)
        == "The account has no quota left (429): You exceeded your current quota."
    )
    assert not ot.is_retryable(exc)
    plain_429 = openai.RateLimitError(
        "slow", response=httpx2.Response(429, request=request), body=None
    )
    assert ot.is_retryable(plain_429)
    assert "(429)" in describe_error(plain_429)


# --- the key never leaks -------------------------------------------------------------------------


def test_api_key_never_appears_in_reprs_records_or_messages(server, codebook):
    endpoint = Endpoint(base_url=server.base_url, model="loopback", api_key=FAKE_KEY)
    outputs = [repr(endpoint), str(endpoint), json.dumps(endpoint.public_dict())]

    server.config.fail_500_marker = "[boom]"
    server.config.malformed_marker = "[garbled]"
    server.config.off_codebook_marker = "[odd]"
    teacher, _ = make_teacher(server, endpoint=endpoint)
    answers = ask(teacher, codebook, "tax", "[boom] x", "[garbled] y", "[odd] z")
    outputs += [repr(teacher), json.dumps(teacher.params())]
    for answer in answers:
        outputs += [repr(answer), json.dumps(dataclasses.asdict(answer), default=str)]

    server.config.api_key = "another-key"
    result = ot.test_connection(endpoint, codebook, "t")
    outputs += [repr(result), result.message]
    outputs.append(
        ot.test_connection(
            dataclasses.replace(endpoint, base_url=f"http://127.0.0.1:{closed_port()}/v1"),
            codebook,
            "t",
        ).message
    )

    assert {a.status for a in answers} == {"ok", "error", "invalid"}
    assert f"Bearer {FAKE_KEY}" in server.auth_headers  # it was sent...
    for text in outputs:  # ...and never written anywhere else
        assert FAKE_KEY not in text
        assert "NEVER-LEAK" not in text


# --- the loopback server as a process (how the benchmark and the browser tests use it) -----------


def test_loopback_server_runs_as_a_process_with_stats_and_config(codebook):
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.llm_server", "--port", "0", "--models", "m1,m2"],
        cwd=repo,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        origin = url.removesuffix("/v1")

        def get(path):
            with urllib.request.urlopen(origin + path, timeout=5) as resp:
                return json.loads(resp.read())

        assert [m["id"] for m in get("/v1/models")["data"]] == ["m1", "m2"]
        req = urllib.request.Request(
            origin + "/config", data=json.dumps({"api_key": "k2"}).encode(), method="POST"
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert json.loads(resp.read())["api_key"] == "k2"
        ok = ot.test_connection(Endpoint(base_url=url, model="m1", api_key="k2"), codebook, "tax")
        bad = ot.test_connection(Endpoint(base_url=url, model="m1", api_key="k3"), codebook, "tax")
        assert ok.ok and ok.label in codebook.label_names
        assert not bad.ok and "401" in bad.message
        stats = get("/stats")
        # The working key: the answer, logprob timings and the made-up model name (404).
        assert stats["statuses"]["401"] == 1 and stats["statuses"]["404"] == 1
        assert stats["statuses"]["200"] == stats["requests"] - 2 >= 3
    finally:
        proc.terminate()
        proc.wait(timeout=5)
        proc.stdout.close()
