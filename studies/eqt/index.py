"""Writing extended query tag values: at STOW in the store's commit transaction, in the reindex,
and after a bulk update.

A value row belongs to the row of its tag's level (study, series or instance) and records
the watermark it was read from. Writing is an upsert that only replaces a value read from an
older version, so the newest stored instance with a value wins whatever the order of writes,
and writing an instance twice changes nothing (the reindex relies on both).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dicomsvc.sqlbatch import Statement, statements_joined, statements_run
from studies.dicom.dicomjson import json_loads_fast
from studies.dicom.reader import ParsedInstance
from studies.eqt.models import TEXT_VALUE_LENGTH, ExtendedQueryTag, ExtendedQueryTagValue, TagLevel, TagStatus
from studies.eqt.tags import TagDef, tags_cached
from studies.eqt.values import IndexValue, private_creator_key, value_read
from studies.models import Instance

TABLE = ExtendedQueryTagValue._meta.db_table
TAGS = ExtendedQueryTag._meta.db_table
_COLUMN_TYPES = (*["BIGINT"] * 6, f"VARCHAR({TEXT_VALUE_LENGTH})", "DOUBLE PRECISION")
_OWNER = {TagLevel.STUDY: "study_id", TagLevel.SERIES: "series_id", TagLevel.INSTANCE: "instance_id"}


@dataclass(frozen=True)
class ExtendedRead:
    """What one instance gives for the tags of `tags` (the list it was read against)."""

    tags: tuple[TagDef, ...]
    values: tuple[tuple[TagDef, IndexValue], ...] = ()
    errors: tuple[tuple[TagDef, str], ...] = ()
    multiple: bool = False


def extended_read(*, metadata: dict[str, Any], tags: tuple[TagDef, ...]) -> ExtendedRead:
    """The values of every tag of `tags` in an instance's DICOM JSON, and the ones that are invalid."""
    values: list[tuple[TagDef, IndexValue]] = []
    errors: list[tuple[TagDef, str]] = []
    multiple = False
    for tag in tags:
        read = value_read(metadata, tag=tag.tag, vr=tag.vr, private_creator=tag.private_creator, label=tag.path)
        multiple = multiple or read.multiple
        if read.error is not None:
            errors.append((tag, read.error))
        elif read.value is not None:
            values.append((tag, read.value))
    return ExtendedRead(tags=tags, values=tuple(values), errors=tuple(errors), multiple=multiple)


@functools.lru_cache(maxsize=16)
def _tag_keys(tags: tuple[TagDef, ...]) -> frozenset[str]:
    """The DICOM JSON keys `value_read` looks at for `tags`: each tag's, and a private one's creator."""
    return frozenset(f"{tag.tag:08X}" for tag in tags) | {
        private_creator_key(tag.tag) for tag in tags if tag.private_creator
    }


def parsed_extended_read(*, parsed: ParsedInstance, tags: tuple[TagDef, ...]) -> ExtendedRead:
    """`extended_read` of an instance being stored, decoding only the attributes the tags read."""
    return extended_read(metadata=parsed.metadata_values_of(_tag_keys(tags)), tags=tags)


@dataclass(frozen=True)
class Owner:
    """The rows an instance belongs to, and the version its values are read from."""

    partition_id: int
    study_id: int
    series_id: int
    instance_id: int
    watermark: int


def _owner_id(owner: Owner, level: TagLevel) -> int:
    return {TagLevel.STUDY: owner.study_id, TagLevel.SERIES: owner.series_id}.get(level, owner.instance_id)


def values_upsert_statements(rows: Iterable[tuple[Owner, TagDef, IndexValue]]) -> list[Statement]:
    """One upsert per level for `rows`, joined into one statement on PostgreSQL (they write
    different rows); of two rows for the same owner and tag, the newer one."""
    newest: dict[tuple[TagLevel, int, int], tuple[Owner, TagDef, IndexValue]] = {}
    for row in rows:
        owner, tag, _value = row
        key = (tag.level, _owner_id(owner, tag.level), tag.key)
        if key not in newest or newest[key][0].watermark < owner.watermark:
            newest[key] = row
    statements: list[Statement] = []
    for level, column in _OWNER.items():
        level_rows = [row for key, row in newest.items() if key[0] == level]
        if not level_rows:
            continue
        params: list[Any] = []
        for owner, tag, value in level_rows:
            ids = {"study_id": None, "series_id": None, "instance_id": None, column: _owner_id(owner, level)}
            params += [tag.key, owner.partition_id, ids["study_id"], ids["series_id"], ids["instance_id"],
                       owner.watermark, value.text, value.number]  # fmt: skip
        # Typed placeholders: a column that is NULL in every row would otherwise be text on PostgreSQL.
        typed = "(" + ", ".join(f"CAST(%s AS {sql_type})" for sql_type in _COLUMN_TYPES) + ")"
        statements.append((
            f"INSERT INTO {TABLE} (tag_id, partition_id, study_id, series_id, instance_id, watermark, text_value, "
            f"number_value) SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, "
            f"v.column8 FROM (VALUES {', '.join([typed] * len(level_rows))}) v "
            # A tag another process still had in its cache may be being deleted: no value for it.
            f"JOIN {TAGS} t ON t.id = v.column1 WHERE t.status <> %s "
            f"ON CONFLICT ({column}, tag_id) DO UPDATE SET "
            "watermark = excluded.watermark, text_value = excluded.text_value, number_value = excluded.number_value "
            f"WHERE {TABLE}.watermark < excluded.watermark",
            [*params, TagStatus.DELETING.value],
        ))
    return statements_joined(statements)


class StoredItem(Protocol):
    """An instance the store is committing (`studies.services.store`)."""

    partition_id: int
    study_id: int
    series_id: int
    instance_id: int | None
    watermark: int

    @property
    def parsed(self) -> ParsedInstance: ...


def store_statements(items: Sequence[StoredItem]) -> list[Statement]:
    """The value upserts of instances the store commits, for its commit transaction.

    Nothing when no tag is defined. Each instance's values were read at validation
    (`parsed.extended`); read again if the tag list changed since.
    """
    tags = tags_cached()
    if not tags:
        return []
    rows: list[tuple[Owner, TagDef, IndexValue]] = []
    for item in items:
        read: ExtendedRead | None = item.parsed.extended
        if read is None or read.tags != tags:
            read = parsed_extended_read(parsed=item.parsed, tags=tags)
        owner = Owner(item.partition_id, item.study_id, item.series_id, item.instance_id or 0, item.watermark)
        rows += [(owner, tag, value) for tag, value in read.values]
    return values_upsert_statements(rows)


def instances_index_updated(*, instance_ids: Sequence[int]) -> None:
    """Inside the bulk update's switch transaction: index the switched instances' new versions
    (a bulk update never empties an attribute, so no value has to go)."""
    tags = tags_cached()
    if not tags or not instance_ids:
        return
    rows = Instance.objects.filter(pk__in=instance_ids).values_list(
        "pk", "partition_id", "study_id", "series_id", "watermark", "metadata"
    )
    values: list[tuple[Owner, TagDef, IndexValue]] = []
    for pk, partition_id, study_id, series_id, watermark, metadata in rows:
        owner = Owner(partition_id, study_id, series_id, pk, watermark)
        read = extended_read(metadata=json_loads_fast(metadata), tags=tags)
        values += [(owner, tag, value) for tag, value in read.values]
    statements = values_upsert_statements(values)
    if statements:
        statements_run(statements)
