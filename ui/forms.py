"""Forms: the inputs of a step, each returning the typed request the core takes (a teacher and
its endpoint, the texts to label and their cost, training settings, a sample, an import)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from distill_core import agreement
from distill_core.codebook import Codebook
from distill_core.llm import Endpoint
from distill_core.llm.base import DEFAULT_BASE_URL, DEFAULT_MODEL
from distill_core.llm.cost import DEFAULT_PRICES, Price, price_for
from distill_core.student.args import MAX_SEEDS, TrainingArgs
from distill_core.student.recipes import MISTAKE_FILTER_MEASURED, RECIPE_NAMES
from distill_core.study import endpoints, labelling, projects, runs, validation
from ui.context import Context

LOCAL = "Local zero-shot baseline (offline; weak, not an LLM)"


@dataclass(frozen=True)
class Teacher:
    """Who labels: ``provider`` "openai" with its endpoint's settings (never a key), or
    "local". ``endpoint_id`` is one of the project's saved endpoints (its key stays in the
    store, encrypted); ``typed_key`` a key typed for this browser session for an unsaved
    endpoint (it goes to the worker in memory, never to the store)."""

    provider: str
    endpoint: Endpoint | None
    typed_key: str | None
    endpoint_id: int | None = None


NEW_ENDPOINT = "New endpoint…"


def teacher_form(ctx: Context) -> Teacher:
    """The teacher: one of the project's saved endpoints, a new OpenAI-compatible endpoint (URL,
    model, key, temperature, max tokens, seed; saved on request), or the offline baseline."""
    choice = st.radio(
        "Who labels", ["OpenAI-compatible LLM endpoint", LOCAL], horizontal=True, key="llm_provider"
    )
    if choice == LOCAL:
        st.info(
            "The local baseline compares each text with the label definitions using the bundled "
            "MiniLM sentence embeddings. It needs no key or network but is much weaker than an "
            "LLM: use it to try the workflow, not for research results."
        )
        return Teacher("local", None, None)
    saved = {e.id: e for e in ctx.act(endpoints.list_endpoints, ctx.project_id)}
    if "llm_endpoint_next" in st.session_state:  # just saved: choose it (before the widget)
        st.session_state["llm_endpoint"] = st.session_state.pop("llm_endpoint_next")
    picked = st.selectbox(
        "Endpoint",
        [*saved, None],
        format_func=lambda i: saved[i].title if i in saved else NEW_ENDPOINT,
        key="llm_endpoint",
        help="The project's saved endpoints (owners and researchers see them), or a new one.",
    )
    if picked in saved:
        chosen = saved[picked]
        st.caption(
            f"Temperature {chosen.temperature:g}, at most {chosen.max_tokens} tokens, seed "
            f"{chosen.seed if chosen.seed is not None else 'none'}. "
            + (
                f"Its key ({chosen.key_hint}) is stored encrypted and read by the worker only."
                if chosen.has_key
                else "No key is stored: the server's own key is used only where allowed."
            )
        )
        if st.button("Delete this endpoint", key="llm_endpoint_delete"):
            ctx.act(endpoints.delete_endpoint, ctx.project_id, chosen.id)
            st.rerun()
        return Teacher("openai", chosen.endpoint(), None, chosen.id)
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
        "API key (for this browser session; stored, encrypted, only if you save the endpoint)",
        type="password",
        key="llm_api_key",
        help="Leave empty to use the server's own key where the administrator allows it "
        "(DISTILL_SERVER_KEY_URLS), or no key (local servers need none).",
    )
    if typed and ctx.settings is not None and ctx.settings.redis_url:
        st.caption("Shared workers never receive a typed key: save the endpoint to use it.")
    c1, c2, c3 = st.columns(3)
    temperature = c1.number_input("Temperature", 0.0, 2.0, 0.0, 0.1, key="llm_temperature")
    max_tokens = c2.number_input("Max tokens", 5, 4000, 50, key="llm_max_tokens")
    seed = c3.number_input("Seed (0: none)", 0, 2**31 - 1, 0, key="llm_seed")
    endpoint = Endpoint(
        base_url=base_url.strip(),
        model=model.strip(),
        temperature=float(temperature),
        max_tokens=int(max_tokens),
        seed=int(seed) or None,
    )
    with st.expander("Save this endpoint in the project"):
        name = st.text_input("Endpoint name", key="llm_endpoint_name")
        if st.button("Save endpoint", key="llm_endpoint_save"):
            try:
                made = ctx.act(
                    endpoints.save_endpoint,
                    ctx.project_id,
                    name=name,
                    endpoint=endpoint,
                    api_key=typed or None,
                )
            except ValueError as exc:
                st.error(str(exc))
            else:
                st.session_state["llm_endpoint_next"] = made.id
                st.rerun()
    return Teacher("openai", endpoint, typed or None)


@dataclass(frozen=True)
class Scope:
    """What to label and how: the scope ("sample", "subset", "all") and its ids, answers per
    text, the most requests at once, and for an LLM run its price and budget cap, the seconds
    one request and one text (0: no limit) may take, and whether to ask for token
    probabilities."""

    scope: str
    doc_ids: list[str]
    repeats: int = 1
    concurrency: int = 16
    price: Price | None = None
    budget_usd: float | None = None
    timeout_s: float | None = None
    logprobs: bool = True
    give_up_s: float | None = None


def scope_form(ctx: Context, sample_ids: list[str], teacher: Teacher, codebook: Codebook) -> Scope:
    """Which texts, how many answers each, and (for an LLM) the estimated tokens and cost."""
    sample = f"The validation sample ({len(sample_ids):,} texts)"
    ids = ctx.act(projects.corpus_ids, ctx.project_id)
    n_texts = len(ids.nonempty)
    c1, c2, c3 = st.columns(3)
    choice = c1.radio(
        "Texts",
        ([sample] if sample_ids else []) + ["A random subset", "The whole corpus"],
        key="llm_scope",
        help="Label the human-coded validation sample first to see how good the LLM is.",
    )
    scope = {sample: "sample", "A random subset": "subset"}.get(choice, "all")
    n = c2.number_input(
        "How many", 1, max(1, n_texts), min(200, n_texts), key="llm_n", disabled=scope != "subset"
    )
    seed = c3.number_input(
        "Random seed", 0, 2**31 - 1, 1, key="llm_sample_seed", disabled=scope != "subset"
    )
    if not sample_ids:
        st.caption(
            "Draw a validation sample on the Validate page to label exactly the texts humans code."
        )
    doc_ids = labelling.choose_texts(ids, scope, n=int(n), seed=int(seed), sample_ids=sample_ids)
    if teacher.provider != "openai":
        return Scope(scope, doc_ids)
    endpoint = teacher.endpoint
    c1, c2, c3 = st.columns(3)
    repeats = c1.number_input(
        "Answers per text",
        1,
        20,
        1,
        key="llm_repeats",
        help="More than one at temperature > 0 gives a consistency score: the share of answers "
        "agreeing with the most common one (consistent labels are more accurate).",
    )
    concurrency = c2.number_input(
        "Requests at once (at most)",
        1,
        128,
        16,
        key="llm_concurrency",
        help="Starts at one and grows while answers stay as fast; backs off when they slow "
        "down or time out (a local server on a CPU answers one request at a time).",
    )
    timeout = c3.number_input(
        "Timeout per request (s)",
        1.0,
        3600.0,
        float(endpoint.timeout_s),
        key="llm_timeout",
        help="A request that takes longer is given up and asked again.",
    )
    from distill_core.llm.openai_teacher import DEFAULT_GIVE_UP_S

    c1, c2 = st.columns(2)
    give_up = c1.number_input(
        "Give up on a text after (s; 0: never)",
        0.0,
        86400.0,
        DEFAULT_GIVE_UP_S,
        key="llm_give_up",
        help="Every request and pause for one text together; it ends in error, and labelling "
        "again asks it again.",
    )
    logprobs = c2.toggle(
        "Ask for token probabilities (a confidence per label)",
        value=True,
        key="llm_logprobs",
        help="Off: no confidence, but some local servers (llama.cpp) answer many times faster.",
    )
    if repeats > 1 and endpoint.temperature == 0:
        st.warning("Repeated answers at temperature 0 are near-identical; raise the temperature.")
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
    price = Price(price_in, price_out)
    with st.spinner("Counting tokens…"):
        est = ctx.act(
            labelling.scope_estimate,
            ctx.project_id,
            codebook,
            scope,
            model=endpoint.model,
            price=price,
            repeats=int(repeats),
            n=int(n),
            seed=int(seed),
            sample_ids=tuple(sample_ids),
        )
    st.markdown(
        f"**Estimate** for {est.n_requests // int(repeats):,} texts × {repeats}: about "
        f"{est.prompt_tokens:,} input "
        f"and {est.completion_tokens:,} output tokens, **${est.cost_usd:,.2f}** "
        f"({est.n_requests:,} requests; texts already answered cost nothing)."
    )
    if endpoint.model not in DEFAULT_PRICES and not (price_in or price_out):
        st.caption("No price known for this model: enter yours above to see a cost.")
    return Scope(
        scope,
        doc_ids,
        int(repeats),
        int(concurrency),
        price,
        cap or None,
        timeout_s=timeout,
        logprobs=logprobs,
        give_up_s=give_up,
    )


@dataclass(frozen=True)
class Training:
    """Training settings, and how many students on human codes the comparison trains."""

    args: TrainingArgs
    human_folds: int


def training_form() -> Training:
    """The fine-tuning settings, folded away: the defaults were measured on real tasks."""
    defaults = TrainingArgs()
    recipe = _recipe_inputs(defaults)
    with st.expander("Settings", expanded=False):
        c1, c2, c3 = st.columns(3)
        base_model = c1.text_input(
            "Base model (Hugging Face id or folder; empty: bundled all-MiniLM-L6-v2)",
            key="ft_base",
            help="On a GPU worker, roberta-base or microsoft/deberta-v3-base are stronger. "
            "Models other than the bundled one must be in the Hugging Face cache or a folder.",
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
        warmup = c1.number_input(
            "Warm-up share", 0.0, 0.5, defaults.warmup_ratio, 0.05, key="ft_wu"
        )
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
            help="Confidence comes from the LLM's token probabilities (when the endpoint "
            "gives them).",
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
        certainty = _certainty_inputs(defaults)
        c1, c2 = st.columns(2)
        folds = c1.number_input(
            "Students on human codes for the comparison (folds; 0: skip)",
            0,
            10,
            5,
            key="ft_folds",
            help="Each held-out test text is predicted by a student trained on every other "
            "human-coded text. Each fold is one more (small) training.",
        )
        seeds = c2.number_input(
            "Seeds (students on LLM labels; 1: off)",
            1,
            MAX_SEEDS,
            defaults.seeds,
            key="ft_seeds",
            help="N trains N students with seeds seed, seed + 1, … on the identical training "
            "texts and scores each on the identical held-out texts: the comparison shows their "
            "mean and range, so a difference smaller than the seed-to-seed spread is not read "
            "as real. The kept model is the first seed's, never the best-scoring one. Each seed "
            "is one more full training, so N seeds take about N times as long (measured on a "
            "2-core CPU: 3 seeds took 2.9 times one seed's time; benchmarks/README.md). Off by "
            "default; on a GPU worker it is cheap.",
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
        seeds=int(seeds),
        **recipe,
        **certainty,
    )
    return Training(args, int(folds))


def _recipe_inputs(defaults: TrainingArgs) -> dict:
    """The recipe and the time budget "automatic" keeps to, shown above the settings."""
    c1, c2 = st.columns([2, 1])
    recipe = c1.selectbox(
        "Recipe",
        list(RECIPE_NAMES),
        index=list(RECIPE_NAMES).index(defaults.recipe),
        format_func=lambda r: RECIPE_NAMES[r].capitalize(),
        key="ft_recipe",
        help="Full fine-tuning trains every weight of the base model: the strongest, minutes "
        "to an hour on a laptop's CPU. The fast recipe keeps the base model frozen and trains "
        "a classifier on its sentence embeddings: about a minute; measured on four tasks it "
        "beats TF-IDF on the same labels on all four, and was within 0.01 macro-F1 of full "
        "fine-tuning on three and 0.09 behind on the fourth (benchmarks/README.md). Automatic: full "
        "fine-tuning on a GPU or when the job's estimated time fits the budget, else the fast "
        "recipe; the model then says which it used and why.",
    )
    budget = c2.number_input(
        "Time budget (minutes)",
        1,
        24 * 60,
        int(defaults.time_budget_s // 60),
        key="ft_budget",
        help="What the automatic recipe keeps the whole training job to (the k-fold students "
        "and seeds included), from a few real training steps timed when the job starts.",
        disabled=recipe != "auto",
    )
    return {"recipe": recipe, "time_budget_s": float(budget) * 60}


def _certainty_inputs(defaults: TrainingArgs) -> dict:
    """How the teacher's confidence and consistency enter the loss."""
    c1, c2 = st.columns(2)
    certainty = c1.selectbox(
        "Teacher's certainty in the loss",
        ["off", "weight", "soft"],
        index=["off", "weight", "soft"].index(defaults.certainty),
        format_func={
            "off": "Off: every label counts the same",
            "weight": "Weight each label by the LLM's confidence × consistency",
            "soft": "Soft targets from the LLM's confidence",
        }.get,
        key="ft_certainty",
        help="Needs confidences (token probabilities) or several answers per text; labels "
        "without either count fully. Measured on four tasks with a simulated teacher, neither "
        "variant gained beyond seed noise (benchmarks/README.md), so off is the default.",
    )
    smoothing = c2.number_input(
        "Label smoothing", 0.0, 0.5, defaults.label_smoothing, 0.05, key="ft_smoothing"
    )
    mistakes = st.number_input(
        "Set aside likely LLM mistakes (fast recipe; 0: off)",
        0.0,
        0.9,
        float(defaults.noise_filter),
        0.1,
        key="ft_mistakes",
        help="Before its final fit, the fast recipe sets aside the training texts whose LLM "
        "label its own 5-fold cross-validated predictions find unlikely: the probability of "
        "the label below this share of that label's average. The model card and the methods "
        "appendix say how many. " + MISTAKE_FILTER_MEASURED,
    )
    return {
        "certainty": certainty,
        "label_smoothing": float(smoothing),
        "noise_filter": float(mistakes),
    }


