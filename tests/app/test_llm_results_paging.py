"""The LLM labels page shows a run's results a page at a time (queried in the database), with
filters and a text search, and says how many texts match (AppTest, SQLite and PostgreSQL)."""

from __future__ import annotations

from distill_core.config import Settings
from distill_core.store import Store
from distill_core.study import runs
from tests.app.conftest import open_page, texts
from tests.fakes import demo_with_run, local_user


def _table(at):
    return next(d.value for d in at.dataframe if "status" in d.value.columns)


def test_results_are_paged_filtered_and_searched(home) -> None:
    open_page()  # creates the demo project
    store = Store(Settings.from_env().database_url)
    pid, run_id = demo_with_run(store)
    with store.session() as s:
        every = runs.results_frame(s, local_user(s), pid, run_id)
    assert len(every) == 360
    at = open_page("steps/llm_labels.py")
    assert not at.exception, [e.value for e in at.exception]
    first = _table(at)
    assert list(first["doc_id"]) == list(every["doc_id"][: runs.PAGE_ROWS])  # corpus order
    assert "Texts 1–100 of 360;" in texts(at)
    pager = at.number_input(key="llm_page")
    assert pager.label == "Page (of 4)"

    pager.set_value(4).run()
    assert list(_table(at)["doc_id"]) == list(every["doc_id"][300:])
    assert "Texts 301–360 of 360;" in texts(at)

    at.multiselect(key="llm_f_status").set_value(["invalid"]).run()  # back to the first page
    invalid = every[every["status"] == "invalid"]
    assert 0 < len(invalid) < runs.PAGE_ROWS
    assert list(_table(at)["doc_id"]) == list(invalid["doc_id"])
    assert f"Texts 1–{len(invalid)} of {len(invalid)} (of 360 in the run)" in texts(at)
    assert not [n for n in at.number_input if n.key == "llm_page"]  # one page: no pager

    at.multiselect(key="llm_f_status").set_value([]).run()
    word = every["text"].iloc[5].split()[-1].upper()  # any case
    at.text_input(key="llm_f_search").input(word).run()
    hits = every[every["text"].str.lower().str.contains(word.lower(), regex=False)]
    assert list(_table(at)["doc_id"]) == list(hits["doc_id"][: runs.PAGE_ROWS])
    at.text_input(key="llm_f_search").input("100%_no such text").run()
    assert "No text matches (of 360 in the run)" in texts(at)
    assert _table(at).empty
    assert not at.exception


def test_a_page_of_results_is_small_and_counts_are_counted_in_the_database(home) -> None:
    open_page()
    store = Store(Settings.from_env().database_url)
    pid, run_id = demo_with_run(store)
    with store.session() as s:
        user = local_user(s)
        every = runs.results_frame(s, user, pid, run_id)
        page = runs.results_page(s, user, pid, run_id, page=99, min_confidence=0.5)
        counts = runs.label_counts(s, user, pid, run_id, statuses=["ok"])
    kept = runs.filter_results(every, min_confidence=0.5)
    assert page.matching == len(kept) and page.total == 360
    assert page.page == page.pages  # a page past the last shows the last
    assert list(page.rows["doc_id"]) == list(kept["doc_id"][(page.page - 1) * 100 :])
    ok = every[every["status"] == "ok"]
    assert counts == ok["label"].value_counts().to_dict()
