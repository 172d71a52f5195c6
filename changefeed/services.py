"""Change-feed writes, always inside the transaction of the change they record."""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from changefeed.models import ChangeFeedEntry

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

    The lock is taken last, so the serialised stretch is only this insert and the
    commit. SQLite (IMMEDIATE transactions) serialises writers for the whole transaction
    already.
    """
    if not entries:
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("changefeed_append must run inside the change's transaction")
    table = ChangeFeedEntry._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_FEED_LOCK_ID])
        # Read after the lock: under READ COMMITTED this statement sees the previous writer's row.
        cursor.execute(f"SELECT MAX(timestamp) FROM {table}")
        newest = _as_datetime(cursor.fetchone()[0])
        now = timezone.now()
        if newest is not None and newest > now:
            now = newest
        for entry in entries:
            entry.timestamp = now
        # Plain SQL rather than bulk_create: this runs in every store's commit transaction,
        # and the ORM's statement compilation cost more than the insert itself.
        values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(entries))
        cursor.execute(
            f"INSERT INTO {table} (timestamp, action, partition_id, study_instance_uid, series_instance_uid, "
            f"sop_instance_uid, watermark, original_watermark) VALUES {values}",
            [
                value
                for entry in entries
                for value in (
                    connection.ops.adapt_datetimefield_value(now),
                    int(entry.action),
                    entry.partition_id,
                    entry.study_instance_uid,
                    entry.series_instance_uid,
                    entry.sop_instance_uid,
                    entry.watermark,
                    entry.original_watermark,
                )
            ],
        )


def _as_datetime(value: object) -> dt.datetime | None:
    """A MAX(timestamp) result: a datetime on PostgreSQL, Django's text form on SQLite (UTC)."""
    if value is None or isinstance(value, dt.datetime):
        return value
    parsed = parse_datetime(str(value))
    if parsed is not None and timezone.is_naive(parsed):
        parsed = timezone.make_aware(parsed, dt.UTC)
    return parsed
