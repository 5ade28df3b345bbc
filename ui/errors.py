"""Unexpected errors: the page shows one sentence and a reference id, the server log the full
traceback under that id (so no stack trace or SQL ever reaches a browser)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from streamlit.errors import FragmentHandledException

from distill_core.store import TooLong
from distill_core.study.access import ProjectError

log = logging.getLogger("distill")


def report(exc: BaseException) -> str:
    """Log ``exc`` with its traceback under a new reference id, show the user one sentence with
    that id, and return it."""
    ref = secrets.token_hex(4)
    log.error("Unexpected error, reference %s", ref, exc_info=exc)
    st.error(
        f"Something went wrong here and it has been recorded (reference **{ref}**); try again, "
        "or give the reference to whoever runs Distill.",
        icon=":material/error:",
    )
    return ref


@contextmanager
def guarded() -> Iterator[None]:
    """Run the block; an unexpected exception is :func:`report`-ed instead of shown. st.stop,
    st.rerun and st.switch_page pass (BaseExceptions), as does a fragment's error, which
    Streamlit has already logged and shown (without details: ``client.showErrorDetails``)."""
    try:
        yield
    except FragmentHandledException:
        raise
    except ProjectError as exc:  # refused by a role check, or a project that is gone: say so
        st.error(str(exc), icon=":material/block:")
    except TooLong as exc:  # a value the store does not keep (too long, a NUL): say which
        st.error(str(exc), icon=":material/error:")
    except Exception as exc:
        report(exc)
