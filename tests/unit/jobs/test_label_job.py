"""The label job: texts in error make it "finished with errors"; the page's per-request timeout
and logprobs switch reach the worker's teacher and every request; no secret in its params."""

from __future__ import annotations

from dataclasses import replace

import pytest

from distill_core.jobs import kinds, records
from distill_core.jobs import label as label_job
from distill_core.llm import Endpoint
from distill_core.llm.openai_teacher import DEFAULT_GIVE_UP_S, RetryPolicy
from distill_core.store import Job
from tests.llm_server import LoopbackLLM, ServerConfig
from tests.unit.jobs.test_queue import demo_job, job_of

QUICK = {"max_attempts": 2, "base_delay": 0.001, "max_delay": 0.01}


@pytest.fixture
def teachers(monkeypatch) -> list:
    """The teachers the job makes (the worker's last), retrying twice without long pauses."""
    made = []
    real = label_job.make_teacher

    def make(provider, endpoint=None, **options):
        teacher = real(provider, endpoint, **options)
        if provider == "openai":
            teacher.retry = replace(teacher.retry, **QUICK)
        made.append(teacher)
        return teacher

    monkeypatch.setattr(label_job, "make_teacher", make)
    return made


def test_a_run_with_texts_in_error_is_finished_with_errors(store, teachers) -> None:
    with LoopbackLLM(ServerConfig(fail_500_marker="Port Halden")) as srv:
        job_id, _ = demo_job(store, Endpoint(base_url=srv.base_url, model="m"), n=40)
        kinds.execute(store, job_id)
    job = job_of(store, job_id)
    assert job.status == records.FINISHED_WITH_ERRORS == "finished with errors"
    assert job.message.startswith("38 labelled, 0 invalid, 2 failed. First error: "), job.message
    assert "(500)" in job.message
    assert job.result["counts"] == {"ok": 38, "invalid": 0, "error": 2}
    assert job.result["progress"]["max_concurrency"] == 16


def test_a_run_without_errors_is_done(store, teachers) -> None:
    with LoopbackLLM(ServerConfig()) as srv:
        job_id, _ = demo_job(store, Endpoint(base_url=srv.base_url, model="m"), n=10)
        kinds.execute(store, job_id)
    job = job_of(store, job_id)
    assert job.status == "done" and job.message == "10 labelled, 0 invalid, 0 failed."


def test_the_timeout_and_the_logprobs_switch_reach_the_request(store, teachers) -> None:
    key = "sk-label-job-SECRET-4242"
    with LoopbackLLM(ServerConfig(latency=0.3, api_key=key)) as srv:
        endpoint = Endpoint(base_url=srv.base_url, model="m", api_key=key)
        job_id, _ = demo_job(store, endpoint, n=6, logprobs=False, timeout_s=0.1)
        kinds.execute(store, job_id, key)
        bodies, per_text = list(srv.bodies), srv.stats()["per_text"]
    job = job_of(store, job_id)
    assert job.params["logprobs"] is False and job.params["timeout_s"] == 0.1
    assert key not in repr(job.params)
    assert teachers[-1].endpoint.timeout_s == 0.1
    assert bodies and not any("logprobs" in b or "top_logprobs" in b for b in bodies)
    assert set(per_text.values()) == {2}  # each timed out after 0.1 s and was asked again
    assert job.status == "failed" and "within 0.1 s" in job.message, job.message


def test_the_give_up_time_reaches_the_teacher(store, teachers) -> None:
    with LoopbackLLM(ServerConfig(latency=0.5)) as srv:
        endpoint = Endpoint(base_url=srv.base_url, model="m")
        job_id, _ = demo_job(store, endpoint, n=2, give_up_s=0.2)
        kinds.execute(store, job_id)
    job = job_of(store, job_id)
    assert job.params["give_up_s"] == 0.2 and teachers[-1].retry.give_up_s == 0.2
    assert "the time allowed per text is 0.2 s" in job.message, job.message


@pytest.mark.parametrize(("given", "policy"), [(None, DEFAULT_GIVE_UP_S), (0, None), (45, 45.0)])
def test_teacher_options_read_the_give_up_time(given, policy) -> None:
    options = label_job.teacher_options(logprobs=False, give_up_s=given)
    assert options["logprobs"] is False
    assert options.get("retry", RetryPolicy()).give_up_s == policy


def test_a_saved_endpoint_remembers_what_a_run_settled_and_the_next_run_asks_in_that_form(
    store, teachers
) -> None:
    from distill_core.study import demo, endpoints, projects
    from tests.fakes import local_user
    from tests.llm_server import request_form

    with LoopbackLLM(ServerConfig(profile="llamacpp")) as srv:
        with store.session() as s:
            pid = demo.ensure_demo_project(s, projects.ensure_user(s)).id
            saved = endpoints.save_endpoint(
                s,
                local_user(s),
                pid,
                name="llama",
                endpoint=Endpoint(base_url=srv.base_url, model="m"),
            )
        first, _ = demo_job(store, None, n=10, endpoint_id=saved.id)
        kinds.execute(store, first)
        forms_first = [request_form(b) for b in srv.bodies]
        with store.session() as s:
            known = endpoints.get_endpoint(s, local_user(s), pid, saved.id).capabilities
        seen = len(srv.bodies)
        second, _ = demo_job(store, None, n=20, endpoint_id=saved.id)
        kinds.execute(store, second)
        forms_second = [request_form(b) for b in list(srv.bodies)[seen:]]
    assert job_of(store, first).status == job_of(store, second).status == "done"
    assert "json_schema" in forms_first  # negotiated: llama.cpp refuses it, then json_object
    assert known is not None and known.structured == "json_object_schema"
    assert teachers[-1].capabilities.structured == "json_object_schema"
    assert forms_second and set(forms_second) == {"json_object_schema"}  # asked as settled


def test_answers_from_earlier_runs_are_counted_once_when_the_job_first_starts(
    store, teachers, monkeypatch
) -> None:
    """A job going on after its worker died finds its own answers stored too: its message
    still counts only what earlier runs had answered when it first started."""
    messages: list[str] = []
    update = records.update_job

    def spy(store_, job_id, **fields):
        if fields.get("message"):
            messages.append(fields["message"])
        return update(store_, job_id, **fields)

    with LoopbackLLM(ServerConfig()) as srv:
        endpoint = Endpoint(base_url=srv.base_url, model="m")
        first, _ = demo_job(store, endpoint, n=10)
        kinds.execute(store, first)
        assert job_of(store, first).status == "done"
        monkeypatch.setattr(records, "update_job", spy)
        second, _ = demo_job(store, endpoint, n=20)
        kinds.execute(store, second)
        assert job_of(store, second).params[label_job.EARLIER] == 10
        assert messages and all("(10 from earlier runs)" in m for m in messages), messages
        with store.session() as s:  # as resume_interrupted queues a job whose worker died
            s.get(Job, second).status = "queued"
        messages.clear()
        kinds.execute(store, second)
    job = job_of(store, second)
    assert job.status == "done" and job.params[label_job.EARLIER] == 10
    assert messages and all("(10 from earlier runs)" in m for m in messages), messages
