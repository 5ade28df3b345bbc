"""Pickers: a label run, a ready model, a coder's name; each remembers its choice in the session."""

from __future__ import annotations

import streamlit as st

from distill_core.study import projects, runs, students
from ui.context import Context
from ui.views import model_label


def label_run_picker(ctx: Context, label: str, key: str):
    """A choice among the project's label runs with results (newest first), each named by its
    title, size and date; None when there is none."""
    label_runs = ctx.act(runs.project_runs, ctx.project_id, with_results=True)
    if not label_runs:
        return None
    version_of = ctx.act(projects.version_numbers, ctx.project_id)
    return st.selectbox(
        label,
        label_runs,
        format_func=lambda r: (
            f"{runs.run_title(r, version_of.get(r.codebook_version_id))}, "
            f"{r.n_texts:,} texts, {r.created_at:%Y-%m-%d %H:%M} UTC"
        ),
        key=key,
    )


def model_picker(ctx: Context, key: str, header: str | None = None):
    """A choice among the project's ready students (newest first), under ``header``; None
    (and no header) when there is none."""
    ready = [m for m in ctx.act(students.project_models, ctx.project_id) if m.status == "ready"]
    if not ready:
        return None
    if header:
        st.subheader(header)
    model = st.selectbox("Model", ready, format_func=model_label, key=key)
    note = ctx.act(runs.after_seen_note, ctx.project_id, model.label_run_id)
    if note:
        st.warning(note)
    return model
