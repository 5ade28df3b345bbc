"""A finished label job's message and its bar count the same texts: identical texts are asked
once and share their answer, and the job says so instead of a bar of distinct texts beside a
count of all of them."""

from __future__ import annotations

import re

from distill_core.jobs import kinds
from distill_core.llm import Endpoint
from tests.llm_server import LoopbackLLM, ServerConfig
from tests.unit.jobs.test_queue import demo_job, job_of


def test_the_finished_bar_and_message_count_the_same_texts(store) -> None:
    with LoopbackLLM(ServerConfig()) as srv:  # the demo: 360 texts, 2 repeats, 1 empty
        job_id, _ = demo_job(store, Endpoint(base_url=srv.base_url, model="m"), n=None)
        kinds.execute(store, job_id)
        asked = srv.stats()["requests"]
    job = job_of(store, job_id)
    assert job.status == "done"
    assert job.message == (
        "359 labelled, 0 invalid, 0 failed, 1 empty text not sent. 357 distinct texts were "
        "asked; identical texts share their answer."
    )
    assert asked == 357
    assert (job.done, job.total) == (360, 360)
    parts = [
        int(n.replace(",", ""))
        for n in re.findall(r"([\d,]+) (?:labelled|invalid|failed|empty)", job.message)
    ]
    assert sum(parts) == job.total  # every text of the bar is in the sentence once


def test_without_repeated_texts_the_message_says_nothing_of_them(store) -> None:
    with LoopbackLLM(ServerConfig()) as srv:
        job_id, _ = demo_job(store, Endpoint(base_url=srv.base_url, model="m"), n=10)
        kinds.execute(store, job_id)
    job = job_of(store, job_id)
    assert job.message == "10 labelled, 0 invalid, 0 failed."
    assert (job.done, job.total) == (10, 10)


def test_while_running_the_bar_counts_the_answers_the_message_counts(store, monkeypatch) -> None:
    from distill_core.jobs import records

    written = []
    real = records.update_job

    def spy(store_, job_id, **fields):
        written.append(fields)
        return real(store_, job_id, **fields)

    monkeypatch.setattr(records, "update_job", spy)
    with LoopbackLLM(ServerConfig(latency=0.01)) as srv:
        job_id, _ = demo_job(store, Endpoint(base_url=srv.base_url, model="m"), n=40)
        kinds.execute(store, job_id)
    running = [f for f in written if "message" in f]
    assert running, written
    for fields in running:
        progress = records.JobProgress.of(fields["result"])
        assert progress.unit == "answers"
        bar = progress.text(fields["done"], fields["total"])
        assert fields["message"].startswith(bar.split(" · ")[0])  # "12 of 40 answers"
    assert records.JobProgress.of(running[-1]["result"]).eta_s == 0  # none left at the end
