"""The model card: a head-recipe student shows its choice of C instead of a one-row epoch
table, and the held-out table says what each classifier was trained on (rows stored before
that was kept still read)."""

from __future__ import annotations

from distill_core.student.card import HeldOut, ModelMeta, model_card

HEAD = {"c": 3.0, "cv": [{"c": 1.0, "macro_f1": 0.5}, {"c": 3.0, "macro_f1": 0.625}]}
HISTORY = [{"epoch": 1, "train_loss": 0.8, "val_macro_f1": 0.6}]


def _meta(**values) -> ModelMeta:
    return ModelMeta.from_dict({"labels": ["a", "b"], "n_train": 90, "n_val": 10} | values)


def test_a_head_students_card_says_which_c_was_chosen_not_an_epoch_table() -> None:
    head = _meta(recipe="head", history=HISTORY, best_epoch=1, head=HEAD)
    sentence = head.head_fit_sentence()
    assert sentence == (
        "The classifier head was fitted once, its L2 strength chosen by stratified "
        "cross-validation on the 90 training texts: C = 3 (cross-validated macro-F1 0.625), "
        "against the LLM's labels. Every C tried: C = 1: 0.500, C = 3: 0.625."
    )
    card = model_card(head)
    assert sentence in card and "The head's validation macro-F1" in card
    assert "| epoch |" not in card and "Best epoch" not in card
    # too few texts per label to fold: C was not chosen, and the sentence says so
    small = _meta(recipe="head", head={"c": 10.0, "cv": []})
    assert "fitted once, with L2 strength C = 10 (too few training texts per label" in (
        small.head_fit_sentence()
    )
    # a fine-tuned student keeps its epoch table; a head without a description says nothing
    full = _meta(recipe="full", history=HISTORY, best_epoch=1, head=HEAD)
    assert full.head_fit_sentence() is None
    assert "| 1 | 0.8000 | 0.600 |" in model_card(full) and "Best epoch: 1;" in model_card(full)
    assert _meta(recipe="head").head_fit_sentence() is None


def test_the_held_out_table_says_what_each_row_was_trained_on() -> None:
    row = {
        "key": "tfidf_llm",
        "name": "TF-IDF",
        "macro_f1": 0.5,
        "macro_f1_ci": [0.4, 0.6],
        "accuracy": 0.55,
        "accuracy_ci": [0.45, 0.65],
    }
    old = HeldOut.from_dict({"n": 40, "rows": [row]})  # stored before n_train was kept
    assert old.rows[0].n_train is None and old.rows[0].note == ""
    assert "| TF-IDF | – | 0.500 |" in model_card(_meta(heldout=old.to_dict()))
    new = HeldOut.from_dict({"n": 40, "rows": [row | {"n_train": 2705, "note": "Same texts."}]})
    assert HeldOut.from_dict(new.to_dict()) == new
    card = model_card(_meta(heldout=new.to_dict()))
    assert "| TF-IDF | 2,705 texts | 0.500 | 0.400–0.600 | 0.550 |" in card
    assert "- TF-IDF: Same texts." in card
