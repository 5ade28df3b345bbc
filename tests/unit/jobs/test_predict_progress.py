"""A corpus pass's progress and figures: only stored texts count as done, so the bar never goes
back when a killed worker's job resumes; the rate counts predicting, not loading the model; the
bar says the time left; chunks aim at a few seconds of work."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import func, select

from distill_core.jobs import kinds, predict, records
from distill_core.jobs.predict import MIN_CHUNK, PREDICT_CHUNK, chunk_size, start_predict_job
from distill_core.store import Job, Prediction, PredictionRun, Store
from distill_core.study import students
from tests.fakes import add_ready_model, demo_with_run, local_user

LOAD_S = 100.0  # seconds the stand-in "loads the model" on the stand-in clock
RATE = 200.0  # texts per second the stand-in predicts on the stand-in clock


class Clock:
    """A stand-in for the pass's clock: time moves only when the stand-in model works."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Killed(BaseException):  # noqa: N818 - what SIGKILL does to the worker: nothing handles it
    """Raised by the stand-in model to stop the worker where it is, as a SIGKILL would."""


def stand_in(clock: Clock, kill_on_call: int | None = None, calls: list | None = None):
    """A Predictor class: loading takes LOAD_S, each text 1/RATE s; the kill_on_call-th
    predict call never returns (the worker dies in it)."""
    calls = [] if calls is None else calls

    class StandIn:
        device = "cpu"

        def __init__(self, folder) -> None:
            clock.now += LOAD_S
            self.labels = ["health", "other"]

        def predict(self, texts, **_kw):
            from distill_core.student.predict import Predictions

            calls.append(len(texts))
            if kill_on_call is not None and len(calls) == kill_on_call:
                clock.now += len(texts) / RATE / 2  # half-way through the chunk
                raise Killed
            clock.now += len(texts) / RATE
            probs = np.tile([0.8, 0.2], (len(texts), 1))
            return Predictions(["health"] * len(texts), [0.8] * len(texts), probs)

    return StandIn


@pytest.fixture
def pass_job(store: Store, monkeypatch):
    """A queued corpus pass over the demo's 360 texts, and the stand-in clock it runs on."""
    clock = Clock()
    monkeypatch.setattr(predict, "clock", clock)
    pid, run_id = demo_with_run(store)
    add_ready_model(store, pid, run_id)
    with store.session() as s:
        model_id = students.latest_model(s, local_user(s), pid).id
        job_id, prun = start_predict_job(s, local_user(s), project_id=pid, model_id=model_id)
    return job_id, prun, clock


@pytest.fixture
def writes(monkeypatch):
    """Every progress write of the job (done, result, message), in order."""
    seen: list[dict] = []
    real = records.update_job

    def spy(store, job_id, **fields):
        seen.append(dict(fields))
        return real(store, job_id, **fields)

    monkeypatch.setattr(records, "update_job", spy)
    return seen


def stored(store: Store, prun: int) -> tuple[int, int]:
    with store.session() as s:
        return s.execute(
            select(func.count(), func.count(func.distinct(Prediction.doc_id))).where(
                Prediction.run_id == prun
            )
        ).one()


def test_chunks_hold_a_few_seconds_of_whole_batches() -> None:
    assert chunk_size(None) == 4 * MIN_CHUNK
    assert chunk_size(1.0) == MIN_CHUNK  # a slow model: one batch at a time
    assert chunk_size(200.0) == 384  # 2 s at 200 texts/s, in batches of 64
    assert chunk_size(1e6) == PREDICT_CHUNK
    assert all(chunk_size(r) % MIN_CHUNK == 0 for r in (3.0, 77.0, 215.0, 999.0))


