"""Distill — the app's entry: page config, the current project, the workflow's pages."""

import streamlit as st

import ui
from ui.errors import guarded

st.set_page_config(page_title="Distill", page_icon=":material/science:", layout="wide")

with guarded():  # an unexpected error: one sentence and a reference id, the trace in the log
    ctx = ui.context()
    ui.sidebar(ctx)
    ui.navigation(ctx).run()
