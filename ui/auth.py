"""Who is signed in. In local mode the one local user, with no sign-in; on a lab's hosted
instance (``DISTILL_AUTH``) a person signs in here, or the page stops at the sign-in form:

* ``oidc`` — OpenID Connect through Streamlit's own ``st.login()`` / ``st.user`` /
  ``st.logout()``, configured by the ``[auth]`` section of ``.streamlit/secrets.toml``. The
  first sign-in makes the user from the provider's claims (``study.accounts``); a user whose
  e-mail is in ``DISTILL_ADMINS`` is an administrator, anyone else waits to be admitted.
  Streamlit keeps the identity in its own signed, HttpOnly cookie, so a reload stays signed in.
* ``accounts`` — built-in accounts (argon2 hashes, lockout) and a sign-in form. A signed-in
  browser keeps a token signed with ``DISTILL_SECRET_KEY`` (itsdangerous, valid for
  ``accounts.SESSION_LIFETIME``) in the cookie ``distill_session``: ``st.session_state`` dies
  with the page, and Streamlit has no cookie setter, so a small script sets the cookie
  (``st.html``) and the next page load reads it back through ``st.context.cookies``. A cookie
  rather than a token in the URL: a URL is copied into chats, bookmarks and server logs. The
  token names the user and a fingerprint of the password hash, so a password reset, a lock or
  the end of admission signs that browser out at its next rerun.
"""

from __future__ import annotations

import importlib.util
import json
import os
import string
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlparse

import streamlit as st
from sqlalchemy.orm import Session
from streamlit.errors import StreamlitAPIException

from distill_core.config import Settings
from distill_core.store.models import User
from distill_core.study import accounts, projects

#: The cookie that keeps a built-in account signed in across reloads.
SESSION_COOKIE = "distill_session"
#: Environment variable with the server secret that signs the session token.
SECRET_ENV = "DISTILL_SECRET_KEY"

_WHO = "distill_auth_who"  # {"name", "email", "username", "via"}: what the sidebar shows
_TOKEN = "distill_auth_token"  # this browser session's signed token (accounts mode)
_SIGNED_OUT = "distill_auth_signed_out"  # ignore the cookie the page was loaded with

_TOKEN_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_.")
_DRAWN_ON = "distill_auth_drawn_on"  # the page a sign-in screen was last drawn on
_PAGES_DIR = Path(__file__).resolve().parents[1] / "steps"
_NO_SIDEBAR = ", ".join(
    f"[data-testid='{t}']"
    for t in ("stSidebar", "stSidebarCollapsedControl", "stExpandSidebarButton")
)
_OIDC_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")


def current_user(session: Session, settings: Settings) -> User:
    """The acting user of this browser session: the one local user, or the signed-in and
    admitted person; otherwise the sign-in page is shown and the script stops."""
    if settings.auth == "local":
        user = projects.ensure_user(session, projects.LOCAL_USERNAME)
        _remember(user, "local")
        return user
    if settings.auth == "oidc":
        return _oidc_user(session, settings)
    if settings.auth == "accounts":
        return _account_user(session)
    raise RuntimeError(f"The sign-in mode '{settings.auth}' is not available.")


def sign_out_button() -> None:
    """In the sidebar: who is signed in, and a "Sign out" button (nothing in local mode)."""
    settings = Settings.from_env()
    if not settings.hosted:
        return
    with st.sidebar:
        who = st.session_state.get(_WHO)
        if who:
            st.caption(f"Signed in as **{who['name']}**")
        _sign_out_control(settings, key="distill_sign_out")


def mode_sentence(settings: Settings, user: User | None = None) -> str:
    """One sentence on how people sign in to this instance, for the Projects page."""
    if settings.auth == "local":
        return (
            "Single-user mode: everyone who can open this address works as the one local user, "
            "so keep the server on localhost (DISTILL_AUTH=oidc or accounts signs people in)."
        )
    who = _who(user) if user is not None else st.session_state.get(_WHO)
    if not who:
        return "Nobody is signed in."
    name = who["name"]
    if who.get("email") and who["email"] != name:
        name = f"{name} ({who['email']})"
    if settings.auth == "oidc":
        return f"Signed in as {name} through the identity provider at {_provider_host()}."
    return f"Signed in as {name} with a Distill account of this instance."


# ---------------------------------------------------------------- OpenID Connect


def _oidc_user(session: Session, settings: Settings) -> User:
    problem = _oidc_misconfigured()
    if problem:
        st.error(problem)
        _stop()
    if not st.user.get("is_logged_in"):
        st.title("Distill")
        st.write(f"Sign in with your account at {_provider_host()} to use this instance.")
        if st.button("Sign in", type="primary", key="distill_oidc_sign_in"):
            st.login()
        _stop()
    try:
        user = accounts.sign_in_from_claims(session, st.user.to_dict(), settings.admins)
    except accounts.AuthError as exc:
        st.error(str(exc))
        _sign_out_control(settings, key="distill_sign_out_main")
        _stop()
    session.commit()  # a new user must be kept even when the page stops below
    _remember(user, "oidc")
    if not user.active:
        st.title("Distill")
        st.info(f"You are signed in as {_who(user)['name']}. {accounts.NOT_ADMITTED}")
        _sign_out_control(settings, key="distill_sign_out_main")
        _stop()
    return user