def test_a_killed_pass_resumes_without_the_bar_going_back(
    store: Store, monkeypatch, pass_job, writes
) -> None:
    job_id, prun, clock = pass_job
    calls: list[int] = []
    monkeypatch.setattr(
        "distill_core.student.predict.Predictor", stand_in(clock, kill_on_call=2, calls=calls)
    )
    with pytest.raises(Killed):
        kinds.execute(store, job_id)
    with store.session() as s:
        job = s.get(Job, job_id)
        assert job.status == "running"  # as a SIGKILL leaves it
        at_kill, seconds_at_kill = job.done, s.get(PredictionRun, prun).seconds
    assert calls[0] == 4 * MIN_CHUNK
    # the bar counted the stored chunk only, not the half of the next one the worker was in
    assert at_kill == stored(store, prun)[0] == calls[0]
    assert seconds_at_kill == pytest.approx(LOAD_S + calls[0] / RATE)
    with store.session() as s:
        assert records.resume_interrupted(s) == [job_id]
    monkeypatch.setattr("distill_core.student.predict.Predictor", stand_in(clock))
    first_leg = len(writes)
    kinds.execute(store, job_id)
    dones = [w["done"] for w in writes if "done" in w]
    assert dones == sorted(dones), "done went back"
    resumed = writes[first_leg]
    assert resumed["done"] == at_kill
    assert (
        resumed["message"] == f"Loading the model to go on: {at_kill:,} of 360 texts are labelled."
    )
    assert stored(store, prun) == (360, 360)  # every text once
    with store.session() as s:
        job, run = s.get(Job, job_id), s.get(PredictionRun, prun)
        assert (job.status, job.done, job.total, run.status, run.n) == (
            "done",
            360,
            360,
            "done",
            360,
        )
        # both legs' time: the first leg to its last stored chunk, the second leg whole
        assert run.seconds == pytest.approx(seconds_at_kill + LOAD_S + (360 - at_kill) / RATE)
        assert job.message == "Labelled 360 texts in 3 min with the student."


def test_the_rate_counts_predicting_and_the_bar_says_the_time_left(
    store: Store, monkeypatch, pass_job, writes
) -> None:
    job_id, prun, clock = pass_job
    monkeypatch.setattr("distill_core.student.predict.Predictor", stand_in(clock))
    kinds.execute(store, job_id)
    first = writes[0]
    assert first["message"] == "Loading the model…"
    loading = records.JobProgress.of(first["result"])
    assert (loading.phase, loading.unit, loading.eta_s) == ("loading the model", "texts", None)
    running = [w for w in writes[1:] if "result" in w]
    assert [w["done"] for w in running] == [256, 360]
    # 200 texts/s: the 100 s spent loading the model are not in the rate
    assert running[0]["message"] == "256 of 360 texts labelled (200 texts/s)."
    bar = records.JobProgress.of(running[0]["result"])
    assert (bar.unit, bar.eta_s) == ("texts", pytest.approx(104 / RATE, abs=0.05))
    assert bar.text(256, 360) == "256 of 360 texts · about 1 s left"
    assert records.JobProgress.of(running[-1]["result"]).eta_s is None  # nothing left
    with store.session() as s:
        assert s.get(Job, job_id).message == "Labelled 360 texts in 2 min with the student."


def test_a_cancel_stops_at_the_next_chunk_and_keeps_what_is_stored(
    store: Store, monkeypatch, pass_job
) -> None:
    job_id, prun, clock = pass_job
    calls: list[int] = []
    monkeypatch.setattr("distill_core.student.predict.Predictor", stand_in(clock, calls=calls))
    real = records.update_job

    def cancel_after_first_chunk(store_, job_id_, **fields):
        if fields.get("done"):
            with store.session() as s:
                s.get(Job, job_id_).cancel_requested = True
        return real(store_, job_id_, **fields)

    monkeypatch.setattr(records, "update_job", cancel_after_first_chunk)
    kinds.execute(store, job_id)
    with store.session() as s:
        job, run = s.get(Job, job_id), s.get(PredictionRun, prun)
        assert (job.status, run.status, run.n) == ("cancelled", "cancelled", calls[0])
    assert len(calls) == 1 and stored(store, prun) == (calls[0], calls[0])
