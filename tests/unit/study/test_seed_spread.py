"""Seed variability on request: a train job with seeds = N trains N students on the same
training texts, scores each on the same frozen held-out texts, keeps the first seed's model
whatever the others score, and shows the mean and range on the comparison, the model card and
the appendix; progress says which seed is training; one seed stores no spread; old rows read."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from distill_core.jobs import kinds, records
from distill_core.jobs.train import start_train_job
from distill_core.reports.appendix import methods_appendix
from distill_core.store import Job, Store, StudentModel
from distill_core.student.args import TrainingArgs
from distill_core.student.card import ModelMeta
from distill_core.student.predict import Predictor
from distill_core.study import projects, students, validation
from distill_core.study.comparison import Comparison
from tests.fakes import demo_with_run, local_user
from tests.unit.study import test_students

TINY = test_students.TINY
sqlite_store = test_students.sqlite_store  # the fixture: a SQLite store in DISTILL_HOME


def _run_job(store: Store, pid: int, run_id: int, args: TrainingArgs) -> Job:
    """Queue a train job (no students on human codes) and run it here; returns the job."""
    with store.session() as s:
        job_id, _model_id = start_train_job(
            s, local_user(s), project_id=pid, label_run_id=run_id, args=args, human_folds=0
        )
    kinds.execute(store, job_id)
    with store.session() as s:
        job = s.get(Job, job_id)
        assert job.status == "done", job.message
        s.expunge(job)
    return job


@pytest.mark.slow
def test_two_seeds_are_scored_on_identical_texts_and_the_first_is_kept_whatever_they_score(
    sqlite_store: Store, monkeypatch
) -> None:
    """Seed 2 is made to score perfectly on the held-out texts: the kept model (and the
    comparison's student row) is still seed 1's."""
    store = sqlite_store
    seen: list[tuple[int, list[str]]] = []  # (seed of the model, the texts it was asked)
    truth_of: dict[str, str] = {}
    predict = Predictor.predict

    def spy(self, texts, *a, **k):
        seed = int(self.metadata["args"]["seed"])
        seen.append((seed, list(texts)))
        out = predict(self, texts, *a, **k)
        if seed == TINY.seed + 1 and truth_of:  # seed 2: right on every held-out text
            out.labels = [truth_of[t] for t in texts]
        return out

    monkeypatch.setattr(Predictor, "predict", spy)
    messages: list[str] = []
    update = records.update_job

    def track(store_, job_id, **values):
        if values.get("message"):
            messages.append(values["message"])
        return update(store_, job_id, **values)

    monkeypatch.setattr(records, "update_job", track)
    # the held-out texts' human codes, for the perfect seed 2
    pid, run_id = demo_with_run(store)
    with store.session() as s:
        gold, _ = validation.gold_labels(validation.codes_frame(s, local_user(s), pid))
        corpus = projects.get_corpus(s, local_user(s), pid)
        texts = projects.get_documents(s, corpus.id, list(gold))
        truth_of.update({texts[d]: gold[d] for d in gold if d in texts})
    job = _run_job(store, pid, run_id, TrainingArgs(**{**TINY.to_dict(), "seeds": 2}))
    assert "across 2 seeds" in job.message
    with store.session() as s:
        model = s.scalar(select(StudentModel))
        folder = students.model_dir(model)
        stored, meta = model.comparison, ModelMeta.from_dict(model.meta)
        appendix = methods_appendix(s, local_user(s), pid)

    comparison = Comparison.from_dict(stored)
    eval_texts = [texts[d] for d in comparison.eval.doc_ids]
    # both students were asked exactly the frozen evaluation texts, in the same order
    asked = [(seed, t) for seed, t in seen if t == eval_texts]
    assert sorted(seed for seed, _ in asked) == [TINY.seed, TINY.seed + 1]
    runs = comparison.seeds
    assert runs is not None and runs.n_seeds == 2 and runs.n == comparison.eval.n
    assert [s.seed for s in runs.scores] == [TINY.seed, TINY.seed + 1]
    assert all(len(s.predictions) == len(comparison.eval.doc_ids) for s in runs.scores)
    # seed 2 is perfect; the kept model and the student's row are seed 1's all the same
    kept = comparison.row("student_llm")
    assert runs.scores[1].macro_f1 == pytest.approx(1.0)
    assert runs.scores[0].macro_f1 == pytest.approx(kept.metrics.macro_f1)
    assert kept.metrics.macro_f1 < 1.0
    assert runs.scores[0].predictions == kept.predictions
    assert runs.kept_seed == TINY.seed
    saved = json.loads((folder / "distill.json").read_text(encoding="utf-8"))
    assert saved["args"]["seed"] == TINY.seed and saved["args"]["seeds"] == 2
    # one training set: both students learnt from the same rows and validation split
    assert meta.seeds is not None and [s.seed for s in meta.seeds.scores] == [3, 4]
    assert all(not s.predictions for s in meta.seeds.scores)  # the card keeps figures only
    # the range, where a reader sees it
    spread = runs.spread("macro_f1")
    assert spread.low == runs.scores[0].macro_f1 and spread.high == pytest.approx(1.0)
    sentence = runs.sentence()
    assert sentence.startswith(f"Across 2 seeds: macro-F1 {spread.text()}")
    assert "first seed's (seed 3)" in sentence
    card = (folder / "README.md").read_text("utf-8")
    assert "## Seed variability" in card and sentence in card
    assert sentence in appendix.markdown
    assert appendix.figures["student.seeds.macro_f1"] == spread.text()
    assert appendix.figures["student.seeds.n"] == "2"
    # progress named each seed
    assert any(m.startswith("Student on LLM labels, seed 1 of 2:") for m in messages)
    assert any(m.startswith("Student on LLM labels, seed 2 of 2:") for m in messages)
    # the seed-2 student left no folder behind
    assert sorted(p.name for p in folder.parent.iterdir()) == [folder.name]


@pytest.mark.slow
def test_one_seed_stores_no_spread(sqlite_store: Store) -> None:
    _run_job(sqlite_store, *demo_with_run(sqlite_store), TINY)
    with sqlite_store.session() as s:
        model = s.scalar(select(StudentModel))
        s.expunge(model)
    assert "seeds" not in model.comparison
    assert Comparison.from_dict(model.comparison).seeds is None
    assert ModelMeta.from_dict(model.meta).seeds is None
    assert "Seed variability" not in (students.model_dir(model) / "README.md").read_text("utf-8")


def test_old_rows_without_seeds_read_as_one_seed() -> None:
    old = {"eval": {"part": "test", "n": 3, "gold": "majority of coders"}, "rows": []}
    assert Comparison.from_dict(old).seeds is None
    assert ModelMeta.from_dict({"labels": ["a", "b"], "n_train": 5}).seeds is None
    assert TrainingArgs.from_dict({"epochs": 2, "seed": 9}).seeds == 1
