"""Pages whose words agree with their state: once the held-out score is revealed, the "look
once" warning and its button are gone and the page says when it was first looked at; the
sidebar counts the Export step done once the labelled corpus was exported (7 of 7)."""

from __future__ import annotations

import io

from distill_core.config import Settings
from distill_core.reports import export
from distill_core.store import Store
from distill_core.study import projects
from tests.app.conftest import open_page, open_tab, texts
from tests.app.test_validate import label_demo_sample
from tests.fakes import add_ready_model, demo_with_run, local_user

LOOK_ONCE = "Look at the test score once"
REVEAL = "Show the held-out test score"


def test_after_the_reveal_the_warning_and_its_button_are_gone(home) -> None:
    at = open_page()
    label_demo_sample()
    at.switch_page("steps/validate.py")
    open_tab(at, "Agreement")
    assert LOOK_ONCE in texts(at)
    next(b for b in at.button if b.label == REVEAL).click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = texts(at)
    assert LOOK_ONCE not in shown
    assert not any(b.label == REVEAL for b in at.button)
    assert "The held-out score was first looked at on " in shown
    assert "scoring codebook v1" in shown
    assert shown.count("Scored on") == 2  # development and held-out figures
    at.run()  # and so it stays
    assert LOOK_ONCE not in texts(at) and texts(at).count("Scored on") == 2


def test_the_export_step_gets_its_tick_once_the_corpus_is_exported(home) -> None:
    open_page()
    store = Store(Settings.from_env().database_url)
    pid, run_id = demo_with_run(store)
    add_ready_model(store, pid, run_id, corpus_pass=True)
    at = open_page("steps/export.py")
    assert "6 of 7 steps done" in texts(at)
    with store.session() as s:  # what the page's download button builds on click
        export.export_project(s, local_user(s), pid, "csv", io.BytesIO())
        assert projects.steps_done(s, local_user(s), pid)["Export"]
    store.dispose()
    at = open_page("steps/export.py")
    assert "7 of 7 steps done" in texts(at)
