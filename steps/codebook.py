"""Codebook: labels, instructions and examples; every save a version; history, diff, preview."""

import streamlit as st

import ui
from distill_core.study import projects, validation

ctx = ui.context()
ui.for_step(ctx, "Codebook")
st.title("Codebook")
st.caption(
    "One codebook serves as the human coders' instructions and as the LLM's prompt. Revise it on "
    "the development sample; every save is kept as a version."
)
project_id = ui.require_project(ctx)
versions = ctx.act(projects.codebook_versions, project_id)
latest = versions[0] if versions else None
# Editing after the held-out score was seen: the next version is tuned on seen texts.
overfit_warning = ctx.act(validation.test_seen_warning, project_id)
draft = ui.codebook.Draft(project_id, latest, ctx.project_name)

# The Edit tab is computed on every run (its fields keep what is typed); the others only when
# chosen, as their drawing in the browser made every reload slower.
edit_tab, history_tab, preview_tab, file_tab = st.tabs(
    ["Edit", f"History ({len(versions)})", "Prompt preview", "Import / export"],
    key="cb_tab",
    on_change="rerun",
)

with edit_tab:
    if latest:
        st.caption(
            f"Editing from version {latest.version} (saved {latest.created_at:%Y-%m-%d %H:%M} UTC)."
        )
    current = ui.codebook.editor(draft)
    problems = current.problems(definitions=True)
    if latest is None and not current.labels:
        st.info("Add at least two labels, each with a definition, then save the first version.")
    else:
        for problem in problems:
            st.error(problem)
        if problems:
            st.caption("Saving is off until the problems above are fixed.")
    confirmed = False
    if overfit_warning:
        st.warning(overfit_warning)
        confirmed = st.checkbox(
            f"Save anyway, marked “{projects.AFTER_SEEN}”", key=f"cb_after_seen_{draft.rev}"
        )
    note = st.text_input(
        "What changed (optional)", key=f"cb_note_{draft.rev}", placeholder="e.g. clarified 'other'"
    )
    blocked = bool(problems) or bool(overfit_warning and not confirmed)
    if st.button("Save as a new version", type="primary", disabled=blocked):
        saved = ctx.act(
            projects.save_codebook, project_id, current, note, after_seen_confirmed=confirmed
        )
        draft.load(current.to_dict())
        if saved.created:
            st.toast(f"Saved as version {saved.version.version}.", icon=":material/check:")
        else:
            st.toast(f"No changes since version {saved.version.version}.", icon=":material/info:")
        st.rerun()

if history_tab.open:
    with history_tab:
        chosen = ui.codebook.history(versions)
        if chosen is not None:
            draft.load(chosen.content)
            st.rerun()

if preview_tab.open:
    with preview_tab:
        corpus = ui.project_corpus(ctx)
        if corpus is None:
            st.info("Upload a corpus on the Data page to preview the prompt for one of its texts.")
            ui.go_to("Data")
        elif problems:
            st.warning("Fix the codebook's problems (Edit tab) to see the prompt.")
        else:
            ui.codebook.prompt_preview(current, ctx.act(projects.first_texts, ctx.project_id, 1000))

if file_tab.open:
    with file_tab:
        st.download_button(
            "Download the codebook shown in the editor (JSON)",
            data=current.to_json(),
            file_name=f"codebook-{project_id}.json",
            mime="application/json",
            disabled=bool(problems),
        )
        loaded = ui.codebook.import_panel(draft, current)
        if loaded is not None:
            draft.load(loaded)
            st.rerun()
