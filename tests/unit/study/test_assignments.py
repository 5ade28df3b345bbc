"""Team coding (SQLite and PostgreSQL): plans with the right counts per coder, queues in an
order of each coder's own with their own codes only, reassigning a departed coder's texts,
the team's progress, and coders coding at once without losing a code."""

from __future__ import annotations

import threading
from datetime import timedelta
from itertools import combinations

import pytest

from distill_core.clock import utcnow
from distill_core.codebook import Codebook
from distill_core.corpus import prepare_corpus, read_table
from distill_core.store import HumanCode, Store
from distill_core.store.models import CodeEvent
from distill_core.study import assignments, projects, validation
from distill_core.study.access import AccessDenied
from distill_core.study.assignments import Design
from tests.fakes import local_user

CSV = "id,text\n" + "".join(f"d{i},text number {i}\n" for i in range(100))
LABELS = ["economy", "health", "other"]
CODEBOOK = {
    "name": "Topics",
    "instructions": "Pick one.",
    "labels": [{"name": n, "definition": f"About {n}."} for n in LABELS],
}


def setup_sample(store: Store, n: int = 100) -> tuple[int, int]:
    """A project with a 100-text corpus, a codebook and a sample of ``n`` texts."""
    table = read_table(CSV.encode(), "c.csv")
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = projects.create_project(s, user, "Team").id
        projects.save_corpus(s, user, pid, table, prepare_corpus(table, "text", "id"))
        projects.save_codebook(s, user, pid, Codebook.from_dict(CODEBOOK))
        sample = validation.draw_sample(s, user, pid, n=n, seed=3, test_share=0.5)
        return pid, sample.id


def sample_of(s, pid):
    return validation.current_sample(s, local_user(s), pid)


# ---------------------------------------------------------------- plans (pure)


def test_a_twenty_percent_overlap_gives_the_right_counts_per_coder() -> None:
    ids = [f"d{i}" for i in range(100)]
    made = assignments.plan(ids, Design(("ann", "ben", "cem", "dia"), k=2, overlap=0.2, seed=1))
    assert made.n_texts == 100 and len(made.overlap_ids) == 20
    assert all(len(who) == 2 for d, who in made.per_text.items() if d in made.overlap_ids)
    assert sum(len(who) == 1 for who in made.per_text.values()) == 80
    # 20 texts × 2 + 80 × 1 = 120 codes, 30 per coder, 10 of them on the overlap.
    assert made.per_coder() == {"ann": 30, "ben": 30, "cem": 30, "dia": 30}
    assert made.overlap_per_coder() == {"ann": 10, "ben": 10, "cem": 10, "dia": 10}
    # Every pair of coders shares overlap texts (pairwise κ can be computed for each).
    shared = {
        pair: sum(set(pair) <= set(made.per_text[d]) for d in made.overlap_ids)
        for pair in combinations(("ann", "ben", "cem", "dia"), 2)
    }
    assert min(shared.values()) >= 3, shared
    # Seeded: the same design gives the same plan, another seed another.
    again = assignments.plan(ids, Design(("ann", "ben", "cem", "dia"), k=2, overlap=0.2, seed=1))
    other = assignments.plan(ids, Design(("ann", "ben", "cem", "dia"), k=2, overlap=0.2, seed=2))
    assert again.per_text == made.per_text and other.per_text != made.per_text


def test_every_text_to_k_coders_balances_the_load() -> None:
    ids = [f"d{i}" for i in range(10)]
    made = assignments.plan(ids, Design(("a", "b", "c"), k=2, seed=0))
    assert all(len(set(who)) == 2 for who in made.per_text.values())
    assert sorted(made.per_coder().values()) == [6, 7, 7]  # 20 codes over 3 coders
    assert len(made.overlap_ids) == 10
    single = assignments.plan(ids, Design(("a", "b", "c"), k=1, seed=0))
    assert single.overlap_ids == [] and single.halfwidth() is None


