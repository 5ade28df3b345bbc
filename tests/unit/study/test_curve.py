"""Should I label more texts? The fast recipe's learning curve on the demo project: nested
shares of the LLM-labelled texts, scored on the human-coded development texts (never trained
on) with intervals, and what more labels would cost."""

from __future__ import annotations

import pytest

from distill_core.codebook import Codebook
from distill_core.student.curve import CurvePoint, nested_subsets
from distill_core.study import projects, validation
from distill_core.study.curve import LearningCurve, learning_curve
from distill_core.study.students import StudentError, training_set
from tests.fakes import MappingTeacher, demo_with_run, label_corpus, local_user


class _ByLength(MappingTeacher):
    def params(self):  # its own answers, not the demo run's cached ones
        return {"model": "by-length"}


def _every_text_labelled(store) -> tuple[int, int]:
    """The demo project with a run that labels every text: the human code where there is
    one, else a label picked by the text's length (a teacher with two classes or more)."""
    pid, _ = demo_with_run(store)
    with store.session() as s:
        user = local_user(s)
        docs = projects.load_documents(s, user, pid, with_extra=False)
        gold, _ = validation.gold_labels(validation.codes_frame(s, user, pid))
        book = Codebook.from_dict(projects.latest_codebook(s, user, pid).content)
        names = [lab.name for lab in book.labels]
        by_text = {
            t: gold.get(d, names[len(t) % len(names)])
            for d, t in zip(docs["doc_id"], docs["text"], strict=True)
        }
    return pid, label_corpus(store, pid, _ByLength(by_text, names[0]))


def test_the_curve_trains_on_nested_shares_and_scores_the_development_texts(store) -> None:
    pid, run_id = _every_text_labelled(store)
    with store.session() as s:
        curve = learning_curve(s, local_user(s), pid, run_id)
        ts = training_set(s, local_user(s), pid, run_id)
    assert [p.n for p in curve.points] == sorted(p.n for p in curve.points)
    assert curve.points[-1].n == curve.n_available < len(ts.texts)  # dev texts left out
    assert "human-coded development texts" in curve.scored_on and curve.n_scored >= 30
    for p in curve.points:
        low, high = p.macro_f1_ci
        assert low <= p.macro_f1 <= high
    assert curve.gain_sentence().startswith("Going from ")
    assert "price of by-length is not known" in curve.cost_sentence()


def test_one_category_left_is_a_sentence(store) -> None:
    pid, run_id = demo_with_run(store)  # 'other' on every text no human coded
    with store.session() as s, pytest.raises(StudentError, match="only one category"):
        learning_curve(s, local_user(s), pid, run_id)


def test_nested_subsets_grow_inside_each_other() -> None:
    small, mid, full = nested_subsets(100, (0.25, 0.5, 1.0), seed=3)
    assert (len(small), len(mid), len(full)) == (25, 50, 100)
    assert set(small) <= set(mid) <= set(full)


def test_the_cost_and_the_gain_are_said_plainly() -> None:
    curve = LearningCurve(
        points=[CurvePoint(250, 0.50, [0.45, 0.55]), CurvePoint(500, 0.60, [0.56, 0.64])],
        scored_on="x",
        n_scored=80,
        n_available=500,
        teacher="openai",
        model="gpt-4o-mini",
        cost_per_text_usd=0.0001,
    )
    assert curve.gain_sentence() == (
        "Going from 250 to 500 training texts changed macro-F1 by +0.100 (0.500 → 0.600); "
        "beyond the intervals: more texts are likely to help further."
    )
    assert "1,000 more: about $0.10" in curve.cost_sentence()
    curve.points[1] = CurvePoint(500, 0.52, [0.47, 0.57])
    assert "cannot tell this change from noise" in curve.gain_sentence()
    unknown = LearningCurve([], "x", 0, 0, "openai", "my-model", None)
    assert "price of my-model is not known" in unknown.cost_sentence()
    assert pytest.approx(0.0001) == curve.cost_per_text_usd
