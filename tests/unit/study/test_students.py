"""Students in a project: the training set leaves out held-out test texts and invalid answers,
training runs as a job with progress and the fair comparison, cancel leaves nothing behind,
and a corpus pass stores every prediction and resumes after an interruption."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from distill_core.jobs import kinds, records
from distill_core.jobs.predict import start_predict_job
from distill_core.jobs.train import start_train_job
from distill_core.store import (
    Job,
    Prediction,
    PredictionRun,
    Store,
    StudentModel,
    ValidationSample,
)
from distill_core.student.args import TrainingArgs
from distill_core.student.predict import Predictor
from distill_core.study import projects, runs, students, validation
from distill_core.study.comparison import evaluation_set, fair_comparison
from tests.fakes import demo_with_run, local_user, local_user_id

TINY = TrainingArgs(epochs=1, batch_size=16, max_length=32, seed=3)


@pytest.fixture
def sqlite_store(tmp_path, monkeypatch) -> Store:
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    s = Store(f"sqlite:///{tmp_path / 'distill.db'}")
    s.migrate()
    yield s
    s.dispose()


def test_the_training_set_leaves_out_held_out_texts_and_invalid_answers(store: Store) -> None:
    pid, run_id = demo_with_run(store)
    with store.session() as s:
        ts = students.training_set(s, local_user(s), pid, run_id)
        held_out = validation.training_exclusions(s, pid)
        results = runs.results_frame(s, local_user(s), pid, run_id)
    assert ts.n_llm == 360
    assert ts.excluded_test == len(held_out) == 60
    outside = results[~results["doc_id"].isin(held_out)]
    assert ts.invalid == int((outside["status"] != "ok").sum()) > 0
    assert len(ts.texts) == 360 - 60 - ts.invalid
    assert not set(ts.doc_ids) & held_out
    assert ts.counts()["n_available"] == len(ts.texts)
    with store.session() as s:
        other = projects.create_project(s, local_user(s), "Another study").id
    with store.session() as s, pytest.raises(students.StudentError, match="not part"):
        students.training_set(s, local_user(s), other, run_id)


def test_too_few_labels_is_a_sentence_and_queues_nothing(store: Store) -> None:
    pid, run_id = demo_with_run(store)
    args = TrainingArgs(min_confidence=0.99)  # the fake teacher gives no confidences
    with store.session() as s, pytest.raises(students.StudentError, match="at least 10"):
        start_train_job(s, local_user(s), project_id=pid, label_run_id=run_id, args=args)
    with store.session() as s:
        assert s.scalar(select(StudentModel)) is None


def test_a_train_job_trains_compares_and_a_corpus_pass_stores_every_prediction(
    sqlite_store: Store,
) -> None:
    store = sqlite_store
    pid, run_id = demo_with_run(store)
    with store.session() as s:
        job_id, model_id = start_train_job(
            s, local_user(s), project_id=pid, label_run_id=run_id, args=TINY, human_folds=2
        )
        frozen = s.get(Job, job_id).params["evaluation"]
        first_sample = validation.current_sample(s, local_user(s), pid).id
        gold, _ = validation.gold_labels(validation.codes_frame(s, local_user(s), pid))
        n_eval = len(validation.training_exclusions(s, pid) & set(gold))
        # A new sample drawn while the job waits changes nothing about its comparison.
        validation.draw_sample(s, local_user(s), pid, n=40, seed=7)
        held_out = len(validation.training_exclusions(s, pid))  # both samples' test parts
    assert frozen["sample_id"] == first_sample and len(frozen["doc_ids"]) == n_eval
    kinds.execute(store, job_id)
    with store.session() as s:
        job, model = s.get(Job, job_id), s.get(StudentModel, model_id)
        assert job.status == "done", job.message
        assert "held-out" in job.message
        assert model.status == "ready"
        folder = students.model_dir(model)
        comparison, meta, training = model.comparison, model.meta, model.training
        assert projects.steps_done(s, local_user(s), pid)["Fine-tune"]
        assert students.latest_model(s, local_user(s), pid).id == model_id
        # the comparison showed the LLM's held-out score: later codebook edits get a warning
        seen = s.get(ValidationSample, first_sample)
        assert seen.test_seen_codebook_version == 1
    assert training["excluded_test"] == held_out > 60  # the run labelled every text
    assert meta["n_train"] + meta["n_val"] == training["n_available"]
    assert meta["label_run_id"] == run_id and meta["codebook_version"] == 1
    assert (folder / "config.json").is_file()
    saved = json.loads((folder / "distill.json").read_text(encoding="utf-8"))
    assert [r["key"] for r in saved["heldout"]["rows"]] == [
        "llm",
        "student_llm",
        "student_human",
        "tfidf_llm",
    ]
    assert "## Scores on held-out human codes" in (folder / "README.md").read_text("utf-8")
    assert meta["heldout"] == saved["heldout"]
    assert comparison["eval"]["n"] == n_eval >= 50  # coders tie on a few held-out texts
    assert comparison["eval"]["doc_ids"] == frozen["doc_ids"]
    assert comparison["eval"]["sample_id"] == first_sample
    assert not set(frozen["doc_ids"]) & set(students_ts_ids(store, pid, run_id))
    assert comparison["eval"]["part"] == "test"
    rows = {r["key"]: r for r in comparison["rows"]}
    assert list(rows) == ["llm", "student_llm", "student_human", "tfidf_llm"]
    # The fake teacher knows the human codes, so its labels agree on every valid answer.
    llm = rows["llm"]["metrics"]
    assert llm["accuracy"] == pytest.approx(1 - llm["n_missing"] / n_eval)
    for row in rows.values():
        m = row["metrics"]
        assert m["n"] == n_eval
        low, high = m["ci"]["macro_f1"]
        assert low <= m["macro_f1"] <= high
        assert set(row["class_ci"]) == set(meta["labels"])
    assert "2-fold" in rows["student_human"]["name"]
    check_training_claims(store, pid, run_id, comparison)
    assert "of these human-coded texts" in rows["student_human"]["note"]
    # The student's own scores equal a fresh prediction of the held-out texts.
    with store.session() as s:
        texts = projects.get_documents(
            s, projects.get_corpus(s, local_user(s), pid).id, comparison["eval"]["doc_ids"]
        )
    again = Predictor(folder).predict([texts[d] for d in comparison["eval"]["doc_ids"]]).labels
    assert again == rows["student_llm"]["predictions"]
    curves = job.result  # the job's result holds the summary; curves were live progress
    assert curves["model_id"] == model_id

    with store.session() as s:
        pjob, prun = start_predict_job(s, local_user(s), project_id=pid, model_id=model_id)
    kinds.execute(store, pjob)
    with store.session() as s:
        assert s.get(Job, pjob).status == "done"
        run = s.get(PredictionRun, prun)
        assert run.status == "done" and run.n == 360
        frame = students.predictions_frame(s, local_user(s), pid, prun)
        assert students.latest_prediction_run(s, local_user(s), pid).id == prun
        assert projects.steps_done(s, local_user(s), pid)["Results"]
    assert len(frame) == 360 and frame["doc_id"].is_unique
    probs = frame[[f"prob_{label}" for label in meta["labels"]]].to_numpy()
    assert probs.sum(axis=1) == pytest.approx(1.0, abs=1e-4)
    assert frame["pred_confidence"].to_numpy() == pytest.approx(probs.max(axis=1), abs=1e-6)

    # An interrupted pass continues: drop half the predictions, mark the run failed, restart.
    kept = set(frame["doc_id"][:200])
    with store.session() as s:
        s.execute(
            delete(Prediction).where(Prediction.run_id == prun, Prediction.doc_id.not_in(kept))
        )
        s.get(PredictionRun, prun).status = "failed"
    with store.session() as s:
        pjob2, prun2 = start_predict_job(s, local_user(s), project_id=pid, model_id=model_id)
    assert prun2 == prun
    kinds.execute(store, pjob2)
    with store.session() as s:
        assert s.get(PredictionRun, prun).status == "done"
        again = students.predictions_frame(s, local_user(s), pid, prun, probabilities=False)
    assert len(again) == 360
    merged = again.merge(frame, on="doc_id", suffixes=("", "_first"))
    assert (merged["pred_label"] == merged["pred_label_first"]).all()


def test_cancel_stops_training_and_leaves_no_model_folder(sqlite_store: Store) -> None:
    store = sqlite_store
    pid, run_id = demo_with_run(store)
    long = TrainingArgs(epochs=50, batch_size=8, max_length=32, early_stopping_patience=0)
    with store.session() as s:
        job_id, model_id = start_train_job(
            s, local_user(s), project_id=pid, label_run_id=run_id, args=long, human_folds=0
        )
    worker = threading.Thread(target=kinds.execute, args=(store, job_id))
    worker.start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        with store.session() as s:
            if s.get(Job, job_id).done > 0:
                records.request_cancel(s, local_user(s), s.get(Job, job_id).project_id, job_id)
                break
        time.sleep(0.2)
    worker.join(timeout=300)
    with store.session() as s:
        assert s.get(Job, job_id).status == "cancelled"
        model = s.get(StudentModel, model_id)
        assert model.status == "cancelled" and model.path is None
        assert not projects.steps_done(s, local_user(s), pid)["Fine-tune"]
    project_dir = Path(store.engine.url.database).parent / "home" / "models" / str(pid)
    assert not project_dir.exists() or not any(project_dir.iterdir())


def test_without_coded_test_texts_the_comparison_says_what_to_do(store: Store) -> None:
    pid, run_id = demo_with_run(store)
    with store.session() as s:
        user = projects.ensure_user(s)
        for doc_id in validation.training_exclusions(s, pid):
            for coder in validation.coders(s, local_user(s), pid):
                validation.delete_code(s, user, pid, doc_id, coder)
        ts = students.training_set(s, local_user(s), pid, run_id)
        evaluation = evaluation_set(s, local_user(s), pid, ts.label_names)
    # It stops before it needs a model: no student is trained for this.
    comparison = fair_comparison(
        store, local_user_id(store), pid, run_id, Path("no-model"), ts, TINY, evaluation
    )
    assert comparison.eval is None and comparison.rows == []
    assert "code at least 10" in comparison.reason


def test_a_model_whose_worker_died_is_marked_failed_and_its_leftovers_removed(
    sqlite_store: Store,
) -> None:
    store = sqlite_store
    pid, run_id = demo_with_run(store)
    with store.session() as s:
        job_id, model_id = start_train_job(
            s, local_user(s), project_id=pid, label_run_id=run_id, args=TINY, human_folds=0
        )
        s.get(StudentModel, model_id).status = "training"
    partial = students.models_root() / str(pid) / f".{model_id}.partial-abcd1234"
    partial.mkdir(parents=True)
    (partial / "model.safetensors").write_bytes(b"half")
    saved = students.models_root() / str(pid) / f".{model_id}.checkpoint"  # its last epoch
    saved.mkdir()
    (saved / "state.pt").write_bytes(b"epoch 3")
    with store.session() as s:  # the worker was killed: the stale sweep fails the job
        job = s.get(Job, job_id)
        job.status, job.message = "failed", "The worker stopped."
    with store.session() as s:
        models = students.project_models(s, local_user(s), pid)
        assert [(m.id, m.status) for m in models] == [(model_id, "failed")]
    assert not partial.exists() and not saved.exists()


def test_an_unloadable_base_model_fails_the_job_with_one_sentence(sqlite_store: Store) -> None:
    store = sqlite_store
    pid, run_id = demo_with_run(store)
    args = TrainingArgs(base_model="/no/such/model-folder", epochs=1)
    with store.session() as s:
        job_id, model_id = start_train_job(
            s, local_user(s), project_id=pid, label_run_id=run_id, args=args, human_folds=0
        )
    kinds.execute(store, job_id)
    with store.session() as s:
        job = s.get(Job, job_id)
        assert job.status == "failed"
        assert job.message.startswith("Could not load the model") and "\n" not in job.message
        assert s.get(StudentModel, model_id).status == "failed"


def test_the_page_count_under_floors_follows_trains_own_rule() -> None:
    ts = students.TrainingSet(
        doc_ids=[f"d{i}" for i in range(20)],
        texts=[f"text {i}" for i in range(20)],
        labels=["p", "q"] * 10,
        confidences=[0.95, 0.5, None, float("nan")] * 5,  # no logprobs for some: kept
        consistencies=[1.0, 1.0, 0.4, None] * 5,
        label_names=["p", "q"],
        n_llm=20,
        excluded_test=0,
        invalid=0,
    )
    assert ts.kept_by(None, None) == 20
    assert ts.kept_by(0.9, None) == 15
    assert ts.kept_by(0.9, 0.5) == 10
    from distill_core.student.train import _prepare

    for conf, cons in ((0.9, None), (0.9, 0.5), (None, 0.5)):
        args = TrainingArgs(min_confidence=conf, min_consistency=cons)
        kept = _prepare(ts.texts, ts.labels, args, ts.label_names, ts.confidences, ts.consistencies)
        assert len(kept.texts) == ts.kept_by(conf, cons)


def students_ts_ids(store: Store, pid: int, run_id: int) -> list[str]:
    """The documents a student of ``run_id`` would train on now."""
    with store.session() as s:
        return students.training_set(s, local_user(s), pid, run_id).doc_ids


def test_the_comparison_gives_paired_differences_on_identical_texts() -> None:
    from distill_core.agreement import paired_difference
    from distill_core.study.comparison import Comparison, Evaluation

    truth = ["a", "b"] * 20
    llm = list(truth)
    student = ["a"] * 40  # right on half
    comparison = Comparison(
        eval=Evaluation(part="test", n=40, gold="majority of coders", truth=truth),
        rows=[
            comparison_row("llm", truth, llm),
            comparison_row("student_llm", truth, student),
        ],
    )
    (d,) = comparison.differences()
    assert d.a == "Student on LLM labels" and d.b == "LLM labels"
    assert d.accuracy.difference == pytest.approx(-0.5)
    assert d.accuracy.ci[1] < 0 and d.accuracy.p_value < 0.001
    assert d.macro_f1 == paired_difference(truth, student, llm, metric="macro_f1")
    back = Comparison.from_dict(comparison.to_dict()).differences()
    assert back[0].accuracy == d.accuracy  # computed from the stored predictions


def comparison_row(key, truth, pred):
    from distill_core.study.comparison import _row

    return _row(key, truth, pred, ["a", "b"], None, "")


def check_training_claims(store: Store, pid: int, run_id: int, comparison: dict) -> None:
    """Every sentence of ``TRAINING_CLAIMS`` (page and appendix), checked on the stored data."""
    from distill_core.student.timing import Training
    from distill_core.study.comparison import TRAINING_CLAIMS, Comparison
    from distill_core.values import content_key

    stored = Comparison.from_dict(comparison)
    eval_ids = stored.eval.doc_ids
    trained_ids = students_ts_ids(store, pid, run_id)
    with store.session() as s:
        corpus_id = projects.get_corpus(s, local_user(s), pid).id
        eval_keys = [
            content_key(t) for t in projects.get_documents(s, corpus_id, eval_ids).values()
        ]
        trained = projects.get_documents(s, corpus_id, trained_ids).values()
        held = projects.part_keys(s, pid, "test")
    trained_keys = {content_key(t) for t in trained}
    checked = set()
    # The students on LLM labels and TF-IDF train on the training set: no held-out text or copy.
    assert not trained_keys & held and not trained_keys & set(eval_keys)
    # TF-IDF on LLM labels fits on the student's own texts (after its validation split)
    assert stored.row("tfidf_llm").n_train == stored.row("student_llm").n_train
    assert stored.row("student_llm").n_train < len(trained_ids)
    checked.add("llm_students")
    # The students on human codes: one fold per text, copies together, trained on the rest.
    human = stored.row("student_human")
    assert len(human.folds) == len(eval_ids) == len(eval_keys)
    fold_of_key: dict[str, set[int]] = {}
    for key, fold in zip(eval_keys, human.folds, strict=True):
        fold_of_key.setdefault(key, set()).add(fold)
    assert all(len(folds) == 1 for folds in fold_of_key.values())
    k = len(set(human.folds))
    fitted = [  # each fold's student fits on the other folds less its validation texts
        Training(
            "fold",
            [key for key, f in zip(eval_keys, human.folds, strict=True) if f != fold],
            [y for y, f in zip(stored.eval.truth, human.folds, strict=True) if f != fold],
            TINY,
        ).plan()
        for fold in range(k)
    ]
    assert human.n_train == round(sum(p.n_train for p in fitted) / k) < len(eval_ids)
    assert f"validated on about {round(sum(p.n_val for p in fitted) / k)} more" in human.note
    checked.add("human_students")
    # Hence no row is scored on a text its model was trained on.
    checked.add("scored_untrained")
    assert checked == set(TRAINING_CLAIMS)


def test_copies_of_a_text_share_a_cross_validation_fold() -> None:
    from distill_core.study.comparison import assign_folds

    texts = ["Same text", "other", "same  TEXT", "third", "fourth", "Other"] * 3
    for seed in range(20):
        fold_of = assign_folds(texts, 3, seed)
        by_text: dict[str, set[int]] = {}
        for i, text in enumerate(texts):
            by_text.setdefault(" ".join(text.casefold().split()), set()).add(fold_of[i])
        assert all(len(f) == 1 for f in by_text.values())
        assert set(fold_of.values()) == {0, 1, 2}


def test_a_comparison_row_without_an_interval_for_an_absent_class_is_strict_json() -> None:
    """A category no held-out text has gets no per-class interval (NaN): it must be stored as
    JSON null (PostgreSQL's json type refuses NaN, which failed a 27-category training at its
    last write) and read back as NaN."""
    import math

    from distill_core.study import comparison

    truth = ["a", "b", "a", "b"]
    row = comparison._row("student_llm", truth, ["a", "b", "b", "b"], ["a", "b", "c"], 10, "")
    assert math.isnan(row.class_ci["c"][0])
    stored = json.loads(json.dumps(row.to_dict(), allow_nan=False))
    assert stored["class_ci"]["c"] == [None, None]
    back = comparison.ComparisonRow.from_dict(stored)
    assert all(math.isnan(x) for x in back.class_ci["c"])
    assert back.class_ci["a"] == pytest.approx(row.class_ci["a"])
