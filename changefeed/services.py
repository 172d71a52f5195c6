"""Change-feed writes, always inside the transaction of the change they record."""

from __future__ import annotations

from django.db import connection, transaction
from django.utils import timezone

from changefeed.models import ChangeFeedEntry

# Any constant shared by every writer; names the advisory lock below.
_FEED_LOCK_ID = 0x44434D46  # "DCMF"


def changefeed_append(*, entries: list[ChangeFeedEntry]) -> None:
    """Append entries as the last step of the caller's transaction.

    Readers page by `sequence > last_seen`, so a sequence must never become visible after a
    higher one. On PostgreSQL two transactions can take sequences 5 and 6 and commit 6
    first; a poller would then skip 5 for ever. The transaction-scoped advisory lock makes
    writers take sequences in turn and hold them until commit, so sequence order is commit
    order. It is taken last, so the serialised stretch is only this insert and the commit.
    SQLite serialises writers for the whole transaction already.
    """
    if not entries:
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("changefeed_append must run inside the change's transaction")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_FEED_LOCK_ID])
    now = timezone.now()
    for entry in entries:
        entry.timestamp = now
    ChangeFeedEntry.objects.bulk_create(entries)
