"""Fine-tune: a small transformer learns from the LLM labels, then is compared fairly."""

import streamlit as st

import ui
from distill_core.jobs.predict import start_predict_job
from distill_core.jobs.train import start_train_job
from distill_core.reports.charts import training_curves
from distill_core.student.train import TrainingArgs
from distill_core.study import students

ctx = ui.context()
st.title("Fine-tune")
st.caption(
    "A small transformer (the student) learns from the LLM's labels, then is scored on the "
    "held-out human codes beside the LLM itself, students trained on the human codes and a "
    "TF-IDF baseline. It then labels the whole corpus at a tiny fraction of the LLM's cost."
)
ui.require_step(ctx, "LLM labels", "LLM labels to learn from")

st.subheader("Training data")
run = ui.label_run_picker(ctx, "LLM labels from", "ft_run")
with ctx.store.session() as s:
    ts = students.training_set(s, ctx.project_id, run.id)

defaults = TrainingArgs()
with st.expander("Settings", expanded=False):
    c1, c2, c3 = st.columns(3)
    base_model = c1.text_input(
        "Base model (Hugging Face id or folder; empty: bundled all-MiniLM-L6-v2)",
        key="ft_base",
        help="On a GPU worker, roberta-base or microsoft/deberta-v3-base are stronger. Models "
        "other than the bundled one must be in the Hugging Face cache or a local folder.",
    )
    epochs = c2.number_input(
        "Epochs (at most)",
        1,
        100,
        defaults.epochs,
        key="ft_epochs",
        help="Training stops early when the validation macro-F1 stops improving.",
    )
    lr = c3.select_slider(
        "Learning rate",
        [1e-5, 2e-5, 3e-5, 5e-5, 1e-4, 2e-4, 3e-4, 5e-4],
        defaults.lr,
        key="ft_lr",
        format_func=lambda v: f"{v:g}",
    )
    c1, c2, c3 = st.columns(3)
    batch_size = c1.number_input("Batch size", 1, 256, defaults.batch_size, key="ft_batch")
    max_length = c2.number_input(
        "Max length in tokens (0: automatic)",
        0,
        512,
        0,
        key="ft_maxlen",
        help="Automatic: the 95th percentile of the training texts' lengths.",
    )
    seed = c3.number_input("Seed", 0, 2**31 - 1, defaults.seed, key="ft_seed")
    c1, c2, c3 = st.columns(3)
    warmup = c1.number_input("Warm-up share", 0.0, 0.5, defaults.warmup_ratio, 0.05, key="ft_wu")
    decay = c2.number_input("Weight decay", 0.0, 0.3, defaults.weight_decay, 0.01, key="ft_wd")
    patience = c3.number_input(
        "Early-stopping patience (epochs; 0: off)",
        0,
        20,
        defaults.early_stopping_patience,
        key="ft_patience",
    )
    c1, c2, c3 = st.columns(3)
    val_share = c1.number_input(
        "Validation share", 0.0, 0.5, defaults.val_share, 0.05, key="ft_val"
    )
    min_conf = c2.number_input(
        "Drop labels with confidence below",
        0.0,
        1.0,
        0.0,
        0.05,
        key="ft_minconf",
        help="Confidence comes from the LLM's token probabilities (when the endpoint gives them).",
    )
    min_cons = c3.number_input(
        "Drop labels with consistency below",
        0.0,
        1.0,
        0.0,
        0.05,
        key="ft_mincons",
        help="Consistency: the share of repeated answers agreeing with the most common one.",
    )
    class_weights = st.checkbox(
        "Weight classes by inverse frequency",
        key="ft_cw",
        help="Helps rare categories, at some cost in accuracy.",
    )
    folds = st.number_input(
        "Students on human codes for the comparison (folds; 0: skip)",
        0,
        10,
        5,
        key="ft_folds",
        help="Each held-out test text is predicted by a student trained on every other "
        "human-coded text. Each fold is one more (small) training.",
    )

