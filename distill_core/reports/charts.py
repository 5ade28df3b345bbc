"""Plotly figures: functions that take plain data and return ``go.Figure`` (no Streamlit).

Every figure states its n in the title and uses a print-friendly white template. They read at
any codebook size, 8 labels or 27: categories run down the y axis, one row each, every name
shown, sorted by their value; values are written in a column right of the plot, never on a bar
or its error bar; legends sit above the plot, never on the data; a confusion matrix is
row-normalised with its counts on hover and only its diagonal and the confusions that matter
written in; several models' per-class figures are one panel per model.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from distill_core.reports.formatting import fmt, fmt_count

if TYPE_CHECKING:
    from distill_core.study.comparison import ComparisonRow

TEMPLATE = "plotly_white"
#: Height in pixels of one category's row in a horizontal chart, and of a confusion cell.
ROW_PX = 24
#: An off-diagonal confusion cell is written out when at least this share of its row (the texts
#: humans gave that label) went there, and at least :data:`NOTABLE_MIN` texts did.
NOTABLE_SHARE = 0.10
NOTABLE_MIN = 2
#: The line under a confusion matrix's title (short: the chart may have half a page's width).
CONFUSION_SUBTITLE = "each row as shares of its total; counts on hover"
#: Above this many categories a page shows a chart across its whole width.
MANY_CATEGORIES = 12
#: Colour of one-series bars.
BAR_COLOUR = "#2f6f8f"
#: One colour per row of the fair comparison, the same on every chart.
MODEL_COLOURS = {
    "llm": "#8c6bb1",
    "student_llm": "#2f6f8f",
    "student_human": "#5aa469",
    "tfidf_llm": "#b0b0b0",
}
#: Approximate width in pixels of one character of a label or value (for the margins).
_CHAR_PX = 6


def many_categories(labels: Sequence[str]) -> bool:
    """Whether a chart of ``labels`` needs a page's whole width (:data:`MANY_CATEGORIES`)."""
    return len(labels) > MANY_CATEGORIES


# ---------------------------------------------------------------- bars, one row per category


def label_distribution(
    counts: Mapping[str, int], *, title: str, order: Sequence[str] | None = None
):
    """How many texts got each label, with shares, most frequent first; every label of
    ``order`` (the codebook) has a row, those no text got included."""
    names = list(dict.fromkeys([*(order or []), *counts]))
    names.sort(key=lambda c: -counts.get(c, 0))  # stable: ties keep the codebook's order
    values = [int(counts.get(c, 0)) for c in names]
    total = sum(values)
    texts = [f"{fmt_count(v)} ({v / total:.0%})" if total else "0" for v in values]
    return _hbars(
        names,
        values,
        texts,
        title=f"{title} (n = {total:,})",
        axis="texts",
        x_range=None,
        hover="%{y}: %{x:,} texts<extra></extra>",
    )


def per_class_bars(
    names: Sequence[str],
    values: Sequence[float],
    lows: Sequence[float] | None = None,
    highs: Sequence[float] | None = None,
    *,
    title: str,
    n: int,
    axis: str = "F1",
    sort: bool = True,
):
    """One bar per class (or label run) with its 95% interval as an error bar when given,
    highest first unless ``sort`` is false; each value and interval written right of the plot.
    A class without a value (no support: NaN) is a gap marked "n/a", never a 0 bar."""
    rows = [
        (
            str(c),
            None if _missing(v) else float(v),
            None if lows is None or _missing(lows[i]) else float(lows[i]),
            None if highs is None or _missing(highs[i]) else float(highs[i]),
        )
        for i, (c, v) in enumerate(zip(names, values, strict=True))
    ]
    if sort:
        rows.sort(key=lambda r: (r[1] is None, -(r[1] or 0.0)))
    shown = [r[1] for r in rows]
    error = None
    if lows is not None and highs is not None:
        error = _error_bars(
            [v or 0.0 for v in shown],
            [_or(r[2], r[1] or 0.0) for r in rows],
            [_or(r[3], r[1] or 0.0) for r in rows],
        )
    texts = [
        "n/a" if v is None else (fmt(v, 2) if lo is None or hi is None else _ci_text(v, lo, hi))
        for _, v, lo, hi in rows
    ]
    return _hbars(
        [r[0] for r in rows],
        shown,
        texts,
        title=f"{title} (n = {n:,})",
        axis=axis,
        error=error,
        hover="%{y}: %{x:.3f}<extra></extra>",
    )


