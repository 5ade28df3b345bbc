"""The Fine-tune page says how long the corpus pass took, never "in 0 s"."""

from __future__ import annotations

from distill_core.config import Settings
from distill_core.store import PredictionRun, Store
from tests.app.conftest import open_page
from tests.fakes import add_ready_model, demo_with_run


def _said(at) -> str:
    return next(s.value for s in at.success if "The corpus is labelled" in s.value)


def test_the_corpus_pass_message_gives_the_time_it_took(home) -> None:
    open_page()
    store = Store(Settings.from_env().database_url)
    pid, run_id = demo_with_run(store)
    add_ready_model(store, pid, run_id, corpus_pass=True)
    with store.session() as s:
        run = s.query(PredictionRun).one()
        run.seconds = 372.0
    at = open_page("steps/finetune.py")
    assert not at.exception, [e.value for e in at.exception]
    assert f"by model {run.model_id}: 360 texts in 6 min. See Results" in _said(at)
    with store.session() as s:  # no time recorded (a pass written before it was kept)
        s.query(PredictionRun).one().seconds = 0.0
    at = open_page("steps/finetune.py")
    assert ": 360 texts. See Results" in _said(at)
