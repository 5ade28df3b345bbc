"""The codebook editor and its companions: the draft kept in the session, the editor, the
version history with diffs, and the prompt preview (the exact messages the LLM gets)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from distill_core.codebook import Codebook, CodebookError, diff, diff_text, render_messages
from distill_core.corpus.label_list import LABEL_LIST_SUFFIXES, labels_from_file, labels_from_text
from distill_core.study import projects

#: The draft's row groups: the content key and the fields of one row.
_GROUPS = {"label": ("labels", ("name", "definition")), "example": ("examples", ("text", "label"))}


class Draft:
    """The codebook being edited, kept in the session per project; it starts from the latest
    saved version, and ``load`` replaces it (an import, an older version) and resets the
    editors.

    Each label and each example is a row with an id of its own (never its position): its
    fields are plain widgets keyed by that id, so that removing or adding a row never moves
    another's text, and typing at any speed lands where it was typed (the canvas grid of
    ``st.data_editor`` dropped and reordered keys typed before its cell editor had opened,
    seen in Chromium, whatever the data it was given)."""

    def __init__(self, project_id: int, latest, name: str | None) -> None:
        self.key = f"codebook_draft_{project_id}"
        if self.key not in st.session_state:
            self._set(
                latest.content
                if latest
                else {"name": name, "instructions": "", "labels": [], "examples": []},
                rev=0,
            )

    @property
    def content(self) -> dict:
        return st.session_state[self.key]

    @property
    def rev(self) -> int:
        return st.session_state[f"{self.key}_rev"]

    def rows(self, group: str = "label") -> list[int]:
        """The ids of a group's rows ("label" or "example"), in codebook order."""
        return st.session_state[f"{self.key}_{group}_rows"]

    def load(self, content: dict) -> None:
        self._set(content, rev=self.rev + 1)

    def _set(self, content: dict, rev: int) -> None:
        st.session_state[self.key] = content
        st.session_state[f"{self.key}_rev"] = rev
        for group, (content_key, parts) in _GROUPS.items():
            st.session_state[f"{self.key}_{group}_rows"] = []
            st.session_state[f"{self.key}_{group}_next"] = 0
            for item in content.get(content_key) or []:
                self.add_row(group, **{part: item.get(part, "") for part in parts})

    def field(self, row: int, part: str, group: str = "label") -> str:
        """The widget key of one field of a row (a label's "name", an example's "text"…)."""
        return f"cb_{group}_{self.rev}_{row}_{part}"

    def add_row(self, group: str = "label", **values: str) -> None:
        row = st.session_state[f"{self.key}_{group}_next"]
        st.session_state[f"{self.key}_{group}_next"] = row + 1
        for part in _GROUPS[group][1]:
            st.session_state[self.field(row, part, group)] = values.get(part, "")
        self.rows(group).append(row)

    def remove_row(self, row: int, group: str = "label") -> None:
        self.rows(group).remove(row)

    def values(self, group: str = "label") -> list[dict]:
        """A group's rows as the file format has them (``{"name", "definition"}`` …)."""
        parts = _GROUPS[group][1]
        return [
            {part: st.session_state.get(self.field(row, part, group)) or "" for part in parts}
            for row in self.rows(group)
        ]


def editor(draft: Draft) -> Codebook:
    """Name, instructions, the labels and the few-shot examples of a draft codebook
    (unchecked: the caller shows its problems)."""
    name = st.text_input("Name", value=draft.content.get("name", ""), key=f"cb_name_{draft.rev}")
    instructions = st.text_area(
        "General instructions",
        value=draft.content.get("instructions", ""),
        height=120,
        key=f"cb_instructions_{draft.rev}",
        help="What to code and how to decide hard cases. The LLM receives this text verbatim.",
    )
    st.markdown(
        "**Labels** — one row each: a short name and a definition with what is in and out. "
        "Many labels at once: *Import / export* tab."
    )
    _label_rows(draft)
    labels = draft.values("label")
    label_names = [str(lab["name"]).strip() for lab in labels if str(lab["name"]).strip()]
    st.markdown("**Examples** (optional) — few-shot examples shown to the LLM before each text.")
    _example_rows(draft, label_names)
    return Codebook.from_dict(
        {
            "name": name,
            "instructions": instructions,
            "labels": labels,
            "examples": draft.values("example"),
        },
        check=False,
    )


def _remove_button(draft: Draft, row: int, group: str, what: str, column) -> None:
    column.button(
        "",
        icon=":material/delete:",
        key=f"cb_{group}_{draft.rev}_{row}_remove",
        help=f"Remove {what}",
        type="tertiary",
        on_click=draft.remove_row,
        args=(row, group),
    )


