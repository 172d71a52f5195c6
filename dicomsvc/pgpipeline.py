"""Statements sent to PostgreSQL as one libpq pipeline, below psycopg's cursors.

Why: psycopg's cursor costs ~0.1 ms of Python per statement even in a pipeline (a cursor,
its query conversion, a wait on the socket and a round of result processing each), and a
one-instance STOW runs ten statements: over a millisecond per request, a tenth of its CPU.
Here every statement of a batch is handed to libpq at once, followed by one sync, and the
socket is waited on only until the sync's result comes back. Values are adapted to and from
PostgreSQL by psycopg's own `Transformer`, so parameters and rows are exactly what a psycopg
cursor would send and return; errors are psycopg's exceptions, for Django to translate.

Statements are prepared (parsed and planned once per connection) when `prepare` is true:
on pooled connections, which outlive the request. The SQL uses `%s` placeholders only
(`pipeline_supported` says when psycopg's cursors must be used instead).
"""

from __future__ import annotations

import select
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import errors, pq
from psycopg.adapt import PyFormat, Transformer

Rows = list[tuple[Any, ...]]

_OK = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)

# SQL text -> ($n-numbered query, parameter count); (query, parameter types) -> statement name.
_queries: dict[str, tuple[bytes, int]] = {}
_names: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
_names_lock = threading.Lock()
# Statement names prepared on each connection (dropped with the connection).
_prepared: weakref.WeakKeyDictionary[psycopg.Connection[Any], set[bytes]] = weakref.WeakKeyDictionary()


def pipeline_supported(raw: psycopg.Connection[Any], statements: Sequence[tuple[str, Sequence[Any]]]) -> bool:
    """Whether `pipeline_run` can stand in for psycopg's cursors: a plain BEGIN must be what
    psycopg would start a transaction with, and the SQL must hold no `%` but placeholders."""
    return (
        pq.__build_version__ >= 140000
        and raw.isolation_level is None
        and raw.read_only is None
        and raw.deferrable is None
        and not raw._pipeline  # noqa: SLF001  (inside psycopg's own pipeline block: leave it to psycopg)
        and all(_query(sql) is not None for sql, _params in statements)
    )


def _query(sql: str) -> tuple[bytes, int] | None:
    """The query with $n placeholders and their count; None if it has any other `%`."""
    found = _queries.get(sql)
    if found is None:
        pieces = sql.split("%s")
        if any("%" in piece for piece in pieces):
            return None
        numbered = pieces[0] + "".join(f"${n}{piece}" for n, piece in enumerate(pieces[1:], 1))
        found = _queries[sql] = (numbered.encode(), len(pieces) - 1)
    return found


def _name(query: bytes, types: tuple[int, ...]) -> bytes:
    key = (query, types)
    name = _names.get(key)
    if name is None:
        with _names_lock:
            name = _names.setdefault(key, b"dicomsvc_%d" % len(_names))
    return name


def pipeline_run(
    raw: psycopg.Connection[Any], statements: Sequence[tuple[str, Sequence[Any]]], *, prepare: bool
) -> list[Rows]:
    """Run `statements` in order, in the connection's transaction (BEGIN first if psycopg would
    send one); the rows each returned. Raises the first statement error after all have run."""
    pgconn = raw.pgconn
    tx = Transformer(raw)
    prepared = _prepared.setdefault(raw, set()) if prepare else set()
    commands: list[Callable[[], None]] = []
    # What each command's results are: ("begin"), ("prepare", name) or ("query", index).
    kinds: list[tuple[Any, ...]] = []
    if not raw.autocommit and pgconn.transaction_status == pq.TransactionStatus.IDLE:
        commands.append(lambda: pgconn.send_query_params(b"BEGIN", None))
        kinds.append(("begin",))
    preparing: set[bytes] = set()
    for index, (sql, params) in enumerate(statements):
        found = _query(sql)
        if found is None:
            raise psycopg.ProgrammingError("only %s placeholders are supported here")
        query, count = found
        if count != len(params):
            raise psycopg.ProgrammingError(f"the query has {count} placeholders, {len(params)} parameters were passed")
        values = tx.dump_sequence(params, [PyFormat.AUTO] * count)
        types, formats = tuple(tx.types), list(tx.formats)
        if prepare:
            name = _name(query, types)
            if name not in prepared and name not in preparing:
                commands.append(lambda n=name, q=query, t=types: pgconn.send_prepare(n, q, param_types=t))
                kinds.append(("prepare", name))
                preparing.add(name)
            commands.append(lambda n=name, v=values, f=formats: pgconn.send_query_prepared(n, v, param_formats=f))
        else:
            commands.append(
                lambda q=query, v=values, t=types, f=formats: pgconn.send_query_params(
                    q, v, param_types=t, param_formats=f
                )
            )
        kinds.append(("query", index))

    with raw.lock:
        results = _communicate(pgconn, commands)
    out: list[Rows] = [[] for _ in statements]
    failure: pq.abc.PGresult | None = None
    for kind, result in zip(kinds, results, strict=True):
        status = result.status
        if status not in _OK:
            if failure is None and status != pq.ExecStatus.PIPELINE_ABORTED:
                failure = result
            continue
        if kind[0] == "prepare":
            prepared.add(kind[1])
        elif kind[0] == "query" and status == pq.ExecStatus.TUPLES_OK:
            tx.set_pgresult(result)
            out[kind[1]] = tx.load_rows(0, result.ntuples, tuple)
    if failure is not None:
        raise errors.error_from_result(failure, encoding=raw.info.encoding)
    return out


def _communicate(pgconn: pq.abc.PGconn, commands: list[Callable[[], None]]) -> list[pq.abc.PGresult]:
    """Send the commands and a sync in pipeline mode; the last result of each command, in order."""
    fd = pgconn.socket
    pgconn.enter_pipeline_mode()
    try:
        for command in commands:
            command()
        pgconn.pipeline_sync()
        while pgconn.flush():  # 1 while libpq still holds unsent data
            readable, _writable, _ = select.select([fd], [fd], [])
            if readable:
                pgconn.consume_input()  # the server may block on its own output meanwhile
        results: list[pq.abc.PGresult] = []
        current: pq.abc.PGresult | None = None
        while True:
            pgconn.consume_input()
            while not pgconn.is_busy():
                result = pgconn.get_result()
                if result is None:
                    if current is None:
                        break  # nothing more until the server sends it
                    results.append(current)
                    current = None
                elif result.status == pq.ExecStatus.PIPELINE_SYNC:
                    return results
                else:
                    current = result
            select.select([fd], [], [])
    finally:
        if pgconn.pipeline_status != pq.PipelineStatus.OFF:
            try:
                pgconn.exit_pipeline_mode()
            except psycopg.OperationalError:
                if pgconn.status == pq.ConnStatus.OK:
                    raise  # otherwise the connection is gone: the error in flight says why
