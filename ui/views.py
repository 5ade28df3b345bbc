"""Result views: agreement figures with their intervals, agreement among coders, the fair
comparison, a model's summary and training curve, and charts that save as PNG or SVG."""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from distill_core.agreement import Agreement, IntercoderAgreement, PairwiseAgreement
from distill_core.reports.charts import (
    class_f1_grouped,
    comparison_bars,
    confusion_heatmap,
    many_categories,
    per_class_bars,
    training_curves,
)
from distill_core.reports.formatting import fmt, fmt_bounded_share, fmt_ci, fmt_share
from distill_core.student.card import ModelMeta
from distill_core.study.comparison import TRAINING_CLAIMS, Comparison

#: Image formats the charts' camera button can save.
IMAGE_FORMATS = ("png", "svg")


def chart(figure, name: str, container=None) -> None:
    """A plotly figure whose camera button saves it as PNG or SVG (``chart_format`` in the
    session, chosen with :func:`image_format_picker`), named after the figure."""
    fmt = st.session_state.get("chart_format", "png")
    (container or st).plotly_chart(
        figure,
        width="stretch",
        config={
            "displaylogo": False,
            "toImageButtonOptions": {"format": fmt, "filename": f"distill-{name}", "scale": 2},
        },
    )


@st.cache_resource(max_entries=64, show_spinner=False)
def _kept_figure(fingerprint: str, _build: Callable[[], Any]) -> Any:
    return _build()


def kept_figure(build: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``build(*args, **kwargs)`` (a chart of ``reports.charts``), built once for the same
    inputs and reused by every rerun and session (treat it as read-only): building a plotly
    figure was most of the server's part of a Results rerun at 100,000 texts."""
    inputs = pickle.dumps((build.__module__, build.__qualname__, args, kwargs))
    return _kept_figure(hashlib.sha256(inputs).hexdigest(), lambda: build(*args, **kwargs))


def _file_name(title: str) -> str:
    """A chart title as part of a file name: lower case, words joined by hyphens."""
    return "-".join("".join(c if c.isalnum() else " " for c in title.lower()).split())


def image_format_picker() -> None:
    """Choose what the charts' camera button saves (PNG for slides, SVG for papers)."""
    st.radio(
        "Charts save as",
        IMAGE_FORMATS,
        format_func=str.upper,
        horizontal=True,
        key="chart_format",
        help="Use the camera button at the top right of a chart to save it.",
    )


def show_agreement(result: Agreement, *, title: str, class_ci: dict | None = None) -> None:
    """Headline agreement figures with 95% intervals, per-class F1 and the confusion matrix."""
    heads = [
        ("Accuracy", "accuracy"),
        ("Macro F1", "macro_f1"),
        ("Cohen's κ", "cohen_kappa"),
        ("Krippendorff's α", "krippendorff_alpha"),
    ]
    if result.binary_f1 is not None:
        heads.append((f"F1 of '{result.positive_label}'", "binary_f1"))
    averaged = getattr(result, "averaged", None) or list(result.per_class)
    st.caption(
        f"Scored on {result.n} texts with both a human code and an LLM label; macro averages "
        f"over the {len(averaged)} categories that occur."
    )
    if not getattr(result, "reliable", True):
        st.warning(result.caution)
    cols = st.columns(len(heads))
    for col, (name, key) in zip(cols, heads, strict=True):
        low, high = result.ci.get(key, (float("nan"), float("nan")))
        method = (getattr(result, "ci_method", None) or {}).get(key, "bootstrap")
        col.metric(
            name,
            fmt(getattr(result, key)),
            help=f"95% interval ({method}) {fmt(low)}–{fmt(high)}; n = {result.n}",
        )
        col.caption(f"95% CI {fmt(low, 2)}–{fmt(high, 2)}")
    classes = list(result.per_class)
    f1 = [result.per_class[c].f1 for c in classes]
    lows = [class_ci[c][0] for c in classes] if class_ci else None
    highs = [class_ci[c][1] for c in classes] if class_ci else None
    left, right = (st, st) if many_categories(result.labels) else st.columns(2)
    name = _file_name(title)
    chart(
        per_class_bars(classes, f1, lows, highs, title=f"F1 per class, {title}", n=result.n),
        f"class-f1-{name}",
        left,
    )
    chart(
        confusion_heatmap(result.labels, result.confusion, title=f"Confusion, {title}"),
        f"confusion-{name}",
        right,
    )
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "label": c,
                    "precision": m.precision,
                    "recall": m.recall,
                    "F1": m.f1,
                    "support": m.support,
                }
                for c, m in result.per_class.items()
            ]
        ),
        hide_index=True,
        width="stretch",
    )


