"""Plotly figures: functions that take plain data and return ``go.Figure`` (no Streamlit).

Every figure states its n in the title and uses a print-friendly white template.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from distill_core.study.comparison import ComparisonRow

TEMPLATE = "plotly_white"


def label_distribution(
    counts: Mapping[str, int], *, title: str, order: Sequence[str] | None = None
):
    """Bars of how many texts got each label, with shares; labels in codebook ``order``."""
    import plotly.graph_objects as go

    names = [n for n in (order or sorted(counts, key=counts.get, reverse=True)) if n in counts]
    names += [n for n in counts if n not in names]
    values = [counts[n] for n in names]
    total = sum(values)
    fig = go.Figure(
        go.Bar(
            x=names,
            y=values,
            text=[f"{v:,} ({v / total:.0%})" if total else "0" for v in values],
            textposition="outside",
            marker_color="#2f6f8f",
            cliponaxis=False,
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        title=f"{title} (n = {total:,})",
        xaxis_title="label",
        yaxis_title="texts",
        margin=dict(t=60, b=40, l=40, r=20),
        height=360,
    )
    return fig


def confusion_heatmap(labels: Sequence[str], matrix: Sequence[Sequence[int]], *, title: str):
    """Counts of human label (rows) by predicted label (columns); the diagonal is agreement."""
    import plotly.graph_objects as go

    n = sum(sum(row) for row in matrix)
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=list(labels),
            y=list(labels),
            colorscale="Blues",
            text=[[str(v) for v in row] for row in matrix],
            texttemplate="%{text}",
            hovertemplate="human %{y}<br>predicted %{x}<br>%{z} texts<extra></extra>",
            showscale=False,
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        title=f"{title} (n = {n:,})",
        xaxis_title="predicted",
        yaxis_title="human",
        yaxis_autorange="reversed",
        height=120 + 40 * len(labels),
        margin=dict(t=60, b=40, l=40, r=20),
    )
    return fig


def per_class_bars(
    names: Sequence[str],
    values: Sequence[float],
    lows: Sequence[float] | None = None,
    highs: Sequence[float] | None = None,
    *,
    title: str,
    n: int,
    axis: str = "F1",
):
    """One bar per class with its 95% interval as error bars (when given)."""
    import plotly.graph_objects as go

    # A class with no support has no F1 (NaN): a gap marked "n/a", never a 0 bar.
    shown = [None if _missing(v) else float(v) for v in values]
    error = None
    if lows is not None and highs is not None:
        error = _error_bars(
            [v or 0.0 for v in shown],
            [0.0 if _missing(x) else x for x in lows],
            [0.0 if _missing(x) else x for x in highs],
        )
    fig = go.Figure(
        go.Bar(
            x=list(names),
            y=shown,
            error_y=error,
            marker_color="#2f6f8f",
            text=["n/a" if v is None else f"{v:.2f}" for v in shown],
            textposition="inside",
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        title=f"{title} (n = {n:,})",
        yaxis=dict(title=axis, range=[0, 1.05]),
        height=360,
        margin=dict(t=60, b=40, l=40, r=20),
    )
    return fig


#: One colour per row of the fair comparison, the same on every chart.
MODEL_COLOURS = {
    "llm": "#8c6bb1",
    "student_llm": "#2f6f8f",
    "student_human": "#5aa469",
    "tfidf_llm": "#b0b0b0",
}


def _error_bars(values: Sequence[float], lows: Sequence[float], highs: Sequence[float]) -> dict:
    return dict(
        type="data",
        symmetric=False,
        array=[max(0.0, h - v) for v, h in zip(values, highs, strict=True)],
        arrayminus=[max(0.0, v - lo) for v, lo in zip(values, lows, strict=True)],
        color="#333",
    )


def comparison_bars(rows: Sequence[ComparisonRow], *, metric: str = "macro_f1", title: str, n: int):
    """One bar per model of the fair comparison, with its 95% bootstrap interval."""
    import plotly.graph_objects as go

    rows = [r for r in rows if r.metrics is not None]
    values = [_value(getattr(r.metrics, metric)) for r in rows]
    cis = [r.metrics.ci.get(metric) or (v, v) for r, v in zip(rows, values, strict=True)]
    fig = go.Figure(
        go.Bar(
            x=[r.name for r in rows],
            y=values,
            error_y=_error_bars(values, [c[0] for c in cis], [c[1] for c in cis]),
            marker_color=[MODEL_COLOURS.get(r.key, "#2f6f8f") for r in rows],
            text=[f"{v:.3f}" for v in values],
            textposition="inside",
            customdata=[f"{c[0]:.3f}–{c[1]:.3f}" for c in cis],
            hovertemplate="%{x}<br>%{y:.3f} (95% CI %{customdata})<extra></extra>",
        )
    )
    fig.update_layout(
        template=TEMPLATE,
        title=f"{title} (n = {n:,} held-out human-coded texts)",
        yaxis=dict(title=metric.replace("_", " "), range=[0, 1.05]),
        height=400,
        margin=dict(t=60, b=40, l=40, r=20),
    )
    return fig


def class_f1_grouped(rows: Sequence[ComparisonRow], labels: Sequence[str], *, title: str, n: int):
    """Per-class F1 of every model side by side, each with its 95% interval."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for r in rows:
        if r.metrics is None:
            continue
        per = r.metrics.per_class
        values = [None if c not in per or _missing(per[c].f1) else per[c].f1 for c in labels]
        flat = [v or 0.0 for v in values]
        lows = [_or(r.class_ci.get(c, (v, v))[0], v) for c, v in zip(labels, flat, strict=True)]
        highs = [_or(r.class_ci.get(c, (v, v))[1], v) for c, v in zip(labels, flat, strict=True)]
        fig.add_bar(
            name=r.name,
            x=list(labels),
            y=values,
            error_y=_error_bars(flat, lows, highs),
            marker_color=MODEL_COLOURS.get(r.key, "#2f6f8f"),
        )
    fig.update_layout(
        template=TEMPLATE,
        barmode="group",
        title=f"{title} (n = {n:,})",
        yaxis=dict(title="F1", range=[0, 1.05]),
        legend=dict(orientation="h", y=-0.2),
        height=440,
        margin=dict(t=60, b=40, l=40, r=20),
    )
    return fig


