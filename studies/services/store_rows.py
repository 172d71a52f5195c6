"""The row statements of the store path, as plain SQL for SQLite and PostgreSQL.

Why not the ORM here: compiling an ORM statement against these wide models cost several times
more than running it, and storing one instance ran a dozen of them (docs/benchmarks.md,
"Measured earlier"). Everything else (creating a study or series, races, clean-up) stays on
the ORM.

Every function runs inside the caller's transaction where it says so; none does file I/O.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Sequence
from typing import Any, cast

from django.db import connection
from django.db.models import Field, Model
from django.utils import timezone

from dicomsvc.sqlbatch import AFTER_FIRST, Statement, statement_execute, statements_joined
from studies.models import Instance, InstanceStatus, Series, Study
from studies.services.counters import study_counters_sql

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


def _key_share_clause() -> str:
    """The lock a reservation takes on the study and series rows it inserts under.

    PostgreSQL checks the foreign keys of a new instance or series only at COMMIT (Django's
    constraints are deferred), so without it a delete could choose the rows to drop, the
    reservation commit in between, and the delete then cascade over the reserved row or fail at
    its own COMMIT. FOR KEY SHARE, taken as the rows are read, waits for a delete holding the
    study FOR UPDATE (`studies.services.delete`) and, once it committed, skips the rows it
    removed; it does not conflict with other reservations or the commit step's FOR NO KEY UPDATE.
    PostgreSQL locks a joined row's tables in FROM order: the study comes first, as in the
    delete, or a reservation holding the series would deadlock with a delete holding the study.
    """
    return " FOR KEY SHARE" if connection.features.has_select_for_no_key_update else ""


def _adapt(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return connection.ops.adapt_datetimefield_value(value)
    if isinstance(value, dt.date):
        return connection.ops.adapt_datefield_value(value)
    return value


def series_find(*, partition_id: int, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, int]]:
    """(study UID, series UID) -> (study id, series id) for the pairs that exist, locked (`_key_share_clause`)."""
    keys = set(keys)
    if not keys:
        return {}
    studies = sorted({study for study, _ in keys})
    series = sorted({one for _, one in keys})
    sql = (
        f"SELECT st.study_instance_uid, se.series_instance_uid, st.id, se.id FROM {STUDY} st "
        f"JOIN {SERIES} se ON se.study_id = st.id WHERE st.partition_id = %s "
        f"AND st.study_instance_uid IN ({_placeholders(len(studies))}) "
        f"AND se.series_instance_uid IN ({_placeholders(len(series))}){_key_share_clause()}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [partition_id, *studies, *series])
        found = {(row[0], row[1]): (row[2], row[3]) for row in cursor.fetchall()}
    return {key: ids for key, ids in found.items() if key in keys}


_PER_ROW = object()


@functools.cache
def _constant_default(field: Field[Any, Any], vendor: str) -> Any:
    """The database value of `field`'s default when every new row gets the same one (a constant
    default, or NULL), else _PER_ROW (a callable default, the time of the write, or none)."""
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False) or callable(field.default):
        return _PER_ROW
    if field.has_default():
        return field.get_db_prep_save(field.get_default(), connection)
    return None if field.null else _PER_ROW


def _column_default(model: type[Model], field: Field[Any, Any], now: dt.datetime) -> Any:
    """The database value of a column a new row is not given: the model's default for it."""
    constant = _constant_default(field, connection.vendor)
    if constant is not _PER_ROW:
        return constant
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        value = now
    elif field.has_default():
        value = field.get_default()
    elif field.null:
        return None
    else:
        raise ValueError(f"{model.__name__}.{field.name} needs a value: give it a default or set it here")
    return field.get_db_prep_save(value, connection)


