"""The Fine-tune step's start: how long the job will take (measured on request, kept per
settings for the session) and the start button, disabled with the reason while a training of
the project runs."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from distill_core.clock import fmt_duration
from distill_core.jobs.train import estimate_train_job, running_training, start_train_job
from distill_core.student.recipes import estimate_sentence
from ui.context import Context
from ui.forms import Training
from ui.jobs import start_job


def less(n: int) -> str:
    """A count taken away from the texts to train on, as the Fine-tune page shows it: "−60",
    and "0" when nothing is taken away (not "−0")."""
    return f"−{n:,}" if n else "0"


def _key(ctx: Context, run_id: int, settings: Training) -> str:
    return json.dumps(
        [ctx.project_id, run_id, settings.args.to_dict(), settings.human_folds], sort_keys=True
    )


def time_estimate(ctx: Context, run_id: int, settings: Training) -> None:
    """An "Estimate time" button that times a few real steps with these settings (a few
    seconds), then the projected time of the whole job and of each phase; shown again
    without measuring while the settings stay the same."""
    known: dict = st.session_state.setdefault("ft_estimates", {})
    key = _key(ctx, run_id, settings)
    if st.button(
        "Estimate time",
        key="ft_estimate",
        help="Times a few real training steps with these settings on this machine (a few "
        "seconds) and projects the whole job: every seed, the students on human codes, the "
        "TF-IDF baseline and the held-out predictions.",
    ):
        with st.spinner("Timing a few training steps…"):
            try:
                known[key] = ctx.act(
                    estimate_train_job,
                    ctx.project_id,
                    label_run_id=run_id,
                    args=settings.args,
                    human_folds=settings.human_folds,
                )
            except ValueError as exc:
                st.error(str(exc))
                return
    found = known.get(key)
    if found is None:
        return
    st.info(estimate_sentence(settings.args, found))
    with st.expander("Time per phase"):
        st.dataframe(
            pd.DataFrame(
                {
                    "phase": [p.phase for p in found.phases],
                    "steps (most)": [p.steps for p in found.phases],
                    "about": [fmt_duration(p.seconds) for p in found.phases],
                }
            ),
            hide_index=True,
        )
        threads = f" with {found.threads} CPU threads" if found.threads else ""
        st.caption(
            f"Measured on {found.device}{threads}: {found.steps_timed} real steps, scaled to "
            "each training's batches."
        )


def start_button(ctx: Context, run_id: int, settings: Training) -> None:
    """The start button, disabled with the reason while the project has a training job."""
    busy = ctx.act(running_training, ctx.project_id)
    reason = busy.reason() if busy else None
    if st.button("Start fine-tuning", type="primary", disabled=busy is not None, help=reason):
        start_job(
            ctx,
            start_train_job,
            project_id=ctx.project_id,
            label_run_id=run_id,
            args=settings.args,
            human_folds=settings.human_folds,
        )
    if reason:
        st.caption(reason)
