"""Storing instances: reserve the rows, write the blobs, then make them visible.

A request's instances are stored in batches (`BATCH_COUNT` instances or `BATCH_BYTES` of
files at most), each in three steps:

1. A short transaction inserts the batch's instance rows in status CREATING under fresh
   watermarks; the unique constraint decides races (45070 already stored, 45071 being stored).
2. The blobs are written, outside any transaction, under those watermarks' names.
3. A second short transaction flips the rows to CREATED, updates the study and series rows
   and appends the change-feed entries. Only now can any reader see the instances. Concurrent
   requests of one process that reach this step together share it (`group_commit`).

A crash after 1 leaves invisible CREATING rows (taken over once stale, or removed by
`manage.py dicom_cleanup`); a crash after 2 also leaves blobs no visible row points at.
Neither is ever served. One transaction pair per batch instead of per instance is what
makes a 20-instance STOW cheap; the protocol per instance is unchanged.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import cast

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from changefeed.models import ChangeAction, ChangeFeedEntry
from changefeed.services import changefeed_lock_statement, changefeed_statements
from dicomsvc.sqlbatch import (
    GuardFailed,
    Statement,
    commit_in_one_round_trip,
    guard,
    statements_commit,
    statements_joined,
    statements_run,
)
from partitions.models import Partition
from studies.blobstore import blob_name, blob_write
from studies.dicom.reader import ParsedInstance, parsed_indexed_columns
from studies.eqt import index as extended_index
from studies.models import Instance, InstanceStatus
from studies.search.results import projection_keys, search_projection
from studies.services import store_rows as rows
from studies.services.group_commit import CommitFailed, GroupCommit
from studies.services.orphans import blob_remove_or_queue
from studies.services.person_names import person_name_words_statements
from studies.services.watermarks import watermark_sql, watermarks_allocate

BATCH_COUNT = 50
BATCH_BYTES = 256 * 1024 * 1024

logger = logging.getLogger(__name__)


class InstanceAlreadyExists(Exception):
    """45070: the same UIDs are already stored in this partition."""


class InstancePending(Exception):
    """45071: another request is storing the same UIDs right now."""


class StoreFailed(Exception):
    """272: the instance could not be stored; nothing of it is visible."""


@dataclass
class StoreOutcome:
    instance: Instance


@dataclass
class _Item:
    parsed: ParsedInstance
    partition_id: int
    error: Exception | None = None
    watermark: int = 0
    instance_id: int | None = None
    study_id: int = 0
    series_id: int = 0
    # What its search projection was written with (`search_projection`).
    projection_keys: frozenset[str] = frozenset()

    @property
    def key(self) -> tuple[str, str, str]:
        uids = self.parsed.uids
        return uids["StudyInstanceUID"], uids["SeriesInstanceUID"], uids["SOPInstanceUID"]


# Rounds of creating a batch's study and series rows; each is lost only to a delete of that very
# study committing in between, so a second round almost always finds them.
SERIES_CREATE_ROUNDS = 5


def _series_ids(*, partition: Partition, items: list[_Item], now: dt.datetime) -> None:
    """Study and series ids of every item, creating the rows that do not exist yet (run in a transaction).

    The rows are locked as they are found (`store_rows._key_share_clause`): a delete of the
    study running meanwhile either finishes first, and its rows are created afresh, or waits
    for this reservation to commit, and then sees its instances."""
    keys = {item.key[:2] for item in items}
    found = rows.series_find(partition_id=partition.pk, keys=keys)
    for _round in range(SERIES_CREATE_ROUNDS):
        missing = keys - set(found)
        if not missing:
            break
        statements_run(rows.studies_series_create(partition_id=partition.pk, keys=missing, now=now))
        found.update(rows.series_find(partition_id=partition.pk, keys=missing))
    else:
        if keys - set(found):
            raise StoreFailed("its study was deleted again and again while it was being stored")
    for item in items:
        item.study_id, item.series_id = found[item.key[:2]]


def _row(*, partition: Partition, item: _Item, now: dt.datetime) -> dict[str, object]:
    parsed = item.parsed
    item.projection_keys = projection_keys()
    return {
        "partition_id": partition.pk,
        "study_id": item.study_id,
        "series_id": item.series_id,
        "study_instance_uid": item.key[0],
        "series_instance_uid": item.key[1],
        "sop_instance_uid": item.key[2],
        "sop_class_uid": parsed.indexed.get("SOPClassUID", parsed.uids["SOPClassUID"]),
        "instance_number": parsed.instance_number,
        "status": int(InstanceStatus.CREATING),
        "watermark": item.watermark,
        "transfer_syntax_uid": parsed.transfer_syntax_uid,
        "file_size": parsed.stream.size,
        "number_of_frames": parsed.number_of_frames,
        "frame_index": parsed.frame_index_text,
        "metadata": parsed.metadata_text,
        "search_metadata": search_projection(parsed.metadata, keys=item.projection_keys),
        "created_at": now,
        "updated_at": now,
    }


def _reserve(*, partition: Partition, items: list[_Item]) -> None:
    """Insert the CREATING rows; an item whose UIDs exist already is left without instance_id."""
    now = timezone.now()
    in_insert = watermark_sql()
    if in_insert is None:
        for item, watermark in zip(items, watermarks_allocate(count=len(items)), strict=True):
            item.watermark = watermark
    row_of = {id(item): _row(partition=partition, item=item, now=now) for item in items}
    keys = {item.key[:2] for item in items}
    if len(keys) == 1:
        # The common case, a batch of one series that exists already: one statement, which
        # commits by itself. Anything it did not insert takes the general path below.
        ((study_uid, series_uid),) = keys
        inserted_with_ids = rows.instances_insert_into_series(
            rows=list(row_of.values()), partition_id=partition.pk, study_uid=study_uid, series_uid=series_uid,
            watermark_sql=in_insert,
        )  # fmt: skip
        for item in items:
            if item.key in inserted_with_ids:
                item.watermark, item.instance_id, item.study_id, item.series_id = inserted_with_ids[item.key]
        items = [item for item in items if item.instance_id is None]
        if not items:
            return
    with transaction.atomic():
        _series_ids(partition=partition, items=items, now=now)
        for item in items:
            row_of[id(item)].update(study_id=item.study_id, series_id=item.series_id)
        inserted = rows.instances_insert(rows=[row_of[id(item)] for item in items], watermark_sql=in_insert)
    for item in items:
        item.watermark, item.instance_id = inserted.get(item.key, (item.watermark, None))


def _existing_blocker(*, partition: Partition, parsed: ParsedInstance) -> Exception:
    """Why the reservation lost: already stored, or in creation. _Retry when it took over a stale one."""
    uids = parsed.uids
    existing = Instance.objects.filter(
        partition=partition,
        study_instance_uid=uids["StudyInstanceUID"],
        series_instance_uid=uids["SeriesInstanceUID"],
        sop_instance_uid=uids["SOPInstanceUID"],
    ).first()
    if existing is None:
        return InstancePending()  # removed meanwhile; the client may retry
    if existing.status == InstanceStatus.CREATED:
        return InstanceAlreadyExists()
    stale_before = timezone.now() - dt.timedelta(seconds=settings.DICOM_STALE_CREATING_SECONDS)
    if existing.created_at < stale_before:
        # A crashed request left this row; remove it (compare-and-swap on its watermark)
        # so the caller can retry, and queue its possibly-written blob for removal.
        removed, _ = Instance.objects.filter(
            pk=existing.pk, status=InstanceStatus.CREATING, watermark=existing.watermark
        ).delete()
        if removed:
            name = blob_name(partition_key=partition.partition_key, watermark=existing.watermark)
            blob_remove_or_queue(name=name, reason="stale creating row taken over")
            raise _Retry()
    return InstancePending()


class _Retry(Exception):
    """The stale row in the way was removed: reserve the instance again."""


# The commit steps of this process's concurrent stores, one transaction for all queued.
_GROUP: GroupCommit[_Item] = GroupCommit(key=lambda item: item.instance_id or 0, max_items=BATCH_COUNT)


class _TakenOver(Exception):
    """Some reserved rows were removed as stale before the commit; the commit was rolled back."""

    def __init__(self, flipped: set[int]) -> None:
        super().__init__(f"{len(flipped)} rows flipped")
        self.flipped = flipped


def _commit(*, items: list[_Item]) -> set[int]:
    """Make the reserved rows visible; returns the instance ids flipped (all, unless taken over).

    The items may come from several requests and partitions (`_GROUP`)."""
    live = items
    while live:  # each retry drops the rows taken over, so this ends
        try:
            return _commit_statements_run(items=live)
        except _TakenOver as exc:
            live = [item for item in live if item.instance_id in exc.flipped]
    return set()


def _commit_statements_run(*, items: list[_Item]) -> set[int]:
    """One transaction whose statements go to the database at once (`dicomsvc.sqlbatch`).

    None of them depends on another's result: counters and ModalitiesInStudy are recounted in
    SQL, name word rows are rewritten in SQL when the name changed. The counts assume every row
    flips: if one was taken over as stale meanwhile, the transaction is rolled back and the
    caller commits the rest again (`_TakenOver`).

    On PostgreSQL outside a transaction, BEGIN, the statements and COMMIT are one round trip
    (`statements_commit`), so the flip is checked by a statement of the transaction itself,
    which fails it (`sqlbatch.guard` of `store_rows.instances_flipped_condition`). Should that
    happen, the commit runs again the way it runs elsewhere, in Django's transaction, where the
    flip's result is read before the COMMIT and says which rows are left to commit.
    """
    if commit_in_one_round_trip():
        try:
            statements_commit(_commit_statements(items=items, guarded=True))
            return {cast(int, item.instance_id) for item in items}  # committed: the guard held
        except GuardFailed:
            logger.info("a reserved row was taken over before its commit; committing the rest")
    with transaction.atomic():
        results = statements_run(_commit_statements(items=items, guarded=False))
        flipped = {row[0] for row in results[0]}
        if len(flipped) != len(items):
            raise _TakenOver(flipped)
    return flipped


def _commit_statements(*, items: list[_Item], guarded: bool) -> list[Statement]:
    """The commit's statements; `guarded`: with the check that every row flipped (PostgreSQL),
    in the statement that takes the change feed's lock."""
    now = timezone.now()
    by_series: dict[int, list[_Item]] = defaultdict(list)
    by_study: dict[int, list[_Item]] = defaultdict(list)
    for item in items:
        by_series[item.series_id].append(item)
        by_study[item.study_id].append(item)
    ids = [cast(int, item.instance_id) for item in items]  # reserved: set
    series_updates: list[Statement] = []
    for series_id, group in by_series.items():
        columns = parsed_indexed_columns(group[-1].parsed)["series"]  # the newest instance's values
        series_updates.append(rows.series_update(series_id=series_id, added=len(group), columns=columns, now=now))
    study_updates: list[Statement] = []
    for study_id, group in by_study.items():
        columns = parsed_indexed_columns(group[-1].parsed)["study"]
        # The name word rows are read and deleted, so only once the first statement holds the
        # study locks (a statement's snapshot is taken when it starts, `statements_joined`).
        study_updates += person_name_words_statements(
            partition_id=group[0].partition_id, study_id=study_id, columns=columns
        )
        # The counters are recounted from the series rows the first statement updated.
        study_updates.append(rows.study_update(study_id=study_id, columns=columns, now=now))
    lock = changefeed_lock_statement() if guarded else None
    if lock is not None:
        # The flip's check reads the flip's rows, so not in the flip's own statement; with it,
        # this statement takes the change feed's lock, after the first took every study lock.
        condition, params = rows.instances_flipped_condition(ids=ids)
        study_updates.append((f"{lock[0]} WHERE {guard(condition)}", [*lock[1], *params]))
    statements = [
        *rows.instances_flip(ids=ids, study_ids=by_study, now=now, then=series_updates),
        *statements_joined(study_updates),
        # A statement of its own, which keeps each under psycopg's parse cache limit.
        *extended_index.store_statements(items),  # extended query tags: none when no tag is defined
        # The projections rewrite rows the flip writes, which one statement may not do twice.
        *_projections_renewed(items),
    ]
    return statements + changefeed_statements(
        entries=[
            ChangeFeedEntry(
                action=ChangeAction.CREATE,
                partition_id=item.partition_id,
                study_instance_uid=item.key[0],
                series_instance_uid=item.key[1],
                sop_instance_uid=item.key[2],
                watermark=item.watermark,
            )
            for item in items
        ],
        now=now,
        locked=lock is not None,
    )