@dataclass(frozen=True)
class SampleRequest:
    """A validation sample to draw (``validation.draw_sample``'s arguments)."""

    n: int
    seed: int
    test_share: float
    method: str
    strata_run_id: int | None
    min_per_stratum: int

    def kwargs(self) -> dict:
        return vars(self).copy()


def sample_form(label_runs: list, version_of: dict[int, int]) -> SampleRequest | None:
    """Size, seed, held-out share and method of a new sample; the request once submitted."""
    with st.form("draw_sample"):
        c1, c2, c3 = st.columns(3)
        n = c1.number_input("Sample size", 2, 100_000, 250)
        seed = c2.number_input("Random seed", 0, 2**31 - 1, 42)
        test_share = c3.slider("Held-out test share", 0.1, 0.9, 0.5, 0.05)
        method = st.radio(
            "Method",
            ["Simple random", "Stratified by LLM label"],
            horizontal=True,
            help="Stratified needs an LLM label run; its category shares are not the corpus's.",
        )
        run = st.selectbox(
            "Label run to stratify by",
            label_runs,
            format_func=lambda r: runs.run_title(r, version_of.get(r.codebook_version_id)),
        )
        min_per = st.number_input("At least this many per label (stratified)", 0, 1000, 10)
        drawn = st.form_submit_button("Draw the sample", type="primary")
    dev = int(n * (1 - test_share))
    st.caption(
        f"With {dev:,} development texts, a 95% interval for an accuracy of 80% is about "
        f"±{agreement.expected_accuracy_halfwidth(dev):.1%} wide on each side."
    )
    if not drawn:
        return None
    return SampleRequest(
        n=int(n),
        seed=int(seed),
        test_share=float(test_share),
        method="random" if method == "Simple random" else "stratified",
        strata_run_id=run.id if run else None,
        min_per_stratum=int(min_per),
    )


@dataclass(frozen=True)
class CodesColumns:
    """Which columns of a codes file hold the id, the label and the coder (or one coder's name)."""

    id_column: str
    label_column: str
    coder_column: str | None
    coder: str


def codes_columns_form(frame: pd.DataFrame) -> CodesColumns:
    """The columns of an uploaded codes file."""
    cols = list(frame.columns)
    id_guess, label_guess = (str(c) for c in validation.guess_code_columns(cols))
    names = [str(c) for c in cols]
    c1, c2, c3 = st.columns(3)
    id_col = c1.selectbox("Id column", cols, index=names.index(id_guess), key="imp_id")
    label_col = c2.selectbox("Label column", cols, index=names.index(label_guess), key="imp_label")
    coder_col = c3.selectbox("Coder column", ["(one coder)"] + cols, key="imp_coder_col")
    coder = ""
    if coder_col == "(one coder)":
        coder = st.text_input("Coder name for these codes", key="imp_coder")
    return CodesColumns(id_col, label_col, None if coder_col == "(one coder)" else coder_col, coder)
