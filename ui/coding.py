"""The blind-coding panel: one text at a time with the codebook beside it, every label within
reach of the keyboard at any codebook size (keys 1–9 for the first nine, a type-ahead search
over the names for all), back and skip, a note ("unsure because…"), progress, and the LLM's
label shown only once the coder has given theirs (never to a coder). A coder with assigned
texts codes their own queue, in an order of their own; without an assignment, the texts of
one part of the sample."""

from __future__ import annotations

import html
import json

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
            bind="query-params",  # kept in the address: a reload or a bookmark codes on as them
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
        _label_search(codebook, f"code_find_{pos_key}", submit)
        _label_buttons(codebook, item.label, submit)
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
        st.caption(_keys_caption(len(codebook.labels)))
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


#: Label names for the type-ahead search, found by the script below by its aria-label.
SEARCH_LABEL = "Find a label (type its name, Enter)"

#: Type-ahead in the browser: a letter typed while no field has the focus goes to the label
#: search (Streamlit's button shortcuts take digits and arrows only); Enter or Esc there, or
#: Esc in any other field, hands the focus back, so that the next digit is a shortcut again;
#: the definition of the label the search has highlighted is shown above it (the list of
#: names covers what is below). Installed once per page; the definitions are refreshed
#: whenever the codebook changes.
_TYPE_AHEAD_JS = """<script>
(() => {
  window.__distillDefinitions = %(definitions)s;
  if (window.__distillTypeAhead) return;
  window.__distillTypeAhead = true;
  const search = () => [...document.querySelectorAll("input[role=combobox]")]
    .find((input) => input.getAttribute("aria-label") === %(label)s);
  const editing = (el) => el && (el.isContentEditable
    || ["INPUT", "TEXTAREA", "SELECT"].includes(el.tagName));
  const showDefinition = (box) => {
    const out = document.querySelector(".distill-label-definition");
    if (!out) return;
    const id = box.getAttribute("aria-activedescendant");
    const option = id && document.getElementById(id);
    const entry = option && window.__distillDefinitions[option.getAttribute("data-key")];
    out.textContent = entry ? entry[0] + ": " + (entry[1] || "(no definition)") : "";
  };
  // The highlighted option changes after the list is filtered (a render later than the key).
  new MutationObserver((changes) => {
    const box = search();
    if (box && changes.some((c) => c.target === box)) showDefinition(box);
  }).observe(document.body, {
    subtree: true, attributes: true, attributeFilter: ["aria-activedescendant", "aria-expanded"],
  });
  document.addEventListener("keydown", (e) => {
    const box = search();
    if (!box || box.offsetParent === null) return;  // not on this page, or in a hidden tab
    if (e.target === box) {
      if (e.key === "Enter" || e.key === "Escape") setTimeout(() => box.blur(), 0);
      return;
    }
    if (editing(e.target)) {
      if (e.key === "Escape") e.target.blur();  // out of the note: the keys work again
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key.length === 1 && /\\p{L}/u.test(e.key)) {
      box.focus();  // the letter itself lands in the search box
      e.stopPropagation();  // not Streamlit's own keys (R reruns, C clears the cache)
    }
  }, true);
})();
</script>"""


def _label_search(codebook: Codebook, key: str, submit) -> None:
    """A type-ahead search over every label's name: type, Enter submits the highlighted one."""

    def chosen() -> None:
        label = st.session_state.get(key)
        st.session_state[key] = None  # empty again for the next text
        if label is not None:
            submit(label)

    definitions = {
        str(i): [label.name, label.definition] for i, label in enumerate(codebook.labels)
    }
    st.html(
        "<div class='distill-label-definition' style='min-height:1.2em;font-size:0.85rem;"
        "opacity:0.75'></div>"
        + _TYPE_AHEAD_JS
        % {
            "definitions": json.dumps(definitions).replace("</", "<\\/"),
            "label": json.dumps(SEARCH_LABEL),
        },
        unsafe_allow_javascript=True,
    )
    st.selectbox(
        SEARCH_LABEL,
        codebook.label_names,
        index=None,
        key=key,
        on_change=chosen,
        placeholder="Start typing a label's name anywhere on the page",
        filter_mode="fuzzy",
    )


#: Up to this many labels the buttons sit four to a row; beyond, three (names wrap in full).
_FOUR_A_ROW = 8


def _label_buttons(codebook: Codebook, own: str | None, submit) -> None:
    """One button per label in reading order (the Tab order too), the full name wrapping, its
    definition as the tooltip (on hover and on keyboard focus); keys 1–9 for the first nine."""
    labels = list(codebook.labels)
    per_row = 4 if len(labels) <= _FOUR_A_ROW else 3
    for start in range(0, len(labels), per_row):
        row = labels[start : start + per_row]
        cols = st.columns(per_row)
        for offset, label in enumerate(row):
            i = start + offset
            cols[offset].button(
                label.name,
                key=f"code_{label.name}",
                help=label.definition or None,
                type="primary" if own == label.name else "secondary",
                shortcut=str(i + 1) if i < 9 else None,
                on_click=submit,
                args=(label.name,),
                width="stretch",
                wrap=True,
            )


def _keys_caption(n_labels: int) -> str:
    keys = "1–9 choose the first nine labels" if n_labels > 9 else f"1–{n_labels} choose a label"
    return (
        f"Keys: {keys}; type a label's name and press Enter for any label; ← back, → skip. "
        "After typing a note, press Esc to use the keys again."
    )


def codebook_panel(codebook: Codebook) -> None:
    """The codebook as a coder reads it beside the text: each label's key only where it has
    one (the first nine), every definition in full; scrolls beside the text when long."""
    st.markdown(f"**{codebook.name}**")
    if codebook.instructions:
        st.caption(codebook.instructions)
    lines = [
        (f"`{i + 1}` " if i < 9 else "") + f"**{label.name}** — {label.definition}"
        for i, label in enumerate(codebook.labels)
    ]
    box = st.container(height=560) if len(lines) > 12 else st.container()
    box.markdown("\n\n".join(lines))
