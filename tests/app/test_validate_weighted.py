"""The Validate page on a stratified sample: the held-out figures of this sample and the
design-weighted corpus estimate, each labelled; a random sample shows the sample's alone."""

from __future__ import annotations

from distill_core.config import Settings
from distill_core.store import Store
from distill_core.study import validation
from tests.app.conftest import open_page, open_tab, texts
from tests.fakes import demo_with_run, local_user
from ui.agreement import CORPUS, SAMPLE


def _sample_and_code(method: str) -> None:
    """A new sample of the demo corpus (stratified by the LLM run over the whole corpus, or
    random) whose uncoded test texts a coder codes 'other'."""
    store = Store(Settings.from_env().database_url)
    pid, run_id = demo_with_run(store)
    with store.session() as s:
        user = local_user(s)
        kwargs = {"strata_run_id": run_id, "min_per_stratum": 5} if method == "stratified" else {}
        sample = validation.draw_sample(s, user, pid, n=80, seed=4, method=method, **kwargs)
        gold, _ = validation.gold_labels(validation.codes_frame(s, user, pid))
        for d in validation.sample_docs(s, user, pid, sample, part="test"):
            if d.doc_id not in gold:
                validation.save_code(s, user, pid, d.doc_id, "tester", "other")
    store.dispose()


def _held_out_page():
    at = open_tab(open_page("steps/validate.py"), "Agreement")
    reveal = next(b for b in at.button if b.label == "Show the held-out test score")
    reveal.click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_stratified_sample_shows_this_sample_and_the_corpus_estimate(home) -> None:
    open_page()  # the app makes the demo project
    _sample_and_code("stratified")
    at = _held_out_page()
    shown = texts(at)
    assert f"**{SAMPLE}** (unweighted)" in shown and f"**{CORPUS}**" in shown
    assert "standing for" in shown and "inverse of its chance of being drawn" in shown
    labels = [m.label for m in at.metric]
    assert "Accuracy, corpus estimate" in labels and "Macro F1, corpus estimate" in labels
    assert "Accuracy" in labels  # the sample's own figure stays


def test_a_random_sample_shows_only_the_sample_figures(home) -> None:
    open_page()
    _sample_and_code("random")
    at = _held_out_page()
    shown = texts(at)
    assert "Scored on" in shown and CORPUS not in shown and SAMPLE not in shown
    assert not any("corpus estimate" in m.label for m in at.metric)
