"""Team coding on the Validate page in AppTest: the Assign tab's plan (texts per coder, the
expected interval width) stored on request, a named coder's queue with a note, the team's
progress, and the Adjudicate tab settling a tie."""

from __future__ import annotations

from distill_core.config import Settings
from distill_core.store import Store
from distill_core.study import adjudication, assignments, projects, validation
from distill_core.study.assignments import Design
from tests.app.conftest import open_page, open_tab, texts
from tests.fakes import local_user


def _demo(store: Store):
    with store.session() as s:
        user = local_user(s)
        pid = projects.list_projects(s, user)[0].id
        return pid, validation.current_sample(s, user, pid)


def test_the_assign_tab_shows_the_plan_and_stores_it(home) -> None:
    at = open_tab(open_page("steps/validate.py"), "Assign")
    at.text_input(key="assign_coders_typed").input("ann, ben, cem")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = texts(at)
    # 120 texts, 20% overlap (24) to 2 coders: 144 codes, 48 per coder.
    assert "24 texts" in shown and "will be about **±" in shown
    # The demo's two experts so far: Fleiss' κ and AC1 with intervals, on their 40 shared texts.
    assert "**Agreement among the coders so far**, on this sample's texts" in shown
    assert "n = 40 texts coded by two or more coders" in shown
    assert {"Fleiss' κ (all coders)", "Gwet's AC1 (all coders)"} <= {m.label for m in at.metric}
    plan = next(d for d in at.dataframe if "of them in the overlap" in d.value.columns)
    assert list(plan.value["texts"]) == [48, 48, 48]
    at.button(key="assign_go").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    store = Store(Settings.from_env().database_url)
    pid, sample = _demo(store)
    with store.session() as s:
        record = assignments.current_design(s, local_user(s), pid, sample)
        ann = assignments.coding_queue(s, local_user(s), pid, sample, "ann")
    store.dispose()
    assert record.design == Design(("ann", "ben", "cem"), 2, 0.2, sample.seed)
    assert ann.total == 48
    assert "every code they were assigned" not in texts(at)  # (the appendix's sentence)
    assert "Texts with all their codes" in [m.label for m in at.metric]


def test_a_named_coder_codes_their_queue_with_a_note(home) -> None:
    open_page()
    store = Store(Settings.from_env().database_url)
    pid, sample = _demo(store)
    with store.session() as s:
        assignments.assign(s, local_user(s), pid, sample, Design(("ann", "ben"), 2, 0.25, 1))
        queue = assignments.coding_queue(s, local_user(s), pid, sample, "ann")
    at = open_page("steps/validate.py")
    at.text_input(key="coder_name").input("ann")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    shown = texts(at)
    assert f"0 of {queue.total} coded" in shown and "Your queue" in shown
    assert f"id {queue.items[0].doc_id}" in shown  # the coder's own order
    note = next(t for t in at.text_input if t.label.startswith("Unsure because"))
    note.input("unsure because it mentions two topics")
    at.run()
    at.button(key="code_health").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert f"1 of {queue.total} coded" in texts(at)
    assert f"id {queue.items[1].doc_id}" in texts(at)
    with store.session() as s:
        codes = validation.own_codes(s, local_user(s), pid, "ann").set_index("doc_id")
        progress = assignments.team_progress(s, local_user(s), pid, sample)
    store.dispose()
    first = queue.items[0].doc_id
    assert codes.loc[first, "label"] == "health"
    assert codes.loc[first, "note"] == "unsure because it mentions two topics"
    rows = {r.coder: r for r in progress.coders}
    assert rows["ann"].done == 1 and rows["ann"].median_seconds is not None


def test_the_adjudicate_tab_settles_a_tie(home) -> None:
    at = open_tab(open_page("steps/validate.py"), "Adjudicate")
    shown = texts(at)
    assert "5 texts** on which coders disagree (5 ties, 0 adjudicated)" in shown
    assert "Humans vs humans" in shown
    doc = at.selectbox(key="adj_doc").value
    at.radio(key=f"adj_label_{doc}").set_value("health")
    at.text_input(key=f"adj_reason_{doc}").input("a hospital is the subject")
    at.button(key="adj_save").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "(5 ties, 1 adjudicated)" in texts(at)
    store = Store(Settings.from_env().database_url)
    pid, sample = _demo(store)
    with store.session() as s:
        settled = {d.doc_id: d for d in adjudication.disputes(s, local_user(s), pid, sample)}
        gold = validation.gold_rule(validation.codes_frame(s, local_user(s), pid))
    store.dispose()
    assert settled[doc].adjudicated == "health"
    assert settled[doc].reason == "a hospital is the subject"
    assert gold.labels[doc] == "health" and doc not in gold.ties


def test_a_coder_sees_only_their_own_queue(home) -> None:
    from tests.app.test_roles import _open

    at = _open("coder")
    store = Store(Settings.from_env().database_url)
    with store.session() as s:
        pi = projects.ensure_user(s, "pi")
        pid = projects.list_projects(s, pi)[0].id
        sample = validation.current_sample(s, pi, pid)
        assignments.assign(s, pi, pid, sample, Design(("expert_b",), 1, None, 1))
    at.switch_page("steps/validate.py")
    at.run()
    at.text_input(key="coder_name").input("local")
    at.run()
    assert "No text of this sample is assigned to you yet" in texts(at)
    assert not at.button
    with store.session() as s:
        pi = projects.ensure_user(s, "pi")
        assignments.assign(s, pi, pid, sample, Design(("local", "expert_b"), 2, 0.1, 1))
        mine = assignments.coding_queue(s, pi, pid, sample, "local")
    store.dispose()
    at.run()
    shown = texts(at)
    assert f"0 of {mine.total} coded" in shown and "Your queue" in shown
    at.button(key="code_economy").click()
    at.run()
    shown = texts(at)
    assert not at.exception, [e.value for e in at.exception]
    assert f"1 of {mine.total} coded" in shown
    assert "expert_a" not in shown and "expert_b" not in shown and "LLM said" not in shown
