"""Figures counted in the database equal those read row by row, and figures kept between page
loads (``memo``) are computed again when what they depend on changes (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select, update

from distill_core import estimate
from distill_core.reports import report
from distill_core.store import Document, PredictionRun, Store
from distill_core.study import memo, runs, shares, students, validation
from distill_core.values import is_blank
from tests.fakes import add_ready_model, demo_with_run, label_sample, local_user
from tests.unit.study.test_shares import LABELS, _add_pass, _llm_with_sport, _setup

#: Texts made blank after the sample was drawn: white space of several kinds, and a text that
#: only begins with white space (not blank).
RETYPED = {"d8": "\u3000 \t", "d9": "\n\r\x0b", "d10": " \u00a0", "d12": "  not blank"}


def _row_by_row(s, pid: int, run_id: int):
    """``corrected_shares`` as it was computed before: every prediction and every text read."""
    user = local_user(s)
    sample = validation.current_sample(s, user, pid)
    preds = students.predictions_frame(s, user, pid, run_id, probabilities=False)
    texts = dict(s.execute(select(Document.doc_id, Document.text)).tuples().all())
    by_doc = dict(zip(preds["doc_id"], preds["pred_label"], strict=True))
    corpus_ids = [d for d in by_doc if (texts[d] or "").strip()]
    gold, _ = validation.gold_labels(validation.codes_frame(s, user, pid))
    test_ids = [d.doc_id for d in validation.sample_docs(s, user, pid, sample, part="test")]
    coded = [d for d in test_ids if d in gold and d in by_doc and gold[d] in LABELS]
    strata = corpus_strata = None
    if sample.method == "stratified":
        items = {r.doc_id: r.label for r in runs.items(s, sample.strata_run_id)}
        llm = {d: (None if is_blank(x) else x) for d, x in items.items()}
        strata = [llm.get(d) for d in coded]
        corpus_strata = [llm.get(d) for d in corpus_ids]
    return estimate.estimate_shares(
        [by_doc[d] for d in corpus_ids],
        [by_doc[d] for d in coded],
        [gold[d] for d in coded],
        LABELS,
        strata=strata,
        corpus_strata=corpus_strata,
    )


def _fields(share) -> dict:
    """A share's fields, numbers to 12 digits (summed in another order, the last digit of an
    interval may differ)."""

    def rounded(v):
        if isinstance(v, tuple):
            return tuple(rounded(x) for x in v)
        return round(float(v), 12) if isinstance(v, float) else v

    return {k: rounded(v) for k, v in vars(share).items()}


def _retype(store: Store) -> None:
    with store.session() as s:
        for doc_id, text in RETYPED.items():
            s.execute(update(Document).where(Document.doc_id == doc_id).values(text=text))


@pytest.mark.parametrize("method", ["random", "stratified"])
def test_shares_counted_in_the_database_equal_those_read_row_by_row(
    store: Store, method: str
) -> None:
    memo.clear()
    pid, strata_run_id = _setup(store, method=method, llm=_llm_with_sport)
    _retype(store)
    run_id = _add_pass(store, pid)
    with store.session() as s:
        if strata_run_id is not None:  # a text the strata run has no label for
            s.delete(runs.items_for(s, strata_run_id, ["d20"])["d20"])
            s.flush()
        got = shares.corrected_shares(s, local_user(s), pid, run_id)
        expected = _row_by_row(s, pid, run_id)
        frame = students.predictions_frame(s, local_user(s), pid, run_id)
        counts = students.prediction_counts(s, local_user(s), pid, run_id)
        blank = shares._blank_doc_ids(s, s.get(PredictionRun, run_id).corpus_id)
    assert [_fields(r) for r in got.rows] == [_fields(r) for r in expected.rows]
    assert (got.n_corpus, got.n_sample) == (expected.n_corpus, expected.n_sample)
    assert got.n_corpus == 60 - 2 - 3  # two empty texts and three retyped blank
    assert got.stratified == (method == "stratified")
    assert got.uncovered == sorted(expected.uncovered, key=lambda u: (u[0] is None, str(u[0])))
    assert blank == {"d7", "d33", "d8", "d9", "d10"}
    assert counts == Counter(frame["pred_label"]) and sum(counts.values()) == 60


def test_items_for_reads_the_results_of_the_documents_asked_for(store: Store) -> None:
    pid, run_id = demo_with_run(store)
    with store.session() as s:
        every = {r.doc_id: r for r in runs.items(s, run_id)}
        asked = [*list(every)[:700:7], "no-such-doc"]
        got = runs.items_for(s, run_id, asked)
        checked = runs.results_for(s, local_user(s), pid, run_id, asked)
        labels = students.predicted_labels(s, run_id, asked)  # no corpus pass: none
    assert set(got) == set(asked[:-1]) == set(checked)
    assert all((got[d].label, got[d].status) == (every[d].label, every[d].status) for d in got)
    assert labels == {}


def test_kept_figures_are_computed_again_when_what_they_depend_on_changes(store: Store) -> None:
    memo.clear()
    pid, run_id = demo_with_run(store)
    with store.session() as s:
        first = report.agreement_by_run(s, local_user(s), pid, part="dev")
    with store.session() as s:  # a rerun: the same object, nothing scored again
        assert report.agreement_by_run(s, local_user(s), pid, part="dev") is first
        assert report.agreement_by_run(s, local_user(s), pid, part="test") is not first
    second_run = label_sample(store, pid, "economy")  # a new label run
    with store.session() as s:
        with_new = report.agreement_by_run(s, local_user(s), pid, part="dev")
    assert [p.run_id for p in first] == [run_id]
    assert [p.run_id for p in with_new] == [run_id, second_run]

    with store.session() as s:  # a code saved changes the figures
        sample = validation.current_sample(s, local_user(s), pid)
        dev = validation.sample_docs(s, local_user(s), pid, sample, part="dev")
        gold, _ = validation.gold_labels(validation.codes_frame(s, local_user(s), pid))
        doc = next(d.doc_id for d in dev if d.doc_id in gold and gold[d.doc_id] != "economy")
        for coder in ("anna", "ben", "carl"):
            validation.save_code(s, local_user(s), pid, doc, coder, "economy")
    with store.session() as s:
        recoded = report.agreement_by_run(s, local_user(s), pid, part="dev")
    assert recoded is not with_new
    assert recoded[1].accuracy > with_new[1].accuracy  # the fixed teacher says economy

    students_run = _pass_over_demo(store, pid, run_id)
    with store.session() as s:
        kept = shares.corrected_shares(s, local_user(s), pid)
        assert shares.corrected_shares(s, local_user(s), pid) is kept
        assert kept.run_id == students_run
    newer = _pass_over_demo(store, pid, run_id, llm=True)  # a new corpus pass
    with store.session() as s:
        again = shares.corrected_shares(s, local_user(s), pid)
    assert again.run_id == newer != students_run
    assert again.rows[0].naive != kept.rows[0].naive


def test_the_cache_is_bounded(store: Store, monkeypatch) -> None:
    memo.clear()
    monkeypatch.setattr(memo, "MAX_ENTRIES", 3)
    pid, _ = demo_with_run(store)
    calls = []
    with store.session() as s:
        for k in range(5):
            memo.remembered(s, pid, "t", k, lambda k=k: calls.append(k) or k)
        assert len(memo._entries) == 3
        assert memo.remembered(s, pid, "t", 4, lambda: calls.append("again")) == 4
        memo.remembered(s, pid, "t", 0, lambda: calls.append("again"))
    assert calls == [0, 1, 2, 3, 4, "again"]  # the oldest was let go, the newest kept


def _pass_over_demo(store: Store, pid: int, run_id: int, *, llm: bool = False) -> int:
    """A ready model and its finished corpus pass: "other" on every text, or the truth."""
    add_ready_model(
        store,
        pid,
        run_id,
        corpus_pass=True,
        predict=(lambda truth: {"student_llm": truth}) if llm else None,
    )
    with store.session() as s:
        return students.latest_prediction_run(s, local_user(s), pid).id
