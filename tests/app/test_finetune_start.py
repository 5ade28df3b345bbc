"""The Fine-tune page before a training: "Estimate time" shows the projected time of the whole
job (kept while the settings stay the same), and "Start fine-tuning" is disabled with the
reason while a training of the project is queued or running."""

from __future__ import annotations

from distill_core.config import Settings
from distill_core.jobs import train as train_job
from distill_core.jobs.train import start_train_job
from distill_core.store import Store
from distill_core.student.args import TrainingArgs
from distill_core.student.timing import JobEstimate, PhaseEstimate
from tests.app.conftest import open_page, texts
from tests.fakes import demo_with_run, local_user


def _store() -> Store:
    return Store(Settings.from_env().database_url)


def _start_button(at):
    return next(b for b in at.button if b.label == "Start fine-tuning")


def test_estimate_time_shows_the_whole_jobs_time_and_keeps_it(home, monkeypatch) -> None:
    asked = []

    def fake(trainings, *, extra=(), where="this machine"):
        asked.append([t.phase for t in trainings])
        phases = tuple(PhaseEstimate(t.phase, 100, 60.0) for t in trainings)
        return JobEstimate(phases + tuple(extra), 0.31, 4, "cpu", 2, True, where)

    monkeypatch.setattr(train_job, "estimate", fake)  # the real one is timed in its own tests
    open_page()
    demo_with_run(_store())
    at = open_page("steps/finetune.py")
    assert not at.exception, [e.value for e in at.exception]
    assert "About" not in texts(at)
    next(b for b in at.button if b.label == "Estimate time").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = [i.value for i in at.info]
    assert any(
        s.startswith("About 6 min (measured 0.31 s/step on this machine); at most") for s in shown
    ), shown
    assert asked[0][0] == "Student on LLM labels"
    assert "Student on human codes, fold 5 of 5" in asked[0]  # the default 5 folds
    at.run()  # a rerun with the same settings shows it without measuring again
    assert any(i.value.startswith("About 6 min") for i in at.info) and len(asked) == 1
    at.number_input(key="ft_epochs").set_value(3).run()  # other settings: not known yet
    assert not any(i.value.startswith("About") for i in at.info)
    assert _start_button(at).disabled is False


def test_the_start_button_is_disabled_with_the_reason_while_a_training_runs(home) -> None:
    open_page()
    store = _store()
    pid, run_id = demo_with_run(store)
    with store.session() as s:
        start_train_job(
            s, local_user(s), pid, label_run_id=run_id, args=TrainingArgs(epochs=1), human_folds=0
        )
    at = open_page("steps/finetune.py")
    assert not at.exception, [e.value for e in at.exception]
    button = _start_button(at)
    assert button.disabled
    reason = "A training job is waiting for a worker (queued "
    assert reason in (button.help or "")
    assert reason in texts(at) and "by local); wait for it or cancel it." in texts(at)
