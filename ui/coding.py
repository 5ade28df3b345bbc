"""The blind-coding panel: one text at a time with the codebook beside it, a key per label,
back and skip, a note ("unsure because…"), progress, and the LLM's label shown only once the
coder has given theirs (never to a coder). A coder with assigned texts codes their own queue,
in an order of their own; without an assignment, the texts of one part of the sample."""

from __future__ import annotations

import html

import pandas as pd
import streamlit as st

from distill_core.clock import utcnow
from distill_core.codebook import Codebook
from distill_core.study import assignments, runs, validation
from distill_core.study.access import Capability, ProjectError
from distill_core.study.assignments import QueueItem
from ui.context import Context


def show(ctx: Context, sample, docs: list, codes: pd.DataFrame, codebook: Codebook) -> None:
    """Code the sample's texts: as the signed-in user on a shared instance, or under a typed
    name in single-user mode (each coder's labels are kept apart)."""
    if ctx.hosted:
        coder = ctx.username
        st.caption(f"You code as **{coder}**.")
    else:
        coder = st.text_input(
            "Your name as a coder",
            key="coder_name",
            help="Each coder's labels are kept apart, so several people can code the same texts.",
        ).strip()
    if not coder:
        st.info("Type your name to start coding.")
        return
    try:
        queue = ctx.act(assignments.coding_queue, ctx.project_id, sample, coder)
    except ProjectError as exc:  # a coder typing another's name: refused before any text
        st.error(str(exc))
        return
    if queue is not None:
        st.caption(f"Your queue: the {queue.total} texts assigned to you, in an order of your own.")
        _panel(ctx, sample, coder, queue.items, codebook, f"queue_{sample.id}_{coder}")
        return
    if ctx.act(assignments.is_assigned, ctx.project_id, sample):
        if not ctx.can(Capability.EDIT):
            st.info("No text of this sample is assigned to you yet: ask the project's owner.")
            return
        st.caption(f"No text is assigned to {coder}: you code outside the assignment.")
    part = st.radio("Part", ["Development", "Held-out test"], horizontal=True, key="code_part")
    part_key = "dev" if part == "Development" else "test"
    mine = codes[codes["coder"] == coder].set_index("doc_id")
    items = [
        QueueItem(
            d.doc_id,
            d.text,
            mine["label"].get(d.doc_id),
            str(mine["note"].get(d.doc_id) or "") if "note" in mine else "",
        )
        for d in docs
        if d.part == part_key
    ]
    if not items:
        st.info("This part of the sample has no texts.")
        return
    _panel(ctx, sample, coder, items, codebook, f"code_position_{sample.id}_{part_key}")


def _next_open(items: list[QueueItem], pos: int, coded: str) -> int:
    """The next uncoded text after ``pos`` (round to skipped ones), ``coded`` now coded."""
    n = len(items)
    for step in range(1, n):
        i = (pos + step) % n
        if items[i].label is None and items[i].doc_id != coded:
            return i
    return min(pos + 1, n - 1)


def _panel(
    ctx: Context, sample, coder: str, items: list[QueueItem], codebook: Codebook, pos_key: str
) -> None:
    mine = {i.doc_id: i.label for i in items if i.label is not None}
    done = len(mine)
    if pos_key not in st.session_state:
        st.session_state[pos_key] = next((i for i, d in enumerate(items) if d.label is None), 0)
    pos = min(st.session_state[pos_key], len(items) - 1)
    st.progress(done / len(items), text=f"{done} of {len(items)} coded")
    if done == len(items):
        st.success(f"All {len(items)} texts are coded. Go back to any of them to change a code.")
    item = items[pos]
    opened_key = f"_opened_{pos_key}"
    if st.session_state.get(opened_key, (None,))[0] != item.doc_id:
        st.session_state[opened_key] = (item.doc_id, utcnow())  # the time a text takes
    opened = st.session_state[opened_key][1]
    # Blind: a coder never sees the LLM's labels; others see one only once they coded the text.
    reveal = ctx.can(Capability.READ)
    ids = {i.doc_id for i in items}
    llm = ctx.act(runs.latest_labels, ctx.project_id, ids) if reveal else {}
    left, right = st.columns([3, 2])
    with left:
        _text(item, pos, len(items))
        note_key = f"code_note_{pos_key}_{item.doc_id}"
        if note_key not in st.session_state:
            st.session_state[note_key] = item.note
        st.text_input(
            "Unsure because… (optional)",
            key=note_key,
            placeholder="A note on this text for whoever settles disagreements",
        )

        def submit(label: str, doc_id: str = item.doc_id) -> None:
            try:
                ctx.act(
                    validation.save_code,
                    ctx.project_id,
                    doc_id,
                    coder,
                    label,
                    note=st.session_state.get(note_key, ""),
                    opened_at=opened,
                )
            except ProjectError as exc:  # a callback runs outside the page's error guard
                st.session_state["_code_refused"] = str(exc)
                return
            st.session_state[f"_last_{sample.id}"] = doc_id
            st.session_state[pos_key] = _next_open(items, pos, doc_id)

        if refused := st.session_state.pop("_code_refused", None):
            st.error(refused)
        _label_buttons(codebook.label_names, item.label, submit)
        nav = st.columns(3)
        nav[0].button(
            "Back",
            shortcut="Left",
            disabled=pos == 0,
            key="code_back",
            on_click=lambda: st.session_state.update({pos_key: pos - 1}),
        )
        nav[1].button(
            "Skip",
            shortcut="Right",
            disabled=pos >= len(items) - 1,
            key="code_skip",
            on_click=lambda: st.session_state.update({pos_key: pos + 1}),
        )
        st.caption(
            "Keys: 1–9 choose a label, ← back, → skip (after a note, click a label or press "
            "Tab first)."
        )
        own = item.label
        if own is not None and reveal:
            # Blind until submitted: the LLM's label shows only for texts this coder has coded.
            said = llm.get(item.doc_id)
            st.info(
                f"Your code: **{own}**. "
                + (f"The LLM said: **{said}**." if said else "No LLM label for this text yet.")
            )
        last = st.session_state.get(f"_last_{sample.id}")
        if own is not None and not reveal:
            st.info(f"Your code: **{own}**.")
        if last and last != item.doc_id and last in mine:
            said = llm.get(last)
            st.caption(
                f"Previous text ({last}): you coded **{mine[last]}**"
                + (f"; the LLM said **{said}**." if said else ".")
            )
    with right:
        codebook_panel(codebook)


def _text(item, pos: int, total: int) -> None:
    st.caption(f"Text {pos + 1} of {total} · id {item.doc_id}")
    with st.container(border=True):
        st.markdown(
            f"<div style='font-size:1.2rem;line-height:1.6'>{html.escape(item.text)}</div>",
            unsafe_allow_html=True,
        )


def _label_buttons(names: list[str], own: str | None, submit) -> None:
    cols = st.columns(min(4, len(names)))
    for i, label in enumerate(names):
        cols[i % len(cols)].button(
            f"{label}",
            key=f"code_{label}",
            type="primary" if own == label else "secondary",
            shortcut=str(i + 1) if i < 9 else None,
            on_click=submit,
            args=(label,),
            width="stretch",
        )


def codebook_panel(codebook: Codebook) -> None:
    """The codebook as a coder reads it beside the text."""
    st.markdown(f"**{codebook.name}**")
    if codebook.instructions:
        st.caption(codebook.instructions)
    for i, label in enumerate(codebook.labels):
        st.markdown(f"**{i + 1} · {label.name}** — {label.definition}")