def show_intercoder(result: PairwiseAgreement) -> None:
    """Agreement among the human coders: over all of them (with intervals and n when the
    result has them, ``agreement.IntercoderAgreement``), per category, and per pair."""
    full = isinstance(result, IntercoderAgreement)
    heads = [("Krippendorff's α", "krippendorff_alpha")]
    if full:
        heads += [("Fleiss' κ", "fleiss_kappa"), ("Gwet's AC1", "gwet_ac1")]
        heads += [("Agreement", "percent_agreement")]
    n = result.n if full else result.n_items
    for col, (name, key) in zip(st.columns(len(heads)), heads, strict=True):
        ci = result.ci.get(key) if full else None
        col.metric(
            f"{name} (all coders)",
            fmt(getattr(result, key)),
            help=f"{len(result.coders)} coders, {n} texts coded by at least two",
        )
        if ci:
            col.caption(f"95% CI {fmt(ci[0], 2)}–{fmt(ci[1], 2)}")
    if full:
        st.caption(
            f"n = {result.n} texts coded by two or more coders ({result.n_codes} codes); "
            f"intervals: BCa bootstrap over the texts ({result.n_boot} resamples)."
        )
        if result.caution:
            st.warning(result.caution)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "coder A": p.coder_a,
                    "coder B": p.coder_b,
                    "texts both coded": p.n,
                    "agreement": p.percent_agreement,
                    "Cohen's κ": fmt_ci(p.cohen_kappa, p.ci if p.ci_method else None),
                }
                for p in result.pairs
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    if full and result.per_category:
        st.markdown("**Per category** (each category against the rest)")
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "category": c,
                        "codes": a.n_codes,
                        "specific agreement": fmt_ci(
                            a.specific_agreement, a.ci.get("specific_agreement")
                        ),
                        "Krippendorff's α": fmt_ci(
                            a.krippendorff_alpha, a.ci.get("krippendorff_alpha")
                        ),
                        "Fleiss' κ": fmt_ci(a.fleiss_kappa, a.ci.get("fleiss_kappa")),
                        "Gwet's AC1": fmt_ci(a.gwet_ac1, a.ci.get("gwet_ac1")),
                    }
                    for c, a in result.per_category.items()
                ]
            ),
            hide_index=True,
            width="stretch",
        )


def comparison_table(comparison: Comparison) -> pd.DataFrame:
    """The fair comparison as a table: each model's macro-F1, accuracy and kappa with CIs."""

    def with_ci(m: Agreement, key: str) -> str:
        return fmt_ci(getattr(m, key), m.ci.get(key))

    rows = []
    for r in comparison.rows:
        m = r.metrics
        rows.append(
            {
                "model": r.name,
                "trained on": f"{r.n_train:,} texts" if r.n_train else "–",
                "macro-F1": with_ci(m, "macro_f1") if m else "not available",
                "accuracy": with_ci(m, "accuracy") if m else "–",
                "Cohen's κ": with_ci(m, "cohen_kappa") if m else "–",
                "n": m.n if m else 0,
                **_seed_column(comparison, r.key),
                "note": r.note,
            }
        )
    return pd.DataFrame(rows)


