"""The Fine-tune step's "Should I label more texts?": the fast recipe's learning curve on
request, kept per label run for the session, with what more labels would cost."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from distill_core.reports.charts import learning_curve_chart
from distill_core.reports.formatting import fmt_ci
from distill_core.study.curve import learning_curve
from ui.context import Context
from ui.views import chart


def panel(ctx: Context, run_id: int) -> None:
    """A button that draws the curve (seconds to a minute on a CPU), then the curve."""
    known: dict = st.session_state.setdefault("ft_curves", {})
    key = (ctx.project_id, run_id)
    with st.expander("Should I label more texts?"):
        st.caption(
            "Trains the fast recipe (frozen encoder + head) on 25%, 50% and all of the "
            "LLM-labelled texts and scores each on the human-coded development texts (not the "
            "held-out test part): a curve still rising says more LLM labels would help."
        )
        if st.button("Draw the learning curve", key="ft_curve"):
            with st.spinner("Embedding the texts and fitting the head three times…"):
                try:
                    known[key] = ctx.act(learning_curve, ctx.project_id, run_id)
                except ValueError as exc:
                    st.error(str(exc))
                    return
        curve = known.get(key)
        if curve is None:
            return
        chart(
            learning_curve_chart(curve.points, title="Learning curve", n_scored=curve.n_scored),
            "learning-curve",
        )
        st.dataframe(
            pd.DataFrame(
                {
                    "training texts": [p.n for p in curve.points],
                    "macro-F1 (95% CI)": [fmt_ci(p.macro_f1, p.macro_f1_ci) for p in curve.points],
                    "accuracy (95% CI)": [fmt_ci(p.accuracy, p.accuracy_ci) for p in curve.points],
                }
            ),
            hide_index=True,
        )
        st.markdown(f"{curve.gain_sentence()} {curve.cost_sentence()}")
        st.caption(f"Scored on {curve.scored_on}. " + " ".join(curve.notes))
