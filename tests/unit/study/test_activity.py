"""The activity log says who did what; usage is counted per person; a project's LLM budget is
respected by every new labelling job (SQLite and PostgreSQL)."""

from __future__ import annotations

import io

import pytest

from distill_core.codebook import Codebook
from distill_core.jobs import records
from distill_core.jobs.label import LabelRequest, start_label_job
from distill_core.llm import Endpoint
from distill_core.reports import export
from distill_core.store import Job
from distill_core.study import access, activity, demo, projects, validation


def _project(store) -> int:
    with store.session() as s:
        return demo.ensure_demo_project(s, projects.ensure_user(s)).id


def _label_job(s, user, pid: int, budget: float | None = None) -> int:
    version = projects.latest_codebook(s, user, pid)
    corpus = projects.get_corpus(s, user, pid)
    job_id, _ = start_label_job(
        s,
        user,
        pid,
        corpus_id=corpus.id,
        codebook_version_id=version.id,
        codebook=Codebook.from_dict(version.content),
        doc_ids=["demo-0001", "demo-0002"],
        request=LabelRequest(
            provider="openai",
            endpoint=Endpoint(base_url="http://127.0.0.1:9/v1", model="m"),
            budget_usd=budget,
        ),
    )
    return job_id


def test_the_log_names_who_did_what_and_only_owners_read_it(store) -> None:
    pid = _project(store)
    with store.session() as s:
        owner = projects.ensure_user(s)
        validation.draw_sample(s, owner, pid, n=20, seed=1)
        export.export_project(s, owner, pid, "codes", io.BytesIO())
        projects.ensure_user(s, "vera")
        projects.set_member(s, owner, pid, "vera", "viewer")
    with store.session() as s:
        owner = projects.ensure_user(s)
        events = activity.recent(s, owner, pid)
        what = [e.action for e in events]
        assert what[:3] == ["set a role", "exported", "drew a sample"]
        assert {e.who for e in events} == {"local"}
        assert events[0].details == {"member": "vera", "role": "viewer"}
        assert "uploaded a corpus" in what and "saved a codebook version" in what
        with pytest.raises(access.AccessDenied):
            activity.recent(s, projects.ensure_user(s, "vera"), pid)


def test_usage_is_counted_per_person(store) -> None:
    pid = _project(store)
    with store.session() as s:
        owner = projects.ensure_user(s)
        rita = projects.ensure_user(s, "rita")
        projects.set_member(s, owner, pid, "rita", "researcher")
        for user, cost, tokens in ((owner, 0.25, 100), (rita, 1.5, 900), (rita, 0.5, 100)):
            job = s.get(Job, _label_job(s, user, pid))
            job.cost_usd, job.prompt_tokens = cost, tokens
    with store.session() as s:
        used = activity.usage(s, projects.ensure_user(s), pid)
    assert [(u.who, u.jobs, u.prompt_tokens, u.cost_usd) for u in used] == [
        ("rita", 2, 1000, 2.0),
        ("local", 1, 100, 0.25),
    ]


def test_labelling_respects_the_projects_budget(store) -> None:
    pid = _project(store)
    with store.session() as s:
        owner = projects.ensure_user(s)
        activity.set_budget(s, owner, pid, 5.0)
        first = s.get(Job, _label_job(s, owner, pid))
        first.cost_usd = 4.0
    with store.session() as s:
        owner = projects.ensure_user(s)
        capped = s.get(Job, _label_job(s, owner, pid, budget=10.0))
        assert capped.params["budget_usd"] == pytest.approx(1.0)  # what is left of 5
        capped.cost_usd = 1.0
    with store.session() as s, pytest.raises(projects.ProjectError, match="budget is spent"):
        _label_job(s, projects.ensure_user(s), pid)
    with store.session() as s:
        owner = projects.ensure_user(s)
        with pytest.raises(projects.ProjectError, match="cannot be negative"):
            activity.set_budget(s, owner, pid, -1)
        activity.set_budget(s, owner, pid, 0)  # no limit again
        assert records.latest_jobs(s, owner, pid, "label")
        _label_job(s, owner, pid)
