"""Data: upload a corpus, choose its text and id columns, see what was found."""

import streamlit as st

import ui
from distill_core.config import MAX_UPLOAD_MB
from distill_core.corpus import (
    SUPPORTED_SUFFIXES,
    CorpusError,
    prepare_corpus,
    read_table,
    suggest_id_column,
    text_columns,
)
from distill_core.study import projects

#: Texts of the corpus shown at a time (the search runs over all of them, in the database).
SHOWN = 500

ctx = ui.context()
ui.for_step(ctx, "Data")
st.title("Data")
project_id = ui.require_project(ctx)
corpus = ui.project_corpus(ctx)

if corpus is not None:
    st.subheader(f"Corpus: {corpus.filename}")
    report = corpus.report
    cols = st.columns(4)
    cols[0].metric("Texts", f"{corpus.row_count:,}")
    cols[1].metric("Empty", f"{report.get('empty_texts', 0):,}")
    cols[2].metric("Duplicates", f"{report.get('duplicate_texts', 0):,}")
    cols[3].metric("Very long", f"{report.get('long_texts', 0):,}")
    id_note = (
        "ids generated from the texts" if corpus.ids_generated else f"ids from “{corpus.id_column}”"
    )
    st.caption(
        f"Text column “{corpus.text_column}”, {id_note}, encoding {corpus.encoding or 'binary format'}, "
        f"uploaded {corpus.uploaded_at:%Y-%m-%d %H:%M} UTC. Empty, duplicate and very long texts are kept."
    )
    query = st.text_input("Search the texts", placeholder="a word or phrase", key="corpus_search")
    found = ctx.act(projects.documents_page, project_id, search=query, limit=SHOWN)
    st.caption(
        f"{found.matching:,} texts"
        + (" match" if query else "")
        + (f"; the first {SHOWN:,} are shown." if found.matching > SHOWN else ".")
    )
    st.dataframe(found.rows, hide_index=True, width="stretch")
    ui.go_to("Codebook", "Next: the codebook")

st.subheader("Replace the corpus" if corpus is not None else "Upload a corpus")
st.caption(
    f"CSV or TSV (delimiter detected), Excel .xlsx, Parquet, JSON Lines or Stata .dta, up to "
    f"{MAX_UPLOAD_MB} MB. One row per text."
)
upload = st.file_uploader(
    "Corpus file",
    type=[s.lstrip(".") for s in SUPPORTED_SUFFIXES],
    key=f"corpus_upload_{st.session_state.get('uploads_saved', 0)}",
)
if upload is None:
    st.stop()

# Read each uploaded file once: reruns reuse the parsed table.
cached = st.session_state.get("_parsed_upload")
if cached is None or cached[0] != upload.file_id:
    try:
        cached = (upload.file_id, read_table(upload.getvalue(), upload.name), None)
    except CorpusError as exc:
        cached = (upload.file_id, None, str(exc))
    st.session_state["_parsed_upload"] = cached
_, table, error = cached
if error:
    st.error(error)
    st.stop()

for warning in table.warnings:
    st.warning(warning)
candidates = text_columns(table.frame)
if not candidates:
    st.error(f"The file {table.filename} has no column of text to classify.")
    st.stop()
columns = list(table.frame.columns)
left, right = st.columns(2)
text_column = left.selectbox(
    "Text column", candidates, help="Suggested: the column with the longest texts."
)
GENERATE = "(generate ids from the texts)"
id_options = [GENERATE] + [c for c in columns if c != text_column]
suggested = suggest_id_column(table.frame, text_column)
id_choice = right.selectbox(
    "Id column",
    id_options,
    index=id_options.index(suggested.column) if suggested.column in id_options else 0,
    help="Unique ids let you match human codes later. Generated ids stay the same when the "
    "same file is uploaded again.",
)
if id_choice == (suggested.column or GENERATE):
    right.caption(suggested.sentence)
st.dataframe(table.frame.head(20), hide_index=True, width="stretch")

try:
    prepared = prepare_corpus(table, text_column, None if id_choice == GENERATE else id_choice)
except CorpusError as exc:
    st.error(str(exc))
    st.stop()

st.markdown("**What was found**")
st.markdown("\n".join(f"- {line}" for line in prepared.report.summary_lines()))
confirm, delete_orphaned = True, False
if corpus is not None:
    plan = ctx.act(projects.plan_replacement, project_id, prepared)
    st.markdown("**What replacing the corpus does**")
    st.markdown("\n".join(f"- {line}" for line in plan.lines()) or "- Nothing was coded yet.")
    confirm = st.checkbox(
        f"Replace “{corpus.filename}” ({corpus.row_count:,} texts) with this file"
    )
    if plan.orphaned:
        delete_orphaned = st.checkbox(
            f"Delete the {plan.orphaned_codes:,} human codes whose texts are not in this file"
        )
        confirm = confirm and delete_orphaned
if st.button("Save as the project's corpus", type="primary", disabled=not confirm):
    with st.spinner("Saving…"):
        ctx.act(
            projects.save_corpus,
            project_id,
            table,
            prepared,
            delete_orphaned_codes=delete_orphaned,
        )
    st.session_state.pop("_parsed_upload", None)
    st.session_state["uploads_saved"] = st.session_state.get("uploads_saved", 0) + 1
    st.toast(f"Saved {len(prepared.ids):,} texts.", icon=":material/check:")
    st.rerun()
