"""Label runs against the loopback OpenAI-compatible server, through the real openai client:
dedupe, nothing paid twice, resume, repeats, invalid answers, budget cap, fail-fast, audit log."""

from __future__ import annotations

import io
import json

import pytest
from sqlalchemy import text

from distill_core.codebook import Codebook
from distill_core.llm import Endpoint
from distill_core.llm.openai_teacher import OpenAITeacher, RetryPolicy
from distill_core.store import Store
from distill_core.study import labelling, runs
from tests.llm_server import LoopbackLLM, ServerConfig

CODEBOOK = Codebook.from_dict(
    {
        "name": "Topics",
        "instructions": "Pick one.",
        "labels": [
            {"name": "economy", "definition": "Taxes, jobs."},
            {"name": "health", "definition": "Hospitals."},
            {"name": "other", "definition": "Anything else."},
        ],
    }
)
KEY = "sk-test-SECRET-4242-do-not-store"
ITEMS = [
    ("a", "Taxes rise again"),
    ("b", "A new hospital opens"),
    ("c", "Taxes rise again"),  # duplicate of a
    ("d", ""),  # empty
    ("e", "The weather is nice"),
    ("f", "Hospital waiting times fall"),
]


@pytest.fixture
def server():
    config = ServerConfig(keywords={"tax": "economy", "hospital": "health"}, api_key=KEY)
    with LoopbackLLM(config) as srv:
        yield srv


def teacher(srv, **kw) -> OpenAITeacher:
    endpoint = Endpoint(base_url=srv.base_url, model="test-model", api_key=KEY, **kw)
    return OpenAITeacher(endpoint, retry=RetryPolicy(base_delay=0.001, max_delay=0.01))


def new_run(store: Store, t, repeats: int = 1) -> int:
    with store.session() as s:
        return labelling.create_run(
            s, teacher=t, codebook=CODEBOOK, n_texts=len(ITEMS), repeats=repeats
        ).id


def results(store: Store, run_id: int) -> dict:
    with store.session() as s:
        return {r.doc_id: r for r in runs.items(s, run_id)}


def test_identical_texts_are_asked_once_and_every_document_gets_a_result(store, server) -> None:
    t = teacher(server)
    out = labelling.label_texts(store, new_run(store, t), t, ITEMS)
    assert server.stats()["requests"] == 4  # 4 distinct non-empty texts
    assert server.stats()["requests_per_text"] == 1.0
    assert out.n_distinct == 4 and out.progress.done == out.progress.total == 4
    res = results(store, out.run_id)
    assert res["a"].label == res["c"].label == "economy"
    assert res["b"].label == "health" and res["f"].label == "health"
    assert res["d"].status == "error" and res["d"].label is None
    assert res["a"].confidence == pytest.approx(0.8, abs=0.01)
    assert out.counts == {"ok": 5, "invalid": 0, "error": 1}


def test_rerunning_the_same_labelling_sends_no_request(store, server) -> None:
    t = teacher(server)
    labelling.label_texts(store, new_run(store, t), t, ITEMS)
    server.reset()
    t2 = teacher(server)
    out = labelling.label_texts(store, new_run(store, t2), t2, ITEMS)
    assert server.stats()["requests"] == 0
    assert out.progress.cached == 4 and out.progress.requested == 0
    assert results(store, out.run_id)["b"].label == "health"


def test_a_stopped_run_resumes_asking_only_what_is_missing(store, server) -> None:
    t = teacher(server)
    run_id = new_run(store, t)
    seen = []
    out = labelling.label_texts(
        store,
        run_id,
        t,
        ITEMS,
        concurrency=1,
        on_progress=lambda p: seen.append(p.done),
        should_cancel=lambda: server.stats()["requests"] >= 2,
    )
    assert out.stopped == "cancelled"
    first = server.stats()["requests"]
    assert 2 <= first < 4
    out2 = labelling.label_texts(store, run_id, teacher(server), ITEMS)
    assert out2.stopped is None and out2.progress.cached == first
    stats = server.stats()
    assert stats["requests"] == 4 and set(stats["per_text"].values()) == {1}


