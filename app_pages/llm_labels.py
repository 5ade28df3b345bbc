"""LLM labels: a teacher labels texts with the codebook, as a background job."""

import os

import streamlit as st

import ui
from distill_core import sampling
from distill_core.jobs.label import LabelRequest, start_label_job
from distill_core.llm import Endpoint
from distill_core.llm.base import DEFAULT_BASE_URL, DEFAULT_MODEL
from distill_core.llm.cost import DEFAULT_PRICES, Price, price_for
from distill_core.reports.charts import label_distribution
from distill_core.study import projects, runs, validation

ctx = ui.context()
st.title("LLM labels")
st.caption(
    "An LLM labels your texts with the codebook, one text per request. Every answer is kept; "
    "identical texts are asked once; running the same labelling again costs nothing."
)
ui.require_step(ctx, "Data", "a corpus")
ui.require_step(ctx, "Codebook", "a saved codebook")
corpus = ui.project_corpus(ctx)
with ctx.store.session() as s:
    version = projects.latest_codebook(s, ctx.project_id)
codebook = projects.as_codebook(version)
frame = ui.documents(ctx, corpus)
texts = frame[frame["text"].str.strip() != ""]

st.subheader("Teacher")
LOCAL = "Local zero-shot baseline (offline; weak, not an LLM)"
provider_label = st.radio(
    "Who labels", ["OpenAI-compatible LLM endpoint", LOCAL], horizontal=True, key="llm_provider"
)
provider = "local" if provider_label == LOCAL else "openai"
endpoint, api_key = None, None
if provider == "openai":
    c1, c2 = st.columns(2)
    base_url = c1.text_input(
        "Base URL",
        value=os.environ.get("OPENAI_BASE_URL", DEFAULT_BASE_URL),
        help="OpenAI, Azure, vLLM, Ollama (http://localhost:11434/v1), LM Studio, llama.cpp…",
        key="llm_base_url",
    )
    model = c2.text_input(
        "Model", value=os.environ.get("OPENAI_MODEL", DEFAULT_MODEL), key="llm_model"
    )
    typed = st.text_input(
        "API key (kept for this browser session only; never stored)",
        type="password",
        key="llm_api_key",
        help="Leave empty to use OPENAI_API_KEY or the key in .streamlit/secrets.toml.",
    )
    api_key = typed or ui.secret("OPENAI_API_KEY")
    c1, c2, c3 = st.columns(3)
    temperature = c1.number_input("Temperature", 0.0, 2.0, 0.0, 0.1, key="llm_temperature")
    max_tokens = c2.number_input("Max tokens", 5, 4000, 50, key="llm_max_tokens")
    seed = c3.number_input("Seed (0: none)", 0, 2**31 - 1, 0, key="llm_seed")
    endpoint = Endpoint(
        base_url=base_url.strip(),
        model=model.strip(),
        api_key=api_key,
        temperature=float(temperature),
        max_tokens=int(max_tokens),
        seed=int(seed) or None,
    )
    if st.button("Test connection", help="Sends one request for one text of the corpus."):
        from distill_core.llm import test_connection

        with st.spinner("Asking…"):
            result = test_connection(endpoint, codebook, texts["text"].iloc[0])
        if result.ok:
            st.success(f"{result.message} Answer: `{result.raw}` → label **{result.label}**.")
        else:
            st.error(result.message)
else:
    st.info(
        "The local baseline compares each text with the label definitions using the bundled "
        "MiniLM sentence embeddings. It needs no key or network but is much weaker than an LLM: "
        "use it to try the workflow, not for research results."
    )

st.subheader("What to label")
with ctx.store.session() as s:
    sample = validation.current_sample(s, ctx.project_id)
    sample_ids = [d.doc_id for d in validation.sample_docs(s, sample)] if sample else []
SAMPLE = f"The validation sample ({len(sample_ids):,} texts)"
c1, c2, c3 = st.columns(3)
scope = c1.radio(
    "Texts",
    ([SAMPLE] if sample_ids else []) + ["A random subset", "The whole corpus"],
    key="llm_scope",
    help="Label the human-coded validation sample first to see how good the LLM is.",
)
n = c2.number_input(
    "How many",
    1,
    max(1, len(texts)),
    min(200, len(texts)),
    key="llm_n",
    disabled=scope != "A random subset",
)
sample_seed = c3.number_input(
    "Random seed", 0, 2**31 - 1, 1, key="llm_sample_seed", disabled=scope != "A random subset"
)
if not sample_ids:
    st.caption(
        "Draw a validation sample on the Validate page to label exactly the texts humans code."
    )