def _value(x: float | None) -> float:
    """A metric as a bar's height: undefined (None or nan) draws as 0 (the comparison's
    headline metrics are always defined; per-class values use :func:`_missing`)."""
    return 0.0 if _missing(x) else float(x)


def _missing(x: float | None) -> bool:
    return x is None or x != x


def _or(x: float | None, default: float) -> float:
    return default if _missing(x) else float(x)


def training_curves(curves: Mapping[str, Sequence[Mapping]], *, title: str, n: int):
    """Validation macro-F1 (solid) and training loss (dotted, right axis) per epoch, one pair
    of lines per training (the student, and each cross-validation fold)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for name, points in curves.items():
        if not points:
            continue
        epochs = [p["epoch"] for p in points]
        fig.add_scatter(
            x=epochs,
            y=[p.get("val_macro_f1") for p in points],
            mode="lines+markers",
            name=f"{name}: validation macro-F1",
        )
        fig.add_scatter(
            x=epochs,
            y=[p.get("train_loss", p.get("loss")) for p in points],
            mode="lines",
            line=dict(dash="dot"),
            name=f"{name}: training loss",
            yaxis="y2",
        )
    fig.update_layout(
        template=TEMPLATE,
        title=f"{title} (n = {n:,} training texts)",
        xaxis=dict(title="epoch", dtick=1),
        yaxis=dict(title="validation macro-F1", range=[0, 1.05]),
        yaxis2=dict(title="training loss", overlaying="y", side="right", rangemode="tozero"),
        legend=dict(orientation="h", y=-0.25),
        height=420,
        margin=dict(t=60, b=40, l=40, r=40),
    )
    return fig


def shares_chart(frame, *, title: str, n_corpus: int, n_sample: int):
    """Each category's share of the corpus: the naive share of the student's predictions and
    the corrected (prediction-powered) share, each with its 95% interval. ``frame`` is
    ``estimate.Shares.to_frame()``."""
    import plotly.graph_objects as go

    fig = go.Figure()
    for column, name, colour in (
        ("naive", "Naive (student's predictions)", "#b0b0b0"),
        ("corrected", "Corrected with the human codes", "#2f6f8f"),
    ):
        values = list(frame[column])
        fig.add_bar(
            name=name,
            x=list(frame["label"]),
            y=values,
            error_y=_error_bars(
                values, list(frame[f"{column}_low"]), list(frame[f"{column}_high"])
            ),
            marker_color=colour,
            hovertemplate="%{x}: %{y:.1%}<extra>" + name + "</extra>",
        )
    fig.update_layout(
        template=TEMPLATE,
        barmode="group",
        title=f"{title} (n = {n_corpus:,} texts; {n_sample:,} human-coded)",
        yaxis=dict(title="share of the corpus", tickformat=".0%", rangemode="tozero"),
        legend=dict(orientation="h", y=-0.2),
        height=420,
        margin=dict(t=60, b=40, l=40, r=20),
    )
    return fig


def learning_curve_chart(points: Sequence, *, title: str, n_scored: int):
    """Macro-F1 on the scored texts against the number of training texts, with 95% intervals
    (one point per share of the labelled texts the fast recipe was trained on)."""
    import plotly.graph_objects as go

    shown = [p for p in points if not _missing(p.macro_f1)]
    values = [p.macro_f1 for p in shown]
    lows = [_or(p.macro_f1_ci[0], p.macro_f1) for p in shown]
    highs = [_or(p.macro_f1_ci[1], p.macro_f1) for p in shown]
    fig = go.Figure()
    fig.add_scatter(
        x=[p.n for p in shown],
        y=values,
        mode="lines+markers",
        error_y=_error_bars(values, lows, highs),
        name="macro-F1",
        line=dict(color=MODEL_COLOURS["student_llm"]),
    )
    fig.update_layout(
        template=TEMPLATE,
        title=f"{title} (scored on n = {n_scored:,} texts)",
        xaxis=dict(title="LLM-labelled training texts", rangemode="tozero"),
        yaxis=dict(title="macro-F1 (95% CI)", range=[0, 1.05]),
        height=380,
        margin=dict(t=60, b=40, l=40, r=40),
    )
    return fig
