"""The Fine-tune page: the training set's counts with the held-out exclusion, a start that
is refused with a sentence, and a ready model's comparison table, charts and corpus button."""

from __future__ import annotations

from distill_core.config import Settings
from distill_core.store import Store
from distill_core.study import students
from tests.app.conftest import open_page, texts
from tests.fakes import add_ready_model, demo_with_run, local_user


def _store() -> Store:
    return Store(Settings.from_env().database_url)


def test_the_page_shows_the_training_set_with_the_held_out_texts_excluded(home) -> None:
    open_page()  # creates the demo project
    store = _store()
    pid, run_id = demo_with_run(store)
    with store.session() as s:
        ts = students.training_set(s, local_user(s), pid, run_id)
    at = open_page("steps/finetune.py")
    assert not at.exception, [e.value for e in at.exception]
    values = {m.label: m.value for m in at.metric}
    assert values["Labelled by the LLM"] == "360"
    assert values["Held out for testing"] == "−60"
    assert values["Invalid answers"] == f"−{ts.invalid}"
    assert values["Used for training"] == f"{len(ts.texts):,}"
    # Floors that leave too little: one sentence, nothing queued.
    at.number_input(key="ft_minconf").set_value(0.9).run()
    next(b for b in at.button if b.label == "Start fine-tuning").click().run()
    assert not at.exception
    assert "a student needs at least 10" in texts(at)
    with store.session() as s:
        assert not students.project_models(s, local_user(s), pid)


def test_a_ready_model_shows_the_fair_comparison_and_the_corpus_button(home) -> None:
    open_page()
    store = _store()
    pid, run_id = demo_with_run(store)
    eval_ids = add_ready_model(store, pid, run_id)
    at = open_page("steps/finetune.py")
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    assert list(table["model"]) == ["LLM labels", "Student on LLM labels"]
    # A perfect score on 60 texts: the interval reaches 1 and, honest at this n, not only 1
    # (no errors seen is not no errors possible: agreement's widened BCa interval).
    assert table["macro-F1"][0].startswith("1.000 (95% CI 0.")
    assert table["macro-F1"][0].endswith("–1.000)")
    shown = texts(at)
    assert f"same {len(eval_ids)} held-out test texts" in shown
    assert any(b.label == "Label the corpus with this model" for b in at.button)
    assert "Model 1:" in at.selectbox(key="ft_model").format_func(
        at.selectbox(key="ft_model").value
    )
