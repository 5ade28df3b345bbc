"""The Test connection result as the LLM labels page shows it (ui.endpoint_check)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _render(ok: bool) -> None:
    from distill_core.llm.base import Capabilities
    from distill_core.llm.openai_teacher import ConnectionResult
    from ui.endpoint_check import show_connection

    caps = Capabilities(
        structured="json_object_schema", logprobs=False, logprobs_off="slow", logprobs_slowdown=12
    )
    if ok:
        result = ConnectionResult(
            True,
            "Connected: m answered 'health' in 1.3 s per answer.",
            '{"label": "health"}',
            "health",
            1.3,
            caps,
            ("The server ignores the model name.",),
        )
    else:
        result = ConnectionResult(
            False, "The server failed with an internal error (500): out of memory."
        )
    show_connection(result)


def _page(ok: bool) -> AppTest:
    at = AppTest.from_function(_render, args=(ok,), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_working_endpoint_shows_the_answer_the_features_and_the_notes() -> None:
    at = _page(True)
    assert at.success[0].value.startswith("Connected: m answered 'health' in 1.3 s per answer.")
    assert "→ label **health**" in at.success[0].value
    assert at.caption[0].value == (
        "In use: structured output: json_object schema; logprobs: off (slow on this server: "
        "12× slower)."
    )
    assert [i.value for i in at.info] == ["The server ignores the model name."]


def test_a_failure_shows_the_servers_reason() -> None:
    at = _page(False)
    assert at.error[0].value == "The server failed with an internal error (500): out of memory."
    assert not at.success


def test_a_saved_endpoints_caption() -> None:
    from datetime import UTC, datetime

    from distill_core.llm.base import Capabilities
    from ui.endpoint_check import capabilities_caption

    assert capabilities_caption(None).startswith("Not tested yet")
    caps = Capabilities(
        structured="json_schema",
        logprobs=True,
        logprobs_slowdown=1.1,
        seconds_per_answer=0.42,
        checked_at=datetime(2025, 3, 1, 9, 30, tzinfo=UTC),
    )
    assert capabilities_caption(caps) == (
        "Structured output: json_schema; logprobs: on (1.1× the time), 0.4 s per answer "
        "(tested 2025-03-01 09:30 UTC)."
    )
