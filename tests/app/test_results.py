"""The Results and Export pages on a project with a student and a corpus pass: every section
states its n, corrected shares sit beside the naive ones, and each export is offered."""

from __future__ import annotations

import pandas as pd

from distill_core.config import Settings
from distill_core.store import Store
from distill_core.study.demo import DEMO_DIR
from tests.app.conftest import open_page, texts
from tests.fakes import add_ready_model, demo_with_run, local_user


def _project_with_pass() -> list[str]:
    open_page()  # creates the demo project
    store = Store(Settings.from_env().database_url)
    pid, run_id = demo_with_run(store)
    return add_ready_model(store, pid, run_id, corpus_pass=True)


def test_results_show_comparison_shares_agreement_training_and_cost(home) -> None:
    eval_ids = _project_with_pass()
    at = open_page("steps/results.py")
    assert not at.exception, [e.value for e in at.exception]
    headers = [h.value for h in at.header]
    assert headers == [
        "Can the student be trusted?",
        "The whole corpus",
        "The LLM across codebook versions",
        "Training",
        "Cost and time",
    ]
    shown = texts(at)
    assert f"same {len(eval_ids)} held-out test texts" in shown
    assert "Labelled by model 1 (360 texts)" in shown
    # The student says "other" everywhere: its naive share is 100%, the corrected one is not.
    shares = next(d.value for d in at.dataframe if "corrected" in d.value.columns)
    row = shares.set_index("label").loc["other"]
    assert row["naive"].startswith("100.0%")
    assert not row["corrected"].startswith("100.0%")
    assert "95% CI" in row["corrected"]
    assert "imported" in shown or "random" in shown or "sample" in shown
    values = {m.label: m.value for m in at.metric}
    # identical texts are asked once
    assert values["LLM answers"] == str(pd.read_csv(DEMO_DIR / "corpus.csv")["text"].nunique())
    assert at.radio(key="chart_format").options == ["PNG", "SVG"]


def test_results_need_a_student_first(home) -> None:
    at = open_page("steps/results.py")
    assert "needs a trained student" in texts(at)


def test_export_offers_every_file_and_enables_them_by_step(home) -> None:
    _project_with_pass()
    at = open_page("steps/export.py")
    assert not at.exception, [e.value for e in at.exception]
    buttons = {b.label: b for b in at.get("download_button")}
    assert any("labelled corpus" in label for label in buttons)
    assert not any(b.disabled for b in buttons.values())
    at.radio(key="ex_format").set_value("Stata 14+ (.dta, value labels)").run()
    assert any("Stata" in b.label for b in at.get("download_button"))
    at.toggle(key="ex_preview").set_value(True).run()
    assert not at.exception, [e.value for e in at.exception]
    assert "held-out" in texts(at)


def test_the_methods_appendix_holds_every_figure_the_results_page_shows(home) -> None:
    from distill_core.reports.appendix import methods_appendix

    _project_with_pass()
    at = open_page("steps/results.py")
    shown = []
    for frame in at.dataframe:
        table = frame.value
        for column in (
            "macro-F1",
            "accuracy",
            "Cohen's κ",
            "corrected",
            "naive",
            "human sample only",
            "n",
        ):
            if column in table.columns:
                shown += [str(v) for v in table[column] if str(v) not in ("–", "not available")]
    shown += [m.value for m in at.metric if m.label in ("LLM answers", "LLM tokens")]
    assert len(shown) > 20
    store = Store(Settings.from_env().database_url)
    with store.session() as s:
        appendix = methods_appendix(s, local_user(s), 1)
    missing = [v for v in shown if v not in appendix.markdown]
    assert not missing, missing
