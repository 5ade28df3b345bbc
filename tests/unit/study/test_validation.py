"""Validation in the store (SQLite and PostgreSQL): samples and their locked test part, coders'
codes kept apart, imports with a report, gold labels, the test-seen warning, the demo's codes."""

from __future__ import annotations

import pandas as pd
import pytest

from distill_core.corpus import prepare_corpus, read_table
from distill_core.store import Store
from distill_core.study import demo, projects, validation
from tests.fakes import local_user

CSV = "id,text\n" + "".join(f"d{i},text number {i}\n" for i in range(100))
LABELS = ["economy", "health", "other"]


def setup_project(store: Store) -> int:
    table = read_table(CSV.encode(), "c.csv")
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = projects.create_project(s, user, "V").id
        projects.save_corpus(s, user, pid, table, prepare_corpus(table, "text", "id"))
    return pid


def test_a_sample_is_reproducible_and_split_into_disjoint_parts(store: Store) -> None:
    pid = setup_project(store)
    with store.session() as s:
        user = projects.ensure_user(s)
        a = validation.draw_sample(s, user, pid, n=40, seed=7, test_share=0.25)
        docs_a = [
            (d.doc_id, d.part) for d in validation.sample_docs(s, local_user(s), a.project_id, a)
        ]
        b = validation.draw_sample(s, user, pid, n=40, seed=7, test_share=0.25)
        docs_b = [
            (d.doc_id, d.part) for d in validation.sample_docs(s, local_user(s), b.project_id, b)
        ]
        c = validation.draw_sample(s, user, pid, n=40, seed=8, test_share=0.25)
        docs_c = {d.doc_id for d in validation.sample_docs(s, local_user(s), c.project_id, c)}
    assert docs_a == docs_b
    assert {d for d, _ in docs_a} != docs_c
    parts = pd.Series([p for _, p in docs_a]).value_counts()
    assert parts["test"] == 10 and parts["dev"] == 30
    with store.session() as s:
        assert validation.current_sample(s, local_user(s), pid).id == c.id
        excluded = validation.training_exclusions(s, pid)
    assert {d for d, p in docs_a if p == "test"} <= excluded


@pytest.mark.parametrize(("n", "fragment"), [(1, "at least 2"), (1000, "cannot be larger")])
def test_impossible_samples_are_refused_with_a_sentence(store: Store, n, fragment) -> None:
    pid = setup_project(store)
    with pytest.raises(validation.ValidationError, match=fragment), store.session() as s:
        validation.draw_sample(s, projects.ensure_user(s), pid, n=n, seed=1)


def test_coders_are_kept_apart_and_a_change_replaces_the_code(store: Store) -> None:
    pid = setup_project(store)
    with store.session() as s:
        user = projects.ensure_user(s)
        validation.save_code(s, user, pid, "d1", "anna", "economy")
        validation.save_code(s, user, pid, "d1", "ben", "health")
        validation.save_code(s, user, pid, "d1", "anna", "other")  # anna changes her mind
        validation.save_code(s, user, pid, "d2", "anna", "health")
        validation.save_code(s, user, pid, "d2", "ben", "health")
        codes = validation.codes_frame(s, local_user(s), pid)
        assert set(validation.coders(s, local_user(s), pid)) == {"anna", "ben"}
        with pytest.raises(validation.ValidationError, match="name"):
            validation.save_code(s, user, pid, "d3", "  ", "health")
    assert len(codes) == 4
    assert codes.set_index(["doc_id", "coder"]).loc[("d1", "anna"), "label"] == "other"
    gold, ties = validation.gold_labels(codes)
    assert gold == {"d2": "health"} and ties == 1  # d1: anna other vs ben health
    assert validation.gold_labels(codes, "ben")[0] == {"d1": "health", "d2": "health"}


def test_an_import_reports_unmatched_ids_and_unknown_labels_and_imports_nothing_wrong(
    store: Store,
) -> None:
    pid = setup_project(store)
    frame = pd.DataFrame(
        {
            "doc": ["d1", "d2", "zz9", "d3", "d4", "d5"],
            "code": ["Economy", "health ", "health", "healthcare", "", "other"],
        }
    )
    with store.session() as s:
        plan = validation.plan_import(
            s,
            local_user(s),
            pid,
            frame,
            id_column="doc",
            label_column="code",
            label_names=LABELS,
            coder="expert",
        )
        assert plan.unmatched_ids == ["zz9"]
        assert plan.unknown_labels == {"healthcare": 1}
        assert plan.empty == 1
        assert plan.codes == [
            ("d1", "expert", "economy"),
            ("d2", "expert", "health"),
            ("d5", "expert", "other"),
        ]
        text = " ".join(plan.lines())
        assert "zz9" in text and "'healthcare'" in text
        validation.apply_import(s, projects.ensure_user(s), pid, plan, "import:codes.csv")
        codes = validation.codes_frame(s, local_user(s), pid)
    assert sorted(codes["doc_id"]) == ["d1", "d2", "d5"] and set(codes["source"]) == {
        "import:codes.csv"
    }
    with pytest.raises(validation.ValidationError, match="'nope'"), store.session() as s:
        validation.plan_import(
            s,
            local_user(s),
            pid,
            frame,
            id_column="nope",
            label_column="code",
            label_names=LABELS,
            coder="x",
        )


