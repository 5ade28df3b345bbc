"""The Adjudicate tab (owners and researchers): the texts on which coders disagree, ties
marked, filterable by a pair of categories; an expert's gold code with a reason for one text
at a time; and the matrices of what humans and the LLM confuse, beside the codebook's
definitions of the categories confused most."""

from __future__ import annotations

import html

import pandas as pd
import streamlit as st

from distill_core.codebook import Codebook
from distill_core.reports.charts import confusion_heatmap, many_categories
from distill_core.reports.formatting import plural
from distill_core.study import adjudication, projects, runs
from distill_core.study.validation import ValidationError
from ui.context import Context
from ui.views import chart

ALL = "(every pair)"


def show(ctx: Context, sample, codebook: Codebook, label_runs: list) -> None:
    found = ctx.act(adjudication.disputes, ctx.project_id, sample)
    ties = sum(d.tie for d in found)
    open_ = [d for d in found if d.adjudicated is None]
    st.markdown(
        f"**{len(found)} {plural(len(found), 'text')}** on which coders disagree ({ties} "
        f"{plural(ties, 'tie')}, {len(found) - len(open_)} adjudicated). A text's gold label "
        "is the adjudicated code, "
        "else its coders' majority; a tie nobody adjudicated has none and is left out of every "
        "figure."
    )
    if found:
        _disputes(ctx, found, codebook)
    st.subheader("What gets confused")
    _confusions(ctx, sample, label_runs)


def _disputes(ctx: Context, found: list, codebook: Codebook) -> None:
    pairs = sorted({p for d in found for p in d.pairs})
    counts = {p: len(adjudication.with_pair(found, p)) for p in pairs}
    pair = st.selectbox(
        "Category pair",
        [None, *sorted(pairs, key=lambda p: -counts[p])],
        format_func=lambda p: ALL if p is None else f"{p[0]} × {p[1]} ({counts[p]})",
        key="adj_pair",
    )
    only_open = st.checkbox("Only texts not adjudicated yet", value=True, key="adj_open")
    shown = [
        d for d in adjudication.with_pair(found, pair) if not only_open or d.adjudicated is None
    ]
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "doc_id": d.doc_id,
                    "codes": "; ".join(f"{c}: {lab}" for c, lab in d.codes.items()),
                    "majority": d.majority or "tie",
                    "adjudicated": d.adjudicated or "",
                    "reason": d.reason,
                    "text": d.text,
                }
                for d in shown
            ],
            columns=["doc_id", "codes", "majority", "adjudicated", "reason", "text"],
        ),
        hide_index=True,
        width="stretch",
    )
    if not shown:
        st.success("Nothing left to adjudicate here.")
        return
    by_id = {d.doc_id: d for d in shown}
    chosen = st.selectbox(
        "Text to adjudicate",
        list(by_id),
        format_func=lambda d: f"{d}: " + ", ".join(by_id[d].codes.values()),
        key="adj_doc",
    )
    _form(ctx, by_id[chosen], codebook)


def _form(ctx: Context, dispute: adjudication.Dispute, codebook: Codebook) -> None:
    with st.container(border=True):
        st.markdown(
            f"<div style='font-size:1.1rem;line-height:1.5'>{html.escape(dispute.text)}</div>",
            unsafe_allow_html=True,
        )
    for coder, label in dispute.codes.items():
        note = dispute.notes.get(coder)
        st.markdown(f"- **{coder}**: {label}" + (f" — “{note}”" if note else ""))
    names = codebook.label_names
    with st.form(f"adjudicate_{dispute.doc_id}"):
        current = names.index(dispute.adjudicated) if dispute.adjudicated in names else None
        label = st.radio(
            "Gold code", names, index=current, horizontal=True, key=f"adj_label_{dispute.doc_id}"
        )
        reason = st.text_input(
            "Reason (optional)", value=dispute.reason, key=f"adj_reason_{dispute.doc_id}"
        )
        saved = st.form_submit_button("Save the gold code", type="primary", key="adj_save")
    if saved:
        if label is None:
            st.error("Choose the gold code first.")
            return
        try:
            ctx.act(adjudication.adjudicate, ctx.project_id, dispute.doc_id, label, reason)
        except ValidationError as exc:
            st.error(str(exc))
            return
        st.toast(f"{dispute.doc_id}: gold code {label}.")
        st.rerun()
    if dispute.adjudicated and st.button("Withdraw this adjudication", key="adj_withdraw"):
        ctx.act(adjudication.withdraw, ctx.project_id, dispute.doc_id)
        st.rerun()


def _confusions(ctx: Context, sample, label_runs: list) -> None:
    version_of = ctx.act(projects.version_numbers, ctx.project_id)
    run = st.selectbox(
        "LLM label run",
        [None, *label_runs],
        format_func=lambda r: (
            "(none)" if r is None else runs.run_title(r, version_of.get(r.codebook_version_id))
        ),
        index=1 if label_runs else 0,
        key="adj_run",
    )
    found = ctx.act(
        adjudication.confusions, ctx.project_id, sample, run.id if run is not None else None
    )
    wide = many_categories(found.labels)
    left, right = (st.container(), st.container()) if wide else st.columns([3, 2])
    with left:
        st.markdown("**Humans vs humans**: the codes two coders gave the same text.")
        humans = found.humans
        if humans.empty:
            st.caption("No text has two coders' codes yet.")
        else:
            cells = humans.to_numpy()
            pairs = int(cells.trace() + (cells.sum() - cells.trace()) // 2)
            figure = confusion_heatmap(
                [str(c) for c in humans.index],
                cells.tolist(),
                title="Pairs of coders' codes",
                rows="one coder",
                columns="the other",
                n=pairs,
            )
            chart(figure, "confusion-coders")
        if found.llm is not None and not found.llm.empty:
            st.markdown("**Humans vs LLM**: gold label (rows) against the LLM's (columns).")
            figure = confusion_heatmap(
                [str(c) for c in found.llm.index],
                found.llm.to_numpy().tolist(),
                title=f"Gold vs LLM run {found.run_id}",
                rows="gold",
                columns="LLM",
            )
            chart(figure, f"confusion-gold-llm-{found.run_id}")
    with right:
        st.markdown("**The categories confused most, as the codebook defines them**")
        if not found.pairs:
            st.caption("No category has been confused with another yet.")
        for p in found.pairs[:3]:
            st.markdown(
                f"**{p.a} × {p.b}** — humans {p.humans}×, LLM {p.llm}×\n\n"
                f"- *{p.a}*: {found.definitions.get(p.a, '(not in the codebook)')}\n"
                f"- *{p.b}*: {found.definitions.get(p.b, '(not in the codebook)')}"
            )
