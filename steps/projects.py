"""Projects: choose, create, delete; re-create the demo."""

import pandas as pd
import streamlit as st

import ui
from distill_core.study import demo, projects
from distill_core.study.access import Capability

ctx = ui.context()
st.title("Projects")
st.caption(
    "A project is one study: a corpus, its codebook versions, LLM labels, human codes and models. "
    "Start with the demo project to click through the whole workflow."
)
st.caption(ui.mode_sentence(ctx.settings))

rows = [
    {
        "Project": p.name,
        "Texts": p.texts,
        "Codebook": f"v{p.codebook_version}" if p.codebook_version else "—",
        "Your role": p.role,
        "Created": p.created_at,
        "Description": p.description,
    }
    for p in ctx.act(projects.overview)
]

if rows:
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    if ctx.project_name:
        st.success(f"Current project: **{ctx.project_name}** — choose another in the sidebar.")
        next_step = ui.STEPS_OF_ROLE.get(ctx.role, ("Projects",))[1:2]
        if next_step:
            ui.go_to(next_step[0], f"Next: {next_step[0]}")
else:
    st.info("No project yet. Create one below, or re-create the demo project.")

st.subheader("New project")
with st.form("new_project", clear_on_submit=True):
    name = st.text_input("Name", placeholder="e.g. Hate speech in news comments, 2024")
    description = st.text_area("Description (optional)", height=80)
    if st.form_submit_button("Create project", type="primary"):
        try:
            ui.choose_project(ctx.act(projects.create_project, name, description).id)
            st.rerun()
        except projects.ProjectError as exc:
            st.error(str(exc))

with st.expander("Demo project"):
    st.write(
        "The demo holds 360 short news sentences written for Distill and a policy-topic codebook. "
        "Re-creating it deletes your demo project with everything done in it and starts afresh."
    )
    if st.button("Create or re-create the demo project", key="recreate_demo"):
        ui.choose_project(ctx.act(demo.ensure_demo_project, recreate=True).id)
        st.rerun()

ui.members.show(ctx)
ui.admin.show(ctx)
if ctx.project_id is not None and ctx.can(Capability.MANAGE):
    with st.expander(f"Delete “{ctx.project_name}”"):
        st.warning(
            "This deletes the project and everything in it, for every member. It cannot be undone."
        )
        typed = st.text_input("Type the project's name to confirm", key="delete_confirm")
        if st.button("Delete project", disabled=typed.strip() != ctx.project_name):
            ctx.act(projects.delete_project, ctx.project_id)
            st.session_state.pop("project_id", None)
            st.rerun()
