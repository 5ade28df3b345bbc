"""The one scorer on a stratified sample: beside the sample's own figures, the design-weighted
corpus estimate (strata sizes from the strata run over the corpus's non-empty texts), a
warning for every stratum with no scored text, and no corpus estimate for a random sample."""

from __future__ import annotations

import pytest

from distill_core.agreement import accuracy, weighted_compare
from distill_core.codebook import Codebook
from distill_core.corpus import prepare_corpus, read_table
from distill_core.store import LabelRun, Store, ValidationSample
from distill_core.study import labelling, projects, scoring, validation
from tests.fakes import MappingTeacher, local_user

LABELS = ["economy", "health", "other"]
#: 100 texts and one empty one (never drawn, never counted in a stratum)
CSV = "id,text\n" + "".join(f"d{i},text number {i}\n" for i in range(100)) + "d100,\n"
#: The LLM's labels: 'health' for d0-d9, 'other' for d10-d19, 'economy' for the rest.
LLM = {f"d{i}": "health" if i < 10 else "other" if i < 20 else "economy" for i in range(100)}


def _project(store: Store) -> tuple[int, int]:
    """A project with the corpus above, a codebook and the LLM run that labels it as LLM."""
    table = read_table(CSV.encode(), "c.csv")
    codebook = Codebook.from_dict(
        {"name": "T", "labels": [{"name": n, "definition": n} for n in LABELS]}
    )
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = projects.create_project(s, user, "S").id
        projects.save_corpus(s, user, pid, table, prepare_corpus(table, "text", "id"))
        projects.save_codebook(s, user, pid, codebook)
        corpus = projects.get_corpus(s, user, pid)
        docs = projects.load_documents(s, user, pid, with_extra=False)
        by_text = {t: LLM[d] for d, t in zip(docs["doc_id"], docs["text"], strict=True) if t}
        teacher = MappingTeacher(by_text, "economy")
        run_id = labelling.create_run(
            s,
            teacher=teacher,
            codebook=codebook,
            n_texts=len(docs),
            project_id=pid,
            corpus_id=corpus.id,
        ).id
        items = [(d, t) for d, t in zip(docs["doc_id"], docs["text"], strict=True) if t]
    labelling.label_texts(store, run_id, teacher, items)
    return pid, run_id


def _human(doc_id: str) -> str:
    """The human codes: the LLM is right on 'economy' texts, wrong on every other 'health' and
    'other' text."""
    i = int(doc_id[1:])
    return LLM[doc_id] if i >= 20 or i % 2 else "economy"


def _draw_and_code(store, pid, run_id, *, method="stratified", skip=()):
    """A sample of 40 (stratified: at least 10 per LLM label) whose test texts are coded,
    except those the LLM labelled as one of ``skip``; returns the sample and its test ids."""
    with store.session() as s:
        user = local_user(s)
        kwargs = {"strata_run_id": run_id, "min_per_stratum": 10} if method == "stratified" else {}
        sample = validation.draw_sample(s, user, pid, n=40, seed=5, method=method, **kwargs)
        test = [d.doc_id for d in validation.sample_docs(s, user, pid, sample, part="test")]
        for d in test:
            if LLM[d] not in skip:
                validation.save_code(s, user, pid, d, "expert", _human(d))
    return sample, test


def _score(store, pid, run_id):
    with store.session() as s:
        user = local_user(s)
        run = s.get(LabelRun, run_id)
        return scoring.score_run(s, user, pid, run, "test")


def test_a_stratified_sample_gets_the_design_weighted_corpus_estimate(store: Store) -> None:
    pid, run_id = _project(store)
    _sample, test = _draw_and_code(store, pid, run_id)
    score = _score(store, pid, run_id)
    assert score is not None and score.corpus is not None and score.corpus.warnings == []
    est = score.corpus.agreement
    population = {"economy": 80, "health": 10, "other": 10}  # the empty text is in none
    assert {s.key: s.population for s in est.strata} == population
    assert est.population == 100 and est.n == score.n == len(test)
    truth, pred = [_human(d) for d in score.doc_ids], [LLM[d] for d in score.doc_ids]
    expected = weighted_compare(truth, pred, pred, population, labels=LABELS, n_boot=0)
    assert est.accuracy == pytest.approx(expected.accuracy)
    assert est.macro_f1 == pytest.approx(expected.macro_f1)
    # by hand: the corpus accuracy is 80 right + 5 of 10 + 5 of 10 over 100
    assert est.accuracy == pytest.approx(0.9, abs=0.06)
    # the sample's own figure over-represents the rare labels the LLM gets wrong
    assert score.agreement.accuracy == pytest.approx(accuracy(truth, pred))
    assert score.agreement.accuracy < est.accuracy - 0.1
    assert est.ci["accuracy"][0] <= est.accuracy <= est.ci["accuracy"][1]
    assert "stratified by" in score.corpus.method and str(run_id) in score.corpus.method


def test_a_stratum_without_scored_test_texts_is_a_warning(store: Store) -> None:
    pid, run_id = _project(store)
    _draw_and_code(store, pid, run_id, skip=("other",))
    score = _score(store, pid, run_id)
    est = score.corpus.agreement
    assert [(s.key, s.population) for s in est.uncovered] == [("other", 10)]
    (warning,) = score.corpus.warnings
    assert "1 stratum of the corpus has no scored text" in warning
    assert "'other' (10 corpus texts)" in warning and "other 90 of 100 texts" in warning


def test_a_random_sample_has_no_corpus_estimate(store: Store) -> None:
    pid, run_id = _project(store)
    _draw_and_code(store, pid, run_id, method="random")
    score = _score(store, pid, run_id)
    assert score is not None and score.corpus is None


def test_without_the_strata_run_the_estimate_says_why(store: Store) -> None:
    pid, run_id = _project(store)
    sample, _ = _draw_and_code(store, pid, run_id)
    with store.session() as s:
        s.get(ValidationSample, sample.id).strata_run_id = None  # its run deleted
    score = _score(store, pid, run_id)
    assert score.corpus.agreement is None and "is gone" in score.corpus.warnings[0]


def test_the_appendix_reports_the_corpus_estimate_and_its_strata(store: Store) -> None:
    from distill_core.reports.appendix import methods_appendix

    pid, run_id = _project(store)
    _draw_and_code(store, pid, run_id, skip=("other",))
    with store.session() as s:
        appendix = methods_appendix(s, local_user(s), pid)
        score = scoring.score_run(s, local_user(s), pid, s.get(LabelRun, run_id), "test")
    md = appendix.markdown
    assert "## LLM–human agreement: corpus estimate (design-weighted)" in md
    weighted = score.corpus.agreement
    assert appendix.figures["llm_test.corpus.n"] == str(weighted.n)
    assert appendix.figures["llm_test.corpus.accuracy"] in md
    assert "no scored text here: 'other' (10 corpus texts)" in md
    assert "| other | 10 | 0 | n/a (not represented) |" in md


def test_the_appendix_has_no_corpus_estimate_for_a_random_sample(store: Store) -> None:
    from distill_core.reports.appendix import methods_appendix

    pid, run_id = _project(store)
    _draw_and_code(store, pid, run_id, method="random")
    with store.session() as s:
        md = methods_appendix(s, local_user(s), pid).markdown
    assert "corpus estimate (design-weighted)" not in md
