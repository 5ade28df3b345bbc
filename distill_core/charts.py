"""Plotly figures: functions that take plain data and return ``go.Figure`` (no Streamlit).

Every figure states its n in the title and uses a print-friendly white template.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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

    error = None
    if lows is not None and highs is not None:
        error = dict(
            type="data",
            symmetric=False,
            array=[h - v for v, h in zip(values, highs, strict=True)],
            arrayminus=[v - lo for v, lo in zip(values, lows, strict=True)],
            color="#333",
        )
    fig = go.Figure(
        go.Bar(
            x=list(names),
            y=list(values),
            error_y=error,
            marker_color="#2f6f8f",
            text=[f"{v:.2f}" for v in values],
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