@pytest.mark.parametrize(
    ("design", "fragment"),
    [
        (Design((), k=1), "at least one coder"),
        (Design(("a",), k=2), "need at least 2 coders"),
        (Design(("a", "b"), k=1, overlap=0.2), "at least two coders each"),
        (Design(("a", "b"), k=2, overlap=0.0), "above 0%"),
        (Design((" a ", "a", ""), k=2), "need at least 2 coders"),  # one name, cleaned
    ],
)
def test_impossible_designs_are_refused_with_a_sentence(design, fragment) -> None:
    with pytest.raises(validation.ValidationError, match=fragment):
        assignments.plan(["d1", "d2"], design)


def test_the_expected_interval_width_shrinks_with_the_overlap() -> None:
    # 1.96 · sqrt(0.8 · 0.2 / 100) / (1 − 1/2) = 0.1568
    assert assignments.expected_halfwidth(100, 2) == pytest.approx(0.1568, abs=1e-3)
    assert assignments.expected_halfwidth(400, 2) == pytest.approx(0.0784, abs=1e-3)
    assert assignments.expected_halfwidth(100, 8) < assignments.expected_halfwidth(100, 2)
    assert assignments.expected_halfwidth(1, 2) is None
    made = assignments.plan(
        [f"d{i}" for i in range(100)], Design(("a", "b"), 2, 0.2), n_categories=2
    )
    assert made.halfwidth() == pytest.approx(assignments.expected_halfwidth(20, 2))


# ---------------------------------------------------------------- stored assignments


def test_queues_hold_each_coders_texts_in_their_own_order_and_only_their_codes(store) -> None:
    pid, _ = setup_sample(store)
    with store.session() as s:
        owner = local_user(s)
        sample = sample_of(s, pid)
        assert not assignments.is_assigned(s, owner, pid, sample)
        assignments.assign(s, owner, pid, sample, Design(("ann", "ben"), k=2, overlap=0.2))
        assert assignments.is_assigned(s, owner, pid, sample)
        ann = assignments.coding_queue(s, owner, pid, sample, "ann")
        ben = assignments.coding_queue(s, owner, pid, sample, "ben")
        assert (ann.total, ben.total) == (60, 60) and ann.done == 0
        shared = {i.doc_id for i in ann.items} & {i.doc_id for i in ben.items}
        assert len(shared) == 20
        ann_order = [i.doc_id for i in ann.items if i.doc_id in shared]
        ben_order = [i.doc_id for i in ben.items if i.doc_id in shared]
        assert ann_order != ben_order  # position effects do not line up across coders
        first = ann.items[0].doc_id
        other = next(d for d in shared if d != first)
        validation.save_code(s, owner, pid, other, "ben", "health", note="not sure")
        validation.save_code(s, owner, pid, first, "ann", "economy", note="unsure because short")
        ann = assignments.coding_queue(s, owner, pid, sample, "ann")
        assert ann.done == 1 and ann.items[0].label == "economy"
        assert ann.items[0].note == "unsure because short"
        assert all(i.label is None for i in ann.items if i.doc_id == other)  # never ben's code
        assert ann.next_open(0) == 1 and ann.next_open(len(ann.items) - 1) == 1  # wraps round
        again = assignments.coding_queue(s, owner, pid, sample, "ann")
        assert [i.doc_id for i in again.items] == [i.doc_id for i in ann.items]  # stable
        assert assignments.coding_queue(s, owner, pid, sample, "nobody") is None