def test_a_codebook_changed_after_the_test_score_was_seen_needs_confirming_and_is_marked(
    store: Store,
) -> None:
    from distill_core.codebook import Codebook
    from distill_core.study import runs
    from distill_core.study.access import ProjectError

    book = {
        "name": "Topics",
        "instructions": "Pick one topic.",
        "labels": [
            {"name": "economy", "definition": "Taxes, jobs, budgets."},
            {"name": "health", "definition": "Hospitals, disease."},
        ],
    }
    pid = setup_project(store)
    with store.session() as s:
        user = local_user(s)
        v1 = projects.save_codebook(s, user, pid, Codebook.from_dict(book)).version
        sample = validation.draw_sample(s, user, pid, n=20, seed=1)
        assert validation.test_seen_warning(s, user, pid) is None
        validation.mark_test_seen(s, user, pid, sample.id, 1)
        validation.mark_test_seen(s, user, pid, sample.id, 2)  # the first look is what counts
        warning = validation.test_seen_warning(s, user, pid)
        assert warning and "v1" in warning and "Confirm" in warning
        # The unchanged codebook is no new version: nothing to confirm.
        assert not projects.save_codebook(s, user, pid, Codebook.from_dict(book)).created
    changed = dict(book, instructions="Pick the one main topic.")
    with pytest.raises(ProjectError, match="seen on .* with codebook v1"), store.session() as s:
        projects.save_codebook(s, local_user(s), pid, Codebook.from_dict(changed))
    with store.session() as s:
        user = local_user(s)
        v2 = projects.save_codebook(
            s, user, pid, Codebook.from_dict(changed), after_seen_confirmed=True
        ).version
        numbers = projects.version_numbers(s, user, pid)
    assert numbers[v1.id].label == "v1" and numbers[v2.id] == 2
    assert numbers[v2.id].label == f"v2 ({projects.AFTER_SEEN})"
    run = type("Run", (), {"id": 7, "model": "m"})()
    assert runs.run_title(run, numbers[v2.id]).endswith(f"codebook v2 ({projects.AFTER_SEEN})")
    assert runs.run_title(run, None).endswith("codebook v?")


def test_the_demo_project_ships_a_sample_and_two_experts_codes(store: Store) -> None:
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = demo.ensure_demo_project(s, user).id
        sample = validation.current_sample(s, local_user(s), pid)
        codes = validation.codes_frame(s, local_user(s), pid)
        steps = projects.steps_done(s, local_user(s), pid)
    assert sample.n == 120 and sample.method == "imported"
    assert sorted(codes["coder"].unique()) == ["expert_a", "expert_b"]
    assert len(codes) == 160 and steps["Validate"]


def test_disagreements_list_only_texts_where_the_llm_differs() -> None:
    from types import SimpleNamespace as R

    codes = pd.DataFrame(
        {
            "doc_id": ["a", "a", "b"],
            "coder": ["x", "y", "x"],
            "label": ["health", "health", "economy"],
        }
    )
    results = {
        "a": R(label="economy", confidence=0.6, consistency=1.0),
        "b": R(label="economy", confidence=0.9, consistency=1.0),
    }
    table = validation.disagreements(
        {"a": "text a", "b": "text b"}, codes, {"a": "health", "b": "economy"}, results, ["a", "b"]
    )
    assert list(table["doc_id"]) == ["a"]
    assert table.iloc[0]["coders"] == "x: health; y: health" and table.iloc[0]["confidence"] == 0.6