def _projections_renewed(items: list[_Item]) -> list[Statement]:
    """Rewrite the projections written before the tag list changed (rare: a tag was added or
    removed between reservation and commit), as the values are read again at commit."""
    keys = projection_keys()
    stale = [item for item in items if item.projection_keys is not keys and item.projection_keys != keys]
    projections = [(cast(int, item.instance_id), search_projection(item.parsed.metadata, keys=keys)) for item in stale]
    return rows.instances_projection_update(projections=projections)


def _discard(*, item: _Item, partition: Partition, reason: str) -> None:
    """Undo a reservation whose blob write or commit failed."""
    Instance.objects.filter(pk=cast(int, item.instance_id), status=InstanceStatus.CREATING).delete()  # reserved: set
    name = blob_name(partition_key=partition.partition_key, watermark=item.watermark)
    blob_remove_or_queue(name=name, reason=reason)


def _batches(items: list[_Item]) -> list[list[_Item]]:
    """Consecutive runs of at most BATCH_COUNT items and BATCH_BYTES; a repeated instance starts a new run,
    so it meets the first one stored (45070), not in creation (45071)."""
    batches: list[list[_Item]] = []
    current: list[_Item] = []
    keys: set[tuple[str, str, str]] = set()
    size = 0
    for item in items:
        item_size = item.parsed.stream.size
        if current and (len(current) >= BATCH_COUNT or size + item_size > BATCH_BYTES or item.key in keys):
            batches.append(current)
            current, keys, size = [], set(), 0
        current.append(item)
        keys.add(item.key)
        size += item_size
    if current:
        batches.append(current)
    return batches


