"""The row statements of the store path, as plain SQL for SQLite and PostgreSQL.

Why not the ORM here: on the 2-core benchmark machine compiling one ORM statement against
these wide models cost ~1 ms, and storing one instance ran a dozen of them (the ORM version
took 25 ms of a 30 ms store). The same statements as SQL cost 0.1-0.3 ms each. Everything
else (creating a study or series, races, clean-up) stays on the ORM.

Every function runs inside the caller's transaction where it says so; none does file I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection

from studies.models import Instance, InstanceStatus, Series, Study

STUDY = Study._meta.db_table
SERIES = Series._meta.db_table
INSTANCE = Instance._meta.db_table


def _placeholders(count: int) -> str:
    return ", ".join(["%s"] * count)


def _lock_clause() -> str:
    # FOR NO KEY UPDATE, not FOR UPDATE: it still serialises committers of one study, but does
    # not conflict with the FOR KEY SHARE that PostgreSQL's foreign-key checks take when a
    # concurrent reservation inserts an instance row; FOR UPDATE deadlocked against those.
    # SQLite has no row locks: its write transactions are serialised as a whole.
    return " FOR NO KEY UPDATE" if connection.features.has_select_for_no_key_update else ""


def _adapt(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, dt.date):
        return connection.ops.adapt_datefield_value(value)
    return value


def series_find(*, partition_id: int, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, int]]:
    """(study UID, series UID) -> (study id, series id) for the pairs that exist."""
    keys = set(keys)
    if not keys:
        return {}
    studies = sorted({study for study, _ in keys})
    series = sorted({one for _, one in keys})
    sql = (
        f"SELECT st.study_instance_uid, se.series_instance_uid, st.id, se.id FROM {SERIES} se "
        f"JOIN {STUDY} st ON st.id = se.study_id WHERE st.partition_id = %s "
        f"AND st.study_instance_uid IN ({_placeholders(len(studies))}) "
        f"AND se.series_instance_uid IN ({_placeholders(len(series))})"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [partition_id, *studies, *series])
        found = {(row[0], row[1]): (row[2], row[3]) for row in cursor.fetchall()}
    return {key: ids for key, ids in found.items() if key in keys}


INSERT_COLUMNS = (
    "partition_id", "study_id", "series_id", "study_instance_uid", "series_instance_uid", "sop_instance_uid",
    "sop_class_uid", "instance_number", "status", "watermark", "transfer_syntax_uid", "file_size",
    "number_of_frames", "frame_index", "metadata", "search_metadata", "created_at", "updated_at",
)  # fmt: skip


def instances_insert(
    *, rows: Sequence[dict[str, Any]], watermark_sql: str | None = None
) -> dict[tuple[str, str, str], tuple[int, int]]:
    """Insert CREATING rows, skipping any whose UIDs exist in the partition.

    Returns (study, series, SOP UID) -> (watermark, new id) for the rows inserted. With
    `watermark_sql` (an SQL expression such as a sequence's nextval) the database assigns
    each row's watermark, saving the statement that would draw them first.
    """
    if not rows:
        return {}
    columns = [c for c in INSERT_COLUMNS if not (watermark_sql and c == "watermark")]
    placeholders = ["%s"] * len(columns) + ([watermark_sql] if watermark_sql else [])
    names = columns + (["watermark"] if watermark_sql else [])
    values = ", ".join([f"({', '.join(placeholders)})"] * len(rows))
    sql = (
        f"INSERT INTO {INSTANCE} ({', '.join(names)}) VALUES {values} "
        "ON CONFLICT (partition_id, study_instance_uid, series_instance_uid, sop_instance_uid) DO NOTHING "
        "RETURNING study_instance_uid, series_instance_uid, sop_instance_uid, watermark, id"
    )
    params = [_adapt(row[column]) for row in rows for column in columns]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(st, se, sop): (watermark, pk) for st, se, sop, watermark, pk in cursor.fetchall()}


@dataclass
class StudyState:
    num_instances: int
    patient_name_search: str
    referring_physician_name_search: str


@dataclass
class SeriesState:
    study_id: int
    num_instances: int
    modality: str


def _lock(table: str, columns: str, ids: Iterable[int]) -> list[tuple[Any, ...]]:
    # In id order, so two committers of overlapping batches never wait on each other in a cycle.
    ids = sorted(set(ids))
    sql = f"SELECT id, {columns} FROM {table} WHERE id IN ({_placeholders(len(ids))}) ORDER BY id{_lock_clause()}"
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        return cursor.fetchall()


def studies_lock(*, ids: Iterable[int]) -> dict[int, StudyState]:
    """Lock the study rows of a commit (before their series)."""
    rows = _lock(STUDY, "num_instances, patient_name_search, referring_physician_name_search", ids)
    return {row[0]: StudyState(*row[1:]) for row in rows}


def series_lock(*, ids: Iterable[int]) -> dict[int, SeriesState]:
    """Lock the series rows of a commit, after their studies'."""
    return {row[0]: SeriesState(*row[1:]) for row in _lock(SERIES, "study_id, num_instances, modality", ids)}


def instances_flip(*, ids: Sequence[int], now: dt.datetime) -> set[int]:
    """CREATING -> CREATED, compare-and-swap: the ids actually flipped (a stale takeover removes rows)."""
    sql = (
        f"UPDATE {INSTANCE} SET status = %s, updated_at = %s "
        f"WHERE id IN ({_placeholders(len(ids))}) AND status = %s RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [InstanceStatus.CREATED, _adapt(now), *ids, InstanceStatus.CREATING])
        return {row[0] for row in cursor.fetchall()}


def _assignments(columns: dict[str, Any]) -> tuple[str, list[Any]]:
    names = sorted(columns)
    return "".join(f", {name} = %s" for name in names), [_adapt(columns[name]) for name in names]


def series_update(*, series_id: int, added: int, columns: dict[str, Any], now: dt.datetime) -> None:
    assignments, params = _assignments(columns)
    sql = f"UPDATE {SERIES} SET num_instances = num_instances + %s, updated_at = %s{assignments} WHERE id = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [added, _adapt(now), *params, series_id])


def study_modalities(*, study_id: int) -> str:
    """ModalitiesInStudy from the series rows as they stand in this transaction."""
    sql = f"SELECT DISTINCT modality FROM {SERIES} WHERE study_id = %s AND num_instances > 0 AND modality <> ''"
    with connection.cursor() as cursor:
        cursor.execute(sql, [study_id])
        return "\\".join(sorted(row[0] for row in cursor.fetchall()))


def study_update(
    *, study_id: int, added: int, new_series: int, modalities: str | None, columns: dict[str, Any], now: dt.datetime
) -> None:
    if modalities is not None:
        columns = {**columns, "modalities_in_study": modalities}
    assignments, params = _assignments(columns)
    sql = (
        f"UPDATE {STUDY} SET num_instances = num_instances + %s, num_series = num_series + %s, "
        f"updated_at = %s{assignments} WHERE id = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [added, new_series, _adapt(now), *params, study_id])