def _seed_column(comparison: Comparison, key: str) -> dict[str, str]:
    """The macro-F1 over seeds beside the student's row (no column with one seed)."""
    seeds = comparison.seeds
    if seeds is None or seeds.n_seeds < 2:
        return {}
    spread = seeds.spread("macro_f1") if key == "student_llm" else None
    return {"macro-F1 across seeds": f"{spread.text()}, {seeds.n_seeds} seeds" if spread else "–"}


@dataclass(frozen=True)
class _ComparisonFigures:
    """What :func:`show_comparison` draws of one stored comparison, built once."""

    differences: pd.DataFrame | None
    bars: Any
    class_f1: Any
    confusions: dict[str, Any]


@st.cache_resource(max_entries=32, show_spinner=False)
def _comparison_figures(
    fingerprint: str, _comparison: Comparison, labels: tuple[str, ...]
) -> _ComparisonFigures:
    """The comparison's paired differences and charts, kept per stored comparison (its
    ``fingerprint``) and labels: a comparison never changes once stored, and building its
    figures and bootstrap differences was half of a Fine-tune or Results rerun at 27 categories
    (treat what is returned as read-only)."""
    comparison, n = _comparison, _comparison.eval.n
    differences = comparison.differences(list(labels))
    rows = comparison.rows
    return _ComparisonFigures(
        differences=pd.DataFrame(
            [
                {
                    "difference": f"{d.a} − {d.b}",
                    "macro-F1": fmt_ci(d.macro_f1.difference, d.macro_f1.ci),
                    "accuracy": fmt_ci(d.accuracy.difference, d.accuracy.ci),
                    "McNemar p (accuracy)": fmt(d.accuracy.p_value),
                    "n": d.macro_f1.n,
                }
                for d in differences
            ]
        )
        if differences
        else None,
        bars=comparison_bars(rows, title="Macro-F1 on held-out human codes", n=n),
        class_f1=class_f1_grouped(rows, list(labels), title="F1 per class, every model", n=n),
        confusions={
            r.key: confusion_heatmap(r.metrics.labels, r.metrics.confusion, title=r.name)
            for r in rows
            if r.metrics is not None
        },
    )


def show_comparison(comparison: Comparison, labels: list[str]) -> None:
    """The paper's table for this project: every model on the same held-out human codes."""
    if comparison.eval is None:
        st.info(
            comparison.reason
            or "No comparison: the model was trained before a test part was coded."
        )
        return
    n = comparison.eval.n
    st.caption(
        f"All models scored on the same {n} held-out test texts, against the human codes "
        f"({comparison.eval.gold}). {' '.join(TRAINING_CLAIMS.values())} "
        "Intervals: 95%; Wilson for accuracy, a BCa bootstrap over the texts (1,000 resamples) "
        "widened by a weak-prior interval for F1 and κ."
    )
    st.dataframe(comparison_table(comparison), hide_index=True, width="stretch")
    if comparison.seeds is not None and comparison.seeds.n_seeds > 1:
        st.caption(f"Student on LLM labels — {comparison.seeds.sentence()}")
    stored = json.dumps(comparison.to_dict(), sort_keys=True, default=str)
    figures = _comparison_figures(
        hashlib.sha256(stored.encode()).hexdigest(), comparison, tuple(labels)
    )
    if figures.differences is not None:
        st.dataframe(figures.differences, hide_index=True, width="stretch")
        st.caption(
            "Paired differences on the same texts: 95% paired bootstrap intervals; McNemar's "
            "exact test on the texts exactly one of the two got right. An interval that holds 0 "
            "means the data cannot tell the two apart."
        )
    chart(figures.bars, "comparison-f1")
    chart(figures.class_f1, "class-f1")
    scored = [r for r in comparison.rows if r.metrics is not None]
    if not scored:
        return
    # Drawn only when opened: the matrices were half of the page's drawing in the browser.
    matrices = st.expander(
        f"Confusion matrices ({len(scored)} {'model' if len(scored) == 1 else 'models'}, n = {n})",
        key="confusions_open",
        on_change="rerun",
    )
    if not matrices.open:
        return
    with matrices:
        if many_categories(scored[0].metrics.labels):  # one matrix at a time, full width
            names = {r.key: r.name for r in scored}
            key = st.radio(
                "Confusion matrix of",
                list(names),
                format_func=names.get,
                horizontal=True,
                key="confusion_model",
            )
            scored = [r for r in scored if r.key == key]
        for pair in range(0, len(scored), 2):
            cols = st.columns(2) if len(scored) > 1 else [st]
            for col, r in zip(cols, scored[pair : pair + 2], strict=False):
                chart(figures.confusions[r.key], f"confusion-{r.key}", col)


