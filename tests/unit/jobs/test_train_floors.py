"""A training with a confidence floor, through the real train job: the students on human codes
are trained without the floor (human codes carry no confidences; the row was "Not trained"),
the TF-IDF baseline on LLM labels is fitted on exactly the texts the student fitted on (it
was fitted on every text of the training set), and each row, the model card and the methods
appendix say what it was trained on."""

from __future__ import annotations

import json

import pytest

from distill_core.jobs import kinds
from distill_core.jobs.train import job_trainings, start_train_job
from distill_core.llm.base import Answer
from distill_core.store import Job, Store, StudentModel
from distill_core.student.args import TrainingArgs
from distill_core.student.card import ModelMeta
from distill_core.study import students, validation
from distill_core.study.comparison import Comparison, human_args, student_texts
from tests.fakes import MappingTeacher, label_corpus, local_user
from tests.fakes import demo_with_run as _demo_with_run

FLOOR = 0.8
HEAD = TrainingArgs(recipe="head", seed=3, min_confidence=FLOOR)


class _VariedConfidence(MappingTeacher):
    """Right on the coded texts, "other" elsewhere; confident (0.95) on two texts in three and
    unsure (0.4) on the rest, so a floor of 0.8 drops about a third of the labels."""

    def params(self):  # its own model: no answer is reused from another teacher's run
        return {"model": "varied-confidence"}

    async def ask(self, codebook, text, *, repeat_index=0):
        got = await super().ask(codebook, text, repeat_index=repeat_index)
        confidence = 0.4 if sum(map(ord, text)) % 3 == 0 else 0.95
        return Answer(label=got.label, status="ok", raw=got.raw, confidence=confidence, attempts=1)


def _project(store: Store) -> tuple[int, int]:
    """The demo project and a run of ``_VariedConfidence`` over its corpus."""
    pid, _ = _demo_with_run(store)
    with store.session() as s:
        from distill_core.study import projects

        docs = projects.load_documents(s, local_user(s), pid, with_extra=False)
        gold, _ = validation.gold_labels(validation.codes_frame(s, local_user(s), pid))
        by_text = {
            t: gold[d] for d, t in zip(docs["doc_id"], docs["text"], strict=True) if d in gold
        }
    return pid, label_corpus(store, pid, _VariedConfidence(by_text, "other"))


@pytest.fixture
def home_store(store: Store, tmp_path, monkeypatch) -> Store:
    """The parametrised store (SQLite and PostgreSQL) with model folders under tmp_path."""
    monkeypatch.setenv("DISTILL_HOME", str(tmp_path / "home"))
    return store


def test_a_training_with_a_confidence_floor_keeps_every_row_on_identical_texts(
    home_store: Store,
) -> None:
    store = home_store
    pid, run_id = _project(store)
    with store.session() as s:
        ts = students.training_set(s, local_user(s), pid, run_id)
    dropped = len(ts.texts) - ts.kept_by(FLOOR, None)
    assert 0 < dropped < len(ts.texts)  # the floor really drops labels
    with store.session() as s:
        job_id, model_id = start_train_job(
            s, local_user(s), pid, label_run_id=run_id, args=HEAD, human_folds=2
        )
    kinds.execute(store, job_id)
    with store.session() as s:
        job, model = s.get(Job, job_id), s.get(StudentModel, model_id)
        assert job.status == "done", job.message
        meta = ModelMeta.from_dict(model.meta)
        folder = students.model_dir(model)
        stored = model.comparison
    comparison = Comparison.from_dict(stored)
    assert comparison.version == 2
    rows = {r.key: r for r in comparison.rows}
    assert list(rows) == ["llm", "student_llm", "student_human", "tfidf_llm"]

    # 1. The students on human codes are trained (they were "Not trained: A minimum
    # confidence was set but no confidences were given"), and say why without the floor.
    human = rows["student_human"]
    assert human.metrics is not None, human.note
    assert human.metrics.n == comparison.eval.n
    assert "confidence floor 0.8 picked the LLM labels only" in human.note

    # 2. TF-IDF on LLM labels fitted on the very texts the student fitted on: the same n.
    assert meta.filters["dropped_low_confidence"] == dropped
    assert rows["student_llm"].n_train == meta.n_train == len(ts.texts) - dropped - meta.n_val
    tfidf = rows["tfidf_llm"]
    assert tfidf.n_train == meta.n_train < len(ts.texts)
    assert tfidf.note == (
        f"Fitted on the same {meta.n_train:,} texts as the student on LLM labels: the "
        f"{len(ts.texts):,} LLM-labelled training texts less {dropped:,} below the confidence "
        f"floor 0.8 and {meta.n_val:,} held back for the student's validation."
    )
    fitted = student_texts(ts, HEAD)
    assert len(fitted.rows) == meta.n_train and fitted.n_val == meta.n_val
    assert all(ts.confidences[i] >= FLOOR for i in fitted.rows)
    # the baseline's predictions are those of a fit on exactly those rows
    from distill_core.student.baseline import fit_baseline

    with store.session() as s:
        from distill_core.study import projects

        texts = projects.get_documents(
            s, projects.get_corpus(s, local_user(s), pid).id, comparison.eval.doc_ids
        )
    again = fit_baseline(
        [ts.texts[i] for i in fitted.rows], [ts.labels[i] for i in fitted.rows], seed=HEAD.seed
    ).predict([texts[d] for d in comparison.eval.doc_ids])[0]
    assert again == tfidf.predictions

    # 3. The model card says what each row was trained on.
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert f"| TF-IDF + logistic regression on LLM labels | {meta.n_train:,} texts |" in card
    assert f"- TF-IDF + logistic regression on LLM labels: {tfidf.note}" in card
    assert human.note in card
    saved = json.loads((folder / "distill.json").read_text(encoding="utf-8"))
    assert {r["key"]: r["n_train"] for r in saved["heldout"]["rows"]} == {
        "llm": None,
        "student_llm": meta.n_train,
        "student_human": human.n_train,
        "tfidf_llm": meta.n_train,
    }


def test_the_job_plans_the_students_on_human_codes_without_the_floors() -> None:
    ts = students.TrainingSet(
        doc_ids=[f"d{i}" for i in range(40)],
        texts=[f"text {i}" for i in range(40)],
        labels=["p", "q"] * 20,
        confidences=[0.9, 0.9, 0.3, 0.3] * 10,
        consistencies=[1.0] * 40,
        label_names=["p", "q"],
        n_llm=40,
        excluded_test=0,
        invalid=0,
    )
    args = TrainingArgs(recipe="head", min_confidence=0.5, min_consistency=0.5, seeds=2)
    assert human_args(args) == TrainingArgs(recipe="head", seeds=2)
    eval_texts = [f"coded {i}" for i in range(20)]
    trainings = job_trainings(ts, args, eval_texts, ["p", "q"] * 10, human_folds=2)
    assert [t.args.min_confidence for t in trainings] == [0.5, 0.5, None, None]
    # every training is plannable: none is reported untrained with 0 steps
    assert all(t.steps() > 0 for t in trainings)
    # the student (each seed) fits on the texts over the floor less its validation texts
    plan = trainings[0].plan()
    fitted = student_texts(ts, args)
    assert len(fitted.rows) == plan.n_train and fitted.n_val == plan.n_val
    assert all(ts.confidences[i] == 0.9 for i in fitted.rows)
    assert len(fitted.rows) + fitted.n_val == ts.kept_by(0.5, 0.5) == 20
