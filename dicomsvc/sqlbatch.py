"""Running several plain-SQL statements of one transaction in one round trip.

Why: on the hot write path (STOW's commit step) the statements of one step do not depend on
each other's results, and most of their cost is per statement and per round trip. SQLite runs
in process, so there they run one after another.

On PostgreSQL they run on Django's psycopg connection (`connection.connection`), inside
Django's transaction and with Django's error translation, in psycopg's pipeline mode (one
round trip for the batch). With the connection pool on (`DATABASE_POOL_MAX_SIZE` > 0, see
`dicomsvc.env`) they are psycopg prepared statements: parsed and planned once per pooled
connection, then only bound and executed; psycopg keeps at most `prepared_max` of them per
connection and deallocates the least recently used. Django's own cursors bind on the client
and are never prepared. PgBouncer in front: see `DATABASE_POOL_MAX_SIZE` in the README.

`statements_run` runs inside the caller's transaction; `statement_execute` runs one statement,
in a transaction or on its own (then it commits by itself). `statements_joined` makes one
statement of several on PostgreSQL, where each statement costs the client far more than a row.
`statements_commit` runs a transaction of its own in one round trip on PostgreSQL: BEGIN, the
statements and COMMIT in one pipeline, instead of Django's `atomic`, whose BEGIN and COMMIT
cost the client a round trip and a transaction state change each.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction

Statement = tuple[str, Sequence[Any]]
Rows = list[tuple[Any, ...]]

# What `guard` makes PostgreSQL raise: division_by_zero, which no statement sent here raises otherwise.
_GUARD_SQLSTATE = "22012"


class GuardFailed(Exception):
    """A statement's `guard` did not hold, so `statements_commit` rolled its transaction back."""


def guard(condition: str) -> str:
    """A WHERE condition that fails its statement, and so its transaction, unless `condition` holds.

    For `statements_commit`, which cannot look at a result before its COMMIT: the statement
    checks what the caller would have checked. Without row references, PostgreSQL evaluates it
    once, before the statement returns a row. PostgreSQL only: SQLite's 1 / 0 is NULL."""
    return f"1 / CAST(({condition}) AS integer) = 1"


def _rows(cursor: Any) -> Rows:
    # The result's status, not `description`, which builds a column object per column.
    from psycopg import pq

    result = cursor.pgresult
    return cursor.fetchall() if result is not None and result.status == pq.ExecStatus.TUPLES_OK else []


def _postgres_connection() -> tuple[Any, Any, bool]:
    """Django's connection, its psycopg connection, and whether statements are prepared."""
    db = connections[DEFAULT_DB_ALIAS]  # one look-up: each `connection.x` goes through a proxy
    db.ensure_connection()
    # Prepared statements outlive the request only on pooled connections; without the pool
    # (e.g. behind PgBouncer in transaction mode) nothing is prepared.
    return db, db.connection, "pool" in db.settings_dict.get("OPTIONS", {})


def _postgres_run(statements: Sequence[Statement]) -> list[Rows]:
    import psycopg  # only installed where PostgreSQL is used

    db, raw, prepare = _postgres_connection()
    # psycopg's own cursor class: Django's cursor factory binds on the client and cannot prepare.
    cursors = [psycopg.Cursor(raw) for _ in statements]
    try:
        with db.wrap_database_errors:
            if len(statements) == 1:
                cursors[0].execute(*statements[0], prepare=prepare)
            else:
                with raw.pipeline():
                    for cursor, (sql, params) in zip(cursors, statements, strict=True):
                        cursor.execute(sql, params, prepare=prepare)
            return [_rows(cursor) for cursor in cursors]
    finally:
        for cursor in cursors:
            cursor.close()


def commit_in_one_round_trip() -> bool:
    """Whether `statements_commit` can run here: PostgreSQL, outside any transaction."""
    db = connections[DEFAULT_DB_ALIAS]
    return db.vendor == "postgresql" and not db.in_atomic_block


def statements_commit(statements: Sequence[Statement]) -> None:
    """Run `statements` as a transaction of their own, committed.

    BEGIN, the statements and COMMIT go to PostgreSQL as one pipeline: one round trip and one
    wait for them all. No statement's rows come back: what the caller would have checked in
    them, a statement checks itself (`guard`). A failing statement makes PostgreSQL skip the
    rest of the pipeline, the COMMIT included; the transaction is then rolled back here and the
    error raised (GuardFailed when it was a `guard`). The connection is left outside any
    transaction, where Django's autocommit mode expects it. Only where `commit_in_one_round_trip()`.
    """
    import psycopg

    if not commit_in_one_round_trip():
        raise RuntimeError("statements_commit runs on PostgreSQL outside a transaction only")
    db, raw, prepare = _postgres_connection()
    # One cursor for them all: in a pipeline each result replaces the one before, unread.
    with psycopg.Cursor(raw) as cursor, db.wrap_database_errors:
        try:
            with raw.pipeline():
                cursor.execute("BEGIN", prepare=False)
                for sql, params in statements:
                    cursor.execute(sql, params, prepare=prepare)
                cursor.execute("COMMIT", prepare=False)
        except BaseException as exc:
            if not raw.closed and raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                raw.execute("ROLLBACK")
            if isinstance(exc, psycopg.Error) and exc.sqlstate == _GUARD_SQLSTATE:
                raise GuardFailed(str(exc)) from exc
            raise


# Where a statement joined by `statements_joined` waits for the first one: at the end of its WHERE
# clause. Run on its own, the statement carries it as a comment.
AFTER_FIRST = " /* after the first */"


def statements_joined(statements: Sequence[Statement], *, first_rows: int | None = None) -> list[Statement]:
    """`statements` as one statement on PostgreSQL, which costs the client one instead of several.

    All but the last become WITH queries, the last the main query, whose rows the statement
    returns. PostgreSQL runs data-modifying WITH queries in no set order and on the one snapshot
    taken when the statement starts, so the statements must not read each other's writes, nor
    rows another transaction may commit while the statement waits for a lock (an UPDATE or an
    upsert follows a concurrently changed row to its newest version; a DELETE or a NOT EXISTS
    does not see a row inserted since the snapshot). With `first_rows`, the first statement is
    a SELECT (typically taking row locks) and one that must run after it has AFTER_FIRST in its
    WHERE clause: there it becomes a condition on the first's row count, which PostgreSQL
    computes once, before the statement touches a row, and the statement writes only when the
    first returned `first_rows` rows.

    psycopg caches the parsing of a statement of at most 50 parameters and 4096 characters
    (`psycopg._queries.MAX_CACHED_STATEMENT_*`); a longer one is parsed on every run, which can
    cost more than the statements it saves.

    Elsewhere the statements are returned as they are, to run one after another: SQLite
    serialises write transactions as a whole, so no statement has a lock to wait for.
    """
    if connection.vendor != "postgresql" or len(statements) < 2:
        return list(statements)
    if any(sql.lstrip()[:4].upper() == "WITH" for sql, _params in statements):
        raise ValueError("a joined statement cannot have WITH queries of its own")
    gate = "" if first_rows is None else f" AND (SELECT count(*) FROM q0) = {int(first_rows)}"
    *queries, (main_sql, main_params) = [(sql.replace(AFTER_FIRST, gate), params) for sql, params in statements]
    ctes = ", ".join(f"q{n} AS ({sql})" for n, (sql, _params) in enumerate(queries))
    return [(f"WITH {ctes} {main_sql}", [param for _sql, params in queries for param in params] + list(main_params))]


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
    """Run one statement (prepared on PostgreSQL with the pool); the rows it returned."""
    return _run([(sql, params)])[0]
