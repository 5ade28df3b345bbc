"""Export: the labelled corpus, the human codes, the audit log, the model, the methods appendix."""

import streamlit as st

import ui
from distill_core.reports.export import COLUMN_LABELS, FORMATS

ctx = ui.context()
ui.for_step(ctx, "Export")
st.title("Export")
st.caption(
    "Files for Stata, R, Excel and a paper's appendix. Each is built when you click its button. "
    "Text cells that a spreadsheet would run as a formula (starting with =, +, -, @) get a "
    "leading apostrophe in CSV and Excel files; no file ever holds an API key."
)
ui.require_step(ctx, "Data", "a corpus")
slug = ui.project_slug(ctx)

st.subheader("The labelled corpus")
TABLES = {
    "CSV (UTF-8)": "csv",
    "Excel (.xlsx)": "xlsx",
    "Parquet": "parquet",
    "Stata 14+ (.dta, value labels)": "dta",
}
c1, c2 = st.columns([2, 1])
choice = c1.radio("Format", list(TABLES), horizontal=True, key="ex_format")
probabilities = c2.checkbox(
    "Add each category's probability", key="ex_probs", help="One prob_<label> column per category."
)
fmt = TABLES[choice]
mime, ext = FORMATS[fmt]
st.download_button(
    f"Download the labelled corpus ({choice})",
    data=ui.export_file(ctx, fmt, probabilities=probabilities),
    file_name=f"distill-{slug}-corpus{ext}",
    mime=mime,
    type="primary",
    on_click="ignore",
    key="ex_corpus",
)
with st.expander("What the columns hold"):
    st.dataframe(
        [{"column": k, "meaning": v} for k, v in COLUMN_LABELS.items()]
        + [{"column": "human_<coder>", "meaning": "Each coder's label"}],
        hide_index=True,
        width="stretch",
    )
    if not ctx.steps.get("Results"):
        st.caption(
            "student_label and student_probability stay empty until a student has labelled the "
            "corpus (Fine-tune page)."
        )

st.subheader("The study's other records")
RECORDS = [
    ("Human codes (CSV: coder, label, times)", "codes", "human-codes", "Validate"),
    ("LLM audit log (JSON Lines: every prompt and answer)", "audit", "audit", "LLM labels"),
    ("The newest student model (zip)", "model", "model", "Fine-tune"),
]
for col, (label, kind, name, step) in zip(st.columns(3), RECORDS, strict=True):
    col.download_button(
        label,
        data=ui.export_file(ctx, kind),
        file_name=f"distill-{slug}-{name}{FORMATS[kind][1]}",
        mime=FORMATS[kind][0],
        disabled=not ctx.steps.get(step),
        help=None if ctx.steps.get(step) else f"Needs the {step} step first.",
        on_click="ignore",
        key=f"ex_{kind}",
    )

st.subheader("Methods appendix")
st.caption(
    "Codebook, LLM settings, samples, agreement and F1 with confidence intervals, training "
    "settings and corrected shares, written as text to paste into a paper."
)
for col, (label, kind) in zip(
    st.columns(2),
    [("Methods appendix (Markdown)", "appendix-md"), ("Methods appendix (HTML)", "appendix-html")],
    strict=True,
):
    col.download_button(
        label,
        data=ui.export_file(ctx, kind),
        file_name=f"distill-{slug}-methods{FORMATS[kind][1]}",
        mime=FORMATS[kind][0],
        on_click="ignore",
        key=f"ex_{kind}",
    )
if st.toggle("Show the appendix here", key="ex_preview"):
    from distill_core.reports.appendix import methods_appendix

    st.markdown(ctx.act(methods_appendix, ctx.project_id).markdown)