repeats, concurrency, budget, price = 1, 16, None, None
if provider == "openai":
    c1, c2 = st.columns(2)
    repeats = c1.number_input(
        "Answers per text",
        1,
        20,
        1,
        key="llm_repeats",
        help="More than one at temperature > 0 gives a consistency score: the share of answers "
        "agreeing with the most common one (consistent labels are more accurate).",
    )
    concurrency = c2.number_input("Requests at once", 1, 128, 16, key="llm_concurrency")
    if repeats > 1 and temperature == 0:
        st.warning("Repeated answers at temperature 0 are near-identical; raise the temperature.")
if scope == "A random subset":
    doc_ids = sampling.simple_random(list(texts["doc_id"]), int(n), int(sample_seed))
elif scope == SAMPLE:
    doc_ids = sample_ids
else:
    doc_ids = list(frame["doc_id"])

if provider == "openai":
    known = price_for(endpoint.model) or Price(0.0, 0.0)
    c1, c2, c3 = st.columns(3)
    price_in = c1.number_input(
        "$ per 1M input tokens",
        0.0,
        1000.0,
        known.input_per_million,
        key=f"price_in_{endpoint.model}",
    )
    price_out = c2.number_input(
        "$ per 1M output tokens",
        0.0,
        1000.0,
        known.output_per_million,
        key=f"price_out_{endpoint.model}",
    )
    cap = c3.number_input("Budget cap in $ (0: none)", 0.0, 1e6, 0.0, key="llm_budget")
    price, budget = Price(price_in, price_out), (cap or None)
    chosen = frame.set_index("doc_id").loc[doc_ids, "text"]
    est = ui.cost_estimate(codebook, chosen, endpoint.model, int(repeats), price)
    st.markdown(
        f"**Estimate** for {len(doc_ids):,} texts × {repeats}: about {est.prompt_tokens:,} input "
        f"and {est.completion_tokens:,} output tokens, **${est.cost_usd:,.2f}** "
        f"({est.n_requests:,} requests; texts already answered cost nothing)."
    )
    if endpoint.model not in DEFAULT_PRICES and not (price_in or price_out):
        st.caption("No price known for this model: enter yours above to see a cost.")

if st.button("Start labelling", type="primary"):
    request = LabelRequest(
        provider=provider,
        endpoint=endpoint,
        repeats=int(repeats),
        concurrency=int(concurrency),
        budget_usd=budget,
        price=price,
        scope={"A random subset": "subset", SAMPLE: "sample"}.get(scope, "all"),
    )
    with ctx.store.session() as s:
        job_id, _ = start_label_job(
            s,
            project_id=ctx.project_id,
            corpus_id=corpus.id,
            codebook_version_id=version.id,
            codebook=codebook,
            doc_ids=None if scope == "The whole corpus" else doc_ids,
            request=request,
            user_id=ctx.user_id,
        )
    try:
        ui.submit_job(ctx, job_id, api_key=typed if provider == "openai" else None)
    except Exception as exc:
        st.error(f"The job could not be queued: {exc}")
    else:
        st.rerun()

ui.job_panel(ctx, "label")

if not ctx.steps.get("LLM labels"):
    st.stop()

st.subheader("Results")
run = ui.label_run_picker(ctx, "Label run", "llm_run")
with ctx.store.session() as s:
    results = runs.results_frame(s, run.id)
c1, c2, c3 = st.columns(3)
labels = c1.multiselect("Label", sorted(results["label"].dropna().unique()), key="llm_f_label")
statuses = c2.multiselect("Status", ["ok", "invalid", "error"], key="llm_f_status")
min_conf = c3.slider("Confidence at least", 0.0, 1.0, 0.0, 0.05, key="llm_f_conf")
shown = results
if labels:
    shown = shown[shown["label"].isin(labels)]
if statuses:
    shown = shown[shown["status"].isin(statuses)]
if min_conf > 0:
    shown = shown[shown["confidence"].fillna(0) >= min_conf]
st.caption(f"{len(shown):,} of {len(results):,} texts")
st.dataframe(
    shown,
    hide_index=True,
    width="stretch",
    column_config={
        "confidence": st.column_config.ProgressColumn(
            "confidence", min_value=0, max_value=1, format="%.2f"
        ),
        "consistency": st.column_config.NumberColumn("consistency", format="%.2f"),
    },
)
counts = results[results["status"] == "ok"]["label"].value_counts().to_dict()
st.plotly_chart(
    label_distribution(counts, title=f"LLM labels, run {run.id}", order=codebook.label_names),
    width="stretch",
)
st.download_button(
    "Download the audit log (JSON Lines: every prompt and answer)",
    data=ui.audit_jsonl(ctx, run.id),
    file_name=f"distill-run-{run.id}-audit.jsonl",
    mime="application/jsonl",
)
