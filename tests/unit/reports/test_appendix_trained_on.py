"""The methods appendix says what each comparison row was trained on (its n and its note) and,
for a head-recipe student, which C its cross-validation chose."""

from __future__ import annotations

from types import SimpleNamespace

from distill_core.reports.appendix import _Builder, _student
from distill_core.student.card import ModelMeta
from distill_core.study.comparison import Comparison, Evaluation, _row


def test_the_appendix_gives_each_rows_training_texts_and_the_heads_c() -> None:
    truth = ["a", "b"] * 10
    note = "Fitted on the same 800 texts as the student on LLM labels: the 1,000 … validation."
    comparison = Comparison(
        eval=Evaluation(part="test", n=20, gold="majority of coders", truth=truth),
        rows=[
            _row("student_llm", truth, truth, ["a", "b"], 800, ""),
            _row("tfidf_llm", truth, ["a"] * 20, ["a", "b"], 800, note),
        ],
    )
    meta = ModelMeta.from_dict(
        {
            "labels": ["a", "b"],
            "recipe": "head",
            "n_train": 800,
            "n_val": 90,
            "head": {"c": 30.0, "cv": [{"c": 10.0, "macro_f1": 0.7}, {"c": 30.0, "macro_f1": 0.8}]},
        }
    )
    model = SimpleNamespace(
        id=4, base_model="all-MiniLM-L6-v2", label_run_id=2, args={}, training={"n_llm": 900}
    )
    b = _Builder()
    _student(b, model, meta, comparison)
    blocks = b.sections[0].blocks
    assert ("p", meta.head_fit_sentence()) in blocks
    assert "C = 30 (cross-validated macro-F1 0.800)" in meta.head_fit_sentence()
    (table,) = [x for x in blocks if x[0] == "table" and x[1][0] == "Classifier"]
    assert [(r[0], r[1]) for r in table[2]] == [
        ("Student on LLM labels", "800"),
        ("TF-IDF + logistic regression on LLM labels", "800"),
    ]
    assert ("ul", [("TF-IDF + logistic regression on LLM labels", note)]) in blocks
