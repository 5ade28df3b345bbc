"""Codebook: labels, instructions and examples; every save a version; history, diff, preview."""

import pandas as pd
import streamlit as st

import ui
from distill_core.codebook import (
    Codebook,
    CodebookError,
    diff,
    diff_text,
    render_messages,
)
from distill_core.study import projects, validation

ctx = ui.context()
st.title("Codebook")
st.caption(
    "One codebook serves as the human coders' instructions and as the LLM's prompt. Revise it on "
    "the development sample; every save is kept as a version."
)
project_id = ui.require_project(ctx)

with ctx.store.session() as s:
    versions = projects.codebook_versions(s, project_id)
    latest = versions[0] if versions else None
    # Editing after the held-out score was seen: the next version would be scored on seen texts.
    overfit_warning = validation.test_seen_warning(
        s, project_id, (latest.version if latest else 0) + 1
    )

# The draft being edited lives in the session; it starts from the latest saved version.
draft_key = f"codebook_draft_{project_id}"
if draft_key not in st.session_state:
    st.session_state[draft_key] = (
        latest.content
        if latest
        else {"name": ctx.project_name, "instructions": "", "labels": [], "examples": []}
    )
    st.session_state[f"{draft_key}_rev"] = 0
draft = st.session_state[draft_key]
rev = st.session_state[f"{draft_key}_rev"]


def load_draft(content: dict) -> None:
    """Replace the draft (an import, an older version) and reset the editors."""
    st.session_state[draft_key] = content
    st.session_state[f"{draft_key}_rev"] = rev + 1


edit_tab, history_tab, preview_tab, file_tab = st.tabs(
    ["Edit", f"History ({len(versions)})", "Prompt preview", "Import / export"]
)

with edit_tab:
    if latest:
        st.caption(
            f"Editing from version {latest.version} (saved {latest.created_at:%Y-%m-%d %H:%M} UTC)."
        )
    name = st.text_input("Name", value=draft.get("name", ""), key=f"cb_name_{rev}")
    instructions = st.text_area(
        "General instructions",
        value=draft.get("instructions", ""),
        height=120,
        key=f"cb_instructions_{rev}",
        help="What to code and how to decide hard cases. The LLM receives this text verbatim.",
    )
    st.markdown("**Labels** — one row each: a short name and a definition with what is in and out.")
    labels = st.data_editor(
        pd.DataFrame(draft.get("labels") or [], columns=["name", "definition"]),
        num_rows="dynamic",
        width="stretch",
        key=f"cb_labels_{rev}",
        column_config={
            "name": st.column_config.TextColumn("Label", required=True, width="small"),
            "definition": st.column_config.TextColumn("Definition", width="large"),
        },
    )
    label_names = [str(n).strip() for n in labels["name"].dropna() if str(n).strip()]
    st.markdown("**Examples** (optional) — few-shot examples shown to the LLM before each text.")
    examples = st.data_editor(
        pd.DataFrame(draft.get("examples") or [], columns=["text", "label"]),
        num_rows="dynamic",
        width="stretch",
        key=f"cb_examples_{rev}",
        column_config={
            "text": st.column_config.TextColumn("Text", width="large"),
            "label": st.column_config.SelectboxColumn("Label", options=label_names),
        },
    )
    current = Codebook.from_dict(
        {
            "name": name,
            "instructions": instructions,
            "labels": labels.fillna("").to_dict("records"),
            "examples": examples.fillna("").to_dict("records"),
        },
        check=False,
    )
    problems = current.problems()
    if latest is None and not current.labels:
        st.info("Add at least two labels, each with a definition, then save the first version.")
    else:
        for problem in problems:
            st.error(problem)
    if overfit_warning:
        st.warning(overfit_warning)
    note = st.text_input(
        "What changed (optional)", key=f"cb_note_{rev}", placeholder="e.g. clarified 'other'"
    )
    if st.button("Save as a new version", type="primary", disabled=bool(problems)):
        with ctx.store.session() as s:
            saved = projects.save_codebook(s, ctx.user(s), project_id, current, note)
        load_draft(current.to_dict())
        if saved.created:
            st.toast(f"Saved as version {saved.version.version}.", icon=":material/check:")
        else:
            st.toast(f"No changes since version {saved.version.version}.", icon=":material/info:")
        st.rerun()

with history_tab:
    if not versions:
        st.info("No saved version yet.")
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "Version": v.version,
                        "Saved": v.created_at,
                        "Labels": len(v.content.get("labels", [])),
                        "Examples": len(v.content.get("examples", [])),
                        "Note": v.note,
                    }
                    for v in versions
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        numbers = [v.version for v in versions]
        by_number = {v.version: v for v in versions}
        if len(versions) > 1:
            c1, c2 = st.columns(2)
            old_n = c1.selectbox("Compare version", numbers, index=1, key="diff_old")
            new_n = c2.selectbox("with version", numbers, index=0, key="diff_new")
            old_cb = projects.as_codebook(by_number[old_n])
            new_cb = projects.as_codebook(by_number[new_n])
            changes = diff(old_cb, new_cb)
            if not changes:
                st.info("The two versions are the same.")
            else:
                st.dataframe(
                    pd.DataFrame([c.__dict__ for c in changes]), hide_index=True, width="stretch"
                )
                st.code(
                    diff_text(old_cb, new_cb, old_title=f"v{old_n}", new_title=f"v{new_n}"),
                    language="diff",
                )
        pick = st.selectbox("Open a version in the editor", numbers, key="open_version")
        if st.button("Load into the editor"):
            load_draft(by_number[pick].content)
            st.rerun()

with preview_tab:
    corpus = ui.project_corpus(ctx)
    if corpus is None:
        st.info("Upload a corpus on the Data page to preview the prompt for one of its texts.")
        st.page_link(ui.PAGES["Data"][0], label="Go to Data", icon=":material/arrow_forward:")
    elif problems:
        st.warning("Fix the codebook's problems (Edit tab) to see the prompt.")
    else:
        frame = ui.documents(ctx, corpus)
        nonempty = frame[frame["text"].str.strip() != ""]
        doc_id = st.selectbox("Text", nonempty["doc_id"].head(1000), key="preview_doc")
        structured = st.toggle(
            "Structured output (JSON schema)",
            value=True,
            help="Off: the plain-text prompt used for servers that do not support response_format.",
        )
        text = nonempty.loc[nonempty["doc_id"] == doc_id, "text"].iloc[0]
        messages = render_messages(current, text, structured=structured)
        st.caption(f"{len(messages)} messages, sent exactly like this for this text:")
        for message in messages:
            st.markdown(f"**{message['role']}**")
            st.code(message["content"], language=None, wrap_lines=True)

with file_tab:
    st.download_button(
        "Download the codebook shown in the editor (JSON)",
        data=current.to_json(),
        file_name=f"codebook-{project_id}.json",
        mime="application/json",
        disabled=bool(problems),
    )
    imported = st.file_uploader("Import a codebook (JSON)", type=["json"], key=f"cb_import_{rev}")
    if imported is not None:
        try:
            loaded = Codebook.from_json(imported.getvalue())
        except CodebookError as exc:
            st.error(str(exc))
        else:
            st.success(
                f"“{loaded.name}”: {len(loaded.labels)} labels, {len(loaded.examples)} examples."
            )
            if st.button("Put it into the editor (save there to keep it)"):
                load_draft(loaded.to_dict())
                st.rerun()
