"""Export: the labelled corpus, the human codes, the audit log, the model, the methods appendix."""

import streamlit as st

import ui
from distill_core.export import COLUMN_LABELS, FORMATS

ctx = ui.context()
st.title("Export")
st.caption(
    "Files for Stata, R, Excel and a paper's appendix. Each is built when you click its button. "
    "Text cells that a spreadsheet would run as a formula (starting with =, +, -, @) get a "
    "leading apostrophe in CSV and Excel files; no file ever holds an API key."
)
ui.require_step(ctx, "Data", "a corpus")
slug = "".join(c if c.isalnum() else "-" for c in (ctx.project_name or "project").lower())

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
c1, c2, c3 = st.columns(3)
c1.download_button(
    "Human codes (CSV: coder, label, times)",
    data=ui.export_file(ctx, "codes"),
    file_name=f"distill-{slug}-human-codes.csv",
    mime=FORMATS["codes"][0],
    disabled=not ctx.steps.get("Validate"),
    on_click="ignore",
    key="ex_codes",
)
c2.download_button(
    "LLM audit log (JSON Lines: every prompt and answer)",
    data=ui.export_file(ctx, "audit"),
    file_name=f"distill-{slug}-audit.jsonl",
    mime=FORMATS["audit"][0],
    disabled=not ctx.steps.get("LLM labels"),
    on_click="ignore",
    key="ex_audit",
)
c3.download_button(
    "The newest student model (zip)",
    data=ui.export_file(ctx, "model"),
    file_name=f"distill-{slug}-model.zip",
    mime=FORMATS["model"][0],
    disabled=not ctx.steps.get("Fine-tune"),
    on_click="ignore",
    key="ex_model",
)

st.subheader("Methods appendix")
st.caption(
    "Codebook, LLM settings, samples, agreement and F1 with confidence intervals, training "
    "settings and corrected shares, written as text to paste into a paper."
)
c1, c2 = st.columns(2)
c1.download_button(
    "Methods appendix (Markdown)",
    data=ui.export_file(ctx, "appendix-md"),
    file_name=f"distill-{slug}-methods.md",
    mime=FORMATS["appendix-md"][0],
    on_click="ignore",
    key="ex_md",
)
c2.download_button(
    "Methods appendix (HTML)",
    data=ui.export_file(ctx, "appendix-html"),
    file_name=f"distill-{slug}-methods.html",
    mime=FORMATS["appendix-html"][0],
    on_click="ignore",
    key="ex_html",
)
if st.toggle("Show the appendix here", key="ex_preview"):
    from distill_core.appendix import methods_appendix

    with ctx.store.session() as s:
        st.markdown(methods_appendix(s, ctx.project_id).markdown)
