"""Change-feed writes, always inside the transaction of the change they record."""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone

from changefeed.models import ChangeFeedEntry
from dicomsvc.sqlbatch import Statement, statements_run

# Any constant shared by every writer; names the advisory lock below.
_FEED_LOCK_ID = 0x44434D46  # "DCMF"


def changefeed_append(*, entries: list[ChangeFeedEntry]) -> None:
    """Append entries as the last step of the caller's transaction.

    Readers page by `sequence > last_seen` (v1) or by position in (timestamp, sequence)
    order (v2), so an entry must never become visible after one that sorts later.

    Why that needs a lock on PostgreSQL: `sequence` comes from a sequence object, handed
    out at INSERT time and never rolled back, while visibility comes at COMMIT. Without
    serialisation transaction A can take 5, B take 6 and commit first; a poller that
    reads 6 and continues from `offset=6` would never see 5.

    How the lock closes the gap: `pg_advisory_xact_lock` is held from here until the
    transaction ends, and PostgreSQL releases transaction locks only after the commit
    is visible to other sessions (CommitTransaction marks the transaction committed in
    the proc array before it releases locks). So the next writer cannot draw its
    sequence until every lower sequence is either visible or rolled back for good; a
    rolled-back sequence is a gap that is never filled, which readers may skip safely.
    Every writer of the table must come through here (tests that bulk_create rows do
    so with no concurrent writer).

    The timestamp is taken under the same lock and never goes below the newest stored
    one, so (timestamp, sequence) order equals sequence order even if clocks of two app
    servers disagree or the clock steps back: v2 readers get the same guarantee.

    The lock is taken after every other lock of the transaction (one order for all writers),
    so the serialised stretch is short: here only this insert and the commit; the store's
    commit takes it in its second statement (`changefeed_lock_statement`). SQLite (IMMEDIATE
    transactions) serialises writers for the whole transaction already.
    """
    if not entries:
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("changefeed_append must run inside the change's transaction")
    statements_run(changefeed_statements(entries=entries, now=timezone.now()))


def changefeed_lock_statement() -> Statement | None:
    """The statement that takes the feed's lock (PostgreSQL; None elsewhere), for a caller that
    takes it before `changefeed_statements(locked=True)`, in an earlier statement of the same
    transaction, once it holds every other lock it will take (one order for all writers)."""
    return ("SELECT pg_advisory_xact_lock(%s)", [_FEED_LOCK_ID]) if connection.vendor == "postgresql" else None


def changefeed_statements(*, entries: list[ChangeFeedEntry], now: dt.datetime, locked: bool = False) -> list[Statement]:
    """The statements of `changefeed_append`, for callers that send them along with their own
    (`dicomsvc.sqlbatch`); they must be the last of the transaction, see above. `locked`: the
    caller took the lock already (`changefeed_lock_statement`).

    The timestamp is `now`, or the newest stored one if that is later: read by a statement
    that runs after the lock, so under READ COMMITTED it sees the previous writer's row.
    """
    if not entries:
        return []
    table = ChangeFeedEntry._meta.db_table
    stamp = connection.ops.adapt_datetimefield_value(now)
    newest = f"(SELECT MAX(timestamp) FROM {table})"
    if connection.vendor == "postgresql":
        lock = changefeed_lock_statement()
        statements: list[Statement] = [] if locked or lock is None else [lock]
        timestamp, stamp_params = f"GREATEST(%s, {newest})", [stamp]  # GREATEST skips NULL
    else:  # Django keeps datetimes as ISO text on SQLite, which compares in time order
        statements = []
        timestamp, stamp_params = f"MAX(%s, COALESCE({newest}, %s))", [stamp, stamp]
    # VALUES rather than one INSERT per entry; the casts type a column that holds only NULLs.
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(entries))
    sql = (
        f"INSERT INTO {table} (timestamp, action, partition_id, study_instance_uid, series_instance_uid, "
        f"sop_instance_uid, watermark, original_watermark) "
        f"SELECT {timestamp}, v.column1, v.column2, v.column3, v.column4, v.column5, "
        f"CAST(v.column6 AS BIGINT), CAST(v.column7 AS BIGINT) FROM (VALUES {values}) v"
    )
    params = [
        value
        for entry in entries
        for value in (
            int(entry.action),
            entry.partition_id,
            entry.study_instance_uid,
            entry.series_instance_uid,
            entry.sop_instance_uid,
            entry.watermark,
            entry.original_watermark,
        )
    ]
    statements.append((sql, [*stamp_params, *params]))
    return statements
