"""The codebook editor and its companions: the draft kept in the session, the editor, the
version history with diffs, and the prompt preview (the exact messages the LLM gets)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from distill_core.codebook import Codebook, diff, diff_text, render_messages
from distill_core.study import projects


class Draft:
    """The codebook being edited, kept in the session per project; it starts from the latest
    saved version, and ``load`` replaces it (an import, an older version) and resets the
    editors."""

    def __init__(self, project_id: int, latest, name: str | None) -> None:
        self.key = f"codebook_draft_{project_id}"
        if self.key not in st.session_state:
            st.session_state[self.key] = (
                latest.content
                if latest
                else {"name": name, "instructions": "", "labels": [], "examples": []}
            )
            st.session_state[f"{self.key}_rev"] = 0

    @property
    def content(self) -> dict:
        return st.session_state[self.key]

    @property
    def rev(self) -> int:
        return st.session_state[f"{self.key}_rev"]

    def load(self, content: dict) -> None:
        st.session_state[self.key] = content
        st.session_state[f"{self.key}_rev"] = self.rev + 1


def editor(draft: Draft) -> Codebook:
    """Name, instructions, the label grid and the few-shot examples of a draft codebook
    (unchecked: the caller shows its problems)."""
    name = st.text_input("Name", value=draft.content.get("name", ""), key=f"cb_name_{draft.rev}")
    instructions = st.text_area(
        "General instructions",
        value=draft.content.get("instructions", ""),
        height=120,
        key=f"cb_instructions_{draft.rev}",
        help="What to code and how to decide hard cases. The LLM receives this text verbatim.",
    )
    st.markdown("**Labels** — one row each: a short name and a definition with what is in and out.")
    labels = st.data_editor(
        pd.DataFrame(draft.content.get("labels") or [], columns=["name", "definition"]),
        num_rows="dynamic",
        width="stretch",
        key=f"cb_labels_{draft.rev}",
        column_config={
            "name": st.column_config.TextColumn("Label", required=True, width="small"),
            "definition": st.column_config.TextColumn("Definition", width="large"),
        },
    )
    label_names = [str(n).strip() for n in labels["name"].dropna() if str(n).strip()]
    st.markdown("**Examples** (optional) — few-shot examples shown to the LLM before each text.")
    examples = st.data_editor(
        pd.DataFrame(draft.content.get("examples") or [], columns=["text", "label"]),
        num_rows="dynamic",
        width="stretch",
        key=f"cb_examples_{draft.rev}",
        column_config={
            "text": st.column_config.TextColumn("Text", width="large"),
            "label": st.column_config.SelectboxColumn("Label", options=label_names),
        },
    )
    return Codebook.from_dict(
        {
            "name": name,
            "instructions": instructions,
            "labels": labels.fillna("").to_dict("records"),
            "examples": examples.fillna("").to_dict("records"),
        },
        check=False,
    )


def history(versions: list) -> object | None:
    """Every saved version, a diff between any two, and a version to open in the editor
    (returned when the user asks to load it)."""
    if not versions:
        st.info("No saved version yet.")
        return None
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
    return by_number[pick] if st.button("Load into the editor") else None


def prompt_preview(codebook: Codebook, documents: pd.DataFrame) -> None:
    """The messages the LLM receives for a chosen text, exactly as sent."""
    nonempty = documents[documents["text"].str.strip() != ""]
    doc_id = st.selectbox("Text", nonempty["doc_id"].head(1000), key="preview_doc")
    structured = st.toggle(
        "Structured output (JSON schema)",
        value=True,
        help="Off: the plain-text prompt used for servers that do not support response_format.",
    )
    text = nonempty.loc[nonempty["doc_id"] == doc_id, "text"].iloc[0]
    messages = render_messages(codebook, text, structured=structured)
    st.caption(f"{len(messages)} messages, sent exactly like this for this text:")
    for message in messages:
        st.markdown(f"**{message['role']}**")
        st.code(message["content"], language=None, wrap_lines=True)