def _oidc_misconfigured() -> str | None:
    """Why st.login cannot work here, in one sentence (None when it can)."""
    if importlib.util.find_spec("authlib") is None:
        return "DISTILL_AUTH=oidc needs the Authlib package: pip install -r requirements.txt."
    section = _auth_secrets()
    missing = [k for k in _OIDC_KEYS if not section.get(k)]
    if missing:
        return (
            "DISTILL_AUTH=oidc needs an [auth] section in .streamlit/secrets.toml with "
            f"{', '.join(_OIDC_KEYS)}; missing: {', '.join(missing)}."
        )
    return None


def _auth_secrets() -> dict:
    try:
        section = st.secrets.get("auth")
    except Exception:  # no secrets file at all
        return {}
    return dict(section) if section else {}


def _provider_host() -> str:
    url = _auth_secrets().get("server_metadata_url") or ""
    return urlparse(str(url)).netloc or "the identity provider"


# ---------------------------------------------------------------- built-in accounts


def _account_user(session: Session) -> User:
    secret = os.environ.get(SECRET_ENV, "")
    if not secret:
        st.error(
            f"DISTILL_AUTH=accounts needs the server secret {SECRET_ENV} (a long random string) "
            "to keep people signed in; set it and restart the app."
        )
        _stop()
    user = accounts.user_from_token(session, st.session_state.get(_TOKEN), secret)
    if user is None and not st.session_state.get(_SIGNED_OUT):
        token = st.context.cookies.get(SESSION_COOKIE)
        user = accounts.user_from_token(session, token, secret)
        if user is not None:
            st.session_state[_TOKEN] = token
    if user is not None:
        _remember(user, "accounts")
        return user
    st.session_state.pop(_TOKEN, None)
    st.session_state.pop(_WHO, None)
    return _sign_in_form(session, secret)


def _sign_in_form(session: Session, secret: str) -> User:
    """The sign-in form; the user when its submission signs in, else the script stops."""
    slot = st.empty()
    with slot.container():
        if st.session_state.get(_SIGNED_OUT):  # on every drawing: a rerun may drop one
            _cookie_script(None)
        st.title("Distill")
        st.write("Sign in with the account an administrator of this instance made for you.")
        with st.form("distill_sign_in", clear_on_submit=True):
            username = st.text_input("User name", autocomplete="username")
            password = st.text_input("Password", type="password", autocomplete="current-password")
            submitted = st.form_submit_button("Sign in", type="primary")
        if not submitted:
            st.caption(
                "No account yet? An administrator makes one on the server with "
                "`python -m distill_core admin create-user NAME`."
            )
            _stop()
        try:
            user = accounts.authenticate(session, username, password)
        except accounts.AuthError as exc:
            st.error(str(exc))
            _stop()
    token = accounts.session_token(user, secret)
    st.session_state[_TOKEN] = token
    st.session_state.pop(_SIGNED_OUT, None)
    _remember(user, "accounts")
    with slot.container():
        _cookie_script(token)
    return user


def _cookie_script(token: str | None) -> None:
    """Set (or, with None, delete) the session cookie in the browser: Streamlit reads request
    cookies (``st.context.cookies``) but has no way to set one from the server."""
    if token is not None and not set(token) <= _TOKEN_CHARACTERS:
        raise ValueError("A session token holds only URL-safe characters.")
    max_age = int(accounts.SESSION_LIFETIME.total_seconds()) if token else 0
    value = json.dumps(
        f"{SESSION_COOKIE}={token or ''}; Max-Age={max_age}; Path=/; SameSite=Strict"
    )
    st.html(
        f"<script>document.cookie = {value} + "
        "(location.protocol === 'https:' ? '; Secure' : '');</script>",
        unsafe_allow_javascript=True,
    )


# ---------------------------------------------------------------- shared


def _sign_out_control(settings: Settings, key: str) -> None:
    if not st.button("Sign out", key=key, icon=":material/logout:"):
        return
    st.session_state.pop(_WHO, None)
    if settings.auth == "oidc":
        st.logout()
        st.stop()  # no rerun: the browser is on its way to the provider
    st.session_state.pop(_TOKEN, None)
    st.session_state[_SIGNED_OUT] = True
    st.rerun()


def _stop() -> NoReturn:
    """Stop the script at a sign-in screen, with no sidebar and behind a hidden navigation.

    The navigation's empty pages have the URL paths of the app's (a page's path is its
    file's name in steps/), so a link to a page shows no "Page not found" and, once signed
    in, opens that page. A widget's id includes the page it was drawn on, so the first time the
    navigation changes the page the screen is drawn again at once: a form submitted from the
    first drawing would be lost. Style-only HTML takes no room on the page.
    """
    st.html(f"<style>{_NO_SIDEBAR}{{display:none}}</style>")
    pages = [st.Page(_sign_in_screen, title="Sign in", url_path="sign-in", default=True)]
    pages += [
        st.Page(_sign_in_screen, title="Sign in", url_path=script.stem)
        for script in sorted(_PAGES_DIR.glob("*.py"))
    ]
    try:
        page = st.navigation(pages, position="hidden")
    except StreamlitAPIException:  # a navigation Streamlit refuses: stop all the same
        st.stop()
    if st.session_state.get(_DRAWN_ON) != page.url_path:
        st.session_state[_DRAWN_ON] = page.url_path
        st.rerun()
    st.stop()


def _sign_in_screen() -> None:
    """The page behind a sign-in screen (drawn before the navigation: nothing to add)."""


def _who(user: User) -> dict:
    return {
        "name": user.display_name or user.username,
        "email": user.email,
        "username": user.username,
    }


def _remember(user: User, via: str) -> None:
    st.session_state[_WHO] = {**_who(user), "via": via}