def model_label(model) -> str:
    """How a student is named in pickers."""
    when = f"{model.created_at:%Y-%m-%d %H:%M}"
    return f"Model {model.id}: {model.base_model}, {model.status}, {when} UTC"


def model_zip_label(meta: ModelMeta) -> str:
    """The model download's label: how the zip's folder loads."""
    loads = (
        "distill_core.student.predict.load"
        if meta.recipe == "head"
        else "AutoModelForSequenceClassification"
    )
    return f"Download the model (zip: loads with {loads})"


def model_summary(model) -> ModelMeta:
    """A ready model's training in four figures and its training curve (the head recipe: the
    regularisation its cross-validation chose); returns its metadata."""
    meta = ModelMeta.from_dict(model.meta)
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Training texts", f"{meta.n_train:,}", help=f"+ {meta.n_val:,} validation")
    if meta.recipe == "head":
        c2.metric("Recipe", "fast (head)", help="Frozen encoder + trained classifier head.")
    else:
        c2.metric("Best epoch", f"{meta.best_epoch} of {len(meta.history)}")
    c3.metric("Training time", f"{meta.train_seconds or 0:,.0f} s", help=meta.device)
    c4.metric("Max length", f"{meta.max_length} tokens")
    if meta.recipe_choice is not None:
        st.caption(meta.recipe_choice.sentence())
    if meta.mistakes_sentence():
        st.caption(meta.mistakes_sentence())
    if meta.tfidf_val_macro_f1 is not None and not meta.below_tfidf:
        st.caption(
            f"Validation macro-F1 {meta.val_macro_f1:.3f} against the LLM's labels; TF-IDF on "
            f"the same split: {meta.tfidf_val_macro_f1:.3f}."
        )
    if meta.below_tfidf:
        st.warning(meta.below_tfidf_sentence())
    if meta.head_fit_sentence():  # the head recipe has no epochs to chart: its choice of C
        st.caption(meta.head_fit_sentence())
    elif meta.history and meta.recipe != "head":
        chart(
            training_curves(
                {"Student on LLM labels": meta.history},
                title=f"Training curve, model {model.id}",
                n=meta.n_train,
            ),
            "training-curve",
        )
    return meta


#: How each sampling method is named.
SAMPLE_METHODS = {
    "random": "simple random",
    "stratified": "stratified by LLM label",
    "imported": "given",
}


def show_sample(sample, parts: dict[str, int]) -> None:
    """The current validation sample in a sentence: size, method, seed and its two parts."""
    st.markdown(
        f"**Current sample:** {sample.n:,} texts "
        f"({SAMPLE_METHODS.get(sample.method, sample.method)}, seed {sample.seed}): "
        f"{parts.get('dev', 0):,} for development, {parts.get('test', 0):,} held out."
    )
    if (sample.details or {}).get("source"):
        st.caption(f"Source: {sample.details['source']}.")


def shares_table(shares) -> None:
    """The corrected shares as a table: naive, corrected and sample-only with intervals (a
    share the coded texts only bound reads as a bound), and each row's note."""
    st.dataframe(
        [
            {
                "label": r.label,
                "naive": fmt_share(r.naive, r.naive_ci),
                "corrected": fmt_bounded_share(r.corrected, r.corrected_ci, r.bound_only),
                "human sample only": fmt_bounded_share(
                    r.sample_only, r.sample_only_ci, r.bound_only
                ),
                "note": r.note or "",
            }
            for r in shares.rows
        ],
        hide_index=True,
        width="stretch",
    )
