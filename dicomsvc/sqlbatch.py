"""Running several plain-SQL statements of one transaction in one round trip.

Why: on the hot write path (STOW's commit step) each statement cost ~0.15 ms of Python and
as much of PostgreSQL, mostly per-statement overhead, and the statements of one step do not
depend on each other's results. SQLite runs in process, so there they run one after another.

On PostgreSQL they are sent in one pipeline (one round trip) and, with the connection pool on
(`DATABASE_POOL_MAX_SIZE` > 0, see `dicomsvc.env`), as prepared statements, each parsed and
planned once per pooled connection and from then on only bound and executed. Parsing and
planning were half of PostgreSQL's CPU on the store path, whose statements are short look-ups
and inserts. Django's cursors bind on the client and plan every time, so these run on Django's
psycopg connection directly, inside Django's transaction and with its error translation: as one
libpq pipeline (`dicomsvc.pgpipeline`), or on psycopg cursors where that does not apply.
PgBouncer in front: see `DATABASE_POOL_MAX_SIZE` in the README.

`statements_run` runs inside the caller's transaction; `statement_execute` runs one statement,
in a transaction or on its own (then it commits by itself).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, transaction

Statement = tuple[str, Sequence[Any]]
Rows = list[tuple[Any, ...]]


def _postgres_run(statements: Sequence[Statement]) -> list[Rows]:
    import psycopg  # only installed where PostgreSQL is used

    from dicomsvc.pgpipeline import pipeline_run, pipeline_supported

    connection.ensure_connection()
    raw = connection.connection
    if pipeline_supported(raw, statements):
        with connection.wrap_database_errors:
            return pipeline_run(raw, statements, prepare="pool" in connection.settings_dict.get("OPTIONS", {}))
    cursors = [psycopg.Cursor(raw) for _ in statements]
    try:
        with connection.wrap_database_errors:
            if len(statements) == 1:
                cursors[0].execute(*statements[0])
            else:
                with raw.pipeline():
                    for cursor, (sql, params) in zip(cursors, statements, strict=True):
                        cursor.execute(sql, params)
            return [cursor.fetchall() if cursor.description is not None else [] for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()


def _run(statements: Sequence[Statement]) -> list[Rows]:
    if connection.vendor == "postgresql":
        return _postgres_run(statements)
    results: list[Rows] = []
    with connection.cursor() as cursor:
        for sql, params in statements:
            cursor.execute(sql, params)
            results.append(cursor.fetchall() if cursor.description is not None else [])
    return results


def statements_run(statements: Sequence[Statement]) -> list[Rows]:
    """Run `statements` in order inside the caller's transaction; the rows each returned."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("statements_run must run inside a transaction")
    return _run(statements)


def statement_execute(sql: str, params: Sequence[Any]) -> Rows:
    """Run one statement (prepared on PostgreSQL); the rows it returned."""
    return _run([(sql, params)])[0]
