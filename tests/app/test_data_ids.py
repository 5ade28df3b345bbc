"""The Data page picks an id column that is plainly an id, says which and why, and saves the
corpus with it; without one it generates ids and says so."""

from __future__ import annotations

from distill_core.config import Settings
from distill_core.store import Store
from distill_core.study import projects
from tests.app.conftest import open_page, texts
from tests.fakes import local_user


def _upload(name: str, data: bytes):
    at = open_page()
    next(t for t in at.text_input if t.label == "Name").input(name)
    next(b for b in at.button if b.label == "Create project").click()
    at.run()
    at.switch_page("steps/data.py")
    at.run()
    at.file_uploader[0].set_value((f"{name}.csv", data, "text/csv"))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _saved_corpus(at, name: str):
    next(b for b in at.button if b.label == "Save as the project's corpus").click()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    with Store(Settings.from_env().database_url).session() as s:
        user = local_user(s)
        pid = next(p.id for p in projects.list_projects(s, user) if p.name == name)
        corpus = projects.get_corpus(s, user, pid)
        return corpus.id_column, list(projects.load_documents(s, user, pid)["doc_id"])


def test_a_column_named_id_is_the_default_id_column_and_the_page_says_so(home) -> None:
    at = _upload("Named ids", b"tweet;lang;ID\nTaxes go up;en;t-9\nA new hospital;en;t-4\n")
    id_box = next(s for s in at.selectbox if s.label == "Id column")
    assert id_box.value == "ID"
    assert "Ids from “ID”: it is named as an id and unique in every row." in texts(at)
    assert _saved_corpus(at, "Named ids") == ("ID", ["t-9", "t-4"])


def test_without_an_id_column_ids_are_generated_and_the_page_says_why(home) -> None:
    at = _upload("No ids", b"tweet;lang\nTaxes go up;en\nA new hospital;en\n")
    assert next(s for s in at.selectbox if s.label == "Id column").value.startswith("(generate")
    assert "Ids are generated from the texts" in texts(at)
    id_column, ids = _saved_corpus(at, "No ids")
    assert id_column is None and all(i.startswith("t") for i in ids)


def test_choosing_another_id_column_drops_the_sentence_about_the_pick(home) -> None:
    at = _upload("Other ids", b"doc_id;tweet;ref\nd1;Taxes go up;r1\nd2;A new hospital;r2\n")
    assert next(s for s in at.selectbox if s.label == "Id column").value == "doc_id"
    next(s for s in at.selectbox if s.label == "Id column").select("ref").run()
    assert "Ids from “doc_id”" not in texts(at)
    assert _saved_corpus(at, "Other ids") == ("ref", ["r1", "r2"])
