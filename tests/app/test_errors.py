"""An unexpected error shows one sentence and a reference id, never a traceback; the server log
holds the traceback under the same id; st.stop and st.switch_page pass untouched."""

from __future__ import annotations

import logging
import re
import tomllib

import streamlit as st
from streamlit.testing.v1 import AppTest

from distill_core.study import projects
from tests.app.conftest import REPO, open_page, texts

SECRET_DETAIL = "select password_hash from users -- boom"


def _raise(*args, **kwargs):
    raise RuntimeError(SECRET_DETAIL)


def test_an_unexpected_error_shows_a_reference_and_logs_the_traceback(
    home, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(projects, "overview", _raise)  # the Projects page, served at "/"
    with caplog.at_level(logging.ERROR, logger="distill"):
        at = open_page()  # asserts that no exception element is shown
    assert not at.exception
    (error,) = at.error
    found = re.search(r"reference \*\*([0-9a-f]{8})\*\*", error.value)
    assert found, error.value
    ref = found.group(1)
    shown = texts(at)
    assert SECRET_DETAIL not in shown and "Traceback" not in shown and "RuntimeError" not in shown
    assert at.title[0].value == "Projects"  # what the page showed before the error stays

    (record,) = [r for r in caplog.records if r.name == "distill"]
    assert record.levelno == logging.ERROR and ref in record.getMessage()
    logged = logging.Formatter().format(record)
    assert "Traceback (most recent call last)" in logged
    assert f"RuntimeError: {SECRET_DETAIL}" in logged and "steps/projects.py" in logged


def test_st_stop_and_st_switch_page_pass_through(home, monkeypatch, caplog) -> None:
    def stop(*args, **kwargs):
        st.stop()

    monkeypatch.setattr(projects, "overview", stop)
    with caplog.at_level(logging.ERROR, logger="distill"):
        at = open_page()
        assert at.title[0].value == "Projects" and not at.error

        def switch(*args, **kwargs):
            st.switch_page("steps/data.py")

        monkeypatch.setattr(projects, "overview", switch)
        at.run()
    assert not at.exception and not at.error
    assert at.title[0].value != "Projects"  # the Data page is shown
    assert not [r for r in caplog.records if r.name == "distill"]


def test_what_streamlit_itself_catches_shows_no_details(home) -> None:
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"
    at = AppTest.from_string(f"raise RuntimeError({SECRET_DETAIL!r})")
    at.run()
    (shown,) = at.exception
    assert SECRET_DETAIL not in shown.message and not shown.stack_trace


def test_a_value_the_store_does_not_keep_is_its_own_sentence(home, monkeypatch) -> None:
    from distill_core.store import TooLong

    said = "A project name has 201 characters ('PPP…'); the most is 200, so shorten it."

    def too_long(*args, **kwargs):
        raise TooLong(said)

    monkeypatch.setattr(projects, "overview", too_long)
    at = open_page()
    assert not at.exception
    (error,) = at.error
    assert error.value == said and "reference" not in error.value
