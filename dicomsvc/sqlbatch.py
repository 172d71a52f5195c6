"""Running several plain-SQL statements of one transaction in one round trip.

Why: on the hot write paths (STOW's commit step) each statement cost ~0.15 ms of Python and
as much of PostgreSQL mostly in per-statement overhead, and the statements of one step do
not depend on each other's results. Django's psycopg backend binds parameters on the client
(`ClientCursor`), which lets PostgreSQL take many `;`-separated statements in one simple
query: one network round trip, one parse each, results read back in order. SQLite runs in
process, so there they simply run one after another.

Statements are always run inside the caller's transaction: on PostgreSQL a multi-statement
query outside a transaction block would commit at its end, which none of the callers want.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection, transaction

Statement = tuple[str, Sequence[Any]]


def statements_run(statements: Sequence[Statement]) -> list[list[tuple[Any, ...]]]:
    """Run `statements` in order; the rows each returned ([] for one that returns none)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("statements_run must run inside a transaction")
    results: list[list[tuple[Any, ...]]] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and len(statements) > 1:
            cursor.execute(";\n".join(sql for sql, _ in statements), [p for _, params in statements for p in params])
            while True:
                results.append(cursor.fetchall() if cursor.description is not None else [])
                if not cursor.nextset():
                    break
        else:
            for sql, params in statements:
                cursor.execute(sql, params)
                results.append(cursor.fetchall() if cursor.description is not None else [])
    if len(results) != len(statements):
        raise RuntimeError(f"{len(statements)} statements returned {len(results)} results")
    return results
