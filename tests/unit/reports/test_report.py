"""Project-level report figures: tokens, money and time, the whole-corpus LLM counterfactual,
and the LLM's agreement per label run on the development texts."""

from __future__ import annotations

from datetime import timedelta

import pytest

from distill_core.clock import utcnow
from distill_core.codebook import Codebook
from distill_core.jobs import records
from distill_core.llm.base import Answer
from distill_core.reports import report
from distill_core.store import Store
from distill_core.study import demo, labelling, projects, runs, validation
from tests.fakes import FixedTeacher, demo_with_run, local_user


class _PricedTeacher(FixedTeacher):
    """Says 'economy' and reports 100 prompt and 5 completion tokens per answer."""

    def params(self):
        return {"model": "gpt-4o-mini"}

    async def ask(self, codebook, text, *, repeat_index=0):
        return Answer(
            label="economy", status="ok", prompt_tokens=100, completion_tokens=5, attempts=1
        )


def test_cost_summary_extrapolates_the_llm_to_the_whole_corpus(store: Store) -> None:
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = demo.ensure_demo_project(s, user).id
        corpus = projects.get_corpus(s, local_user(s), pid)
        version = projects.latest_codebook(s, local_user(s), pid)
        docs = projects.load_documents(s, local_user(s), corpus.project_id, with_extra=False).head(
            40
        )
        job = records.create_job(s, "label", project_id=pid, params={"price": [1.0, 10.0]})
        job.started_at = utcnow() - timedelta(seconds=8)
        job.finished_at = utcnow()
        job.done, job.cost_usd = 40, 0.006
        run = labelling.create_run(
            s,
            teacher=_PricedTeacher(),
            codebook=Codebook.from_dict(version.content),
            n_texts=40,
            project_id=pid,
            corpus_id=corpus.id,
            codebook_version_id=version.id,
            job_id=job.id,
        )
        run_id = run.id
    items = list(zip(docs["doc_id"], docs["text"], strict=True))
    labelling.label_texts(store, run_id, _PricedTeacher(), items)
    with store.session() as s:
        cost = report.cost_summary(s, local_user(s), pid)
    assert cost.answers == 40
    assert (cost.prompt_tokens, cost.completion_tokens) == (4000, 200)
    assert cost.llm_cost_usd == pytest.approx(0.006)
    assert cost.corpus_n == 360
    assert cost.whole_corpus_prompt_tokens == 36000
    assert cost.whole_corpus_completion_tokens == 1800
    # the price the job used: $1 and $10 per million tokens
    assert cost.whole_corpus_cost_usd == pytest.approx((36000 * 1 + 1800 * 10) / 1e6)
    assert cost.whole_corpus_seconds == pytest.approx(8 / 40 * 360, rel=0.05)
    assert cost.llm_model == "gpt-4o-mini"


def test_agreement_by_run_scores_each_run_on_the_coded_development_texts(store: Store) -> None:
    pid, run_id = demo_with_run(store)
    with store.session() as s:
        points = report.agreement_by_run(s, local_user(s), pid, part="dev")
        gold, _ = validation.gold_labels(validation.codes_frame(s, local_user(s), pid))
        sample = validation.current_sample(s, local_user(s), pid)
        dev = {
            d.doc_id
            for d in validation.sample_docs(s, local_user(s), sample.project_id, sample, part="dev")
        } & set(gold)
        results = {r.doc_id: r for r in runs.run_results(s, local_user(s), pid, run_id)}
    assert [p.run_id for p in points] == [run_id]
    p = points[0]
    assert p.n == len(dev)
    right = sum(results[d].status == "ok" and results[d].label == gold[d] for d in dev)
    assert p.accuracy == pytest.approx(right / len(dev))
    assert p.accuracy_ci[0] <= p.accuracy <= p.accuracy_ci[1]
    assert p.codebook_version == 1 and "codebook v1" in p.name
