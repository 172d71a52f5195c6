"""A study's counters, one rule for every writer: recounted from its series rows as they stand.

NumberOfStudyRelatedSeries counts the series holding a visible instance, NumberOfStudyRelated-
Instances sums the series' counters and ModalitiesInStudy lists those series' distinct Modality
values by code point. The store (`store_rows.study_update`) and the delete both set them with
`study_counters_sql`, after they brought the series counters up to date in the same transaction.
The statement needs no earlier result, so the store can send it with the rest of its commit at once
(`dicomsvc.sqlbatch`). A series counts its CREATED instances: the store adds the ones it flipped,
the delete recounts (`series_counters_refresh`).
"""

from __future__ import annotations

import datetime as dt

from django.db import connection

from dicomsvc.sqlbatch import Statement
from studies.models import Instance, InstanceStatus, Series, Study

STUDY = Study._meta.db_table
SERIES = Series._meta.db_table
INSTANCE = Instance._meta.db_table


def _modalities_sql() -> str:
    """ModalitiesInStudy of study %s from its series rows: distinct, sorted by code point."""
    distinct = (
        f"SELECT DISTINCT modality AS m FROM {SERIES} WHERE study_id = %s AND num_instances > 0 AND modality <> ''"
    )
    if connection.vendor == "postgresql":
        return f"(SELECT COALESCE(string_agg(d.m, '\\' ORDER BY d.m COLLATE \"C\"), '') FROM ({distinct}) d)"
    # SQLite concatenates in the order rows arrive; its default collation is by code point.
    return f"(SELECT COALESCE(group_concat(d.m, '\\'), '') FROM ({distinct} ORDER BY m) d)"


def study_counters_sql(*, study_id: int) -> tuple[str, list[object]]:
    """The SET assignments of a study's counters and ModalitiesInStudy, and their parameters."""
    sql = (
        f"num_instances = (SELECT COALESCE(SUM(num_instances), 0) FROM {SERIES} WHERE study_id = %s), "
        f"num_series = (SELECT COUNT(*) FROM {SERIES} WHERE study_id = %s AND num_instances > 0), "
        f"modalities_in_study = {_modalities_sql()}"
    )
    return sql, [study_id, study_id, study_id]


def study_counters_refresh(*, study_id: int, now: dt.datetime) -> Statement:
    """Recount a study from its series rows (run after `series_counters_refresh`)."""
    counters, params = study_counters_sql(study_id=study_id)
    sql = f"UPDATE {STUDY} SET {counters}, updated_at = %s WHERE id = %s"
    return sql, [*params, connection.ops.adapt_datetimefield_value(now), study_id]


def series_counters_refresh(*, study_id: int, now: dt.datetime) -> Statement:
    """Recount each series of a study from its CREATED instance rows; touch only the ones that changed."""
    count = f"(SELECT COUNT(*) FROM {INSTANCE} i WHERE i.series_id = {SERIES}.id AND i.status = %s)"
    sql = (
        f"UPDATE {SERIES} SET num_instances = {count}, updated_at = %s "
        f"WHERE study_id = %s AND num_instances <> {count}"
    )
    created = int(InstanceStatus.CREATED)
    return sql, [created, connection.ops.adapt_datetimefield_value(now), study_id, created]
