"""The agreement panel: a label run against the human codes on the development part, the
disagreements to read, codebook versions compared on the same texts, the held-out score
(shown once asked for, and recorded), and agreement among the coders."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from distill_core.reports.formatting import fmt, fmt_ci, fmt_date
from distill_core.study import projects, runs, scoring, validation
from ui.context import Context
from ui.views import image_format_picker, show_agreement, show_intercoder

MAJORITY = "majority of coders"


def show(ctx: Context, sample, docs: list, codes: pd.DataFrame, label_runs: list) -> None:
    """Agreement of a chosen label run with the human codes of the current sample."""
    if codes.empty or not label_runs:
        st.info("Agreement needs human codes (Code or Import tab) and an LLM label run.")
        return
    version_of = ctx.act(projects.version_numbers, ctx.project_id)
    image_format_picker()
    c1, c2, c3 = st.columns(3)
    run = c1.selectbox(
        "LLM label run",
        label_runs,
        format_func=lambda r: runs.run_title(r, version_of.get(r.codebook_version_id)),
        key="agree_run",
    )
    note = ctx.act(runs.after_seen_note, ctx.project_id, run.id)
    if note:
        st.warning(note)
    names = scoring.run_labels(run)
    coder_names = sorted(codes["coder"].unique())
    gold_from = c2.selectbox("Human labels", [MAJORITY] + coder_names, key="agree_gold")
    positive = c3.selectbox("Positive class for binary F1", ["(none)"] + names, key="agree_pos")
    coder = None if gold_from == MAJORITY else gold_from
    gold, ties = validation.gold_labels(codes, coder)
    if ties:
        st.caption(f"{ties} texts left out: their coders tie.")

    def score(part: str):
        return ctx.act(
            scoring.score_run,
            ctx.project_id,
            run,
            part,
            sample=sample,
            codes=codes,
            coder=coder,
            positive_label=None if positive == "(none)" else positive,
        )

    st.subheader("Development part")
    dev = score("dev")
    if dev is None:
        st.info("Fewer than 2 development texts have both a human code and an LLM label.")
    else:
        _left_out(dev)
        _figures(dev, f"LLM run {run.id} vs human, development")
        _disagreements(ctx, run, docs, codes, gold, dev.doc_ids, names)
    if len(label_runs) > 1:
        _versions(ctx, docs, gold, label_runs, version_of)
    st.subheader("Held-out test part")
    if sample.test_seen_at is None:
        st.warning(
            "Look at the test score once, when the codebook is final: re-scoring revised "
            "codebooks on the same texts overfits. Distill records when you first looked."
        )
        if st.button("Show the held-out test score"):
            ctx.act(
                validation.mark_test_seen,
                ctx.project_id,
                sample.id,
                version_of.get(run.codebook_version_id),  # the scored run's codebook
            )
            st.rerun()  # shown as seen: the score, without the warning and its button
    else:
        st.caption(seen_sentence(sample))
        test = score("test")
        if test is None:
            st.info("Fewer than 2 test texts have both a human code and an LLM label.")
        else:
            _left_out(test)
            _figures(test, f"LLM run {run.id} vs human, held-out test")
    inter = validation.intercoder_agreement(codes)
    if inter is not None:
        st.subheader("Agreement among human coders")
        show_intercoder(inter)


def seen_sentence(sample) -> str:
    """When the held-out score was first looked at, and with which codebook version."""
    version = sample.test_seen_codebook_version
    return (
        f"The held-out score was first looked at on {fmt_date(sample.test_seen_at)}"
        + (f", scoring codebook v{version}" if version else "")
        + "; figures from a codebook saved after that are marked as such."
    )


def _figures(score: scoring.PartScore, title: str) -> None:
    """A part's figures; for a stratified sample labelled as this sample's, with the corpus
    estimate beside them."""
    if score.corpus is not None:
        st.markdown(
            f"**{SAMPLE}** (unweighted): the {score.n} scored texts as drawn, in which the "
            "sample over-represents the rare LLM labels it was stratified by."
        )
    show_agreement(score.agreement, title=title, class_ci=score.class_ci)
    if score.corpus is not None:
        _corpus_estimate(score.corpus)


#: The two labels a stratified sample's figures carry.
SAMPLE, CORPUS = "This sample", "Corpus estimate (design-weighted)"


def _corpus_estimate(estimate: scoring.CorpusEstimate) -> None:
    """The design-weighted figures: what the scored texts say about the corpus."""
    st.markdown(f"**{CORPUS}**: for statements about the corpus.")
    for warning in estimate.warnings:
        st.warning(warning)
    weighted = estimate.agreement
    if weighted is None:
        return
    if weighted.caution:
        st.warning(weighted.caution)
    heads = [("Accuracy", "accuracy"), ("Macro F1", "macro_f1")]
    for col, (name, key) in zip(st.columns(len(heads)), heads, strict=True):
        low, high = weighted.ci.get(key, (float("nan"), float("nan")))
        col.metric(
            f"{name}, corpus estimate",
            fmt(getattr(weighted, key)),
            help=f"95% interval ({weighted.ci_method.get(key, 'n/a')}) {fmt(low)}–{fmt(high)}; "
            f"n = {weighted.n}",
        )
        col.caption(f"95% CI {fmt(low, 2)}–{fmt(high, 2)}")
    st.caption(
        f"n = {weighted.n} scored texts standing for {weighted.population:,} corpus texts; "
        f"macro averages over {len(weighted.averaged)} categories. {estimate.method}"
    )
    nan = (float("nan"), float("nan"))
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "label": c,
                    "precision (weighted)": m.precision,
                    "recall (weighted)": m.recall,
                    "F1 (weighted, 95% CI)": fmt_ci(
                        m.f1, weighted.per_class_ci.get(c, {}).get("f1", nan)
                    ),
                    "scored texts": m.support,
                }
                for c, m in weighted.per_class.items()
            ]
        ),
        hide_index=True,
        width="stretch",
    )


def _left_out(score: scoring.PartScore) -> None:
    if score.off_codebook:
        st.caption(
            f"{score.off_codebook} coded texts left out: their human code is not a label of "
            "this run's codebook."
        )


def _disagreements(ctx, run, docs, codes, gold, doc_ids, names) -> None:
    results = ctx.act(runs.results_for, ctx.project_id, run.id, [d.doc_id for d in docs])
    table = validation.disagreements(
        {d.doc_id: d.text for d in docs}, codes, gold, results, doc_ids
    )
    st.markdown(
        f"**Disagreements** ({len(table)} of {len(doc_ids)}): where to sharpen the "
        "codebook. Click a column to sort."
    )
    f1, f2 = st.columns(2)
    by_human = f1.multiselect("Human label", names, key="dis_human")
    by_llm = f2.multiselect("LLM label", names, key="dis_llm")
    if by_human:
        table = table[table["human"].isin(by_human)]
    if by_llm:
        table = table[table["LLM"].isin(by_llm)]
    st.dataframe(table, hide_index=True, width="stretch")


def _versions(ctx, docs, gold, label_runs, version_of) -> None:
    st.subheader("Codebook versions on the same development texts")
    ids = [d.doc_id for d in docs]
    preds = {
        f"{runs.run_title(r, version_of.get(r.codebook_version_id))}": {
            d: i.label for d, i in ctx.act(runs.results_for, ctx.project_id, r.id, ids).items()
        }
        for r in label_runs
    }
    dev_docs = [d.doc_id for d in docs if d.part == "dev"]
    summary, wins = validation.compare_runs(gold, preds, dev_docs)
    if summary.empty:
        st.info("The runs share fewer than 2 human-coded development texts.")
        return
    st.dataframe(summary, hide_index=True, width="stretch")
    differ = wins[wins.drop(columns=["doc_id", "human"]).nunique(axis=1) > 1]
    st.caption(f"{len(differ)} texts where the runs disagree on being right:")
    st.dataframe(differ, hide_index=True, width="stretch")
