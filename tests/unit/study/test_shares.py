"""Corrected shares of a project's corpus pass, in the store (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from distill_core import estimate, sampling
from distill_core.corpus import prepare_corpus, read_table
from distill_core.store import (
    LabelRun,
    LabelRunItem,
    Prediction,
    PredictionRun,
    SampleItem,
    Store,
    StudentModel,
    ValidationSample,
)
from distill_core.study import projects, shares, validation
from tests.fakes import local_user

Z95 = 1.959963984540054


# ---------------------------------------------------------------- hand-computed


LABELS = ["economy", "health", "other"]
N_DOCS = 60
EMPTY = {"d7", "d33"}


def _truth(i: int) -> str:
    return LABELS[i % 3]


def _llm(i: int) -> str:
    return "health" if i % 4 == 0 else "economy"


def _predicted(i: int) -> str:
    return "economy" if i % 5 == 0 else _truth(i)  # over-predicts economy


def _setup(store: Store, *, method: str = "random", llm=_llm) -> tuple[int, int | None]:
    csv = "id,text\n" + "".join(
        f"d{i},{'' if f'd{i}' in EMPTY else f'text number {i}'}\n" for i in range(N_DOCS)
    )
    table = read_table(csv.encode(), "c.csv")
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = projects.create_project(s, user, "E").id
        corpus = projects.save_corpus(s, user, pid, table, prepare_corpus(table, "text", "id"))
        strata_run = None
        if method == "stratified":
            strata_run = LabelRun(
                project_id=pid, corpus_id=corpus.id, teacher="t", model="m", run_key="k"
            )
            s.add(strata_run)
            s.flush()
            s.add_all(
                LabelRunItem(
                    run_id=strata_run.id,
                    doc_id=f"d{i}",
                    text_hash=str(i),
                    label=llm(i),
                    status="ok",
                )
                for i in range(N_DOCS)
            )
            s.flush()
        if strata_run is None:
            sample = validation.draw_sample(s, user, pid, n=40, seed=5, test_share=0.5)
        else:
            sample = _stratified_sample(s, pid, corpus.id, strata_run.id, llm)
        for d in validation.sample_docs(s, local_user(s), sample.project_id, sample):
            i = int(d.doc_id[1:])
            validation.save_code(s, user, pid, d.doc_id, "anna", _truth(i))
    return pid, strata_run.id if strata_run else None


def _stratified_sample(
    s, pid: int, corpus_id: int, strata_run_id: int, llm=_llm
) -> ValidationSample:
    """A stratified sample stored row by row, as ``validation.draw_sample`` stores one; texts
    of an LLM label ``"sport"`` all go to the development part (a stratum left uncoded)."""
    ids = [f"d{i}" for i in range(N_DOCS) if f"d{i}" not in EMPTY]
    chosen = sampling.stratified(ids, [llm(int(d[1:])) for d in ids], 40, seed=5, min_per_stratum=8)
    split = sampling.split_dev_test(chosen, 0.5, 5, strata=[llm(int(d[1:])) for d in chosen])
    sport = {d for d in chosen if llm(int(d[1:])) == "sport"}
    split = sampling.Split(
        dev=[d for d in chosen if d in sport or d in split.dev],
        test=[d for d in split.test if d not in sport],
    )
    sample = ValidationSample(
        project_id=pid,
        corpus_id=corpus_id,
        method="stratified",
        n=len(chosen),
        seed=5,
        strata_run_id=strata_run_id,
    )
    s.add(sample)
    s.flush()
    parts = {d: "dev" for d in split.dev} | {d: "test" for d in split.test}
    s.add_all(
        SampleItem(sample_id=sample.id, doc_id=d, part=parts[d], position=k)
        for k, d in enumerate(chosen)
    )
    s.flush()
    return sample


def _add_pass(store: Store, pid: int, status: str = "done", labels=LABELS) -> int:
    with store.session() as s:
        corpus = projects.get_corpus(s, local_user(s), pid)
        model = StudentModel(project_id=pid, corpus_id=corpus.id, base_model="m", status="ready")
        s.add(model)
        s.flush()
        run = PredictionRun(
            project_id=pid,
            model_id=model.id,
            corpus_id=corpus.id,
            status=status,
            labels={"labels": list(labels)},
            n=N_DOCS,
        )
        s.add(run)
        s.flush()
        s.add_all(
            Prediction(
                run_id=run.id,
                doc_id=f"d{i}",
                label=_predicted(i),
                confidence=0.9,
                probs=[0.9 if label == _predicted(i) else 0.05 for label in labels],
            )
            for i in range(N_DOCS)
        )
        return run.id


def _test_part(store: Store, pid: int) -> list[str]:
    with store.session() as s:
        sample = validation.current_sample(s, local_user(s), pid)
        return [
            d.doc_id
            for d in validation.sample_docs(
                s, local_user(s), sample.project_id, sample, part="test"
            )
        ]


def test_the_report_uses_the_coded_test_part_only(store: Store) -> None:
    pid, _ = _setup(store)
    with store.session() as s:
        assert shares.corrected_shares(s, local_user(s), pid) is None  # no corpus pass yet
    run_id = _add_pass(store, pid, status="running")
    with store.session() as s:
        assert shares.corrected_shares(s, local_user(s), pid, run_id) is None  # an unfinished pass
        s.get(PredictionRun, run_id).status = "done"
    test_ids = _test_part(store, pid)
    tied = test_ids[0]
    with store.session() as s:  # a second coder disagrees on one test text: a tie
        validation.save_code(s, projects.ensure_user(s), pid, tied, "ben", "other")
        report = shares.corrected_shares(s, local_user(s), pid)
    coded = [d for d in test_ids if d != tied]
    corpus_ids = [i for i in range(N_DOCS) if f"d{i}" not in EMPTY]
    expected = estimate.estimate_shares(
        [_predicted(i) for i in corpus_ids],
        [_predicted(int(d[1:])) for d in coded],
        [_truth(int(d[1:])) for d in coded],
        LABELS,
    )
    assert report.rows == expected.rows
    assert (report.n_corpus, report.n_sample) == (N_DOCS - len(EMPTY), 19)
    assert (report.run_id, report.sample_method) == (run_id, "random")
    assert "Only 19 test texts are coded" in report.warning
    assert "1 coded text where the coders tied" in report.warning
    assert "stratified" not in report.warning
    assert report.to_dict()["rows"][0]["label"] == "economy"
    # the correction moves the over-predicted share towards the coded truth
    economy = report.rows[0]
    assert economy.corrected < economy.naive
    with store.session() as s:  # a sample drawn after training may overlap its training set
        sample = validation.current_sample(s, local_user(s), pid)
        model = s.get(StudentModel, report.model_id)
        model.created_at = sample.created_at - timedelta(hours=1)
        sample.created_at = model.created_at + timedelta(hours=2)
        assert (
            "drawn after the model was trained"
            in shares.corrected_shares(s, local_user(s), pid).warning
        )


def test_a_stratified_sample_is_weighted_and_says_so(store: Store) -> None:
    pid, strata_run_id = _setup(store, method="stratified")
    run_id = _add_pass(store, pid)
    coded = _test_part(store, pid)
    with store.session() as s:
        report = shares.corrected_shares(s, local_user(s), pid, run_id)
    population = [_llm(i) for i in range(N_DOCS) if f"d{i}" not in EMPTY]
    strata = [_llm(int(d[1:])) for d in coded]
    weights = sampling.inclusion_weights(population, strata)
    expected = estimate.estimate_shares(
        [_predicted(i) for i in range(N_DOCS) if f"d{i}" not in EMPTY],
        [_predicted(int(d[1:])) for d in coded],
        [_truth(int(d[1:])) for d in coded],
        LABELS,
        weights=[weights[h] for h in strata],
        strata=strata,
    )
    assert len(set(weights.values())) == 2  # the strata really have different weights
    assert report.rows == expected.rows
    assert report.weighted and report.stratified and report.sample_method == "stratified"
    assert report.warnings[0].startswith("The validation sample was stratified by LLM label")
    assert "inverse inclusion probabilities" in report.warning


def test_a_category_nobody_predicts_or_codes_is_bounded_and_says_so(store: Store) -> None:
    pid, _ = _setup(store)
    _add_pass(store, pid, labels=[*LABELS, "sport"])
    with store.session() as s:
        report = shares.corrected_shares(s, local_user(s), pid)
    sport = report.rows[-1]
    n = report.n_sample
    assert (sport.label, sport.naive, sport.corrected, sport.sample_only) == ("sport", 0, 0, 0)
    # was (0.0, 0.0): no coded text and no prediction, so no variance to show
    assert sport.corrected_ci == sport.sample_only_ci == (0.0, estimate.no_variation_bound(n))
    assert sport.bound_only and not any(r.bound_only for r in report.rows[:-1])
    sentence = next(w for w in report.warnings if w.startswith("For sport,"))
    assert f"none of the {n} coded test texts is in this category" in sentence
    assert f"at most {estimate.no_variation_bound(n):.1%}" in sentence
    assert report.to_dict()["rows"][-1]["bound_only"] is True


def _llm_with_sport(i: int) -> str:
    return "sport" if i in {3, 11, 29} else _llm(i)


def test_a_stratum_with_no_coded_test_text_is_named_and_kept(store: Store) -> None:
    pid, _ = _setup(store, method="stratified", llm=_llm_with_sport)
    _add_pass(store, pid)
    coded = _test_part(store, pid)
    with store.session() as s:
        report = shares.corrected_shares(s, local_user(s), pid)
    corpus_ids = [i for i in range(N_DOCS) if f"d{i}" not in EMPTY]
    assert not any(_llm_with_sport(int(d[1:])) == "sport" for d in coded)
    assert report.n_corpus == len(corpus_ids) == 58
    assert (report.n_uncovered, report.uncovered) == (3, [("sport", 3)])
    assert report.warnings[0].startswith("The validation sample was stratified by LLM label")
    assert report.warnings[1] == (
        "1 stratum of the sample has no coded test text: 'sport' (3 corpus texts). Its 3 "
        "texts are counted by the model's predictions alone, with no correction, and every "
        "interval is widened to allow any share among them."
    )
    # the weights N_h / n_h of the coded strata and the uncoded stratum's texts make up N
    population = [_llm_with_sport(i) for i in corpus_ids]
    strata = [_llm_with_sport(int(d[1:])) for d in coded]
    weights = sampling.inclusion_weights(population, strata)
    assert "sport" not in weights
    w = [weights[h] for h in strata]
    assert sum(w) + report.n_uncovered == pytest.approx(report.n_corpus)
    # the correction is spread over all N texts (the uncoded ones get none)
    for row in report.rows:
        residual = [
            (_truth(int(d[1:])) == row.label) - (_predicted(int(d[1:])) == row.label) for d in coded
        ]
        naive = sum(_predicted(i) == row.label for i in corpus_ids) / 58
        assert row.corrected == pytest.approx(
            naive + sum(a * b for a, b in zip(w, residual, strict=True)) / 58
        )
    expected = estimate.estimate_shares(
        [_predicted(i) for i in corpus_ids],
        [_predicted(int(d[1:])) for d in coded],
        [_truth(int(d[1:])) for d in coded],
        LABELS,
        strata=strata,
        corpus_strata=population,
    )
    assert report.rows == expected.rows