def test_a_stratified_sample_gives_every_llm_label_its_minimum(store: Store) -> None:
    from distill_core.codebook import Codebook
    from distill_core.study import labelling
    from tests.fakes import MappingTeacher

    pid = setup_project(store)
    codebook = Codebook.from_dict(
        {"name": "T", "labels": [{"name": n, "definition": n} for n in LABELS]}
    )
    with store.session() as s:
        projects.save_codebook(s, projects.ensure_user(s), pid, codebook)
        corpus = projects.get_corpus(s, local_user(s), pid)
        docs = projects.load_documents(s, local_user(s), corpus.project_id, with_extra=False)
        # 'health' is rare: 5 of the 100 texts
        by_text = {t: "health" for t in docs["text"][:5]}
        teacher = MappingTeacher(by_text, "economy")
        run_id = labelling.create_run(
            s,
            teacher=teacher,
            codebook=codebook,
            n_texts=len(docs),
            project_id=pid,
            corpus_id=corpus.id,
        ).id
    items = list(zip(docs["doc_id"], docs["text"], strict=True))
    labelling.label_texts(store, run_id, teacher, items)
    with store.session() as s:
        sample = validation.draw_sample(
            s,
            projects.ensure_user(s),
            pid,
            n=20,
            seed=3,
            method="stratified",
            strata_run_id=run_id,
            min_per_stratum=4,
        )
        chosen = {
            d.doc_id for d in validation.sample_docs(s, local_user(s), sample.project_id, sample)
        }
        counts = validation.coded_counts(s, local_user(s), sample.project_id, sample, "nobody")
    assert len(chosen) == 20 and len(chosen & set(docs["doc_id"][:5])) >= 4
    assert sample.method == "stratified"
    assert counts == {"dev": 0, "test": 0}


def test_a_code_revised_after_the_reveal_keeps_the_blind_one_for_agreement(store) -> None:
    from distill_core.store import CodeEvent

    pid = setup_project(store)
    with store.session() as s:
        owner = local_user(s)
        validation.save_code(s, owner, pid, "d1", "expert", "economy")
        validation.save_code(s, owner, pid, "d1", "expert", "health")  # after seeing the LLM
        projects.ensure_user(s, "cody")
        projects.set_member(s, owner, pid, "cody", "coder")
        cody = projects.ensure_user(s, "cody")
        validation.save_code(s, cody, pid, "d2", "cody", "economy")
        validation.save_code(s, cody, pid, "d2", "cody", "other")  # a coder never saw it
    with store.session() as s:
        codes = validation.codes_frame(s, local_user(s), pid).set_index(["doc_id", "coder"])
        assert codes.loc[("d1", "expert"), "label"] == "health"
        assert codes.loc[("d1", "expert"), "blind_label"] == "economy"
        assert bool(codes.loc[("d1", "expert"), "revised_after_reveal"])
        assert codes.loc[("d2", "cody"), "blind_label"] == "other"
        assert not bool(codes.loc[("d2", "cody"), "revised_after_reveal"])
        gold, _ = validation.gold_labels(codes.reset_index(), "expert")
        assert gold == {"d1": "economy"}
        events = s.query(CodeEvent).filter(CodeEvent.doc_id == "d1").order_by(CodeEvent.id).all()
        assert [(e.label, e.after_reveal) for e in events] == [("economy", False), ("health", True)]


def test_held_out_means_held_out_by_content(store) -> None:
    """Every text has a twin that differs only in case and spacing: a held-out text's twin is
    never trained on, a later sample keeps each text (and twin) in the part it had, and no
    codebook example may be a held-out text."""
    from distill_core.codebook import Codebook

    rows = ["id,text"] + [f"a{i},Budget talks number {i} resume" for i in range(30)]
    rows += [f"b{i},  budget TALKS number {i}   resume " for i in range(30)]
    table = read_table("\n".join(rows).encode(), "twins.csv")
    with store.session() as s:
        user = local_user(s)
        pid = projects.create_project(s, user, "Twins").id
        projects.save_corpus(s, user, pid, table, prepare_corpus(table, "text", "id"))
        codebook = Codebook.from_dict(
            {
                "name": "T",
                "labels": [
                    {"name": "economy", "definition": "Money."},
                    {"name": "other", "definition": "Else."},
                ],
            }
        )
        projects.save_codebook(s, user, pid, codebook)
        first = validation.draw_sample(s, user, pid, n=20, seed=3, test_share=0.5)
        parts = {d.doc_id: d.part for d in validation.sample_docs(s, user, pid, first)}
        twin = {f"a{i}": f"b{i}" for i in range(30)} | {f"b{i}": f"a{i}" for i in range(30)}
        test = {d for d, p in parts.items() if p == "test"}
        held_out = validation.training_exclusions(s, pid)
        assert held_out == test | {twin[d] for d in test}  # twins included
        later = validation.draw_sample(s, user, pid, n=40, seed=4, test_share=0.5)
        again = {d.doc_id: d.part for d in validation.sample_docs(s, user, pid, later)}
        for doc_id, part in parts.items():
            assert parts.get(twin[doc_id], part) == part  # copies share a part
        for doc_id, part in again.items():
            before = parts.get(doc_id) or parts.get(twin[doc_id])
            if before is not None:
                assert part == before, doc_id
        text = f"BUDGET talks number {sorted(test)[0][1:]} resume"
        example = dict(codebook.to_dict(), examples=[{"text": text, "label": "economy"}])
        with pytest.raises(projects.ProjectError, match="held-out test part"):
            projects.save_codebook(s, user, pid, Codebook.from_dict(example))
