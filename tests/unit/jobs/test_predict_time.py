"""A corpus pass's time is what it took, restarts included, and no message says "in 0 s"
(the Fine-tune page's "The corpus is labelled by model 1: 100,000 texts in 0 s")."""

from __future__ import annotations

import time

import numpy as np
import pytest
from sqlalchemy import delete

from distill_core.clock import fmt_done
from distill_core.jobs import kinds
from distill_core.jobs.predict import start_predict_job
from distill_core.store import Job, Prediction, PredictionRun, Store
from distill_core.study import students
from tests.fakes import add_ready_model, demo_with_run, local_user

PAUSE = 0.4  # seconds the stand-in model takes per chunk


class _SlowPredictor:
    """A stand-in for the student: the first label for every text, after a pause."""

    device = "cpu"

    def __init__(self, folder) -> None:
        self.labels = ["health", "other"]

    def predict(self, texts, **_kw):
        from distill_core.student.predict import Predictions

        time.sleep(PAUSE)
        probs = np.tile([0.8, 0.2], (len(texts), 1))
        return Predictions(["health"] * len(texts), [0.8] * len(texts), probs)


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0.0, "100,000 texts"),
        (None, "100,000 texts"),
        (0.3, "100,000 texts in 1 s"),
        (372.0, "100,000 texts in 6 min"),
    ],
)
def test_a_count_and_its_time_never_say_zero_seconds(seconds, said) -> None:
    assert fmt_done(100_000, "texts", seconds) == said


def test_a_resumed_pass_adds_the_time_it_took_before(store: Store, monkeypatch) -> None:
    monkeypatch.setattr("distill_core.student.predict.Predictor", _SlowPredictor)
    pid, run_id = demo_with_run(store)
    add_ready_model(store, pid, run_id)
    with store.session() as s:
        model_id = students.latest_model(s, local_user(s), pid).id
        job_id, prun = start_predict_job(s, local_user(s), project_id=pid, model_id=model_id)
    kinds.execute(store, job_id)
    with store.session() as s:
        first = s.get(PredictionRun, prun).seconds
        message = s.get(Job, job_id).message
        s.execute(delete(Prediction).where(Prediction.run_id == prun, Prediction.doc_id > "d2"))
        s.get(PredictionRun, prun).status = "failed"  # killed half-way
    assert first >= PAUSE
    assert message == f"Labelled {fmt_done(360, 'texts', first)} with the student."
    with store.session() as s:
        job2, again = start_predict_job(s, local_user(s), project_id=pid, model_id=model_id)
    assert again == prun
    kinds.execute(store, job2)
    with store.session() as s:
        run = s.get(PredictionRun, prun)
        assert run.status == "done" and run.n == 360
        assert run.seconds >= first + PAUSE  # both legs