@functools.cache
def _row_slots(model: type[Model], given: frozenset[str], vendor: str) -> tuple[tuple[str, ...], tuple[Any, ...]]:
    """The columns of a new `model` row given values for the fields `given`, and for each column
    where its value comes from: the field's attname (given), a constant default, or the field."""
    columns, slots = [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(cast(str, field.column))  # concrete: it has a column
        constant = _constant_default(field, vendor)
        slots.append(field.attname if field.attname in given else field if constant is _PER_ROW else (constant,))
    return tuple(columns), tuple(slots)


def _new_row(model: type[Model], values: dict[str, Any], now: dt.datetime) -> tuple[list[str], list[Any]]:
    """Columns and parameters of a new row: `values`, every other column from the model's defaults."""
    columns, slots = _row_slots(model, frozenset(values), connection.vendor)
    params = [
        _adapt(values[slot]) if isinstance(slot, str) else slot[0] if isinstance(slot, tuple)
        else _column_default(model, slot, now)
        for slot in slots
    ]  # fmt: skip
    return list(columns), params


def studies_series_create(*, partition_id: int, keys: Iterable[tuple[str, str]], now: dt.datetime) -> list[Statement]:
    """Create the study and series rows of (study UID, series UID) pairs where missing.

    INSERT ... ON CONFLICT DO NOTHING, so concurrent creators of the same study neither fail
    nor wait on each other's savepoints (the ORM's get_or_create did both).
    """
    statements: list[Statement] = []
    for study_uid in sorted({study for study, _ in keys}):
        columns, params = _new_row(Study, {"partition_id": partition_id, "study_instance_uid": study_uid}, now)
        statements.append((
            f"INSERT INTO {STUDY} ({', '.join(columns)}) VALUES ({_placeholders(len(columns))}) "
            "ON CONFLICT (partition_id, study_instance_uid) DO NOTHING",
            params,
        ))  # fmt: skip
    for study_uid, series_uid in sorted(keys):
        # study_id is taken from the study row in the SELECT below; 0 only marks it as given.
        values = {"partition_id": partition_id, "study_id": 0, "series_instance_uid": series_uid}
        columns, params = _new_row(Series, values, now)
        selected = ["st.id" if column == "study_id" else "%s" for column in columns]
        params = [param for column, param in zip(columns, params, strict=True) if column != "study_id"]
        statements.append((
            f"INSERT INTO {SERIES} ({', '.join(columns)}) SELECT {', '.join(selected)} FROM {STUDY} st "
            f"WHERE st.partition_id = %s AND st.study_instance_uid = %s{_key_share_clause()} "
            "ON CONFLICT (study_id, series_instance_uid) DO NOTHING",
            [*params, partition_id, study_uid],
        ))  # fmt: skip
    return statements


# Every column of an instance row but its id, from the model: the store service gives most of
# them (`studies.services.store._row`), the rest are inserted with the model's defaults, so a
# field added to Instance needs no change here.
_INSTANCE_FIELD = {
    cast(str, field.column): field for field in Instance._meta.concrete_fields if not field.primary_key
}
INSERT_COLUMNS = tuple(_INSTANCE_FIELD)


def _instance_params(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[Any]:
    """The parameters of `rows` for `columns`, in order; a column a row lacks takes its default."""
    now = timezone.now()
    defaults = {
        column: _column_default(Instance, _INSTANCE_FIELD[column], now) for column in columns if column not in rows[0]
    }
    return [
        defaults[column] if column in defaults else _adapt(row[column]) for row in rows for column in columns
    ]


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
    params = _instance_params(rows, columns)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return {(st, se, sop): (watermark, pk) for st, se, sop, watermark, pk in cursor.fetchall()}


def _values_column(n: int, column: str) -> str:
    """Column `n` of a VALUES list, typed. PostgreSQL takes a column that is NULL in every row
    as text and refuses to insert text into, say, an integer column; SQLite needs no type."""
    field = _INSTANCE_FIELD[column]
    if field.null and connection.vendor == "postgresql":
        return f"CAST(v.column{n} AS {field.cast_db_type(connection)})"
    return f"v.column{n}"


@functools.lru_cache(maxsize=64)
def _insert_into_series_sql(
    vendor: str, insert_columns: tuple[str, ...], n_rows: int, watermark_sql: str | None
) -> tuple[str, tuple[str, ...]]:
    """The statement of `instances_insert_into_series` for `n_rows` rows, and its value columns.

    Kept per database vendor, columns and row count: building it (a typed column per model
    field) cost more than a tenth of a one-instance STOW's reservation."""
    skip = {"study_id", "series_id"} | ({"watermark"} if watermark_sql else set())
    columns = [c for c in insert_columns if c not in skip]
    values = ", ".join([f"({_placeholders(len(columns))})"] * n_rows)
    selected = [_values_column(n, column) for n, column in enumerate(columns, 1)]
    # `WHERE true` keeps SQLite from reading ON CONFLICT as a join constraint.
    sql = (
        f"INSERT INTO {INSTANCE} ({', '.join(columns)}, study_id, series_id{', watermark' if watermark_sql else ''}) "
        f"SELECT {', '.join(selected)}, s.study_id, s.id{', ' + watermark_sql if watermark_sql else ''} "
        f"FROM (VALUES {values}) v CROSS JOIN (SELECT se.study_id, se.id FROM {STUDY} st "
        f"JOIN {SERIES} se ON se.study_id = st.id WHERE st.partition_id = %s AND st.study_instance_uid = %s "
        f"AND se.series_instance_uid = %s{_key_share_clause()}) s WHERE true "
        "ON CONFLICT (partition_id, study_instance_uid, series_instance_uid, sop_instance_uid) DO NOTHING "
        "RETURNING study_instance_uid, series_instance_uid, sop_instance_uid, watermark, id, study_id, series_id"
    )
    return sql, tuple(columns)


def instances_insert_into_series(
    *, rows: Sequence[dict[str, Any]], partition_id: int, study_uid: str, series_uid: str,
    watermark_sql: str | None = None,
) -> dict[tuple[str, str, str], tuple[int, int, int, int]]:
    """`instances_insert` for rows of one existing series, looking its ids up in the same statement.

    One statement, so outside a transaction it is one round trip and commits by itself. Inserts
    nothing when the series does not exist yet. Returns (study, series, SOP UID) -> (watermark,
    new id, study id, series id) for the rows inserted.
    """
    if not rows:
        return {}
    sql, columns = _insert_into_series_sql(connection.vendor, INSERT_COLUMNS, len(rows), watermark_sql)
    params = _instance_params(rows, columns)
    found = statement_execute(sql, [*params, partition_id, study_uid, series_uid])
    return {(st, se, sop): (watermark, pk, study, series) for st, se, sop, watermark, pk, study, series in found}


def instances_flip(
    *, ids: Sequence[int], study_ids: Iterable[int], now: dt.datetime, then: Sequence[Statement]
) -> list[Statement]:
    """CREATING -> CREATED, compare-and-swap, under the lock of the commit's study rows, with
    `then`: the commit's other writes, which need no earlier result. The first statement's rows
    are the ids flipped (a stale takeover removes rows).

    The study rows are locked first, in id order, so two committers of overlapping batches never
    wait on each other in a cycle; the series rows need no lock of their own, as every writer of
    a series (this commit, the delete, the bulk update's switch) holds its study's lock first.
    On PostgreSQL the lock, `then` and the flip are one statement (`statements_joined`): each of
    `then` has AFTER_FIRST in its WHERE clause, so it and the flip run once every study is locked.
    """
    sql = (
        f"UPDATE {INSTANCE} SET status = %s, updated_at = %s "
        f"WHERE id IN ({_placeholders(len(ids))}) AND status = %s{AFTER_FIRST} RETURNING id"
    )
    flip: Statement = (sql, [int(InstanceStatus.CREATED), _adapt(now), *ids, int(InstanceStatus.CREATING)])
    lock = _lock_clause()
    if not lock:  # SQLite has no row locks: its write transactions are serialised as a whole
        return [flip, *then]
    studies = sorted(set(study_ids))
    locked = f"SELECT id FROM {STUDY} WHERE id IN ({_placeholders(len(studies))}) ORDER BY id{lock}"
    return statements_joined([(locked, studies), *then, flip], first_rows=len(studies))


def instances_flipped_condition(*, ids: Sequence[int]) -> Statement:
    """An SQL condition, true when every one of `ids` is CREATED: what a commit checks after
    `instances_flip`, in its transaction, as a row taken over before the flip is not flipped."""
    flipped = f"SELECT count(*) FROM {INSTANCE} WHERE id IN ({_placeholders(len(ids))}) AND status = %s"
    return f"({flipped}) = %s", [*ids, int(InstanceStatus.CREATED), len(ids)]


def _assignments(columns: dict[str, Any]) -> tuple[str, list[Any]]:
    names = sorted(columns)
    return "".join(f", {name} = %s" for name in names), [_adapt(columns[name]) for name in names]


def instances_projection_update(*, projections: Sequence[tuple[int, str]]) -> list[Statement]:
    """Set the search projection of instances, (id, projection) each."""
    return [(f"UPDATE {INSTANCE} SET search_metadata = %s WHERE id = %s", [text, pk]) for pk, text in projections]


def series_update(*, series_id: int, added: int, columns: dict[str, Any], now: dt.datetime) -> Statement:
    assignments, params = _assignments(columns)
    sql = (
        f"UPDATE {SERIES} SET num_instances = num_instances + %s, updated_at = %s{assignments} "
        f"WHERE id = %s{AFTER_FIRST}"
    )
    return sql, [added, _adapt(now), *params, series_id]


def study_update(*, study_id: int, columns: dict[str, Any], now: dt.datetime) -> Statement:
    """Counters (`studies.services.counters`) and attribute columns of a study, after its series' updates."""
    counters, counter_params = study_counters_sql(study_id=study_id)
    assignments, params = _assignments(columns)
    sql = f"UPDATE {STUDY} SET {counters}, updated_at = %s{assignments} WHERE id = %s"
    return sql, [*counter_params, _adapt(now), *params, study_id]