def test_repeats_give_the_modal_label_and_consistency(store, server) -> None:
    server.config.scripted = {"The weather is nice": ["other", "health", "other"]}
    t = teacher(server, temperature=1.0)
    out = labelling.label_texts(store, new_run(store, t, 3), t, ITEMS, repeats=3)
    res = results(store, out.run_id)
    assert res["e"].label == "other" and res["e"].consistency == pytest.approx(2 / 3)
    assert res["a"].consistency == 1.0 and res["e"].answers == 3


def test_an_off_codebook_answer_is_invalid_with_its_raw_text_kept(store, server) -> None:
    server.config.off_codebook_marker = "weather"
    t = teacher(server)
    out = labelling.label_texts(store, new_run(store, t), t, ITEMS)
    res = results(store, out.run_id)
    assert res["e"].status == "invalid" and res["e"].label is None
    assert server.stats()["per_text"]["The weather is nice"] == 2  # asked again once
    with store.session() as s:
        records = [r for r in runs.audit_log(s, out.run_id) if r["doc_ids"] == ["e"]]
    assert records and records[0]["status"] == "invalid" and "unsure" in records[0]["raw"]


def test_the_budget_cap_stops_the_run_cleanly(store, server) -> None:
    many = [(str(i), f"Tax item number {i}") for i in range(40)]
    t = teacher(server)
    run_id = new_run(store, t)
    out = labelling.label_texts(
        store, run_id, t, many, concurrency=2, cost_of=lambda p, c: 1.0, budget_usd=5.0
    )
    assert out.stopped == "budget"
    assert 5 <= out.progress.requested <= 7  # the cap plus what was in flight
    assert len(results(store, run_id)) == out.progress.requested


def test_a_wrong_key_stops_early_with_one_sentence(store, server) -> None:
    many = [(str(i), f"Text {i}") for i in range(50)]
    endpoint = Endpoint(base_url=server.base_url, model="m", api_key="sk-wrong")
    t = OpenAITeacher(endpoint, retry=RetryPolicy(base_delay=0.001))
    out = labelling.label_texts(store, new_run(store, t), t, many, concurrency=2)
    assert out.stopped == "failing"
    assert "401" in out.first_error
    assert server.stats()["requests"] < 20


def test_the_key_is_never_stored_and_the_audit_log_is_complete(store, server) -> None:
    t = teacher(server)
    out = labelling.label_texts(store, new_run(store, t), t, ITEMS)
    with store.session() as s:
        raw = io.BytesIO()
        n = runs.write_audit_log(s, [out.run_id], raw)
        buf = io.StringIO(raw.getvalue().decode("utf-8"))
        dump = []
        for table in ("llm_responses", "label_runs", "label_run_items"):
            dump += [str(row) for row in s.execute(text(f"select * from {table}"))]
    assert n == 4
    records = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert {tuple(r["doc_ids"]) for r in records} == {("a", "c"), ("b",), ("e",), ("f",)}
    assert all(r["request"]["messages"] and r["model"] == "test-model" for r in records)
    assert KEY not in buf.getvalue()
    assert not any(KEY in row for row in dump)


def test_an_errored_text_is_asked_again_unless_a_later_turn_of_the_same_job(store, server):
    """A text whose every request fails ends in error; the next labelling asks it again, a
    job's later turn (``retry_errors=False``) does not, so a sliced job asks it once."""
    server.config.fail_500_marker = "weather"
    t = teacher(server)
    run_id = new_run(store, t)
    first = labelling.label_texts(store, run_id, t, ITEMS)
    assert results(store, run_id)["e"].status == "error"
    asked = server.stats()["requests"]
    assert asked >= 4 and first.counts["error"] == 2  # the weather text and the empty one
    later = labelling.label_texts(store, run_id, t, ITEMS, retry_errors=False)
    assert server.stats()["requests"] == asked  # nothing asked again
    assert later.progress.done == later.progress.total
    assert results(store, run_id)["e"].status == "error"
    labelling.label_texts(store, run_id, t, ITEMS)  # a new labelling asks it again
    assert server.stats()["requests"] > asked
