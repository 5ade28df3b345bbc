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
