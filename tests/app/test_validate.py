"""The Validate page in AppTest: blind coding (the LLM's label only after submitting), label
buttons with keyboard shortcuts, progress, the import report, agreement figures."""

from __future__ import annotations

from distill_core.codebook import Codebook
from distill_core.config import Settings
from distill_core.store import Store
from distill_core.study import projects, validation
from tests.app.conftest import open_page, open_tab, texts
from tests.fakes import label_sample, local_user


def label_demo_sample() -> None:
    store = Store(Settings.from_env().database_url)
    with store.session() as s:
        pid = projects.list_projects(s, projects.ensure_user(s))[0].id
    label_sample(store, pid)
    store.dispose()


def test_coding_is_blind_until_submitted_and_counts_progress(home) -> None:
    at = open_page()
    label_demo_sample()
    at.switch_page("steps/validate.py")
    at.run()
    assert "Type your name" in texts(at)
    at.text_input(key="coder_name").input("tester")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "0 of 60 coded" in texts(at)
    assert "The LLM said" not in texts(at)
    economy = at.button(key="code_economy")
    assert economy.proto.shortcut == "1"
    assert at.button(key="code_health").proto.shortcut == "2"
    economy.click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = texts(at)
    assert "1 of 60 coded" in shown
    assert "you coded **economy**" in shown and "the LLM said **economy**" in shown
    # Back to the coded text: its code and the LLM's label are shown; the next is still blind.
    at.button(key="code_back").click()
    at.run()
    assert "Your code: **economy**" in texts(at) and "The LLM said: **economy**" in texts(at)
    at.button(key="code_skip").click()
    at.run()
    assert "The LLM said:" not in texts(at)


def test_agreement_tab_shows_figures_for_the_demo_experts(home) -> None:
    at = open_page()
    label_demo_sample()
    at.switch_page("steps/validate.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Scored on" not in texts(at)  # the Code tab: the figures are not computed
    shown = texts(open_tab(at, "Agreement"))
    assert "Development part" in shown and "Scored on" in shown
    assert any(m.label == "Macro F1" for m in at.metric)
    assert "Agreement among human coders" in shown
    # The held-out score is hidden until asked for.
    # A codebook revised since the run was labelled: the look records the run's version, 1.
    store = Store(Settings.from_env().database_url)
    with store.session() as s:
        user = local_user(s)
        pid = projects.list_projects(s, user)[0].id
        cb = projects.as_codebook(projects.latest_codebook(s, user, pid)).to_dict()
        projects.save_codebook(s, user, pid, Codebook.from_dict(dict(cb, instructions="Edited.")))
    reveal = next(b for b in at.button if b.label == "Show the held-out test score")
    reveal.click()
    at.run()
    assert texts(at).count("Scored on") == 2
    with store.session() as s:
        assert validation.current_sample(s, local_user(s), pid).test_seen_codebook_version == 1
    store.dispose()


def test_import_shows_a_report_before_anything_is_stored(home) -> None:
    at = open_tab(open_page("steps/validate.py"), "Import codes")
    csv = b"id,code\ndemo-0001,economy\ndemo-0002,Health\nnot-an-id,health\ndemo-0003,healthcare\n"
    at.file_uploader(key="codes_upload").set_value(("codes.csv", csv, "text/csv"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="imp_label").select("code")
    at.text_input(key="imp_coder").input("imported coder")
    at.run()
    shown = texts(at)
    assert "2 codes can be imported" in shown
    assert "not-an-id" in shown and "'healthcare'" in shown
    next(b for b in at.button if b.label == "Import 2 codes").click()
    at.run()
    store = Store(Settings.from_env().database_url)
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = projects.list_projects(s, user)[0].id
        codes = validation.codes_frame(s, local_user(s), pid)
    mine = codes[codes["coder"] == "imported coder"].sort_values("doc_id")
    assert list(mine["label"]) == ["economy", "health"]
