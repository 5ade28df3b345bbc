"""Lengths are the store's rules, not the database's: long names, ids and column names and NUL
characters end in the same sentence on SQLite and PostgreSQL, and nothing of the write is kept
(fault injection: before, PostgreSQL raised DataError with the SQL and SQLite kept them)."""

from __future__ import annotations

import pytest
from sqlalchemy import String, Text, func, insert, select, update

from distill_core.codebook import MAX_CODEBOOK_NAME_LENGTH, Codebook, CodebookError, Label
from distill_core.corpus import prepare_corpus, read_table
from distill_core.llm.base import Answer
from distill_core.llm.cache import answer_row
from distill_core.store import (
    CodebookVersion,
    Corpus,
    Document,
    HumanCode,
    LLMResponse,
    Project,
    Store,
    TooLong,
    User,
)
from distill_core.store.answers import StoreAnswerCache
from distill_core.store.bulk import insert_many
from distill_core.store.limits import check_rows, describe, limit_of
from distill_core.store.models import Base
from distill_core.study import projects, validation

pytestmark = pytest.mark.faults


def sentence(exc: BaseException, *fragments: str) -> str:
    message = str(exc)
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message and "INSERT" not in message and "DataError" not in message
    assert message.endswith(".")
    return message


def test_every_text_column_has_a_limit_or_none_by_its_type():
    for table in Base.metadata.sorted_tables:
        for column in table.c:
            if isinstance(column.type, String) and not isinstance(column.type, Text):
                assert column.type.length, f"{table.name}.{column.name} has no length"
                assert limit_of(table, column.key) == column.type.length
            if isinstance(column.type, Text):
                assert limit_of(table, column.key) is None


def test_the_codebook_name_limit_is_the_stores():
    assert limit_of(CodebookVersion.__table__, "name") == MAX_CODEBOOK_NAME_LENGTH
    book = Codebook(
        name="n" * 501, instructions="", labels=(Label("a", ""), Label("b", "")), examples=()
    )
    with pytest.raises(CodebookError) as info:
        book.validate()
    assert "501 characters long, over the limit of 500" in str(info.value)


def test_a_long_project_name_is_one_sentence_and_nothing_is_kept(store: Store):
    with pytest.raises(TooLong) as info, store.session() as s:
        user = projects.ensure_user(s)
        projects.create_project(s, user, "P" * 201)
    sentence(info.value, "A project name has 201 characters", "the most is 200")
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Project)) == 0
        user = projects.ensure_user(s)
        assert projects.create_project(s, user, "P" * 200).name == "P" * 200  # the limit holds


def _corpus_csv(id_header: str = "id", text_header: str = "text", long_id_row: int | None = None):
    rows = [f"d{i}" for i in range(5)]
    if long_id_row is not None:
        rows[long_id_row] = "x" * 501
    body = "".join(f"{d},text {i}\n" for i, d in enumerate(rows))
    return read_table(f"{id_header},{text_header}\n{body}".encode(), "c.csv")


@pytest.mark.parametrize(
    ("table_kwargs", "fragment"),
    [
        ({"long_id_row": 3}, "An id (row 4) has 501 characters"),
        ({"text_header": "t" * 501}, "The text column's name has 501 characters"),
        ({"id_header": "i" * 501}, "The id column's name has 501 characters"),
    ],
)
def test_long_ids_and_column_names_are_refused_alike(store: Store, table_kwargs, fragment):
    table = _corpus_csv(**table_kwargs)
    text_column = table_kwargs.get("text_header", "text")
    id_column = table_kwargs.get("id_header", "id")
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = projects.create_project(s, user, "C").id
    with pytest.raises(TooLong) as info, store.session() as s:
        user = projects.ensure_user(s)
        prepared = prepare_corpus(table, text_column, id_column)
        projects.save_corpus(s, user, pid, table, prepared)
    sentence(info.value, fragment, "the most is 500")
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(Corpus)) == 0
        assert s.scalar(select(func.count()).select_from(Document)) == 0


def test_a_long_coder_name_is_refused_alike(store: Store):
    table = _corpus_csv()
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = projects.create_project(s, user, "K").id
        projects.save_corpus(s, user, pid, table, prepare_corpus(table, "text", "id"))
    with pytest.raises(TooLong) as info, store.session() as s:
        validation.save_code(s, projects.ensure_user(s), pid, "d1", "c" * 201, "a")
    sentence(info.value, "A coder's name has 201 characters", "the most is 200")
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(HumanCode)) == 0


def test_a_nul_in_a_text_is_refused_alike(store: Store):
    jsonl = b'{"id": 1, "text": "fine"}\n{"id": 2, "text": "bad \\u0000 text"}\n'
    table = read_table(jsonl, "n.jsonl")  # a CSV with NUL is refused as binary already
    with store.session() as s:
        user = projects.ensure_user(s)
        pid = projects.create_project(s, user, "N").id
    with pytest.raises(TooLong) as info, store.session() as s:
        projects.save_corpus(
            s, projects.ensure_user(s), pid, table, prepare_corpus(table, "text", "id")
        )
    sentence(info.value, "A text (row 2) contains a NUL character")


def test_core_updates_and_inserts_are_checked_too(store: Store):
    with store.session() as s:
        s.execute(insert(User).values(username="ok"))
    with pytest.raises(TooLong) as info, store.session() as s:
        s.execute(update(User).where(User.username == "ok").values(display_name="d" * 201))
    sentence(info.value, "A display name has 201 characters")
    with pytest.raises(TooLong), store.session() as s:
        s.execute(insert(User), [{"username": "a"}, {"username": "u" * 201}])
    with pytest.raises(TooLong), store.session() as s:
        insert_many(s, User.__table__, [{"username": "b", "display_name": "x" * 300}])
    with store.session() as s:
        assert s.scalars(select(User.username)).all() == ["ok"]


def test_a_paid_answer_is_kept_even_when_it_does_not_fit(store: Store):
    """An LLM's raw answer with a NUL and an over-long label is stored (made to fit), never
    refused: it was paid for."""
    cache = StoreAnswerCache(store)
    answer = Answer(label="L" * 300, status="invalid", raw="\x00" * 3 + "answer")
    row = answer_row("k" * 64, "h" * 64, 0, "openai", "m", answer)
    cache.update([row])
    with store.session() as s:
        stored = s.scalars(select(LLMResponse)).one()
    assert stored.raw == "\ufffd" * 3 + "answer"
    assert len(stored.label) == 200 and stored.label.endswith("…")


def test_a_sentence_never_quotes_a_url():
    with pytest.raises(TooLong) as info:
        check_rows(
            Base.metadata.tables["project_endpoints"], {"base_url": "http://h/?k=" + "s" * 1000}
        )
    assert "?k=" not in str(info.value) and "An endpoint's URL" in str(info.value)
    assert describe("label_runs", "scope") == "The scope of a label run"
