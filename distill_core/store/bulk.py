"""Bulk writes: many rows in one driver-level statement (answers, run results, predictions)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from distill_core.store.limits import check_rows

_sql_cache: dict[str, tuple[str, list]] = {}


def insert_many(session: Session, table, rows: list[dict], conflict: tuple[str, ...] = ()) -> None:
    """One driver-level ``executemany`` with the columns' own bind processors: the rows the ORM
    would write, with far less Python work per row (this runs beside a busy event loop).
    With ``conflict`` columns, a row whose key exists replaces the stored one."""
    if not rows:
        return
    check_rows(table, rows)  # exec_driver_sql passes no statement event
    connection = session.connection()
    dialect = connection.dialect
    columns = list(rows[0])
    cache_key = f"{dialect.name}:{table.name}:{','.join(columns)}:{','.join(conflict)}"
    if cache_key not in _sql_cache:
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        values, processors = [], []
        for c in columns:
            type_ = table.c[c].type.dialect_impl(dialect)
            processors.append(type_.bind_processor(dialect))
            is_json = "JSON" in type(type_).__name__.upper()
            values.append(marker + ("::jsonb" if dialect.name == "postgresql" and is_json else ""))
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(values)})"
        if conflict:
            updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in conflict)
            sql += f" ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {updates}"
        _sql_cache[cache_key] = (sql, processors)
    sql, processors = _sql_cache[cache_key]
    params = [
        tuple(p(row[c]) if p else row[c] for c, p in zip(columns, processors, strict=True))
        for row in rows
    ]
    connection.exec_driver_sql(sql, params)