def _store_batch(*, partition: Partition, batch: list[_Item]) -> None:
    pending = batch
    for _attempt in range(2):
        try:
            _reserve(partition=partition, items=pending)
        except StoreFailed as exc:  # its transaction rolled back: the items it held are not reserved
            for item in pending:
                if item.instance_id is None:
                    item.error = exc
            pending = []
            break
        retry = []
        for item in pending:
            if item.instance_id is not None:
                continue
            try:
                item.error = _existing_blocker(partition=partition, parsed=item.parsed)
            except _Retry:
                retry.append(item)
        pending = retry
        if not pending:
            break
    for item in pending:
        item.error = InstancePending()

    reserved = [item for item in batch if item.error is None and item.instance_id is not None]
    for item in reserved:
        try:
            name = blob_name(partition_key=partition.partition_key, watermark=item.watermark)
            blob_write(name=name, stream=item.parsed.stream, size=item.parsed.stream.size)
        except Exception as exc:
            logger.exception("writing the blob of %s failed", item.key[2])
            item.error = StoreFailed(str(exc))
            _discard(item=item, partition=partition, reason="store failed during blob write")
    written = [item for item in reserved if item.error is None]
    if not written:
        return
    in_transaction = transaction.get_connection().in_atomic_block
    try:
        flipped = _GROUP.run(written, lambda items: _commit(items=items), alone=in_transaction)
        failure = "the reservation was taken over as stale before the store finished"
    except CommitFailed as exc:
        flipped, failure = set(), str(exc)
    for item in written:
        if item.instance_id not in flipped:
            item.error = StoreFailed(failure)
            _discard(item=item, partition=partition, reason="store failed after blob write")


def instances_store(*, partition: Partition, parsed: list[ParsedInstance]) -> list[Exception | None]:
    """Store validated instances; per instance None when stored, else why not:
    InstanceAlreadyExists, InstancePending or StoreFailed."""
    items = [_Item(parsed=one, partition_id=partition.pk) for one in parsed]
    for batch in _batches(items):
        _store_batch(partition=partition, batch=batch)
    return [item.error for item in items]


def instance_store(*, partition: Partition, parsed: ParsedInstance) -> StoreOutcome:
    """Store one validated instance. Raises InstanceAlreadyExists, InstancePending or StoreFailed."""
    (error,) = instances_store(partition=partition, parsed=[parsed])
    if error is not None:
        raise error
    uids = parsed.uids
    return StoreOutcome(
        instance=Instance.objects.get(
            partition=partition,
            study_instance_uid=uids["StudyInstanceUID"],
            series_instance_uid=uids["SeriesInstanceUID"],
            sop_instance_uid=uids["SOPInstanceUID"],
        )
    )
