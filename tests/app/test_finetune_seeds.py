"""The Fine-tune page and seeds: the setting is off (1) by default, a start with N seeds queues
N, and a model trained with several seeds shows their mean and range beside the student's row
and says which model is kept; a model with one seed shows no seed column."""

from __future__ import annotations

from sqlalchemy import select

from distill_core.config import Settings
from distill_core.store import Job, Store, StudentModel
from distill_core.student.card import SeedRuns, SeedScore
from tests.app.conftest import open_page, texts
from tests.fakes import add_ready_model, demo_with_run


def _store() -> Store:
    return Store(Settings.from_env().database_url)


def test_the_seeds_setting_is_off_by_default_and_a_start_queues_it(home, monkeypatch) -> None:
    import ui.jobs

    submitted = []  # no worker: the job is recorded, not run
    monkeypatch.setattr(
        ui.jobs, "submit_job", lambda ctx, job_id, api_key=None: submitted.append(job_id)
    )
    open_page()
    store = _store()
    demo_with_run(store)
    at = open_page("steps/finetune.py")
    assert not at.exception, [e.value for e in at.exception]
    seeds = at.number_input(key="ft_seeds")
    assert seeds.value == 1
    assert "N times as long" in seeds.help and "first seed" in seeds.help
    seeds.set_value(3).run()
    next(b for b in at.button if b.label == "Start fine-tuning").click().run()
    assert not at.exception, [e.value for e in at.exception]
    with store.session() as s:
        model = s.scalar(select(StudentModel))
        assert model.args["seeds"] == 3
        assert s.get(Job, model.job_id).kind == "train"
    assert submitted == [model.job_id]


def test_a_model_trained_with_seeds_shows_the_range_beside_the_student(home) -> None:
    open_page()
    store = _store()
    pid, run_id = demo_with_run(store)
    eval_ids = add_ready_model(store, pid, run_id)
    at = open_page("steps/finetune.py")
    assert "macro-F1 across seeds" not in at.dataframe[0].value.columns  # one seed: no column
    runs = SeedRuns(
        [SeedScore(42, 0.71, 0.80), SeedScore(43, 0.69, 0.78), SeedScore(44, 0.73, 0.82)],
        n=len(eval_ids),
    )
    with store.session() as s:
        model = s.scalar(select(StudentModel))
        model.comparison = {**model.comparison, "seeds": runs.to_dict()}
    at = open_page("steps/finetune.py")
    assert not at.exception, [e.value for e in at.exception]
    table = at.dataframe[0].value
    column = dict(zip(table["model"], table["macro-F1 across seeds"], strict=True))
    assert column["Student on LLM labels"] == "0.710 (range 0.690–0.730), 3 seeds"
    assert column["LLM labels"] == "–"
    shown = texts(at)
    assert "Across 3 seeds: macro-F1 0.710 (range 0.690–0.730)" in shown
    assert "first seed's (seed 42)" in shown
