"""What the pages read of a corpus without holding it whole (issue 18): a searched page of
documents counted in the database, the first texts that are not blank, the corpus's ids kept
per state of the project, and the cost estimate of a label run's texts (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from distill_core.codebook import Codebook
from distill_core.corpus import prepare_corpus, read_table
from distill_core.llm.cost import Price, estimate
from distill_core.store import Store
from distill_core.study import labelling, memo, projects, runs, validation
from distill_core.study.access import AccessDenied
from tests.fakes import demo_with_run, local_user

#: White space of several kinds: blank, as a label run and ``values.is_blank`` see it.
BLANK = {"d3": "", "d4": "\u3000 \t", "d5": " \u00a0"}
CODEBOOK = Codebook.from_dict(
    {
        "name": "Topics",
        "instructions": "Pick one.",
        "labels": [
            {"name": "economy", "definition": "Taxes, jobs."},
            {"name": "other", "definition": "Anything else."},
        ],
    }
)


def _text(i: int) -> str:
    return BLANK.get(f"d{i}", f"Text {i} about {'Taxes' if i % 3 == 0 else 'weather'}")


def _corpus(store: Store, n: int = 30) -> int:
    rows = "".join(f'd{i},"{_text(i)}",{i % 2}\n' for i in range(n))
    table = read_table(("id,text,group\n" + rows).encode(), "c.csv")
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = projects.create_project(s, user, "Reads").id
        projects.save_corpus(s, user, pid, table, prepare_corpus(table, "text", "id"))
    return pid


def test_a_page_of_documents_is_searched_and_counted_in_the_database(store: Store) -> None:
    pid = _corpus(store)
    with store.session() as s:
        user = local_user(s)
        every = projects.load_documents(s, user, pid)
        page = projects.documents_page(s, user, pid, limit=7)
        assert (page.matching, page.total) == (30, 30)
        assert page.rows.equals(every.head(7))  # corpus order, the file's other columns too
        assert "group" in page.rows.columns
        found = projects.documents_page(s, user, pid, search="taxes", limit=4)
        hits = every[every["text"].str.contains("Taxes")]
        assert (found.matching, found.total) == (len(hits), 30)
        assert list(found.rows["doc_id"]) == list(hits["doc_id"][:4])
        literal = projects.documents_page(s, user, pid, search="100%_x")
        assert (literal.matching, len(literal.rows)) == (0, 0)  # % and _ match themselves
        bare = projects.documents_page(s, user, pid, limit=2, with_extra=False)
        assert list(bare.rows.columns) == ["doc_id", "text"]


def test_first_texts_and_corpus_ids_skip_blank_texts_as_a_label_run_does(store: Store) -> None:
    memo.clear()
    pid = _corpus(store)
    with store.session() as s:
        user = local_user(s)
        first = projects.first_texts(s, user, pid, 4)
        assert list(first["doc_id"]) == ["d0", "d1", "d2", "d6"]
        ids = projects.corpus_ids(s, user, pid)
        assert ids.ids == tuple(f"d{i}" for i in range(30))
        assert ids.nonempty == tuple(f"d{i}" for i in range(30) if f"d{i}" not in BLANK)
        assert projects.corpus_ids(s, user, pid) is ids  # kept: the corpus is read once
        chosen = labelling.choose_texts(ids, "subset", n=5, seed=3)
        assert len(chosen) == 5 and set(chosen) <= set(ids.nonempty)
        assert chosen == sorted(chosen, key=ids.ids.index)  # in corpus order
        assert labelling.choose_texts(ids, "all") == list(ids.ids)
        assert labelling.choose_texts(ids, "sample", sample_ids=["d9"]) == ["d9"]
        with pytest.raises(ValueError, match="Unknown scope"):
            labelling.choose_texts(ids, "most")


def test_the_estimate_of_a_scope_is_that_of_its_texts_and_kept(store: Store) -> None:
    memo.clear()
    pid = _corpus(store)
    price = Price(0.15, 0.6)
    with store.session() as s:
        user = local_user(s)
        every = projects.load_documents(s, user, pid, with_extra=False)
        texts = dict(zip(every["doc_id"], every["text"], strict=True))
        ids = projects.corpus_ids(s, user, pid)
        for scope, kw in (("all", {}), ("subset", {"n": 6, "seed": 2}), ("sample", {})):
            sample_ids = ("d1", "d3", "d7") if scope == "sample" else ()
            got = labelling.scope_estimate(
                s, user, pid, CODEBOOK, scope, model="m", price=price, repeats=2,
                sample_ids=sample_ids, **kw,
            )  # fmt: skip
            chosen = labelling.choose_texts(ids, scope, sample_ids=sample_ids, **kw)
            asked = [texts[d] for d in chosen if d not in BLANK]  # blank texts are never asked
            assert got == estimate(CODEBOOK, asked, "m", 2, {"m": price})
            assert got.n_requests == 2 * len(asked)
        again = labelling.scope_estimate(s, user, pid, CODEBOOK, "all", model="m", price=price)
        assert (
            labelling.scope_estimate(s, user, pid, CODEBOOK, "all", model="m", price=price) is again
        )


def test_label_counts_are_kept_and_count_every_result(store: Store) -> None:
    memo.clear()
    pid, run_id = demo_with_run(store)
    with store.session() as s:
        user = local_user(s)
        every = runs.results_frame(s, user, pid, run_id)
        counts = runs.label_counts(s, user, pid, run_id)
        assert counts == every["label"].dropna().value_counts().to_dict()
        ok = runs.label_counts(s, user, pid, run_id, statuses=["ok"])
        assert ok == every.loc[every["status"] == "ok", "label"].value_counts().to_dict()
        whole = runs.label_counts(s, user, pid, run_id, with_unlabelled=True)
        assert sum(whole.values()) == len(every) and whole[None] == every["label"].isna().sum()
        page = runs.results_page(s, user, pid, run_id)
        assert (page.matching, page.total) == (len(every), len(every))


def test_a_stranger_reads_nothing_of_the_corpus(store: Store) -> None:
    pid = _corpus(store)
    with store.session() as s:
        stranger = projects.ensure_user(s, "stranger")
        for read in (
            lambda: projects.documents_page(s, stranger, pid),
            lambda: projects.first_texts(s, stranger, pid, 1),
            lambda: projects.corpus_ids(s, stranger, pid),
            lambda: labelling.scope_estimate(
                s, stranger, pid, CODEBOOK, "all", model="m", price=Price(0, 0)
            ),
        ):
            with pytest.raises(AccessDenied):
                read()


def test_sqlite_knows_the_tables_sizes_after_a_corpus_is_saved(store: Store) -> None:
    """Without statistics SQLite read every document of the corpus to find a sample's."""
    if store.dialect != "sqlite":
        pytest.skip("PostgreSQL's autovacuum keeps its own statistics")
    pid = _corpus(store, n=400)
    with store.session() as s:
        stats = dict(s.execute(text("SELECT tbl, stat FROM sqlite_stat1")).tuples().all())
        assert stats["documents"].startswith("400 ")
        user = local_user(s)
        sample = validation.draw_sample(s, user, pid, n=20, seed=1)
        plan = " ".join(
            row[-1]
            for row in s.execute(
                text(
                    "EXPLAIN QUERY PLAN SELECT d.text FROM sample_items si JOIN documents d "
                    "ON d.doc_id = si.doc_id AND d.corpus_id = :c WHERE si.sample_id = :s"
                ),
                {"c": sample.corpus_id, "s": sample.id},
            )
        )
        assert "SCAN d" not in plan and "(corpus_id=? AND doc_id=?)" in plan, plan
