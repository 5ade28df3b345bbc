"""The Assign tab (owners and researchers): the team's progress on the sample, a plan that
shares its texts among coders (every text to k coders, or one coder each plus an overlap)
with the texts per coder and the expected width of the intercoder interval before anything is
stored, and handing a departed coder's uncoded texts to others."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from distill_core.codebook import Codebook
from distill_core.reports.formatting import fmt
from distill_core.study import assignments, projects, validation
from distill_core.study.access import ALLOWED, Capability
from distill_core.study.assignments import Design
from distill_core.study.validation import ValidationError
from ui.context import Context
from ui.views import show_intercoder

EVERY = "Every text to k coders"
OVERLAP = "One coder per text, plus an overlap coded by k"


def show(ctx: Context, sample, docs: list, codes: pd.DataFrame, codebook: Codebook) -> None:
    progress = ctx.act(assignments.team_progress, ctx.project_id, sample)
    st.subheader("Progress")
    if progress.design is not None:
        st.caption(progress.design.sentence())
    _progress(progress)
    in_sample = codes[codes["doc_id"].isin({d.doc_id for d in docs})]
    inter = validation.intercoder_agreement(in_sample, codebook.label_names)
    if inter is not None and inter.n:
        st.markdown("**Agreement among the coders so far**, on this sample's texts")
        show_intercoder(inter)
    with st.expander("Assign the texts to coders", expanded=progress.design is None):
        design = _design_form(ctx, sample)
        if design is not None:
            _plan(ctx, sample, docs, codebook, design)
    if progress.design is not None:
        with st.expander("Reassign a coder's remaining texts"):
            _reassign(ctx, sample, progress)


def _progress(progress: assignments.TeamProgress) -> None:
    if not progress.coders:
        st.info("Nobody has coded or been assigned a text of this sample yet.")
        return
    c1, c2, c3 = st.columns(3)
    c1.metric(
        "Texts with all their codes", f"{progress.complete_texts} of {progress.assigned_texts}"
    )
    c2.metric("Texts coded by two or more", progress.overlap_texts)
    c3.metric("Texts in the sample", progress.n_texts)
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "coder": r.coder,
                    "assigned": r.assigned,
                    "done": r.done,
                    "coded in all": r.coded,
                    "median seconds per text": None
                    if r.median_seconds is None
                    else round(r.median_seconds),
                    "codes compared with others": r.overlap_pairs,
                    "agreement with the others": fmt(r.agreement)
                    if r.agreement is not None
                    else "–",
                }
                for r in progress.coders
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    st.caption(
        "Agreement with the others: the share of a coder's codes that equal another coder's "
        "code of the same text (blind codes, the texts coded so far). Seconds: from opening a "
        "text to its first code."
    )


def _coders(ctx: Context) -> list[str]:
    """Who may be assigned: members whose role codes (shared instance); named coders typed
    here (single-user mode, where coders do not sign in)."""
    if ctx.hosted:
        return st.multiselect("Coders", _able(ctx), key="assign_coders")
    typed = st.text_input(
        "Coders (names, separated by commas)",
        key="assign_coders_typed",
        help="In single-user mode coders are named, not signed in: each codes under their name.",
    )
    return [c.strip() for c in typed.split(",") if c.strip()]


def _able(ctx: Context) -> list[str]:
    """The members whose role may code (shared instance; none in single-user mode)."""
    if not ctx.hosted:
        return []
    members = ctx.act(projects.members, ctx.project_id)
    return [u.username for u, role in members if Capability.CODE in ALLOWED.get(role, ())]


def _design_form(ctx: Context, sample) -> Design | None:
    coders = _coders(ctx)
    kind = st.radio("Design", [OVERLAP, EVERY], horizontal=True, key="assign_kind")
    c1, c2, c3 = st.columns(3)
    k = c1.number_input(
        "k: coders per overlap text" if kind == OVERLAP else "k: coders per text",
        min_value=2 if kind == OVERLAP else 1,
        max_value=max(2, len(coders)),
        value=2,
        key="assign_k",
    )
    overlap = None
    if kind == OVERLAP:
        overlap = c2.slider("Overlap share", 5, 100, 20, step=5, format="%d%%", key="assign_ov")
        overlap /= 100
    seed = c3.number_input("Seed", value=int(sample.seed or 0), step=1, key="assign_seed")
    if not coders:
        st.info("Name the coders first.")
        return None
    return Design(tuple(coders), int(k), overlap, int(seed))


def _plan(ctx: Context, sample, docs: list, codebook: Codebook, design: Design) -> None:
    try:
        made = assignments.plan([d.doc_id for d in docs], design, n_categories=len(codebook.labels))
    except ValidationError as exc:
        st.error(str(exc))
        return
    over = made.overlap_per_coder()
    st.dataframe(
        pd.DataFrame(
            [
                {"coder": c, "texts": n, "of them in the overlap": over[c]}
                for c, n in made.per_coder().items()
            ]
        ),
        hide_index=True,
        width="stretch",
    )
    width = made.halfwidth()
    st.markdown(
        f"**{len(made.overlap_ids)} texts** coded by {design.k} coders for agreement"
        + (
            f": the 95% interval of κ or α will be about **±{width:.2f}** wide."
            if width is not None
            else ": too few for an interval of the agreement among coders."
        )
    )
    st.caption(
        "Expected width: z·√(p(1−p)/n)/(1−1/K), κ's large-sample standard error with an "
        f"observed agreement p of {assignments.PLANNING_AGREEMENT:.0%} and {len(codebook.labels)} "
        "equally common categories K; skewed categories widen it. Texts already coded stay "
        "with their coders; a new plan withdraws only uncoded texts."
    )
    if st.button(f"Assign {made.n_texts} texts", type="primary", key="assign_go"):
        try:
            ctx.act(
                assignments.assign,
                ctx.project_id,
                sample,
                design,
                n_categories=len(codebook.labels),
            )
        except ValidationError as exc:
            st.error(str(exc))
        else:
            st.toast(f"Assigned {made.n_texts} texts to {len(design.coders)} coders.")
            st.rerun()


def _reassign(ctx: Context, sample, progress: assignments.TeamProgress) -> None:
    names = [r.coder for r in progress.coders if r.assigned > r.done]
    if not names:
        st.caption("Every assigned text is coded.")
        return
    leaving = st.selectbox("Coder who left", names, key="reassign_from")
    known = [r.coder for r in progress.coders] + list(progress.design.design.coders)
    others = [c for c in dict.fromkeys(known + _able(ctx)) if c != leaving]
    to = st.multiselect("Give their uncoded texts to", others, key="reassign_to")
    if st.button("Reassign", key="reassign_go", disabled=not to):
        try:
            done = ctx.act(assignments.reassign, ctx.project_id, sample, leaving, to)
        except ValidationError as exc:
            st.error(str(exc))
        else:
            st.success(done.sentence(leaving))
