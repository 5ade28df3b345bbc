"""Validate: draw a sample, code it blind, import existing codes, score the LLM against humans."""

import streamlit as st

import ui
import ui.adjudication
import ui.assignments
from distill_core.corpus import CorpusError, read_table
from distill_core.study import projects, runs, validation
from distill_core.study.access import Capability

ctx = ui.context()
ui.for_step(ctx, "Validate")
st.title("Validate")
st.caption(
    "Experts code a random sample; the LLM is scored against them. Revise the codebook on the "
    "development part; look at the held-out test part once, for the final judgement."
)
ui.require_step(ctx, "Data", "a corpus")
ui.require_step(ctx, "Codebook", "a saved codebook")
version = ctx.act(projects.latest_codebook, ctx.project_id)
sample = ctx.act(validation.current_sample, ctx.project_id)
codebook = projects.as_codebook(version)
if not ctx.can(Capability.EDIT):  # a coder: their own codes of the sample, nothing else
    docs = ctx.act(validation.sample_docs, ctx.project_id, sample) if sample else []
    if not docs:
        st.info("There is nothing to code yet: the researchers have not drawn a sample.")
        st.stop()
    ui.coding.show(ctx, sample, docs, ctx.act(validation.own_codes, ctx.project_id), codebook)
    st.stop()
label_runs = ctx.act(runs.project_runs, ctx.project_id, with_results=True)


# Only the chosen tab is computed (and kept in the address, so a reload stays on it): at
# 100,000 texts the agreement figures and confusion matrices of the other tabs cost a second.
code_tab, agree_tab, assign_tab, adjudicate_tab, sample_tab, import_tab = st.tabs(
    ["Code", "Agreement", "Assign", "Adjudicate", "Sample", "Import codes"],
    key="tab",
    on_change="rerun",
    bind="query-params",
)

if sample_tab.open:
    with sample_tab:
        if sample is not None:
            ui.show_sample(sample, ctx.act(validation.part_counts, ctx.project_id, sample))
            ui.sample_downloads(ctx)
        st.markdown(
            "**Draw a new sample.** The papers suggest 250–1,250 texts; rare categories need "
            "more (or a sample stratified by the LLM's labels, so that they appear). Codes "
            "already made are kept."
        )
        request = ui.forms.sample_form(
            label_runs, ctx.act(projects.version_numbers, ctx.project_id)
        )
        if request is not None:
            try:
                ctx.act(validation.draw_sample, ctx.project_id, **request.kwargs())
            except validation.ValidationError as exc:
                st.error(str(exc))
            else:
                st.rerun()
    st.stop()

if sample is None:
    opened = next(
        t for t in (code_tab, agree_tab, assign_tab, adjudicate_tab, import_tab) if t.open
    )
    with opened:
        st.info("Draw a sample first (Sample tab).")
    st.stop()

docs = ctx.act(validation.sample_docs, ctx.project_id, sample)
codes = ctx.act(validation.codes_frame, ctx.project_id)

if code_tab.open:
    with code_tab:
        ui.coding.show(ctx, sample, docs, codes, codebook)
elif agree_tab.open:
    with agree_tab:
        ui.agreement.show(ctx, sample, docs, codes, label_runs)
elif assign_tab.open:
    with assign_tab:
        ui.assignments.show(ctx, sample, docs, codes, codebook)
elif adjudicate_tab.open and ctx.can(Capability.ADJUDICATE):
    with adjudicate_tab:
        ui.adjudication.show(ctx, sample, codebook, label_runs)
if not import_tab.open:
    st.stop()

with import_tab:
    st.markdown(
        "Import codes made elsewhere (CSV, TSV, Excel), matched to the corpus by id: a sample "
        "file from the Sample tab, filled in, or any table of ids and labels."
    )
    upload = st.file_uploader("Codes file", type=["csv", "tsv", "txt", "xlsx"], key="codes_upload")
    if upload is None:
        st.stop()
    try:
        table = read_table(upload.getvalue(), upload.name)
    except CorpusError as exc:
        st.error(str(exc))
        st.stop()
    columns = ui.forms.codes_columns_form(table.frame)
    try:
        plan = ctx.act(
            validation.plan_import,
            ctx.project_id,
            table.frame,
            id_column=columns.id_column,
            label_column=columns.label_column,
            label_names=codebook.label_names,
            coder_column=columns.coder_column,
            coder=columns.coder,
        )
    except validation.ValidationError as exc:
        st.error(str(exc))
        st.stop()
    st.markdown("\n".join(f"- {line}" for line in plan.lines()))
    if plan.codes and st.button(f"Import {len(plan.codes):,} codes", type="primary"):
        ctx.act(validation.apply_import, ctx.project_id, plan, f"import:{upload.name}")
        st.toast(f"Imported {len(plan.codes):,} codes.")
        st.rerun()
