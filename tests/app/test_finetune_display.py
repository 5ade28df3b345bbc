"""The Fine-tune page's small figures: a count of zero taken away from the training texts
reads "0" (it read "−0"), and a head-recipe model says how its classifier was regularised
(the recipe has no epochs to chart)."""

from __future__ import annotations

from distill_core.config import Settings
from distill_core.store import Store, StudentModel
from tests.app.conftest import open_page, texts
from tests.fakes import add_ready_model, demo_with_run, label_sample

CV = [
    {"c": 1.0, "macro_f1": 0.61},
    {"c": 3.0, "macro_f1": 0.66},
    {"c": 10.0, "macro_f1": 0.712},
    {"c": 30.0, "macro_f1": 0.70},
    {"c": 100.0, "macro_f1": 0.69},
]


def test_no_invalid_answers_reads_zero_not_minus_zero(home) -> None:
    open_page()  # creates the demo project
    store = Store(Settings.from_env().database_url)
    pid, _ = demo_with_run(store)
    label_sample(store, pid)  # the validation sample, every answer valid: none invalid
    at = open_page("steps/finetune.py")
    assert not at.exception, [e.value for e in at.exception]
    values = {m.label: m.value for m in at.metric}
    assert values["Invalid answers"] == "0"
    assert values["Held out for testing"] == "−60"
    assert values["Used for training"] == "60"


def test_a_head_model_says_which_c_its_cross_validation_chose(home) -> None:
    open_page()
    store = Store(Settings.from_env().database_url)
    pid, run_id = demo_with_run(store)
    add_ready_model(store, pid, run_id)
    with store.session() as s:
        model = s.query(StudentModel).one()
        model.meta = model.meta | {
            "recipe": "head",
            "history": [{"epoch": 1, "train_loss": 0.9, "val_macro_f1": 0.7}],
            "best_epoch": 1,
            "filters": {"set_aside_likely_mistakes": 10},
            "head": {"c": 10.0, "cv": CV},
        }
    at = open_page("steps/finetune.py")
    assert not at.exception, [e.value for e in at.exception]
    assert (
        "The classifier head was fitted once, its L2 strength chosen by stratified "
        "cross-validation on the 240 training texts kept after the likely mistakes were set "
        "aside: C = 10 (cross-validated macro-F1 0.712), against the LLM's labels. Every C "
        "tried: C = 1: 0.610, C = 3: 0.660, C = 10: 0.712, C = 30: 0.700, C = 100: 0.690."
    ) in texts(at)


def test_a_head_model_has_no_one_point_epoch_chart_and_a_fine_tuned_one_keeps_it(home) -> None:
    open_page()
    store = Store(Settings.from_env().database_url)
    pid, run_id = demo_with_run(store)
    add_ready_model(store, pid, run_id)  # a fine-tuned model with two epochs
    at = open_page("steps/finetune.py")
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert any("Training curve, model 1" in t for t in titles)
    with store.session() as s:
        model = s.query(StudentModel).one()
        model.meta = model.meta | {"recipe": "head", "head": {"c": 10.0, "cv": CV}}
    at = open_page("steps/finetune.py")
    assert not at.exception, [e.value for e in at.exception]
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert titles and not any("Training curve" in t for t in titles)
    assert "cross-validation" in texts(at) or "C = 10" in texts(at)
    results = open_page("steps/results.py")  # the Results page shows the model's summary too
    assert not results.exception, [e.value for e in results.exception]
    assert "C = 10" in texts(results)
