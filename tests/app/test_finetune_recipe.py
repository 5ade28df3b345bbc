"""The Fine-tune page and the recipe: the recipe and time budget settings (automatic by
default), which recipe a model used and why, and a student below its TF-IDF baseline on its
validation texts flagged."""

from __future__ import annotations

from distill_core.config import Settings
from distill_core.store import Store, StudentModel
from distill_core.student.recipes import choose_recipe
from tests.app.conftest import open_page, texts
from tests.fakes import add_ready_model, demo_with_run


def test_the_page_shows_the_recipe_picked_and_why_and_flags_a_student_below_tfidf(home) -> None:
    open_page()
    store = Store(Settings.from_env().database_url)
    pid, run_id = demo_with_run(store)
    add_ready_model(store, pid, run_id)
    choice = choose_recipe("auto", on_cuda=False, budget_s=600, full_s=2520, head_s=40)
    with store.session() as s:
        model = s.query(StudentModel).one()
        model.meta = model.meta | {
            "recipe": "head",
            "recipe_choice": choice.to_dict(),
            "val_macro_f1": 0.41,
            "tfidf_val_macro_f1": 0.47,
        }
    at = open_page("steps/finetune.py")
    assert not at.exception, [e.value for e in at.exception]
    recipe = at.selectbox(key="ft_recipe")
    assert recipe.value == "auto"
    assert recipe.format_func(recipe.value) == "Automatic (fits the time budget)"
    assert at.number_input(key="ft_budget").value == 10
    shown = texts(at)
    assert (
        "Recipe: fast: frozen encoder + trained classifier head — chosen automatically: full "
        "fine-tuning is estimated at 42 min on this CPU, above the time budget of 10 min, so "
        "the fast recipe is used (about 40 s)."
    ) in shown
    warning = [w.value for w in at.warning]
    assert any(
        w.startswith(
            "This student scores below a TF-IDF baseline on its validation texts (0.41 vs 0.47"
        )
        and "consider full fine-tuning" in w
        for w in warning
    ), warning
    assert {m.label: m.value for m in at.metric}["Recipe"] == "fast (head)"
    assert any("distill_core.student.predict.load" in b.label for b in at.get("download_button"))
    # Choosing full fine-tuning leaves the budget aside.
    recipe.set_value("full").run()
    assert at.number_input(key="ft_budget").disabled


def test_the_learning_curve_button_shows_the_curve_and_the_cost(home, monkeypatch) -> None:
    import ui.curve
    from distill_core.student.curve import CurvePoint
    from distill_core.study.curve import LearningCurve

    def fake(session, user, project_id, label_run_id, **_):
        return LearningCurve(
            points=[CurvePoint(60, 0.40, [0.30, 0.50]), CurvePoint(240, 0.62, [0.55, 0.69])],
            scored_on="58 human-coded development texts (never trained on)",
            n_scored=58,
            n_available=240,
            teacher="openai",
            model="gpt-4o-mini",
            cost_per_text_usd=0.00002,
        )

    monkeypatch.setattr(ui.curve, "learning_curve", fake)
    open_page()
    demo_with_run(Store(Settings.from_env().database_url))
    at = open_page("steps/finetune.py")
    next(b for b in at.button if b.label == "Draw the learning curve").click().run()
    assert not at.exception, [e.value for e in at.exception]
    shown = texts(at)
    assert "Going from 60 to 240 training texts changed macro-F1 by +0.220" in shown
    assert "1,000 more: about $0.02" in shown and "development texts" in shown
    table = next(d.value for d in at.dataframe if "training texts" in d.value.columns)
    assert list(table["training texts"]) == [60, 240]
