"""Numbers and words that agree with their neighbours: the whole-corpus time never reads
"about 0 minutes", the appendix keeps "the LLM's" in upper case and counts in the singular,
and the Export step is done once the data or the appendix was exported (a sample for outside
coders or the codes alone do not finish it)."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from distill_core.reports import export
from distill_core.reports.appendix import methods_appendix
from distill_core.reports.formatting import first_upper
from distill_core.reports.report import CostSummary
from distill_core.study import demo, projects
from tests.fakes import local_user

COST = CostSummary(
    corpus_n=2000,
    answers=100,
    prompt_tokens=10_000,
    completion_tokens=500,
    llm_cost_usd=0.02,
    llm_seconds=1.5,
    llm_model="gpt-4o-mini",
    price=(0.15, 0.6),
    train_seconds=30.0,
    predict_seconds=2.4,
    predicted_texts=2000,
    whole_corpus_prompt_tokens=200_000,
    whole_corpus_completion_tokens=10_000,
    whole_corpus_cost_usd=0.036,
    whole_corpus_seconds=30.0,
)


@pytest.mark.parametrize(
    ("seconds", "taking"), [(30.0, "about 30 s"), (0.4, "about 1 s"), (5400.0, "about 1 h 30 min")]
)
def test_the_whole_corpus_time_is_never_zero_minutes(seconds, taking) -> None:
    sentence = replace(COST, whole_corpus_seconds=seconds).whole_corpus_sentence()
    assert f"taking {taking} at the observed rate" in sentence
    assert "0 minutes" not in sentence
    assert "**2,000** texts" in sentence and "210,000 tokens" in sentence
    assert "labelled 2,000 texts in 2 s" in sentence


def test_no_price_no_whole_corpus_sentence() -> None:
    assert replace(COST, whole_corpus_cost_usd=None).whole_corpus_sentence() is None


def test_first_upper_keeps_the_rest_as_it_is() -> None:
    assert first_upper("the LLM's answer") == "The LLM's answer"
    assert first_upper("") == ""


def test_the_appendix_says_the_llm_s_answer_and_counts_in_the_singular(store) -> None:
    with store.session() as s:  # the demo corpus: 1 empty text, 2 repeats
        user = local_user(s)
        pid = demo.ensure_demo_project(s, user).id
        text = methods_appendix(s, user, pid).markdown
    assert (
        "1 text is empty; 2 texts repeat another text (identical texts are labelled once and "
        "share the LLM's answer)."
    ) in text
    assert "llm's" not in text


@pytest.mark.parametrize(
    ("formats", "done"),
    [
        ([], False),
        (["sample-csv", "codebook-csv", "codes"], False),
        (["csv"], True),
        (["appendix-md"], True),
    ],
)
def test_the_export_step_is_done_once_the_data_or_the_appendix_is_exported(
    store, formats, done
) -> None:
    with store.session() as s:
        user = local_user(s)
        pid = demo.ensure_demo_project(s, user).id
        assert not projects.steps_done(s, user, pid)["Export"]
        for fmt in formats:
            export.export_project(s, user, pid, fmt, io.BytesIO())
        assert projects.steps_done(s, user, pid)["Export"] is done


def test_a_failed_export_does_not_finish_the_step(store) -> None:
    with store.session() as s:
        user = local_user(s)
        pid = projects.create_project(s, user, "Empty").id
    with pytest.raises(export.ExportError), store.session() as s:
        export.export_project(s, local_user(s), pid, "csv", io.BytesIO())
    with store.session() as s:
        assert not projects.steps_done(s, local_user(s), pid)["Export"]
