"""LLM labels: a teacher labels texts with the codebook, as a background job."""

import streamlit as st

import ui
from distill_core.jobs.label import LabelRequest, start_label_job
from distill_core.reports.charts import label_distribution
from distill_core.study import endpoints, projects, runs, validation
from ui.endpoint_check import show_connection

ctx = ui.context()
ui.for_step(ctx, "LLM labels")
st.title("LLM labels")
st.caption(
    "An LLM labels your texts with the codebook, one text per request. Every answer is kept; "
    "identical texts are asked once; running the same labelling again costs nothing."
)
ui.require_step(ctx, "Data", "a corpus")
ui.require_step(ctx, "Codebook", "a saved codebook")
corpus = ui.project_corpus(ctx)
version = ctx.act(projects.latest_codebook, ctx.project_id)
codebook = projects.as_codebook(version)

st.subheader("Teacher")
teacher = ui.forms.teacher_form(ctx)
if teacher.endpoint is not None and st.button(
    "Test connection", help="Sends one request for one text of the corpus."
):
    first = ctx.act(projects.first_texts, ctx.project_id, 1)["text"]
    if first.empty:
        st.warning("Every text of the corpus is empty: there is nothing to send.")
    else:
        with st.spinner("Asking…"):
            result = ctx.act(
                endpoints.check_endpoint,
                ctx.project_id,
                codebook=codebook,
                text=first.iloc[0],
                endpoint_id=teacher.endpoint_id,
                endpoint=teacher.endpoint,
                api_key=teacher.typed_key,
            )
        show_connection(result)

st.subheader("What to label")
sample = ctx.act(validation.current_sample, ctx.project_id)
sample_ids = (
    [d.doc_id for d in ctx.act(validation.sample_docs, ctx.project_id, sample)] if sample else []
)
scope = ui.forms.scope_form(ctx, sample_ids, teacher, codebook)

if st.button("Start labelling", type="primary"):
    request = LabelRequest(
        provider=teacher.provider,
        endpoint=teacher.endpoint,
        repeats=scope.repeats,
        concurrency=scope.concurrency,
        budget_usd=scope.budget_usd,
        price=scope.price,
        scope=scope.scope,
        endpoint_id=teacher.endpoint_id,
        timeout_s=scope.timeout_s,
        give_up_s=scope.give_up_s,
        logprobs=scope.logprobs,
    )
    ui.start_job(
        ctx,
        start_label_job,
        project_id=ctx.project_id,
        corpus_id=corpus.id,
        codebook_version_id=version.id,
        codebook=codebook,
        doc_ids=None if scope.scope == "all" else scope.doc_ids,
        request=request,
        api_key=teacher.typed_key,
    )

ui.job_panel(ctx, "label")

if not ctx.steps.get("LLM labels"):
    st.stop()

st.subheader("Results")
run = ui.label_run_picker(ctx, "Label run", "llm_run")


def _first_page() -> None:
    st.session_state["llm_page"] = 1


c1, c2, c3 = st.columns(3)
found = ctx.act(
    runs.results_page,
    ctx.project_id,
    run.id,
    labels=c1.multiselect(
        "Label",
        sorted(ctx.act(runs.label_counts, ctx.project_id, run.id)),
        key="llm_f_label",
        on_change=_first_page,
    ),
    statuses=c2.multiselect(
        "Status", list(runs.STATUSES), key="llm_f_status", on_change=_first_page
    ),
    min_confidence=c3.slider(
        "Confidence at least", 0.0, 1.0, 0.0, 0.05, key="llm_f_conf", on_change=_first_page
    ),
    search=st.text_input("Search the texts and ids", key="llm_f_search", on_change=_first_page),
    page=st.session_state.get("llm_page", 1),
)
st.caption(
    (
        f"Texts {found.first:,}–{found.first + len(found.rows) - 1:,} of {found.matching:,}"
        if found.matching
        else "No text matches"
    )
    + (f" (of {found.total:,} in the run)" if found.matching < found.total else "")
    + f"; each text's first {runs.SHOWN_CHARS:,} characters. The whole table: the labelled "
    "corpus on the Export page."
)
st.dataframe(
    found.rows,
    hide_index=True,
    width="stretch",
    column_config={
        "confidence": st.column_config.ProgressColumn(
            "confidence", min_value=0, max_value=1, format="%.2f"
        ),
        "consistency": st.column_config.NumberColumn("consistency", format="%.2f"),
    },
)
if found.pages > 1:
    st.session_state["llm_page"] = found.page
    st.number_input(
        f"Page (of {found.pages:,})", min_value=1, max_value=found.pages, step=1, key="llm_page"
    )
counts = ctx.act(runs.label_counts, ctx.project_id, run.id, statuses=["ok"])
ui.image_format_picker()
ui.chart(
    ui.kept_figure(
        label_distribution, counts, title=f"LLM labels, run {run.id}", order=codebook.label_names
    ),
    f"llm-labels-run-{run.id}",
)
st.download_button(
    "Download the audit log (JSON Lines: every prompt and answer)",
    data=ui.export_file(ctx, "audit", run_id=run.id),
    file_name=f"distill-run-{run.id}-audit.jsonl",
    mime="application/jsonl",
)
