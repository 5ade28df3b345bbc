"""The app as a coder and as a viewer sees only what the role allows: the menu lists only their
steps; a coder codes as themselves and never sees an LLM label, another coder's code, an
agreement figure or an export; a viewer reads results and changes nothing."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from distill_core.config import Settings
from distill_core.store import Store
from distill_core.study import demo, projects
from tests.app.conftest import REPO, texts
from tests.fakes import label_sample

ALL_PAGES = ["data", "codebook", "llm_labels", "validate", "finetune", "results", "export"]


def _as_member_of_anothers_demo(role: str) -> int:
    """The demo project of another person, with labels; the local user holds ``role`` in it
    and in no other project."""
    store = Store(Settings.from_env().database_url)
    store.migrate()
    with store.session() as s:
        pi = projects.ensure_user(s, "pi")
        pid = demo.ensure_demo_project(s, pi).id
        projects.ensure_user(s)
        projects.set_member(s, pi, pid, projects.LOCAL_USERNAME, role)
    label_sample(store, pid, user="pi")
    store.dispose()
    return pid


def _open(role: str) -> AppTest:
    _as_member_of_anothers_demo(role)
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _menu(at: AppTest) -> list[str]:
    nav = at.get("navigation")  # the sidebar's page links, as st.navigation lists them
    if nav:
        return [p.page_name for p in nav[0].proto.app_pages]
    return []


@pytest.mark.parametrize(
    ("role", "steps"),
    [("coder", ["Projects", "Validate"]), ("viewer", ["Projects", "Results", "Export"])],
)
def test_the_menu_lists_only_the_roles_steps(home, role, steps) -> None:
    at = _open(role)
    menu = _menu(at)
    assert menu == steps or not menu  # AppTest may not expose the menu; the pages below check
    for page in ALL_PAGES:
        try:
            at.switch_page(f"steps/{page}.py")
            at.run()
        except Exception:
            continue  # not served to this role
        shown = texts(at)
        assert not at.exception, (page, [e.value for e in at.exception])
        assert "Traceback" not in shown


def test_a_coder_codes_blind_as_themselves_and_sees_nothing_else(home) -> None:
    at = _open("coder")
    at.switch_page("steps/validate.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.tabs or [t.label for t in at.tabs] == []  # no Agreement, Sample or Import
    assert "Type your name" in texts(at)  # single-user mode: the coder types a name
    at.text_input(key="coder_name").input("local")
    at.run()
    at.button(key="code_economy").click()
    at.run()
    shown = texts(at)
    assert not at.exception, [e.value for e in at.exception]
    assert "Your code: **economy**" in shown or "you coded **economy**" in shown
    assert "LLM said" not in shown  # no LLM label, after coding either
    assert "Development part" not in shown and "Agreement among" not in shown
    assert "expert_a" not in shown and "expert_b" not in shown  # no other coder's codes
    assert not at.get("download_button")
    assert not any(m.label in ("Macro F1", "Accuracy") for m in at.metric)


def test_a_coder_cannot_code_under_another_name(home) -> None:
    at = _open("coder")
    at.switch_page("steps/validate.py")
    at.run()
    at.text_input(key="coder_name").input("expert_a")
    at.run()
    assert "codes as themselves only" in texts(at)  # refused before any text is shown
    assert not at.button and "expert_a" not in " ".join(str(d.value) for d in at.dataframe)


def test_a_viewer_reads_results_and_exports_but_changes_nothing(home) -> None:
    at = _open("viewer")
    at.switch_page("steps/export.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.get("download_button")
    at.switch_page("steps/projects.py")
    at.run()
    shown = texts(at)
    assert "Members of" not in shown and "Delete" not in shown


def test_single_user_mode_refuses_to_serve_beyond_this_machine(home, monkeypatch) -> None:
    import streamlit as st

    real = st.get_option
    monkeypatch.setattr(
        st, "get_option", lambda key: "0.0.0.0" if key == "server.address" else real(key)
    )
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60)
    at.run()
    assert "listens on 0.0.0.0" in texts(at) and "DISTILL_AUTH" in texts(at)
    monkeypatch.setenv("DISTILL_LOCAL_ON_NETWORK", "1")
    at.run()
    assert "listens on 0.0.0.0" not in texts(at)
