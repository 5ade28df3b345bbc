"""The train job as one whole: one progress total over every phase (monotone, the k-fold
students included, full at the end, with the phase and the time left), an estimate whose
phases and step counts are the job's own, and one training at a time per project."""

from __future__ import annotations

from datetime import timedelta

import pytest

from distill_core.clock import utcnow
from distill_core.config import Settings
from distill_core.jobs import kinds, records
from distill_core.jobs.records import JobProgress, Phases
from distill_core.jobs.train import estimate_train_job, running_training, start_train_job
from distill_core.store import Job, Store, StudentModel
from distill_core.student.args import TrainingArgs
from distill_core.study.students import StudentError
from tests.fakes import demo_with_run, local_user
from tests.unit.study import test_students

sqlite_store = test_students.sqlite_store  # the fixture: a SQLite store in DISTILL_HOME
TINY = TrainingArgs(epochs=2, batch_size=16, max_length=32, seed=3, early_stopping_patience=0)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_phases_make_one_monotone_total_with_the_time_left() -> None:
    clock = _Clock()
    phases = Phases([("student", 20), ("fold 1", 6), ("fold 2", 6)], clock=clock)
    assert phases.total == 32
    first = phases.at("student", 0, 20)
    assert (phases.done, first.eta_s) == (0, None)  # no rate yet
    clock.now += 10
    p = phases.at("student", 10, 20)
    assert phases.done == 10 and p.eta_s == pytest.approx(22.0)  # 1 s a step, 22 to go
    assert p.text(phases.done, phases.total) == "10 of 32 steps · student · about 20 s left"
    clock.now += 2
    phases.at("student", 12, 20)  # early stopping ends it at 12 of 20
    clock.now += 1
    phases.at("fold 1", 0, 6)  # the bar jumps to the next phase's start
    assert phases.done == 20
    phases.at("fold 1", 3, 6)
    phases.at("student", 5, 20)  # a late report never moves it back
    assert phases.done == 23
    phases.at("fold 2", 0, 8)  # longer than planned: the total grows
    assert phases.total == 34
    phases.at("seed 3", 0, 4)  # not planned: appended
    assert phases.total == 38
    phases.finish()
    assert phases.done == phases.total == 38


def test_the_progress_record_reads_back_from_a_job_result() -> None:
    p = JobProgress(phase="Student on human codes, fold 2 of 5", eta_s=190.0)
    assert JobProgress.of({"progress": p.to_dict(), "curves": {}}) == p
    assert JobProgress.of({"model_id": 3}) is None and JobProgress.of(None) is None
    assert p.text(120, 1070) == (
        "120 of 1,070 steps · Student on human codes, fold 2 of 5 · about 3 min left"
    )
    assert "left" not in p.text(1070, 1070)


def test_a_second_training_of_the_project_is_refused_while_one_is_active(store: Store) -> None:
    pid, run_id = demo_with_run(store)
    with store.session() as s:
        assert running_training(s, local_user(s), pid) is None
        job_id, _ = start_train_job(s, local_user(s), pid, label_run_id=run_id, args=TINY)
    with store.session() as s, pytest.raises(StudentError) as refused:
        start_train_job(s, local_user(s), pid, label_run_id=run_id, args=TINY)
    assert str(refused.value).startswith("A training job is waiting for a worker (queued ")
    assert "by local" in str(refused.value) and str(refused.value).endswith("or cancel it.")
    started = utcnow().replace(hour=14, minute=2)
    with store.session() as s:
        job = s.get(Job, job_id)
        job.status, job.started_at, job.heartbeat_at = "running", started, utcnow()
    with store.session() as s:
        busy = running_training(s, local_user(s), pid)
        assert busy.job_id == job_id
        assert busy.reason() == (
            "A training job is running (started 14:02 UTC by local); wait for it or cancel it."
        )
        with pytest.raises(StudentError, match="is running"):
            start_train_job(s, local_user(s), pid, label_run_id=run_id, args=TINY)
    with store.session() as s:  # its worker died: the sweep fails it, and it blocks nothing
        s.get(Job, job_id).heartbeat_at = utcnow() - timedelta(minutes=10)
    with store.session() as s:
        assert running_training(s, local_user(s), pid) is None
        assert s.get(Job, job_id).status == "failed"
        start_train_job(s, local_user(s), pid, label_run_id=run_id, args=TINY)


@pytest.mark.slow
def test_the_estimate_and_the_progress_of_a_two_fold_job_count_the_same_steps(
    sqlite_store: Store, monkeypatch
) -> None:
    store = sqlite_store
    pid, run_id = demo_with_run(store)
    with store.session() as s:
        found = estimate_train_job(
            s, local_user(s), pid, label_run_id=run_id, args=TINY, human_folds=2
        )
        remote = Settings(Settings.from_env().home, "", redis_url="redis://worker:6379/0")
        job_id, _ = start_train_job(
            s, local_user(s), pid, label_run_id=run_id, args=TINY, human_folds=2
        )
    names = [p.phase for p in found.phases]
    assert names == [
        "Student on LLM labels",
        "Student on human codes, fold 1 of 2",
        "Student on human codes, fold 2 of 2",
        "TF-IDF + logistic regression on LLM labels",
    ]
    assert all(p.seconds > 0 for p in found.phases)
    assert found.where == "this machine" and found.sentence().startswith("About ")

    seen: list[tuple[int, int, JobProgress | None]] = []
    phase_totals: dict[str, int] = {}
    update = records.update_job

    live_n: list[dict] = []

    def track(store_, job_id_, **values):
        if "done" in values:
            progress = JobProgress.of(values.get("result"))
            seen.append((values["done"], values["total"], progress))
            live_n.append(values["result"]["n_train"])
        return update(store_, job_id_, **values)

    monkeypatch.setattr(records, "update_job", track)
    from distill_core.jobs import train as train_job

    phase = train_job._Tracker.phase

    def spy(self, name):
        inner = phase(self, name)

        def on_progress(p):
            phase_totals[name] = p.total_steps
            inner(p)

        return on_progress

    monkeypatch.setattr(train_job._Tracker, "phase", spy)
    kinds.execute(store, job_id)
    with store.session() as s:
        job = s.get(Job, job_id)
        assert job.status == "done", job.message
        meta = s.get(StudentModel, job.params["model_id"]).meta
    # the live chart's n is what each training fits on (after the validation split)
    assert live_n and live_n[0]["Student on LLM labels"] == meta["n_train"]
    assert all(n == live_n[0] for n in live_n)
    done = [d for d, _, _ in seen]
    totals = {t for _, t, _ in seen}
    assert done == sorted(done) and done[-1] == found.steps  # monotone, full at the end
    assert totals == {found.steps}  # one total, planned before the first step
    assert {n: found.phases[names.index(n)].steps for n in phase_totals} == phase_totals
    shown = {p.phase for _, _, p in seen if p}
    assert {"Student on human codes, fold 1 of 2", "Student on human codes, fold 2 of 2"} <= shown
    assert any(p and p.eta_s is not None for _, _, p in seen)

    with store.session() as s:  # measured here, not on the worker: it says so
        far = estimate_train_job(
            s,
            local_user(s),
            pid,
            label_run_id=run_id,
            args=TrainingArgs(epochs=1, max_length=32),
            human_folds=0,
            settings=remote,
        )
    assert far.where == "this machine, not the worker that will train"
    assert [p.phase for p in far.phases][0] == "Student on LLM labels" and len(far.phases) == 2