def comparison_bars(rows: Sequence[ComparisonRow], *, metric: str = "macro_f1", title: str, n: int):
    """One bar per model of the fair comparison, in the comparison's order, with its 95%
    bootstrap interval; each value and interval written right of the plot."""
    rows = [r for r in rows if r.metrics is not None]
    values = [_value(getattr(r.metrics, metric)) for r in rows]
    cis = [r.metrics.ci.get(metric) or (v, v) for r, v in zip(rows, values, strict=True)]
    lows = [_or(c[0], v) for c, v in zip(cis, values, strict=True)]
    highs = [_or(c[1], v) for c, v in zip(cis, values, strict=True)]
    return _hbars(
        [r.name for r in rows],
        values,
        [_ci_text(v, lo, hi, 3) for v, lo, hi in zip(values, lows, highs, strict=True)],
        title=f"{title} (n = {n:,} held-out human-coded texts)",
        axis=metric.replace("_", " "),
        error=_error_bars(values, lows, highs),
        colours=[MODEL_COLOURS.get(r.key, BAR_COLOUR) for r in rows],
        hover="%{y}: %{x:.3f}<extra></extra>",
    )


def _hbars(
    names: Sequence[str],
    values: Sequence[float | None],
    texts: Sequence[str],
    *,
    title: str,
    axis: str,
    x_range: Sequence[float] | None = (0, 1.0),
    error: dict | None = None,
    colours: Sequence[str] | None = None,
    hover: str,
):
    """Horizontal bars, one row per name top to bottom, every name on the axis, each row's
    text in a column right of the plot."""
    import plotly.graph_objects as go

    names = [str(c) for c in names]
    fig = go.Figure(
        go.Bar(
            y=names,
            x=list(values),
            orientation="h",
            error_x=error,
            marker_color=list(colours) if colours else BAR_COLOUR,
            hovertemplate=hover,
        )
    )
    right = _value_column(fig, names, texts)
    fig.update_layout(
        template=TEMPLATE,
        title=_title(title),
        xaxis=dict(title=axis, range=list(x_range) if x_range else None, rangemode="tozero"),
        yaxis=_category_axis(names),
        height=_rows_height(len(names)),
        margin=dict(t=60, b=50, l=20, r=right),
        bargap=0.25,
    )
    return fig


def _value_column(fig, names: Sequence[str], texts: Sequence[str], yref: str = "y") -> int:
    """Write each row's text right of the plot area (outside the bars and error bars); returns
    the right margin it needs."""
    for name, text in zip(names, texts, strict=True):
        fig.add_annotation(
            x=1,
            xref="paper",
            xanchor="left",
            xshift=8,
            y=name,
            yref=yref,
            text=text,
            showarrow=False,
            font=dict(size=11, color="#333"),
        )
    return 24 + _CHAR_PX * max((len(t) for t in texts), default=0)


def _ci_text(value: float, low: float, high: float, digits: int = 2) -> str:
    return f"{fmt(value, digits)} ({fmt(low, digits)}–{fmt(high, digits)})"


def _category_axis(names: Sequence[str]) -> dict:
    """A category axis listing every name, first at the top: never every other one."""
    return dict(
        type="category",
        categoryorder="array",
        categoryarray=list(names),
        tickmode="array",
        tickvals=list(names),
        ticktext=list(names),
        autorange="reversed",
        automargin=True,
    )


def _rows_height(k: int, *, per_row: float = ROW_PX, extra: int = 120) -> int:
    return max(200, int(extra + per_row * k))


def _title(text: str) -> dict:
    """A title at the top of the figure, clear of a legend placed above the plot."""
    return dict(
        text=text, x=0, xanchor="left", y=1, yref="container", yanchor="top", pad=dict(t=12)
    )


def _legend_above() -> dict:
    """A horizontal legend between the title and the plot: it never covers the data."""
    return dict(orientation="h", x=0, xanchor="left", y=1, yanchor="bottom")


# ---------------------------------------------------------------- confusion