def test_a_coder_opens_only_their_own_queue(store) -> None:
    pid, _ = setup_sample(store, n=20)
    with store.session() as s:
        owner = local_user(s)
        for name in ("cora", "dan", "vic"):
            projects.ensure_user(s, name)
        projects.set_member(s, owner, pid, "cora", "coder")
        projects.set_member(s, owner, pid, "dan", "coder")
        projects.set_member(s, owner, pid, "vic", "viewer")
        sample = sample_of(s, pid)
        with pytest.raises(validation.ValidationError, match="'vic' may not code"):
            assignments.assign(s, owner, pid, sample, Design(("cora", "vic"), k=2))
        assignments.assign(s, owner, pid, sample, Design(("cora", "dan"), k=2))
    with store.session() as s:
        cora = projects.ensure_user(s, "cora")
        sample = sample_of(s, pid)
        mine = assignments.coding_queue(s, cora, pid, sample)
        assert mine.coder == "cora" and mine.total == 20
        validation.save_code(s, cora, pid, mine.items[0].doc_id, "cora", "other")
        with pytest.raises(AccessDenied, match="as themselves"):
            assignments.coding_queue(s, cora, pid, sample, "dan")
        with pytest.raises(AccessDenied):
            assignments.team_progress(s, cora, pid, sample)
        with pytest.raises(AccessDenied):
            assignments.assign(s, cora, pid, sample, Design(("cora",), k=1))


def test_reassigning_a_departed_coder_keeps_their_finished_codes(store) -> None:
    pid, _ = setup_sample(store, n=30)
    with store.session() as s:
        owner = local_user(s)
        sample = sample_of(s, pid)
        assignments.assign(s, owner, pid, sample, Design(("ann", "ben", "cem"), k=1, seed=4))
        ann = assignments.coding_queue(s, owner, pid, sample, "ann")
        assert ann.total == 10
        done = [i.doc_id for i in ann.items[:4]]
        for d in done:
            validation.save_code(s, owner, pid, d, "ann", "economy")
        result = assignments.reassign(s, owner, pid, sample, "ann", ["ben", "cem"])
        assert result.kept == 4 and result.moved == {"ben": 3, "cem": 3}
        assert result.sentence("ann") == (
            "ann's uncoded texts moved: 3 to ben, 3 to cem; the 4 texts ann coded stay."
        )
        ann = assignments.coding_queue(s, owner, pid, sample, "ann")
        assert sorted(i.doc_id for i in ann.items) == sorted(done) and ann.done == 4
        ben = assignments.coding_queue(s, owner, pid, sample, "ben")
        cem = assignments.coding_queue(s, owner, pid, sample, "cem")
        assert ben.total == 13 and cem.total == 13
        codes = validation.codes_frame(s, owner, pid)
        assert sorted(codes.loc[codes["coder"] == "ann", "doc_id"]) == sorted(done)
        progress = assignments.team_progress(s, owner, pid, sample)
        assert progress.assigned_texts == 30 and progress.complete_texts == 4
        with pytest.raises(validation.ValidationError, match="other coder"):
            assignments.reassign(s, owner, pid, sample, "ann", ["ann"])


def test_a_new_design_withdraws_only_uncoded_texts(store) -> None:
    pid, _ = setup_sample(store, n=10)
    with store.session() as s:
        owner = local_user(s)
        sample = sample_of(s, pid)
        assignments.assign(s, owner, pid, sample, Design(("ann",), k=1))
        first = assignments.coding_queue(s, owner, pid, sample, "ann").items[0].doc_id
        validation.save_code(s, owner, pid, first, "ann", "health")
        assignments.assign(s, owner, pid, sample, Design(("ben", "cem"), k=1))
        ann = assignments.coding_queue(s, owner, pid, sample, "ann")
        assert [i.doc_id for i in ann.items] == [first]  # coded: stays hers
        record = assignments.current_design(s, owner, pid, sample)
        assert record.design.coders == ("ben", "cem") and record.n_overlap == 0
        assert "every text to 1 of 2 coders" in record.sentence()


