"""Lengths are the store's rules, not the database's: every write is checked here, so a value
too long for its column (or holding a NUL character, which PostgreSQL refuses and SQLite keeps)
ends in one sentence, identically on SQLite and PostgreSQL, instead of a ``DataError`` with the
SQL on PostgreSQL only and silent acceptance on SQLite.

:func:`install` hooks :func:`check_statement` into an engine's ``before_execute``: ORM flushes
and Core ``insert``/``update`` statements alike pass through it; :func:`check_rows` is for the
driver-level bulk writes (``store.bulk``) that bypass it. Text columns without a length
(``Text``) have no limit but still refuse NUL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Engine, String, Table, event
from sqlalchemy.sql.dml import Insert, Update
from sqlalchemy.sql.elements import BindParameter

__all__ = [
    "TooLong",
    "check_rows",
    "check_statement",
    "describe",
    "fit",
    "install",
    "limit_of",
]


class TooLong(ValueError):
    """A value the store does not keep (too long, or with a NUL); str(e) is one sentence."""


#: What a column holds, in words, by column name (then by ``table.column`` where it differs).
_WHAT = {
    "doc_id": "An id",
    "coder": "A coder's name",
    "adjudicator": "A coder's name",
    "reassigned_from": "A coder's name",
    "label": "A label",
    "first_label": "A label",
    "blind_label": "A label",
    "username": "A user name",
    "display_name": "A display name",
    "email": "An e-mail address",
    "filename": "A file name",
    "text_column": "The text column's name",
    "id_column": "The id column's name",
    "model": "A model name",
    "base_model": "A base model's name or folder",
    "path": "A model's folder",
    "base_url": "An endpoint's URL",
    "source": "A code's source",
    "text": "A text",
    "note": "A note",
    "reason": "A reason",
    "description": "A description",
    "projects.name": "A project name",
    "codebook_versions.name": "A codebook name",
    "project_endpoints.name": "An endpoint's name",
}
#: Columns whose values are never quoted back (a URL may carry credentials).
_NOT_QUOTED = {"base_url", "password_hash", "key_encrypted"}


def describe(table: str, column: str) -> str:
    """What ``table.column`` holds, for a sentence ("A project name")."""
    return (
        _WHAT.get(f"{table}.{column}")
        or _WHAT.get(column)
        or (f"The {column.replace('_', ' ')} of a {table.rstrip('s').replace('_', ' ')}")
    )


def limit_of(table: Table, column: str) -> int | None:
    """The most characters ``table.column`` keeps (None: no limit)."""
    type_ = table.c[column].type
    return type_.length if isinstance(type_, String) else None


def _check(table: Table, column: str, value: str, row: int | None) -> None:
    what = describe(table.name, column)
    where = f" (row {row + 1:,})" if row is not None else ""
    shown = "" if column in _NOT_QUOTED else f" ('{' '.join(value[:40].split())}…')"
    if "\x00" in value:
        raise TooLong(
            f"{what}{where} contains a NUL character{shown}, which the database cannot keep; "
            "remove it and try again."
        )
    limit = limit_of(table, column)
    if limit is not None and len(value) > limit:
        raise TooLong(
            f"{what}{where} has {len(value):,} characters{shown}; the most is {limit:,}, so "
            "shorten it and try again."
        )


def _string_columns(table: Table) -> dict[str, int | None]:
    cached = table.info.get("_distill_strings")
    if cached is None:
        cached = {c.key: limit_of(table, c.key) for c in table.c if isinstance(c.type, String)}
        table.info["_distill_strings"] = cached
    return cached


def check_rows(table: Table, rows: Iterable[Mapping[str, Any]]) -> None:
    """Raise :class:`TooLong` for the first string in ``rows`` (dicts of column keys, or one
    dict) that is longer than its column keeps or holds a NUL; with several rows the sentence
    names the row (counting from 1)."""
    columns = _string_columns(table)
    rows = [rows] if isinstance(rows, Mapping) else list(rows)
    numbered = len(rows) > 1
    for i, row in enumerate(rows):
        for key, value in row.items():
            if key not in columns or not isinstance(value, str):
                continue
            limit = columns[key]
            if (limit is not None and len(value) > limit) or "\x00" in value:
                _check(table, key, value, i if numbered else None)


def fit(table: Table, row: Mapping[str, Any]) -> dict[str, Any]:
    """``row`` with every string made storable: NUL shown as U+FFFD and cut to its column's
    length with a closing "…". For what a machine wrote and was paid for (an LLM's answer),
    which is kept rather than refused; what a person typed goes through :func:`check_rows`."""
    columns = _string_columns(table)
    out = dict(row)
    for key, value in row.items():
        if key not in columns or not isinstance(value, str):
            continue
        if "\x00" in value:
            value = value.replace("\x00", "\ufffd")
        limit = columns[key]
        if limit is not None and len(value) > limit:
            value = value[: limit - 1] + "…"
        out[key] = value
    return out


def check_statement(statement: Any, multiparams: Any, params: Any) -> None:
    """Check an ``insert``/``update`` about to run: its parameters and its own ``values()``."""
    if not isinstance(statement, Insert | Update):
        return
    table = statement.table
    if not isinstance(table, Table):
        return
    if multiparams:
        check_rows(table, [p for p in multiparams if isinstance(p, Mapping)])
    if params:
        check_rows(table, params)
    values = getattr(statement, "_values", None)
    if values:
        check_rows(table, _plain(values))
    for multi in getattr(statement, "_multi_values", ()) or ():
        check_rows(table, [_plain(v) for v in multi if isinstance(v, Mapping)])


def _plain(values: Mapping) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        name = getattr(key, "key", key)
        out[name] = value.value if isinstance(value, BindParameter) else value
    return out


def install(engine: Engine) -> None:
    """Check every insert and update that runs on ``engine`` (see :func:`check_statement`)."""

    @event.listens_for(engine, "before_execute")
    def _before_execute(conn, statement, multiparams, params, execution_options):
        check_statement(statement, multiparams, params)