def confusion_heatmap(
    labels: Sequence[str],
    matrix: Sequence[Sequence[int]],
    *,
    title: str,
    rows: str = "human",
    columns: str = "predicted",
    n: int | None = None,
):
    """Human label (rows) by predicted label (columns), each row as shares of its texts, so a
    rare label's row reads like a common one's; hover gives the counts. The diagonal (each
    label's recall) and the off-diagonal cells that matter (:func:`notable_cells`) are
    written in; every label is on both axes. ``rows`` and ``columns`` name the two sides
    (two coders, say); ``n`` is the title's count when the cells' sum is not it."""
    import plotly.graph_objects as go

    labels = [str(c) for c in labels]
    k = len(labels)
    totals = [sum(row) for row in matrix]
    n = sum(totals) if n is None else n
    shares = [[(v / t) if t else None for v in row] for row, t in zip(matrix, totals, strict=True)]
    notable = notable_cells(matrix)
    text = [
        [
            f"{shares[i][j]:.0%}" if totals[i] and (i == j or (i, j) in notable) else ""
            for j in range(k)
        ]
        for i in range(k)
    ]
    fig = go.Figure(
        go.Heatmap(
            z=shares,
            x=labels,
            y=labels,
            zmin=0,
            zmax=1,
            colorscale="Blues",
            text=text,
            texttemplate="%{text}",
            textfont=dict(size=12 if k <= MANY_CATEGORIES else 9),
            customdata=[[[v, t] for v in row] for row, t in zip(matrix, totals, strict=True)],
            hovertemplate=f"{rows} %{{y}}<br>{columns} %{{x}}<br>%{{customdata[0]:,}} of "
            "%{customdata[1]:,} (%{z:.0%} of the row)<extra></extra>",
            showscale=False,
            xgap=1,
            ygap=1,
        )
    )
    longest = 5 * max((len(c) for c in labels), default=0)  # the predicted labels, turned
    cell = ROW_PX if k > MANY_CATEGORIES else 40
    fig.update_layout(
        template=TEMPLATE,
        title=_title(
            f"{title} (n = {n:,})<br><span style='font-size:12px'>{CONFUSION_SUBTITLE}</span>"
        ),
        xaxis=dict(
            _category_axis(labels),
            autorange=True,
            title=columns,
            tickangle=-90 if k > MANY_CATEGORIES else -45,
            side="bottom",
        ),
        yaxis=dict(_category_axis(labels), title=rows),
        height=90 + longest + 40 + cell * k,
        margin=dict(t=80, b=20, l=20, r=20),
    )
    return fig


def notable_cells(matrix: Sequence[Sequence[int]]) -> set[tuple[int, int]]:
    """The off-diagonal cells ``(row, column)`` worth writing out: at least
    :data:`NOTABLE_SHARE` of the row's texts and at least :data:`NOTABLE_MIN` of them."""
    found = set()
    for i, row in enumerate(matrix):
        total = sum(row)
        for j, v in enumerate(row):
            if i != j and v >= NOTABLE_MIN and total and v / total >= NOTABLE_SHARE:
                found.add((i, j))
    return found


# ---------------------------------------------------------------- several models, per class