def test_team_progress_counts_times_and_agreement_on_the_overlap(store) -> None:
    pid, _ = setup_sample(store, n=10)
    with store.session() as s:
        owner = local_user(s)
        sample = sample_of(s, pid)
        assignments.assign(s, owner, pid, sample, Design(("ann", "ben"), k=2))
        ids = [i.doc_id for i in assignments.coding_queue(s, owner, pid, sample, "ann").items]
        now = utcnow()
        for n, d in enumerate(ids[:4]):
            opened = now - timedelta(seconds=10 * (n + 1))
            validation.save_code(s, owner, pid, d, "ann", "economy", opened_at=opened)
        validation.save_code(s, owner, pid, ids[0], "ben", "economy")
        validation.save_code(s, owner, pid, ids[1], "ben", "health")
        progress = assignments.team_progress(s, owner, pid, sample)
    rows = {r.coder: r for r in progress.coders}
    assert (rows["ann"].assigned, rows["ann"].done, rows["ben"].done) == (10, 4, 2)
    assert rows["ann"].median_seconds == pytest.approx(25, abs=1)  # 10, 20, 30, 40 s
    assert rows["ann"].overlap_pairs == 2 and rows["ann"].agreement == 0.5
    assert rows["ben"].agreement == 0.5
    assert progress.n_texts == 10 and progress.assigned_texts == 10
    assert progress.complete_texts == 2 and progress.overlap_texts == 2
    assert progress.design.design.k == 2


# ---------------------------------------------------------------- codes


def test_a_code_keeps_the_first_code_the_note_and_the_codebook_version(store) -> None:
    pid, _ = setup_sample(store, n=10)
    with store.session() as s:
        owner = local_user(s)
        validation.save_code(s, owner, pid, "d1", "ann", "economy", note="unsure because vague")
        cb = dict(CODEBOOK, instructions="Pick the one topic.")
        projects.save_codebook(s, owner, pid, Codebook.from_dict(cb))
        validation.save_code(s, owner, pid, "d1", "ann", "health")
        validation.save_code(s, owner, pid, "d1", "ann", "other")
        codes = validation.codes_frame(s, owner, pid).set_index("coder")
        events = s.query(CodeEvent).filter_by(project_id=pid, doc_id="d1").order_by(CodeEvent.id)
        history = [(e.label, e.codebook_version, e.note) for e in events]
    assert codes.loc["ann", "label"] == "other" and codes.loc["ann", "first_label"] == "economy"
    assert codes.loc["ann", "codebook_version"] == 2 and codes.loc["ann", "note"] == ""
    assert history == [("economy", 1, "unsure because vague"), ("health", 2, ""), ("other", 2, "")]


def test_two_coders_coding_the_same_sample_at_once_lose_no_code(store) -> None:
    pid, _ = setup_sample(store, n=40)
    with store.session() as s:
        owner = local_user(s)
        sample = sample_of(s, pid)
        assignments.assign(s, owner, pid, sample, Design(("ann", "ben"), k=2))
        ids = [d.doc_id for d in validation.sample_docs(s, owner, pid, sample)]
    errors: list[BaseException] = []
    start = threading.Barrier(3)

    def code(coder: str, label: str, twice: bool = False) -> None:
        try:
            start.wait()
            for d in ids:
                with store.session() as s:  # one session per code, as the app's ctx.act
                    validation.save_code(s, projects.ensure_user(s), pid, d, coder, label)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [
        threading.Thread(target=code, args=("ann", "economy")),
        threading.Thread(target=code, args=("ben", "health")),
        threading.Thread(target=code, args=("ben", "health")),  # ben's second tab, same texts
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with store.session() as s:
        rows = s.query(HumanCode).filter_by(project_id=pid).all()
        events = s.query(CodeEvent).filter_by(project_id=pid).count()
        progress = assignments.team_progress(s, local_user(s), pid, sample_of(s, pid))
    assert len(rows) == 80 and events == 120  # one row per coder and text, every event kept
    assert {(r.coder, r.label) for r in rows} == {("ann", "economy"), ("ben", "health")}
    assert progress.complete_texts == 40
