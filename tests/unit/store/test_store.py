"""The store on SQLite and PostgreSQL: migrations, users and roles, corpora, codebook versions."""

from __future__ import annotations

import pytest
from sqlalchemy import func, inspect, select

from distill_core.codebook import Codebook, CodebookError
from distill_core.corpus import prepare_corpus, read_table
from distill_core.store import CodebookVersion, Document, Store
from distill_core.store.models import Base
from distill_core.study import access, demo, projects
from tests.fakes import local_user

CSV = b"id,text,party\n1,Taxes will rise next year,A\n2,New hospital opens,B\n3,,A\n4,New hospital opens,C\n"

CODEBOOK = {
    "name": "Topics",
    "instructions": "Pick one topic.",
    "labels": [
        {"name": "economy", "definition": "Taxes, jobs, budgets."},
        {"name": "health", "definition": "Hospitals, disease."},
    ],
    "examples": [{"text": "The central bank raised rates.", "label": "economy"}],
}


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    from distill_core.store.db import alembic_config

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_migrations_create_every_table_and_match_the_models(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    assert store.current_revision() == head_revision()
    tables = set(inspect(store.engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_migrate_twice_is_a_no_op(store: Store) -> None:
    store.migrate()
    assert store.current_revision() == head_revision()


def test_projects_belong_to_their_members(store: Store) -> None:
    with store.session() as s:
        alice = projects.ensure_user(s, "alice")
        bob = projects.ensure_user(s, "bob")
        p = projects.create_project(s, alice, "Hate speech study")
        pid = p.id
    with store.session() as s:
        alice = projects.ensure_user(s, "alice")
        bob = projects.ensure_user(s, "bob")
        assert [x.name for x in projects.list_projects(s, alice)] == ["Hate speech study"]
        assert projects.list_projects(s, bob) == []
        with pytest.raises(projects.AccessDenied):
            access.check(s, bob, pid, access.Capability.MEMBER)
        projects.set_member(s, alice, pid, "bob", "coder")
        assert access.check(s, bob, pid, access.Capability.CODE).id == pid
        for refused in (access.Capability.READ, access.Capability.EDIT, access.Capability.MANAGE):
            with pytest.raises(projects.AccessDenied):
                access.check(s, bob, pid, refused)
        with pytest.raises(projects.AccessDenied):
            projects.set_member(s, bob, pid, "bob", "owner")
        with pytest.raises(projects.ProjectError, match="needs an owner"):
            projects.set_member(s, alice, pid, "alice", "viewer")
        with pytest.raises(projects.ProjectError, match="exists already"):
            projects.create_project(s, bob, "Hate speech study")


def test_corpus_round_trip_keeps_ids_texts_and_other_columns(store: Store) -> None:
    table = read_table(CSV, "tweets.csv")
    prepared = prepare_corpus(table, text_column="text", id_column="id")
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = projects.create_project(s, user, "P").id
        corpus = projects.save_corpus(s, user, pid, table, prepared)
        cid = corpus.id
    with store.session() as s:
        corpus = projects.get_corpus(s, local_user(s), pid)
        assert corpus.id == cid and corpus.row_count == 4 and corpus.text_column == "text"
        assert corpus.report["empty_texts"] == 1 and corpus.report["duplicate_texts"] == 1
        frame = projects.load_documents(s, local_user(s), pid)
    assert list(frame["doc_id"]) == ["1", "2", "3", "4"]
    assert list(frame["text"]) == [
        "Taxes will rise next year",
        "New hospital opens",
        "",
        "New hospital opens",
    ]
    assert list(frame["party"]) == ["A", "B", "A", "C"]


def test_a_new_upload_replaces_the_corpus_whole(store: Store) -> None:
    first = read_table(CSV, "a.csv")
    second = read_table(b"text\nonly one row here\n", "b.csv")
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = projects.create_project(s, user, "P").id
        projects.save_corpus(s, user, pid, first, prepare_corpus(first, "text", "id"))
    with store.session() as s:
        user = projects.ensure_user(s)
        projects.save_corpus(s, user, pid, second, prepare_corpus(second, "text"))
    with store.session() as s:
        corpus = projects.get_corpus(s, local_user(s), pid)
        assert corpus.filename == "b.csv" and corpus.ids_generated
        assert s.scalar(select(func.count()).select_from(Document)) == 1


def test_a_failed_save_leaves_nothing_behind(store: Store) -> None:
    table = read_table(CSV, "a.csv")
    prepared = prepare_corpus(table, "text", "id")
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = projects.create_project(s, user, "P").id
    with pytest.raises(RuntimeError), store.session() as s:
        user = projects.ensure_user(s)
        projects.save_corpus(s, user, pid, table, prepared)
        raise RuntimeError("the worker died half-way")
    with store.session() as s:
        assert projects.get_corpus(s, local_user(s), pid) is None
        assert s.scalar(select(func.count()).select_from(Document)) == 0


def test_codebook_saves_are_immutable_numbered_versions(store: Store) -> None:
    cb1 = Codebook.from_dict(CODEBOOK)
    changed = dict(CODEBOOK, instructions="Pick the main topic.")
    cb2 = Codebook.from_dict(changed)
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = projects.create_project(s, user, "P").id
        first = projects.save_codebook(s, user, pid, cb1)
        again = projects.save_codebook(s, user, pid, cb1)
        second = projects.save_codebook(s, user, pid, cb2, note="clearer")
        assert first.created and not again.created and second.created
        assert again.version.id == first.version.id
    with store.session() as s:
        versions = projects.codebook_versions(s, local_user(s), pid)
        assert [v.version for v in versions] == [2, 1]
        assert projects.as_codebook(versions[1]) == cb1
        assert projects.as_codebook(versions[0]) == cb2
        assert versions[0].note == "clearer"
        assert s.scalar(select(func.count()).select_from(CodebookVersion)) == 2


def test_an_invalid_codebook_is_not_saved(store: Store) -> None:
    bad = Codebook(name="x", labels=())
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = projects.create_project(s, user, "P").id
    with pytest.raises(CodebookError), store.session() as s:
        user = projects.ensure_user(s)
        projects.save_codebook(s, user, pid, bad)
    with store.session() as s:
        assert projects.latest_codebook(s, local_user(s), pid) is None


def test_demo_project_is_created_once_and_can_be_recreated(store: Store) -> None:
    with store.session() as s:
        user = projects.ensure_user(s)
        project = demo.ensure_demo_project(s, user)
        pid = project.id
        assert project.is_demo
        assert demo.ensure_demo_project(s, user).id == pid
        corpus = projects.get_corpus(s, local_user(s), pid)
        assert corpus.row_count >= 300
        steps = projects.steps_done(s, local_user(s), pid)
        assert steps["Data"] and steps["Codebook"] and not steps["LLM labels"]
        cb = projects.as_codebook(projects.latest_codebook(s, local_user(s), pid))
        assert len(cb.labels) >= 3
        edited = Codebook.from_dict(dict(cb.to_dict(), instructions="Edited in the demo."))
        projects.save_codebook(s, user, pid, edited)
        assert projects.latest_codebook(s, local_user(s), pid).version == 2
    with store.session() as s:
        user = projects.ensure_user(s)
        new = demo.ensure_demo_project(s, user, recreate=True)
        assert projects.get_corpus(s, local_user(s), new.id).row_count == corpus.row_count
        assert [v.version for v in projects.codebook_versions(s, local_user(s), new.id)] == [1]
        assert len(projects.list_projects(s, user)) == 1


def test_deleting_a_project_removes_its_documents(store: Store) -> None:
    table = read_table(CSV, "a.csv")
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = projects.create_project(s, user, "P").id
        projects.save_corpus(s, user, pid, table, prepare_corpus(table, "text", "id"))
        projects.save_codebook(s, user, pid, Codebook.from_dict(CODEBOOK))
    with store.session() as s:
        user = projects.ensure_user(s)
        projects.delete_project(s, user, pid)
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Document)) == 0
        assert s.scalar(select(func.count()).select_from(CodebookVersion)) == 0
