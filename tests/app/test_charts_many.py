"""A 27-category study on the Validate and Results pages: no error, the agreement charts and
the format picker, one confusion matrix at a time with a choice of model, each chart
saveable with every label on its axis."""

from __future__ import annotations

import json

from distill_core.config import Settings
from distill_core.reports.charts import CONFUSION_SUBTITLE
from distill_core.store import Store
from tests.app.conftest import open_page, open_tab
from tests.many_labels import LABELS_27, build_project


def _charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _titles(at) -> list[str]:
    return [c["layout"]["title"]["text"] for c in _charts(at)]


def _open_27(script: str):
    """``script`` on a 27-category project with a coded sample, an LLM run and a student."""
    open_page()
    store = Store(Settings.from_env().database_url)
    build_project(store, LABELS_27, name="Twenty-seven topics")
    store.dispose()
    at = open_page(script)
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_results_at_27_categories_show_one_confusion_matrix_at_a_time(home) -> None:
    at = _open_27("steps/results.py")
    assert not [t for t in _titles(at) if CONFUSION_SUBTITLE in t]  # drawn once opened
    assert not [r for r in at.radio if r.key == "confusion_model"]
    at.session_state["confusions_open"] = True  # as a click on the expander does
    at.run()
    choice = at.radio(key="confusion_model")
    assert choice.options == [
        "LLM labels",
        "Student on LLM labels",
        "Student on human codes",
        "TF-IDF + logistic regression on LLM labels",
    ]
    matrices = [t for t in _titles(at) if CONFUSION_SUBTITLE in t]
    assert len(matrices) == 1 and matrices[0].startswith("LLM labels (n = ")
    choice.set_value("tfidf_llm").run()
    matrices = [t for t in _titles(at) if CONFUSION_SUBTITLE in t]
    assert len(matrices) == 1 and matrices[0].startswith("TF-IDF + logistic regression")
    for chart in at.get("plotly_chart"):
        options = json.loads(chart.proto.config)["toImageButtonOptions"]
        assert options["format"] == "png" and options["filename"].startswith("distill-")
    heat = next(c for c in _charts(at) if c["data"][0]["type"] == "heatmap")
    assert heat["layout"]["yaxis"]["tickvals"] == LABELS_27  # every label on the axis


def test_validate_at_27_categories_shows_the_agreement_charts(home) -> None:
    at = open_tab(_open_27("steps/validate.py"), "Agreement")
    titles = _titles(at)
    assert any(t.startswith("F1 per class, LLM run") for t in titles), titles
    assert any(t.startswith("Confusion, LLM run") for t in titles), titles
    assert at.radio(key="chart_format").options == ["PNG", "SVG"]


def test_the_llm_labels_chart_lists_every_label_and_saves_as_chosen(home) -> None:
    at = _open_27("steps/llm_labels.py")
    chart = next(c for c in _charts(at) if c["layout"]["title"]["text"].startswith("LLM labels"))
    assert sorted(chart["data"][0]["y"]) == sorted(LABELS_27)
    at.radio(key="chart_format").set_value("svg").run()
    configs = [json.loads(c.proto.config) for c in at.get("plotly_chart")]
    assert [c["toImageButtonOptions"]["format"] for c in configs] == ["svg"]


def test_a_kept_figure_is_built_once_for_the_same_inputs() -> None:
    from distill_core.reports.charts import label_distribution
    from ui.views import kept_figure

    built = []

    def build(counts, *, title):
        built.append(title)
        return label_distribution(counts, title=title)

    first = kept_figure(build, {"a": 3, "b": 1}, title="Labels")
    assert kept_figure(build, {"a": 3, "b": 1}, title="Labels") is first
    other = kept_figure(build, {"a": 3, "b": 2}, title="Labels")
    assert other is not first and built == ["Labels", "Labels"]
