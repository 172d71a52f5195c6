"""Watermarks: globally unique, increasing version numbers for instance blobs."""

from __future__ import annotations

from django.db import connection, transaction

from studies.models import WatermarkSequence


def watermark_sql() -> str | None:
    """An SQL expression drawing one watermark inside another statement, where the database has one."""
    if connection.vendor == "postgresql":
        return f"nextval(pg_get_serial_sequence('{WatermarkSequence._meta.db_table}', 'id'))"
    return None


def watermarks_allocate(*, count: int = 1) -> list[int]:
    """`count` fresh watermarks, each used once; never reused even after a rollback elsewhere."""
    if connection.vendor == "postgresql":
        table = WatermarkSequence._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %s)",
                [count],
            )
            return [row[0] for row in cursor.fetchall()]
    # SQLite: AUTOINCREMENT never reuses an id, even once its row is deleted.
    with transaction.atomic():
        rows = WatermarkSequence.objects.bulk_create([WatermarkSequence() for _ in range(count)])
        ids = [row.id for row in rows]
        WatermarkSequence.objects.filter(id__in=ids).delete()
    return ids