args = TrainingArgs(
    base_model=base_model.strip() or None,
    epochs=int(epochs),
    lr=float(lr),
    batch_size=int(batch_size),
    max_length=int(max_length) or None,
    warmup_ratio=float(warmup),
    weight_decay=float(decay),
    seed=int(seed),
    val_share=float(val_share),
    early_stopping_patience=int(patience),
    class_weights=class_weights,
    min_confidence=float(min_conf) or None,
    min_consistency=float(min_cons) or None,
)
kept = ts.kept_by(args.min_confidence, args.min_consistency)
c1, c2, c3, c4 = st.columns(4)
c1.metric("Labelled by the LLM", f"{ts.n_llm:,}")
c2.metric(
    "Held out for testing",
    f"−{ts.excluded_test:,}",
    help="Texts in the held-out test part of the validation sample: never trained on.",
)
c3.metric("Invalid answers", f"−{ts.invalid:,}", help="Answers outside the codebook, errors.")
c4.metric(
    "Used for training",
    f"{kept:,}",
    help=f"{len(ts.texts) - kept:,} more dropped by the confidence/consistency floors."
    if kept < len(ts.texts)
    else None,
)

if st.button("Start fine-tuning", type="primary"):
    try:
        with ctx.store.session() as s:
            job_id, _ = start_train_job(
                s,
                project_id=ctx.project_id,
                label_run_id=run.id,
                args=args,
                human_folds=int(folds),
                user_id=ctx.user_id,
            )
        ui.submit_job(ctx, job_id)
    except students.StudentError as exc:
        st.error(str(exc))
    except Exception as exc:
        st.error(f"The job could not be queued: {exc}")
    else:
        st.rerun()


def _train_details(box, job) -> None:
    curves = (job.result or {}).get("curves") or {}
    if any(curves.values()):
        box.plotly_chart(
            training_curves(curves, title="Training so far", n=kept),
            width="stretch",
            key=f"curves_{job.id}_{job.done}",
        )


ui.job_panel(ctx, "train", details=_train_details)

with ctx.store.session() as s:
    models = students.project_models(s, ctx.project_id)
ready = [m for m in models if m.status == "ready"]
if not ready:
    st.stop()

st.subheader("Models")
model = st.selectbox("Model", ready, format_func=ui.model_label, key="ft_model")
meta = model.meta or {}
c1, c2, c3, c4 = st.columns(4)
c1.metric(
    "Training texts", f"{meta.get('n_train', 0):,}", help=f"+ {meta.get('n_val', 0)} validation"
)
c2.metric("Best epoch", f"{meta.get('best_epoch')} of {len(meta.get('history', []))}")
c3.metric("Training time", f"{meta.get('train_seconds', 0):,.0f} s", help=meta.get("device"))
c4.metric("Max length", f"{meta.get('max_length')} tokens")
st.markdown("**How it compares**")
ui.show_comparison(model.comparison, meta.get("labels", []))
if meta.get("history"):
    st.plotly_chart(
        training_curves(
            {"Student on LLM labels": meta["history"]},
            title="Training curve",
            n=meta.get("n_train", 0),
        ),
        width="stretch",
    )
with st.expander("Settings and metadata"):
    st.json({k: meta.get(k) for k in ("args", "filters", "max_length", "device", "versions")})

c1, c2 = st.columns(2)
c1.download_button(
    "Download the model (zip: loads with AutoModelForSequenceClassification)",
    data=ui.export_file(ctx, "model", model_id=model.id),
    file_name=f"distill-model-{model.id}.zip",
    mime="application/zip",
)
if c2.button("Delete this model", key=f"delete_model_{model.id}"):
    with ctx.store.session() as s:
        students.delete_model(s, ctx.user(s), model.id)
    st.rerun()

st.subheader("Label the whole corpus")
corpus = ui.project_corpus(ctx)
st.caption(
    f"The student labels all {corpus.row_count:,} texts of the corpus (predicted label and the "
    "probability of each category); the Results and Export pages use them."
)
if st.button("Label the corpus with this model", type="primary", key="ft_predict"):
    with ctx.store.session() as s:
        job_id, _ = start_predict_job(
            s, project_id=ctx.project_id, model_id=model.id, user_id=ctx.user_id
        )
    try:
        ui.submit_job(ctx, job_id)
    except Exception as exc:
        st.error(f"The job could not be queued: {exc}")
    else:
        st.rerun()
ui.job_panel(ctx, "predict", details=lambda box, job: None)
with ctx.store.session() as s:
    done_run = students.latest_prediction_run(s, ctx.project_id)
if done_run is not None:
    st.success(
        f"The corpus is labelled by model {done_run.model_id}: {done_run.n:,} texts in "
        f"{done_run.seconds:,.0f} s. See Results and Export."
    )
    st.page_link(ui.PAGES["Results"][0], label="Go to Results", icon=":material/arrow_forward:")
