"""The methods appendix says how a fast-recipe student was trained, why that recipe, and when
it ended below TF-IDF on its validation texts."""

from __future__ import annotations

from types import SimpleNamespace

from distill_core.reports.appendix import _Builder, _student
from distill_core.student.card import ModelMeta
from distill_core.student.recipes import choose_recipe


def _text(meta: ModelMeta, args: dict) -> str:
    model = SimpleNamespace(
        id=4, base_model="all-MiniLM-L6-v2", label_run_id=2, args=args, training={"n_llm": 900}
    )
    b = _Builder()
    _student(b, model, meta, None)
    return " ".join(str(x[1]) for x in b.sections[0].blocks)


def test_a_head_student_is_described_as_trained_with_the_fast_recipe() -> None:
    choice = choose_recipe("auto", on_cuda=False, budget_s=600, full_s=3000, head_s=30)
    meta = ModelMeta(
        labels=["a", "b"],
        recipe="head",
        recipe_choice=choice,
        n_train=800,
        n_val=90,
        best_epoch=1,
        history=[{"epoch": 1}],
        max_length=48,
        val_macro_f1=0.41,
        tfidf_val_macro_f1=0.47,
    )
    args = {"epochs": 10, "lr": 1e-4, "seed": 5, "certainty": "weight", "recipe": "head"}
    text = _text(meta, args)
    assert "was trained with the fast recipe (the base model frozen" in text
    assert "held back for validation." in text and "learning rate" not in text
    assert choice.sentence() in text and "seed 5" in text
    assert "weighted in the loss by the LLM's confidence × consistency" in text
    assert "scores below a TF-IDF baseline on its validation texts (0.41 vs 0.47" in text


def test_a_fine_tuned_student_reads_as_before() -> None:
    meta = ModelMeta(labels=["a", "b"], n_train=800, n_val=90, best_epoch=2, history=[{}, {}])
    text = _text(meta, {"epochs": 10, "lr": 1e-4, "seed": 5})
    assert "was fine-tuned on the LLM labels" in text and "learning rate 0.0001" in text
    assert "(early stopping)" in text and "The best epoch was 2 of 2" in text
    assert "TF-IDF" not in text and "Recipe:" not in text


def test_the_appendix_says_how_many_texts_the_mistake_filter_set_aside() -> None:
    meta = ModelMeta(
        labels=["a", "b"],
        recipe="head",
        n_train=800,
        n_val=90,
        args={"recipe": "head", "noise_filter": 0.5},
        filters={"set_aside_likely_mistakes": 120},
    )
    text = _text(meta, {"recipe": "head", "noise_filter": 0.5})
    assert "Of the 800 training texts, 120 were set aside before the final fit" in text
    assert "below 0.5 of that label's mean" in text
    off = ModelMeta(
        labels=["a", "b"],
        recipe="head",
        n_train=800,
        args={"recipe": "head", "noise_filter": 0.0},
        filters={"set_aside_likely_mistakes": 0},
    )
    assert "set aside" not in _text(off, {"recipe": "head"})
