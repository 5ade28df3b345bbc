"""The LLM labels page's run options in AppTest: the per-request timeout, the give-up time per
text and the logprobs switch reach the job's params (no key there); a job with texts in error
shows as a warning."""

from __future__ import annotations

import pytest

import ui.jobs
from distill_core.config import Settings
from distill_core.jobs import records
from distill_core.store import Job, Store
from tests.app.conftest import open_page, texts


@pytest.fixture
def submitted(monkeypatch) -> list:
    for name in ("DISTILL_AUTH", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    jobs: list = []
    monkeypatch.setattr(
        ui.jobs, "submit_job", lambda ctx, job_id, api_key=None: jobs.append((job_id, api_key))
    )
    return jobs


def start_labelling(at) -> None:
    next(b for b in at.button if b.label == "Start labelling").click()
    at.run()
    assert not at.exception and not at.error, texts(at)


def the_job(job_id: int) -> Job:
    store = Store(Settings.from_env().database_url)
    try:
        with store.session() as s:
            return s.get(Job, job_id)
    finally:
        store.dispose()


def test_the_timeout_and_the_logprobs_switch_reach_the_job(home, submitted) -> None:
    key = "sk-typed-for-the-session-0123456789"
    at = open_page("steps/llm_labels.py")
    at.text_input(key="llm_base_url").input("http://127.0.0.1:9/v1")
    at.text_input(key="llm_api_key").input(key)
    at.run()
    assert at.toggle(key="llm_logprobs").value is True
    assert at.number_input(key="llm_timeout").value == 60.0
    assert at.number_input(key="llm_give_up").value == 300.0
    at.toggle(key="llm_logprobs").set_value(False)
    at.number_input(key="llm_timeout").set_value(12.5)
    at.number_input(key="llm_give_up").set_value(0.0)
    at.run()
    start_labelling(at)
    ((job_id, typed),) = submitted
    assert typed == key  # to the worker's memory only
    job = the_job(job_id)
    assert job.params["logprobs"] is False and job.params["timeout_s"] == 12.5
    assert job.params["give_up_s"] == 0.0  # no limit
    assert key not in repr(job.params)


def test_by_default_logprobs_are_asked_for(home, submitted) -> None:
    at = open_page("steps/llm_labels.py")
    at.text_input(key="llm_base_url").input("http://127.0.0.1:9/v1")
    at.run()
    start_labelling(at)
    job = the_job(submitted[0][0])
    assert job.params["logprobs"] is True and job.params["timeout_s"] == 60.0
    assert job.params["give_up_s"] == 300.0


def test_a_job_with_texts_in_error_shows_as_a_warning(home, submitted) -> None:
    at = open_page("steps/llm_labels.py")
    at.text_input(key="llm_base_url").input("http://127.0.0.1:9/v1")
    at.run()
    start_labelling(at)
    store = Store(Settings.from_env().database_url)
    with store.session() as s:
        job = s.get(Job, submitted[0][0])
        job.status = records.FINISHED_WITH_ERRORS
        job.message = "3 labelled, 0 invalid, 2 failed. First error: The server failed (500)."
    store.dispose()
    at.run()
    assert any("finished with errors" in w.value and "2 failed" in w.value for w in at.warning)
