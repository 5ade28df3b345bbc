"""The gold rule on a hand-made table, adjudication (SQLite and PostgreSQL) and where its gold
label goes (scoring, exports), the disagreements listed with their ties, and the matrices of
what humans and the LLM confuse."""

from __future__ import annotations

import pandas as pd
import pytest

from distill_core.reports import export
from distill_core.study import adjudication, demo, projects, runs, scoring, validation
from distill_core.study.access import AccessDenied
from tests.fakes import label_sample, local_user

#: (doc, coder, label, blind_label, adjudicated): the gold rule's cases, one text each.
TABLE = [
    ("a1", "ann", "x", "x", None),  # unanimous
    ("a1", "ben", "x", "x", None),
    ("a2", "ann", "x", "x", None),  # a tie nobody settled: listed, no gold label
    ("a2", "ben", "y", "y", None),
    ("a3", "ann", "x", "x", "z"),  # a tie an expert settled, with a code neither gave
    ("a3", "ben", "y", "y", "z"),
    ("a4", "ann", "x", "x", None),  # a majority
    ("a4", "ben", "y", "y", None),
    ("a4", "cem", "y", "y", None),
    ("a5", "ann", "x", "x", "x"),  # the expert overrules the majority
    ("a5", "ben", "y", "y", "x"),
    ("a5", "cem", "y", "y", "x"),
    ("a6", "ann", "y", "y", None),  # one coder
    ("a7", "ann", "x", "x", None),  # three codes, three labels: a tie
    ("a7", "ben", "y", "y", None),
    ("a7", "cem", "z", "z", None),
    ("a8", "ann", "y", "x", None),  # revised after the reveal: the blind code counts
    ("a8", "ben", "x", "x", None),
]


def hand_made() -> pd.DataFrame:
    columns = ["doc_id", "coder", "label", "blind_label", "adjudicated"]
    return pd.DataFrame(TABLE, columns=columns)


def test_the_gold_rule_on_a_hand_made_table() -> None:
    gold = validation.gold_rule(hand_made())
    assert gold.labels == {"a1": "x", "a3": "z", "a4": "y", "a5": "x", "a6": "y", "a8": "x"}
    assert gold.ties == ["a2", "a7"]
    assert gold.source == {
        "a1": "unanimous",
        "a2": "tie",
        "a3": "adjudicated",
        "a4": "majority",
        "a5": "adjudicated",
        "a6": "one coder",
        "a7": "tie",
        "a8": "unanimous",
    }
    assert gold.count("adjudicated") == 2
    assert validation.gold_labels(hand_made()) == (gold.labels, 2)
    # One coder's own codes: no adjudication, no majority.
    assert validation.gold_rule(hand_made(), "ben").labels == {
        "a1": "x",
        "a2": "y",
        "a3": "y",
        "a4": "y",
        "a5": "y",
        "a7": "y",
        "a8": "x",
    }
    # A frame without adjudications (or blind codes) still has a gold label.
    plain = hand_made().drop(columns=["adjudicated", "blind_label"])
    assert (
        validation.gold_rule(plain).labels["a5"] == "y" and "a8" in validation.gold_rule(plain).ties
    )


def test_the_matrices_of_what_humans_and_the_llm_confuse() -> None:
    codes = hand_made()
    humans = adjudication.human_pairs(codes, ["x", "y"])
    assert list(humans.index) == ["x", "y", "z"]  # codebook order, then codes outside it
    # Pairs of coders per text: a1 x-x; a2 x-y; a3 x-y; a4 x-y, x-y, y-y; a5 the same;
    # a7 x-y, x-z, y-z; a8 x-x.
    assert humans.loc["x", "x"] == 2 and humans.loc["y", "y"] == 2
    assert humans.loc["x", "y"] == humans.loc["y", "x"] == 7
    assert humans.loc["x", "z"] == 1 and humans.loc["y", "z"] == 1
    gold = {"a1": "x", "a4": "y", "a5": "x", "a6": "y"}
    llm = adjudication.llm_pairs(gold, {"a1": "y", "a4": "y", "a5": None, "a6": "x"}, ["x", "y"])
    assert llm.loc["x", "y"] == 1 and llm.loc["y", "y"] == 1 and llm.loc["y", "x"] == 1
    assert int(llm.to_numpy().sum()) == 3  # a5 has no LLM label
    pairs = adjudication.confused_pairs(humans, llm)
    assert (pairs[0].a, pairs[0].b, pairs[0].humans, pairs[0].llm) == ("x", "y", 7, 2)
    assert {(p.a, p.b) for p in pairs} == {("x", "y"), ("x", "z"), ("y", "z")}


@pytest.fixture
def demo_project(store):
    with store.session() as s:
        pid = demo.ensure_demo_project(s, projects.ensure_user(s)).id
    return pid


