"""The train job's recipe: "auto" over the time budget trains every student of the job with the
fast head recipe, and the model, its card and the comparison say which recipe and why."""

from __future__ import annotations

import json

from distill_core.jobs import kinds
from distill_core.jobs import train as train_job
from distill_core.jobs.train import start_train_job
from distill_core.store import Job, Store, StudentModel
from distill_core.student.args import TrainingArgs
from distill_core.student.card import ModelMeta
from distill_core.student.predict import Predictor
from distill_core.study import students
from tests.fakes import demo_with_run, local_user
from tests.unit.study import test_students

sqlite_store = test_students.sqlite_store  # the fixture: a SQLite store in DISTILL_HOME


class _SlowEstimate:
    """What timing.estimate says on a slow CPU: two hours for full fine-tuning."""

    seconds = 7200.0
    s_per_step = 3.0


def test_auto_over_the_budget_trains_the_whole_job_with_the_head_recipe(
    sqlite_store: Store, monkeypatch
) -> None:
    store = sqlite_store
    pid, run_id = demo_with_run(store)
    timed = []

    def fake_estimate(trainings, **_):
        timed.append({t.args.recipe for t in trainings})
        return _SlowEstimate()

    monkeypatch.setattr(train_job, "estimate", fake_estimate)
    args = TrainingArgs(seed=3, time_budget_s=300)  # recipe "auto", 10 epochs at most
    with store.session() as s:
        job_id, model_id = start_train_job(
            s, local_user(s), pid, label_run_id=run_id, args=args, human_folds=2
        )
    kinds.execute(store, job_id)
    with store.session() as s:
        job, model = s.get(Job, job_id), s.get(StudentModel, model_id)
        assert job.status == "done", job.message
        folder = students.model_dir(model)
        meta = ModelMeta.from_dict(model.meta)
        comparison = model.comparison
    assert timed == [{"full"}]  # full fine-tuning of the whole job was timed, once
    assert meta.recipe == "head" and meta.args["recipe"] == "head"
    choice = meta.recipe_choice
    assert choice.requested == "auto" and choice.recipe == "head"
    assert choice.full_s == 7200.0 and choice.budget_s == 300
    assert "2 h" in choice.reason and "5 min" in choice.reason
    assert (folder / "head.safetensors").is_file()
    assert "chosen automatically" in (folder / "README.md").read_text(encoding="utf-8")
    saved = ModelMeta.from_dict(json.loads((folder / "distill.json").read_text("utf-8")))
    assert saved.recipe_choice == choice and saved.tfidf_val_macro_f1 is not None
    rows = {r["key"]: r for r in comparison["rows"]}
    assert list(rows) == ["llm", "student_llm", "student_human", "tfidf_llm"]
    assert rows["student_human"]["metrics"]["n"] == comparison["eval"]["n"]
    # the corpus pass loads the head model like any other
    assert Predictor(folder).predict(["a text"]).probabilities.shape == (1, len(meta.labels))
    with store.session() as s:
        assert students.latest_model(s, local_user(s), pid).id == model_id