def _add_button(draft: Draft, group: str, label: str) -> None:
    st.button(
        label,
        icon=":material/add:",
        key=f"cb_{group}_add_{draft.rev}",
        on_click=draft.add_row,
        args=(group,),
    )


def _label_rows(draft: Draft) -> None:
    """One row per label: its number, name, definition and a remove button; then Add."""
    for i, row in enumerate(draft.rows("label"), start=1):
        number, name, definition, remove = st.columns([0.4, 3, 8, 0.6], vertical_alignment="center")
        number.markdown(f"**{i}**")
        name.text_input(
            f"Name of label {i}",
            key=draft.field(row, "name"),
            label_visibility="collapsed",
            placeholder="Name",
            persist_state="session",
        )
        definition.text_area(
            f"Definition of label {i}",
            key=draft.field(row, "definition"),
            label_visibility="collapsed",
            placeholder="Definition: what is in, what is out",
            height=68,
            persist_state="session",
        )
        _remove_button(draft, row, "label", f"label {i}", remove)
    _add_button(draft, "label", "Add a label")


def _example_rows(draft: Draft, label_names: list[str]) -> None:
    """One row per example: its text, its label (one of the codebook's, or the one it had,
    which the page's problems then name) and a remove button; then Add."""
    for i, row in enumerate(draft.rows("example"), start=1):
        number, text, label, remove = st.columns([0.4, 8, 3, 0.6], vertical_alignment="center")
        number.markdown(f"**{i}**")
        text.text_area(
            f"Text of example {i}",
            key=draft.field(row, "text", "example"),
            label_visibility="collapsed",
            placeholder="An example text",
            height=68,
            persist_state="session",
        )
        key = draft.field(row, "label", "example")
        had = st.session_state[key] = st.session_state.get(key) or None  # "" is no choice
        label.selectbox(
            f"Label of example {i}",
            [*label_names, *([had] if had and had not in label_names else [])],
            key=key,
            label_visibility="collapsed",
            placeholder="Its label",
            persist_state="session",
        )
        _remove_button(draft, row, "example", f"example {i}", remove)
    _add_button(draft, "example", "Add an example")


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


def prompt_preview(codebook: Codebook, nonempty: pd.DataFrame) -> None:
    """The messages the LLM receives for a chosen text of ``nonempty`` (``doc_id`` and
    ``text`` of the corpus's first texts that are not blank), exactly as sent."""
    if nonempty.empty:
        st.info("Every text of the corpus is empty: there is no prompt to show.")
        return
    doc_id = st.selectbox("Text", nonempty["doc_id"], key="preview_doc")
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


def import_panel(draft: Draft, current: Codebook) -> dict | None:
    """A JSON codebook, or a list of labels with definitions (a CSV, TSV or Excel file of two
    columns, or pasted), shown first; returns the content to load into the editor once asked
    (a label list keeps the editor's name, instructions and examples)."""
    upload = st.file_uploader(
        "Import a codebook (JSON) or a list of labels (CSV, TSV or Excel: name, definition)",
        type=["json", *(s.lstrip(".") for s in LABEL_LIST_SUFFIXES)],
        key=f"cb_import_{draft.rev}",
    )
    pasted = st.text_area(
        "…or paste a list of labels",
        key=f"cb_paste_{draft.rev}",
        height=150,
        placeholder="From a spreadsheet (name and definition in two columns), or one label a "
        "line as “name: definition”.",
    )
    if upload is None and not pasted.strip():
        return None
    try:
        if upload is not None and upload.name.lower().endswith(".json"):
            loaded = Codebook.from_json(upload.getvalue())
            st.success(
                f"“{loaded.name}”: {len(loaded.labels)} labels, {len(loaded.examples)} examples."
            )
            content = loaded.to_dict()
        else:
            if upload is not None:
                labels = labels_from_file(upload.getvalue(), upload.name)
            else:
                labels = labels_from_text(pasted)
            replaced, dropped = current.with_labels(labels)
            content = replaced.to_dict()
            undefined = sum(not x.definition for x in labels)
            st.success(
                f"{len(labels)} labels"
                + (f", {undefined} of them without a definition yet" if undefined else "")
                + f" (the editor's {len(current.labels)} labels are replaced"
                + (
                    f"; {dropped} examples whose label is not in the list are left out)."
                    if dropped
                    else ")."
                )
            )
            st.dataframe(
                pd.DataFrame(content["labels"]).rename(
                    columns={"name": "Label", "definition": "Definition"}
                ),
                hide_index=True,
                width="stretch",
            )
    except CodebookError as exc:
        st.error(str(exc))
        return None
    return content if st.button("Put it into the editor (save there to keep it)") else None