def test_disputes_list_every_disagreement_and_tie_and_adjudication_settles_them(
    store, demo_project
) -> None:
    pid = demo_project
    with store.session() as s:
        user = local_user(s)
        sample = validation.current_sample(s, user, pid)
        found = adjudication.disputes(s, user, pid, sample)
        gold = validation.gold_rule(validation.codes_frame(s, user, pid))
    assert len(found) == 5 and all(d.tie for d in found)  # two coders: a dispute is a tie
    assert sorted(d.doc_id for d in found) == sorted(gold.ties)
    pair = sorted(found[0].pairs)[0]
    assert found[0] in adjudication.with_pair(found, pair)
    assert all(pair in d.pairs for d in adjudication.with_pair(found, pair[::-1]))
    tied = found[0]
    chosen = tied.codes["expert_b"]
    with store.session() as s:
        adjudication.adjudicate(s, local_user(s), pid, tied.doc_id, chosen, "  Definition 3  ")
    with store.session() as s:
        user = local_user(s)
        again = {d.doc_id: d for d in adjudication.disputes(s, user, pid, sample)}
        gold = validation.gold_rule(validation.codes_frame(s, user, pid))
        frame = export.labelled_corpus(s, user, pid).set_index("doc_id")
        codes = export.human_codes(s, user, pid)
    settled = again[tied.doc_id]
    assert settled.adjudicated == chosen and settled.reason == "Definition 3"
    assert settled.adjudicator == "local" and settled.gold == chosen
    assert gold.labels[tied.doc_id] == chosen and len(gold.ties) == 4
    assert gold.source[tied.doc_id] == "adjudicated"
    assert frame.loc[tied.doc_id, "human_gold"] == chosen
    assert frame.loc[tied.doc_id, "adjudicated_label"] == chosen
    assert frame.loc[tied.doc_id, "adjudication_reason"] == "Definition 3"
    assert frame.loc[tied.doc_id, "gold_source"] == "adjudicated"
    assert pd.isna(frame.loc[found[1].doc_id, "human_gold"])
    assert frame.loc[found[1].doc_id, "gold_source"] == "tie"
    rows = codes[codes["doc_id"] == tied.doc_id]
    assert set(rows["adjudicated"]) == {chosen} and set(rows["adjudication_reason"]) == {
        "Definition 3"
    }
    with store.session() as s:
        adjudication.withdraw(s, local_user(s), pid, tied.doc_id)
        gold = validation.gold_rule(validation.codes_frame(s, local_user(s), pid))
    assert tied.doc_id in gold.ties


def test_the_scorer_uses_the_adjudicated_gold_label(store, demo_project) -> None:
    pid = demo_project
    run_id = label_sample(store, pid, "economy")
    with store.session() as s:
        user = local_user(s)
        sample = validation.current_sample(s, user, pid)
        run = next(r for r in runs.project_runs(s, user, pid) if r.id == run_id)
        ties = adjudication.disputes(s, user, pid, sample)
        before = {
            p: scoring.score_run(s, user, pid, run, p, sample=sample).n for p in ("dev", "test")
        }
        for d in ties:
            adjudication.adjudicate(s, user, pid, d.doc_id, "economy")
        after = {p: scoring.score_run(s, user, pid, run, p, sample=sample) for p in ("dev", "test")}
    assert sum(after[p].n for p in after) == sum(before.values()) + len(ties)
    for d in ties:
        assert any(d.doc_id in after[p].doc_ids for p in after)


def test_only_experts_adjudicate_and_only_codebook_labels(store, demo_project) -> None:
    pid = demo_project
    with store.session() as s:
        owner = local_user(s)
        for name, role in (("cora", "coder"), ("vic", "viewer"), ("rae", "researcher")):
            projects.ensure_user(s, name)
            projects.set_member(s, owner, pid, name, role)
        sample = validation.current_sample(s, owner, pid)
        tied = adjudication.disputes(s, owner, pid, sample)[0].doc_id
        with pytest.raises(validation.ValidationError, match="not a label"):
            adjudication.adjudicate(s, owner, pid, tied, "astrology")
        with pytest.raises(validation.ValidationError, match="no human code"):
            adjudication.adjudicate(s, owner, pid, "demo-9999", "economy")
    with store.session() as s:
        for name in ("cora", "vic"):
            with pytest.raises(AccessDenied):
                adjudication.adjudicate(s, projects.ensure_user(s, name), pid, tied, "economy")
        with pytest.raises(AccessDenied):  # a coder sees no other coder's code
            adjudication.disputes(s, projects.ensure_user(s, "cora"), pid, sample)
        adjudication.adjudicate(s, projects.ensure_user(s, "rae"), pid, tied, "economy")


def test_confusions_of_a_sample_beside_the_codebook(store, demo_project) -> None:
    pid = demo_project
    run_id = label_sample(store, pid, "economy")
    with store.session() as s:
        user = local_user(s)
        sample = validation.current_sample(s, user, pid)
        found = adjudication.confusions(s, user, pid, sample, run_id)
        none = adjudication.confusions(s, user, pid, sample)
    assert found.labels[0] == "economy" and set(found.definitions) == set(found.labels)
    assert int(found.humans.to_numpy().trace()) == 35  # the 35 texts the experts agree on
    assert int(found.humans.to_numpy().sum() - found.humans.to_numpy().trace()) == 10  # 5 × 2
    assert found.llm is not None and int(found.llm.to_numpy().sum()) == 115  # every gold text
    assert found.pairs and none.llm is None and none.run_id is None


def test_intercoder_agreement_is_on_the_blind_codes_in_the_codebooks_order() -> None:
    from distill_core import agreement

    codes = hand_made()
    result = validation.intercoder_agreement(codes, ["y", "x"], n_boot=50)
    blind = {
        c: dict(zip(g["doc_id"], g["blind_label"], strict=True)) for c, g in codes.groupby("coder")
    }
    reference = agreement.intercoder_agreement(blind, labels=["y", "x", "z"], n_boot=50)
    assert result.labels == ["y", "x", "z"]  # a code outside the codebook comes after it
    assert result.krippendorff_alpha == reference.krippendorff_alpha
    assert result.gwet_ac1 == reference.gwet_ac1 and result.ci == reference.ci
    assert result.n == 7  # the texts with two or more codes (a6 has one)
    assert validation.intercoder_agreement(codes[codes["coder"] == "ann"]) is None
