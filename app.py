"""Distill — the app's entry: page config, the current project, the workflow's pages."""

import streamlit as st

import ui

st.set_page_config(page_title="Distill", page_icon=":material/science:", layout="wide")

ctx = ui.context()
ui.sidebar(ctx)
page = ui.navigation(ctx)
page.run()
