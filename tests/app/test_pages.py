"""Every page loads without an exception on a fresh install and on the demo project; the upload
flow through the real file_uploader; codebook editing, versions and validation."""

from __future__ import annotations

import pytest

from distill_core.config import Settings
from distill_core.store import Store
from distill_core.study import projects, validation
from tests.app.conftest import open_page, open_tab, texts
from tests.fakes import local_user
from ui import PAGES

ALL_PAGES = [script for script, _ in PAGES.values()]


def store_of_home() -> Store:
    return Store(Settings.from_env().database_url)


@pytest.mark.parametrize("script", ALL_PAGES)
def test_every_page_loads_on_a_fresh_install_with_the_demo(home, script) -> None:
    at = open_page(script)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, "every page has a title"


def test_first_start_creates_the_demo_project_and_makes_it_current(home) -> None:
    at = open_page()
    picker = at.sidebar.selectbox[0]
    assert "Demo" in picker.format_func(picker.value)
    assert "Demo: policy topics in news" in texts(at)


@pytest.mark.parametrize("script", ALL_PAGES)
def test_every_page_loads_with_no_project_at_all(home, script) -> None:
    at = open_page()
    store = store_of_home()
    with store.session() as s:
        user = projects.ensure_user(s)
        for p in projects.list_projects(s, user):
            projects.delete_project(s, user, p.id)
    at.switch_page(script)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    # Without a project the menu holds the Projects page only: every link lands there.
    assert [t.value for t in at.title] == ["Projects"]
    assert "No project yet" in texts(at)


def test_demo_project_shows_its_corpus_and_codebook(home) -> None:
    at = open_page("steps/data.py")
    shown = texts(at)
    assert "corpus.csv" in shown
    assert at.metric[0].value == "360"
    at.switch_page("steps/codebook.py")
    at.run()
    assert not at.exception
    assert at.text_input(key="cb_name_0").value == "Policy topics in news"


def test_a_later_step_says_which_earlier_step_it_needs(home) -> None:
    at = open_page()
    at.text_input[0].input("Empty study")
    at.button[0].click()  # the form's submit button is the first button
    at.run()
    at.switch_page("steps/llm_labels.py")
    at.run()
    assert "needs a corpus" in texts(at)


def _new_project(at, name: str):
    form_name = next(t for t in at.text_input if t.label == "Name")
    form_name.input(name)
    next(b for b in at.button if b.label == "Create project").click()
    at.run()
    assert not at.exception
    return at


