"""For a project's owners: its members and their roles, the LLM budget, what each person spent,
and the activity log."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from distill_core.store.models import ROLES
from distill_core.study import activity, projects
from distill_core.study.access import Capability, ProjectError
from ui.context import Context

ROLE_HELP = (
    "owner: everything, members and deletion · researcher: everything but members and "
    "deletion · coder: codes the sample as themselves, sees no LLM label, figure or export · "
    "viewer: reads results and exports"
)


def show(ctx: Context) -> None:
    """Members, budget, usage and activity of the current project (owners only)."""
    if not ctx.can(Capability.MANAGE):
        return
    with st.expander(f"Members of “{ctx.project_name}”"):
        members = ctx.act(projects.members, ctx.project_id)
        st.dataframe(
            pd.DataFrame(
                [{"user": u.username, "name": u.display_name, "role": r} for u, r in members]
            ),
            hide_index=True,
            width="stretch",
        )
        st.caption(ROLE_HELP)
        with st.form("member_form", clear_on_submit=True):
            c1, c2 = st.columns([2, 1])
            username = c1.text_input("User name (as they sign in)")
            role = c2.selectbox("Role", ROLES, index=ROLES.index("coder"))
            add = st.form_submit_button("Add or change")
        if add:
            _try(ctx, projects.set_member, username, role)
        leaving = st.selectbox("Remove a member", ["—"] + [u.username for u, _ in members])
        if leaving != "—" and st.button(f"Remove {leaving}", key="remove_member"):
            _try(ctx, projects.remove_member, leaving)
    with st.expander("LLM budget and usage"):
        summary = ctx.act(projects.overview)
        current = next((p for p in summary if p.id == ctx.project_id), None)
        budget = st.number_input(
            "Budget for LLM answers in US$ (0: no limit)",
            0.0,
            1e6,
            float(current.budget_usd or 0.0) if current else 0.0,
            help="Labelling jobs stop at what is left of it.",
        )
        if st.button("Set the budget"):
            _try(ctx, activity.set_budget, budget)
        used = ctx.act(activity.usage, ctx.project_id)
        if used:
            st.dataframe(pd.DataFrame([vars(u) for u in used]), hide_index=True, width="stretch")
        else:
            st.caption("No LLM labelling yet.")
    with st.expander("Activity"):
        events = ctx.act(activity.recent, ctx.project_id)
        st.dataframe(
            pd.DataFrame(
                [
                    {"when": e.at, "who": e.who, "what": e.action, "details": e.details}
                    for e in events
                ]
            ),
            hide_index=True,
            width="stretch",
        )


def _try(ctx: Context, fn, *args) -> None:
    try:
        ctx.act(fn, ctx.project_id, *args)
    except ProjectError as exc:
        st.error(str(exc))
    else:
        st.rerun()
