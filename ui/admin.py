"""For an administrator of a shared instance: who has signed in or has an account, admitting
newcomers, making accounts and resetting passwords (the same core functions as the command
line's ``admin`` commands)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from distill_core.study import accounts
from ui.context import Context


def show(ctx: Context) -> None:
    """The instance's users (administrators only, hosted modes only)."""
    if not ctx.hosted or not ctx.is_admin:
        return
    with st.expander("Users of this instance (administrator)"):
        users = ctx.act(accounts.list_users)
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "user": u.username,
                        "name": u.display_name,
                        "e-mail": u.email or "",
                        "admitted": u.active,
                        "administrator": u.is_admin,
                        "locked until": u.locked_until,
                    }
                    for u in users
                ]
            ),
            hide_index=True,
            width="stretch",
        )
        waiting = {u.username: u.id for u in users if not u.active}
        if waiting:
            who = st.selectbox("Waiting to be admitted", list(waiting))
            if st.button(f"Admit {who}"):
                _try(ctx, accounts.admit, waiting[who])
        if ctx.settings.auth == "accounts":
            with st.form("new_account", clear_on_submit=True):
                c1, c2 = st.columns(2)
                name = c1.text_input("New account's user name")
                password = c2.text_input("Its first password", type="password")
                make = st.form_submit_button("Make the account")
            if make:
                _try(ctx, accounts.create_user, name, password)
            by_name = {u.username: u.id for u in users}
            if by_name:
                with st.form("reset_password", clear_on_submit=True):
                    c1, c2 = st.columns(2)
                    who = c1.selectbox("Reset the password of", list(by_name))
                    password = c2.text_input("New password", type="password")
                    reset = st.form_submit_button("Reset")
                if reset:
                    _try(ctx, accounts.set_password, by_name[who], password)


def _try(ctx: Context, fn, *args) -> None:
    try:
        ctx.act(fn, *args)
    except ValueError as exc:
        st.error(str(exc))
    else:
        st.rerun()
