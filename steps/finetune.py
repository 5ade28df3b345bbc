"""Fine-tune: a small transformer learns from the LLM labels, then is compared fairly."""

import streamlit as st

import ui
from distill_core.clock import fmt_done
from distill_core.jobs.predict import start_predict_job
from distill_core.reports.charts import training_curves
from distill_core.study import students
from distill_core.study.comparison import Comparison

ctx = ui.context()
ui.for_step(ctx, "Fine-tune")
st.title("Fine-tune")
st.caption(
    "A small transformer (the student) learns from the LLM's labels, then is scored on the "
    "held-out human codes beside the LLM itself, students trained on the human codes and a "
    "TF-IDF baseline. It then labels the whole corpus at a tiny fraction of the LLM's cost."
)
ui.require_step(ctx, "LLM labels", "LLM labels to learn from")

st.subheader("Training data")
run = ui.label_run_picker(ctx, "LLM labels from", "ft_run")
settings = ui.forms.training_form()
args = settings.args
ts = ctx.act(
    students.training_counts,
    ctx.project_id,
    run.id,
    min_confidence=args.min_confidence,
    min_consistency=args.min_consistency,
)
kept = ts.kept
c1, c2, c3, c4 = st.columns(4)
c1.metric("Labelled by the LLM", f"{ts.n_llm:,}")
c2.metric(
    "Held out for testing",
    ui.training.less(ts.excluded_test),
    help="Texts in the held-out test part of the validation sample: never trained on.",
)
c3.metric(
    "Invalid answers",
    ui.training.less(ts.invalid),
    help="Answers outside the codebook, errors.",
)
c4.metric(
    "Used for training",
    f"{kept:,}",
    help=f"{ts.n_available - kept:,} more dropped by the confidence/consistency floors."
    if kept < ts.n_available
    else None,
)

ui.curve.panel(ctx, run.id)
ui.training.time_estimate(ctx, run.id, settings)
ui.training.start_button(ctx, run.id, settings)


def _train_details(box, job) -> None:
    curves = (job.result or {}).get("curves") or {}
    if any(curves.values()):
        sizes = [n for n in ((job.result or {}).get("n_train") or {}).values() if n]
        box.plotly_chart(
            training_curves(curves, title="Training so far", n=sizes[0] if sizes else kept),
            width="stretch",
            key=f"curves_{job.id}_{job.done}",
        )


ui.job_panel(ctx, "train", details=_train_details)

model = ui.model_picker(ctx, "ft_model", header="Models")
if model is None:
    st.stop()
meta = ui.model_summary(model)
st.markdown("**How it compares**")
ui.show_comparison(Comparison.from_dict(model.comparison), meta.labels)
with st.expander("Settings and metadata"):
    st.json({k: getattr(meta, k) for k in ("args", "filters", "max_length", "device", "versions")})

c1, c2 = st.columns(2)
c1.download_button(
    ui.model_zip_label(meta),
    data=ui.export_file(ctx, "model", model_id=model.id),
    file_name=f"distill-model-{model.id}.zip",
    mime="application/zip",
)
if c2.button("Delete this model", key=f"delete_model_{model.id}"):
    ctx.act(students.delete_model, ctx.project_id, model.id)
    st.rerun()

st.subheader("Label the whole corpus")
corpus = ui.project_corpus(ctx)
st.caption(
    f"The student labels all {corpus.row_count:,} texts of the corpus (predicted label and the "
    "probability of each category); the Results and Export pages use them."
)
if st.button("Label the corpus with this model", type="primary", key="ft_predict"):
    ui.start_job(ctx, start_predict_job, project_id=ctx.project_id, model_id=model.id)
ui.job_panel(ctx, "predict", details=lambda box, job: None)
done_run = ctx.act(students.latest_prediction_run, ctx.project_id)
if done_run is not None:
    st.success(
        f"The corpus is labelled by model {done_run.model_id}: "
        f"{fmt_done(done_run.n, 'texts', done_run.seconds)}. See Results and Export."
    )
    ui.go_to("Results")
