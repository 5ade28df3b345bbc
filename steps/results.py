"""Results: can the distilled classifier be trusted, what does the corpus look like, at what cost."""

import streamlit as st

import ui
from distill_core.reports import report
from distill_core.reports.charts import (
    label_distribution,
    per_class_bars,
    shares_chart,
)
from distill_core.reports.formatting import fmt_ci
from distill_core.student.card import ModelMeta
from distill_core.study import shares as corpus_shares
from distill_core.study import students
from distill_core.study.comparison import Comparison

ctx = ui.context()
ui.for_step(ctx, "Results")
st.title("Results")
st.caption(
    "The figures a study reports: the student against the LLM and the human codes, the corpus's "
    "categories with honest uncertainty, and what it all cost. Every figure states its n."
)
ui.require_step(ctx, "Fine-tune", "a trained student (Fine-tune page)")
ui.image_format_picker()

model = ui.model_picker(ctx, "res_model")
meta = ModelMeta.from_dict(model.meta)
labels = meta.labels
latest_pass = ctx.act(students.latest_prediction_run, ctx.project_id)

st.header("Can the student be trusted?")
ui.show_comparison(Comparison.from_dict(model.comparison), labels)

st.header("The whole corpus")
if latest_pass is None:
    st.info("Label the corpus with a student on the Fine-tune page to see its categories.")
    ui.go_to("Fine-tune")
else:
    counts = ctx.act(students.prediction_counts, ctx.project_id, latest_pass.id)
    shares = ctx.act(corpus_shares.corrected_shares, ctx.project_id, latest_pass.id)
    st.caption(f"Labelled by model {latest_pass.model_id} ({latest_pass.n:,} texts).")
    ui.chart(
        ui.kept_figure(
            label_distribution, counts, title="Student's labels over the corpus", order=labels
        ),
        "corpus-labels",
    )
    if shares is None:
        st.info(
            "Corrected shares need human codes on the held-out test part of the validation "
            "sample (Validate page)."
        )
    else:
        st.subheader("Corrected shares")
        st.caption(
            "The naive share counts the student's predictions. The corrected share adds the "
            "student's mean error measured on human-coded texts it never trained on "
            "(prediction-powered inference, Angelopoulos et al., Science 2023). It is unbiased "
            "if the coded texts are a random sample of the corpus and the human codes are right."
        )
        if shares.warning:
            st.warning(shares.warning)
        table = shares.to_frame()
        ui.chart(
            ui.kept_figure(
                shares_chart,
                table,
                title="Category shares",
                n_corpus=shares.n_corpus,
                n_sample=shares.n_sample,
            ),
            "corpus-shares",
        )
        ui.shares_table(shares)

st.header("The LLM across codebook versions")
by_run = ctx.act(report.agreement_by_run, ctx.project_id, part="dev")
if by_run:
    n_dev = max(p.n for p in by_run)
    ui.chart(
        ui.kept_figure(
            per_class_bars,
            [p.name for p in by_run],
            [p.macro_f1 for p in by_run],
            [p.macro_f1_ci[0] for p in by_run],
            [p.macro_f1_ci[1] for p in by_run],
            title="LLM–human macro-F1 per label run, development texts",
            n=n_dev,
            axis="macro-F1",
            sort=False,
        ),
        "llm-by-version",
    )
    st.dataframe(
        [
            {
                "label run": p.name,
                "n": p.n,
                "accuracy": fmt_ci(p.accuracy, p.accuracy_ci),
                "macro-F1": fmt_ci(p.macro_f1, p.macro_f1_ci),
            }
            for p in by_run
        ],
        hide_index=True,
        width="stretch",
    )
else:
    st.caption("No label run has labelled coded development texts yet.")

st.header("Training")
ui.model_summary(model)

st.header("Cost and time")
cost = ctx.act(report.cost_summary, ctx.project_id)
c1, c2, c3, c4 = st.columns(4)
c1.metric("LLM answers", f"{cost.answers:,}")
c2.metric("LLM tokens", f"{cost.prompt_tokens + cost.completion_tokens:,}")
c3.metric("LLM cost", f"${cost.llm_cost_usd:,.2f}")
c4.metric(
    "Student training + corpus labelling", f"{cost.train_seconds + cost.predict_seconds:,.0f} s"
)
if cost.whole_corpus_cost_usd is not None:
    st.markdown(cost.whole_corpus_sentence())
elif cost.answers:
    st.caption(
        f"The LLM's price is unknown ({cost.llm_model or 'local teacher'}): enter it on the LLM "
        "labels page to see what labelling the whole corpus with it would have cost."
    )
ui.go_to("Export", "Download the data and the methods appendix")
