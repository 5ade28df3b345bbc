"""The charts read at 8 and at 27 categories: one row per category, every name on the axis,
sorted; values beside the plot, never on a bar or its error bar; legends above the plot; the
confusion matrix row-normalised with counts on hover and only the confusions that matter
written in; one panel per model for per-class figures of several models."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from distill_core.agreement import compare
from distill_core.reports import charts
from distill_core.study.comparison import ROWS, ComparisonRow
from tests.many_labels import LABELS_8, LABELS_27, noisy

SIZES = pytest.mark.parametrize("labels", [LABELS_8, LABELS_27], ids=["8", "27"])


def _truth(labels, n=400):
    return [labels[i % len(labels)] for i in range(n)]


def _rows(labels) -> list[ComparisonRow]:
    truth = _truth(labels)
    out = []
    for seed, (key, acc) in enumerate(
        [("llm", 0.8), ("student_llm", 0.7), ("student_human", 0.75), ("tfidf_llm", 0.5)]
    ):
        pred = noisy(truth, labels, acc, seed)
        m = compare(truth, pred, labels=labels, n_boot=0)
        ci = {c: (max(0, m.per_class[c].f1 - 0.1), min(1, m.per_class[c].f1 + 0.1)) for c in labels}
        out.append(ComparisonRow(key=key, name=ROWS[key], metrics=m, class_ci=ci))
    return out


def _annotations(fig) -> list:
    return [a for a in fig.layout.annotations if a.xref == "paper" and a.x == 1]


@SIZES
def test_per_class_bars_are_horizontal_sorted_with_every_name_and_values_beside_the_plot(labels):
    values = [((i * 37) % 100) / 100 for i in range(len(labels))]
    values[3] = math.nan  # no support
    fig = charts.per_class_bars(
        labels, values, [v - 0.05 for v in values], [v + 0.05 for v in values], title="F1", n=99
    )
    bar = fig.data[0]
    assert bar.orientation == "h"
    assert list(fig.layout.yaxis.tickvals) == list(bar.y)  # every name, not every other
    assert sorted(bar.y) == sorted(labels)
    shown = [v for v in bar.x if v is not None]
    assert shown == sorted(shown, reverse=True)
    assert bar.y[-1] == labels[3] and bar.x[-1] is None  # the class without F1 last, no bar
    texts = _annotations(fig)
    assert [a.y for a in texts] == list(bar.y)  # a value per row, right of the plot area
    assert texts[-1].text == "n/a"
    assert texts[0].text == f"{shown[0]:.2f} ({shown[0] - 0.05:.2f}–{shown[0] + 0.05:.2f})"
    assert fig.layout.margin.r >= 7 * len(texts[0].text)
    assert fig.layout.height >= charts.ROW_PX * len(labels)


def test_per_class_bars_keep_the_order_given_when_not_sorted():
    fig = charts.per_class_bars(["run 1", "run 2"], [0.4, 0.8], title="t", n=5, sort=False)
    assert list(fig.data[0].y) == ["run 1", "run 2"]


@SIZES
def test_label_distribution_lists_every_codebook_label_most_frequent_first(labels):
    counts = {c: 3 * i for i, c in enumerate(labels)}  # the first label: no text
    fig = charts.label_distribution(counts, title="LLM labels", order=labels)
    bar = fig.data[0]
    assert list(bar.y) == list(reversed(labels)) and bar.orientation == "h"
    assert list(fig.layout.yaxis.tickvals) == list(bar.y)
    total = sum(counts.values())
    assert fig.layout.title.text == f"LLM labels (n = {total:,})"
    assert _annotations(fig)[-1].text == "0 (0%)"


@SIZES
def test_the_confusion_matrix_is_row_normalised_with_counts_on_hover(labels):
    truth = _truth(labels)
    pred = noisy(truth, labels, 0.7, seed=1)
    m = compare(truth, pred, labels=labels, n_boot=0)
    fig = charts.confusion_heatmap(m.labels, m.confusion, title="Confusion")
    heat = fig.data[0]
    for row, counts in zip(heat.z, m.confusion, strict=True):
        assert sum(row) == pytest.approx(1.0)
        assert [c[0] for c in heat.customdata[m.confusion.index(counts)]] == counts
    assert "customdata[0]" in heat.hovertemplate and "of the row" in heat.hovertemplate
    assert list(fig.layout.xaxis.tickvals) == list(fig.layout.yaxis.tickvals) == list(m.labels)
    notable = charts.notable_cells(m.confusion)
    k = len(m.labels)
    written = {(i, j) for i in range(k) for j in range(k) if heat.text[i][j]}
    assert written == notable | {(i, i) for i in range(k)}
    assert 0 < len(notable) < k * (k - 1) // 4  # a few cells stand out, not a wall of numbers
    assert f"n = {len(truth):,}" in fig.layout.title.text


def test_notable_cells_need_a_tenth_of_the_row_and_two_texts():
    matrix = [[17, 2, 1], [1, 0, 0], [0, 3, 30]]
    # (0, 1): 2 of 20 = 10%, 2 texts; (0, 2): 1 text; (1, 0): 1 text; (2, 1): 3 of 33 < 10%
    assert charts.notable_cells(matrix) == {(0, 1)}


def test_an_empty_row_of_the_confusion_matrix_has_no_share():
    fig = charts.confusion_heatmap(["a", "b"], [[3, 1], [0, 0]], title="c")
    assert list(fig.data[0].z[1]) == [None, None]
    assert list(fig.data[0].text[1]) == ["", ""]


@SIZES
def test_per_class_f1_of_every_model_is_one_panel_per_model_sorted_by_the_student(labels):
    rows = _rows(labels)
    fig = charts.class_f1_grouped(rows, labels, title="F1 per class, every model", n=400)
    bars = [t for t in fig.data if t.type == "bar"]
    assert len(bars) == 4 and all(t.orientation == "h" for t in bars)
    assert len({t.xaxis for t in bars}) == 4  # four panels, not 4 × k whiskers in one
    assert not any(t.showlegend for t in fig.data)
    assert all(list(t.y) == list(bars[0].y) for t in bars)  # the same rows
    assert list(fig.layout.yaxis.tickvals) == list(bars[0].y)
    student = next(t for t in bars if t.name == ROWS["student_llm"])
    assert list(student.x) == sorted(student.x, reverse=True)
    titles = {a.text.replace("<br>", " ") for a in fig.layout.annotations}
    assert {r.name for r in rows} <= titles


def test_a_class_without_f1_reads_n_a_in_its_panel():
    rows = _rows(LABELS_8)
    del rows[1].metrics.per_class["crime"]
    fig = charts.class_f1_grouped(rows, LABELS_8, title="F1", n=400)
    marks = [t for t in fig.data if t.type == "scatter"]
    assert [(list(t.y), list(t.text)) for t in marks] == [(["crime"], ["n/a"])]


def test_the_comparison_bars_write_each_value_and_interval_beside_the_plot():
    rows = _rows(LABELS_8)
    for r in rows:
        r.metrics.ci["macro_f1"] = (r.metrics.macro_f1 - 0.05, r.metrics.macro_f1 + 0.04)
    fig = charts.comparison_bars(rows, title="Macro-F1", n=400)
    assert list(fig.data[0].y) == [r.name for r in rows]
    first = rows[0].metrics.macro_f1
    assert _annotations(fig)[0].text == f"{first:.3f} ({first - 0.05:.3f}–{first + 0.04:.3f})"
    assert not fig.data[0].text  # nothing written on the bars themselves


@SIZES
def test_the_shares_legend_sits_above_the_plot_and_categories_are_sorted(labels):
    k = len(labels)
    corrected = [(i % 7) / 50 for i in range(k)]
    frame = pd.DataFrame(
        {
            "label": labels,
            "naive": corrected,
            "naive_low": corrected,
            "naive_high": corrected,
            "corrected": corrected,
            "corrected_low": [max(0, c - 0.01) for c in corrected],
            "corrected_high": [c + 0.01 for c in corrected],
        }
    )
    fig = charts.shares_chart(frame, title="Category shares", n_corpus=2000, n_sample=250)
    assert fig.layout.legend.yanchor == "bottom" and fig.layout.legend.y >= 1
    bars = fig.data[1]
    assert list(bars.x) == sorted(corrected, reverse=True)
    assert list(fig.layout.yaxis.tickvals) == list(bars.y)


def test_the_training_curves_legend_sits_above_the_plot():
    history = [{"epoch": 1, "train_loss": 1.0, "val_macro_f1": 0.3}]
    fig = charts.training_curves({"a": history, "b": history, "c": history}, title="t", n=10)
    assert fig.layout.legend.yanchor == "bottom" and fig.layout.legend.y >= 1
    assert fig.layout.margin.t >= 50 + 22 * 3