def class_f1_grouped(rows: Sequence[ComparisonRow], labels: Sequence[str], *, title: str, n: int):
    """Per-class F1 of every model with its 95% interval: one panel per model side by side,
    the classes in the same rows of every panel, sorted by the distilled student's F1 (the
    first model's without one). No legend: each panel is titled by its model."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = [r for r in rows if r.metrics is not None]
    labels = [str(c) for c in labels]

    def f1(r: ComparisonRow, c: str) -> float | None:
        m = r.metrics.per_class.get(c)
        return None if m is None or _missing(m.f1) else float(m.f1)

    lead = next((r for r in rows if r.key == "student_llm"), rows[0] if rows else None)
    if lead is not None:
        labels.sort(key=lambda c: (f1(lead, c) is None, -(f1(lead, c) or 0.0)))
    titles = ["<br>".join(textwrap.wrap(r.name, 18)) or r.key for r in rows]
    fig = make_subplots(
        rows=1,
        cols=max(1, len(rows)),
        shared_yaxes=True,
        subplot_titles=titles,
        horizontal_spacing=0.02,
    )
    for col, r in enumerate(rows, start=1):
        values = [f1(r, c) for c in labels]
        flat = [v or 0.0 for v in values]
        lows = [_or(r.class_ci.get(c, (v, v))[0], v) for c, v in zip(labels, flat, strict=True)]
        highs = [_or(r.class_ci.get(c, (v, v))[1], v) for c, v in zip(labels, flat, strict=True)]
        fig.add_trace(
            go.Bar(
                name=r.name,
                y=labels,
                x=values,
                orientation="h",
                error_x=_error_bars(flat, lows, highs),
                marker_color=MODEL_COLOURS.get(r.key, BAR_COLOUR),
                customdata=[
                    _ci_text(v, lo, hi, 3) for v, lo, hi in zip(flat, lows, highs, strict=True)
                ],
                hovertemplate=f"{r.name}<br>%{{y}}: %{{customdata}}<extra></extra>",
                showlegend=False,
            ),
            row=1,
            col=col,
        )
        gaps = [c for c, v in zip(labels, values, strict=True) if v is None]
        if gaps:  # no F1 (no texts of the class, in the codes or the predictions): say so
            fig.add_trace(
                go.Scatter(
                    x=[0.0] * len(gaps),
                    y=gaps,
                    mode="text",
                    text=["n/a"] * len(gaps),
                    textposition="middle right",
                    textfont=dict(size=10, color="#666"),
                    hoverinfo="skip",
                    showlegend=False,
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(range=[0, 1.0], title_text="F1", row=1, col=col)
    fig.update_yaxes(_category_axis(labels), row=1, col=1)
    fig.update_annotations(font_size=12)  # the panels' titles
    title_lines = max((t.count("<br>") + 1 for t in titles), default=1)
    fig.update_layout(
        template=TEMPLATE,
        title=_title(f"{title} (n = {n:,})"),
        height=_rows_height(len(labels), extra=110 + 16 * title_lines),
        margin=dict(t=50 + 16 * title_lines, b=50, l=20, r=20),
        bargap=0.25,
    )
    return fig


# ---------------------------------------------------------------- shares


def shares_chart(frame, *, title: str, n_corpus: int, n_sample: int):
    """Each category's share of the corpus: the naive share of the student's predictions and
    the corrected (prediction-powered) share, each with its 95% interval, largest corrected
    share first. ``frame`` is ``estimate.Shares.to_frame()``."""
    import plotly.graph_objects as go

    frame = frame.sort_values("corrected", ascending=False, kind="stable")
    names = [str(c) for c in frame["label"]]
    fig = go.Figure()
    for column, name, colour in (
        ("naive", "Naive (student's predictions)", "#b0b0b0"),
        ("corrected", "Corrected with the human codes", BAR_COLOUR),
    ):
        values = list(frame[column])
        fig.add_bar(
            name=name,
            y=names,
            x=values,
            orientation="h",
            error_x=_error_bars(
                values, list(frame[f"{column}_low"]), list(frame[f"{column}_high"])
            ),
            marker_color=colour,
            hovertemplate="%{y}: %{x:.1%}<extra>" + name + "</extra>",
        )
    fig.update_layout(
        template=TEMPLATE,
        barmode="group",
        title=_title(f"{title} (n = {n_corpus:,} texts; {n_sample:,} human-coded)"),
        xaxis=dict(title="share of the corpus", tickformat=".0%", rangemode="tozero"),
        yaxis=_category_axis(names),
        legend=_legend_above(),
        legend_traceorder="normal",
        height=_rows_height(len(names), per_row=1.5 * ROW_PX, extra=150),
        margin=dict(t=90, b=50, l=20, r=20),
        bargap=0.2,
    )
    return fig


# ---------------------------------------------------------------- curves


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
    legend_rows = math.ceil(len(fig.data) / 2)
    fig.update_layout(
        template=TEMPLATE,
        title=_title(f"{title} (n = {n:,} training texts)"),
        xaxis=dict(title="epoch", dtick=1),
        yaxis=dict(title="validation macro-F1", range=[0, 1.05]),
        yaxis2=dict(title="training loss", overlaying="y", side="right", rangemode="tozero"),
        legend=_legend_above(),
        height=380 + 22 * legend_rows,
        margin=dict(t=50 + 22 * legend_rows, b=50, l=40, r=40),
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
        title=_title(f"{title} (scored on n = {n_scored:,} texts)"),
        xaxis=dict(title="LLM-labelled training texts", rangemode="tozero"),
        yaxis=dict(title="macro-F1 (95% CI)", range=[0, 1.05]),
        height=380,
        margin=dict(t=60, b=40, l=40, r=40),
    )
    return fig


# ---------------------------------------------------------------- helpers


def _error_bars(values: Sequence[float], lows: Sequence[float], highs: Sequence[float]) -> dict:
    return dict(
        type="data",
        symmetric=False,
        array=[max(0.0, h - v) for v, h in zip(values, highs, strict=True)],
        arrayminus=[max(0.0, v - lo) for v, lo in zip(values, lows, strict=True)],
        color="#333",
        thickness=1.2,
        width=3,
    )


def _value(x: float | None) -> float:
    """A metric as a bar's height: undefined (None or nan) draws as 0 (the comparison's
    headline metrics are always defined; per-class values use :func:`_missing`)."""
    return 0.0 if _missing(x) else float(x)


def _missing(x: float | None) -> bool:
    return x is None or x != x


def _or(x: float | None, default: float) -> float:
    return default if _missing(x) else float(x)