def test_upload_flow_through_file_uploader_saves_the_corpus(home) -> None:
    at = _new_project(open_page(), "Upload study")
    at.switch_page("steps/data.py")
    at.run()
    csv = b"id;tweet;lang\n1;I love this new policy;en\n2;Taxes are far too high;en\n3;;en\n"
    at.file_uploader[0].set_value(("tweets.csv", csv, "text/csv"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    text_box = next(s for s in at.selectbox if s.label == "Text column")
    assert text_box.value == "tweet"
    next(s for s in at.selectbox if s.label == "Id column").select("id")
    at.run()
    assert "1 empty" in texts(at)
    next(b for b in at.button if b.label == "Save as the project's corpus").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    with store_of_home().session() as s:
        user = projects.ensure_user(s)
        pid = next(p.id for p in projects.list_projects(s, user) if p.name == "Upload study")
        corpus = projects.get_corpus(s, local_user(s), pid)
        assert corpus.row_count == 3 and corpus.text_column == "tweet" and corpus.id_column == "id"
        frame = projects.load_documents(s, local_user(s), corpus.project_id)
    assert list(frame["doc_id"]) == ["1", "2", "3"]
    assert at.metric[0].value == "3"


def test_replacing_the_corpus_says_what_happens_to_codes_and_asks_before_deleting_any(
    home,
) -> None:
    at = open_page("steps/data.py")
    with store_of_home().session() as s:
        pid = projects.list_projects(s, projects.ensure_user(s))[0].id
        docs = projects.load_documents(s, local_user(s), pid, with_extra=False)
        coded = set(validation.codes_frame(s, local_user(s), pid)["doc_id"])
    keep = docs[~docs["doc_id"].isin(sorted(coded)[:2])]  # two coded texts left out
    at.file_uploader[0].set_value(("smaller.csv", keep.to_csv(index=False).encode(), "text/csv"))
    at.run()
    next(s for s in at.selectbox if s.label == "Id column").select("doc_id")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert "The new file lacks 2 texts" in texts(at)
    save = next(b for b in at.button if b.label == "Save as the project's corpus")
    next(c for c in at.checkbox if c.label.startswith("Replace")).check()
    at.run()
    assert next(b for b in at.button if b.label == "Save as the project's corpus").disabled
    next(c for c in at.checkbox if c.label.startswith("Delete the")).check()
    at.run()
    save = next(b for b in at.button if b.label == "Save as the project's corpus")
    assert not save.disabled
    save.click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    with store_of_home().session() as s:
        assert projects.get_corpus(s, local_user(s), pid).row_count == len(keep)
        left = set(validation.codes_frame(s, local_user(s), pid)["doc_id"])
    assert left == coded - set(sorted(coded)[:2])


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("empty.csv", b"", "no rows"),
        ("picture.csv", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "not"),
        ("broken.csv", b'id,text\n1,"an open quote\n2,next row\n3,last\n', "quote"),
    ],
)
def test_a_broken_upload_shows_one_sentence_and_saves_nothing(
    home, name, content, fragment
) -> None:
    at = _new_project(open_page(), "Broken study")
    at.switch_page("steps/data.py")
    at.run()
    at.file_uploader[0].set_value((name, content, "text/csv"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1
    assert fragment in at.error[0].value.lower()
    assert not [b for b in at.button if b.label == "Save as the project's corpus"]
    with store_of_home().session() as s:
        user = projects.ensure_user(s)
        pid = next(p.id for p in projects.list_projects(s, user) if p.name == "Broken study")
        assert projects.get_corpus(s, local_user(s), pid) is None


def test_codebook_edits_save_new_versions_and_invalid_ones_are_refused(home) -> None:
    at = open_page("steps/codebook.py")
    at.text_area(key="cb_instructions_0").input("Assign the one main policy topic. Be careful.")
    at.run()
    assert not at.error
    next(b for b in at.button if b.label == "Save as a new version").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    with store_of_home().session() as s:
        user = projects.ensure_user(s)
        pid = projects.list_projects(s, user)[0].id
        versions = projects.codebook_versions(s, local_user(s), pid)
    assert [v.version for v in versions] == [2, 1]
    assert versions[0].content["instructions"] == "Assign the one main policy topic. Be careful."
    # An empty name is a problem the page states, and saving is disabled.
    at.text_input(key="cb_name_1").input("")
    at.run()
    assert any("name" in e.value.lower() for e in at.error)
    assert next(b for b in at.button if b.label == "Save as a new version").disabled


def test_a_codebook_edit_after_the_held_out_score_was_seen_asks_first_and_is_marked(
    home,
) -> None:
    at = open_page("steps/codebook.py")
    with store_of_home().session() as s:
        pid = projects.list_projects(s, projects.ensure_user(s))[0].id
        sample = validation.current_sample(s, local_user(s), pid)
        validation.mark_test_seen(s, local_user(s), pid, sample.id, 1)
    at.run()
    assert any("held-out test score was seen" in w.value for w in at.warning)
    at.text_area(key="cb_instructions_0").input("Assign the one main policy topic, again.")
    at.run()
    assert next(b for b in at.button if b.label == "Save as a new version").disabled
    next(c for c in at.checkbox if c.label.startswith("Save anyway")).check()
    at.run()
    next(b for b in at.button if b.label == "Save as a new version").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    with store_of_home().session() as s:
        versions = projects.codebook_versions(s, local_user(s), pid)
    assert [(v.version, v.after_test_seen) for v in versions] == [(2, True), (1, False)]


def test_codebook_history_shows_a_diff(home) -> None:
    at = open_page("steps/codebook.py")
    at.text_area(key="cb_instructions_0").input("Changed instructions.")
    at.run()
    next(b for b in at.button if b.label == "Save as a new version").click()
    at.run()
    assert not at.exception
    open_tab(at, "History (2)", "cb_tab")
    diff_code = [
        c.value for c in at.code if "Changed instructions." in c.value and c.language == "diff"
    ]
    assert diff_code and "+Changed instructions." in diff_code[0]


def test_codebook_import_rejects_an_example_with_an_unknown_label(home) -> None:
    at = open_tab(open_page("steps/codebook.py"), "Import / export", "cb_tab")
    bad = (
        b'{"name": "T", "labels": [{"name": "a"}, {"name": "b"}],'
        b' "examples": [{"text": "x", "label": "c"}]}'
    )
    at.file_uploader(key="cb_import_0").set_value(("cb.json", bad, "application/json"))
    at.run()
    assert not at.exception
    assert any("'c'" in e.value for e in at.error)
