"""Group commit (`studies.services.group_commit`): concurrent commit steps share one transaction."""

from __future__ import annotations

import io
import threading
import time

import pytest

from studies.services.group_commit import GroupCommit


def _group() -> GroupCommit[int]:
    return GroupCommit(key=lambda item: item, max_items=5)


def _concurrently(group: GroupCommit[int], batches: list[list[int]], commit) -> list[tuple[set[int], str | None]]:  # noqa: ANN001
    results: list[tuple[set[int], str | None] | None] = [None] * len(batches)

    def store(n: int) -> None:
        results[n] = group.run(batches[n], commit)

    threads = [threading.Thread(target=store, args=(n,)) for n in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert all(result is not None for result in results)
    return results  # type: ignore[return-value]


def test_alone_a_store_commits_at_once_by_itself():
    calls = []
    assert _group().run([1, 2], lambda items: calls.append(items) or set(items)) == ({1, 2}, None)
    assert calls == [[1, 2]]


def test_stores_queued_behind_a_running_commit_share_the_next_one():
    group = _group()
    calls: list[list[int]] = []
    first_running = threading.Event()
    release = threading.Event()

    def commit(items: list[int]) -> set[int]:
        calls.append(items)
        if len(calls) == 1:
            first_running.set()
            release.wait(5)  # the others queue up meanwhile
        return set(items) - {4}  # 4 was "taken over": not committed

    first = threading.Thread(target=lambda: group.run([1], commit))
    first.start()
    first_running.wait(5)
    waiting: list[tuple[set[int], str | None]] = []
    others = [threading.Thread(target=lambda n=n: waiting.append(group.run([n], commit))) for n in (2, 3, 4)]
    for thread in others:
        thread.start()
    while len(group._pending) < 3:
        time.sleep(0.001)
    release.set()
    first.join(5)
    for thread in others:
        thread.join(5)
    assert calls[0] == [1]
    assert sorted(calls[1]) == [2, 3, 4] and len(calls) == 2  # one transaction for the three
    assert sorted(waiting, key=lambda r: sorted(r[0])) == [(set(), None), ({2}, None), ({3}, None)]


def test_a_batch_is_capped_and_the_rest_commits_next():
    group = _group()
    calls: list[list[int]] = []
    gate = threading.Lock()
    gate.acquire()

    def commit(items: list[int]) -> set[int]:
        calls.append(items)
        if len(calls) == 1:
            gate.acquire(timeout=5)
        return set(items)

    head = threading.Thread(target=lambda: group.run([0], commit))
    head.start()
    while not calls:
        time.sleep(0.001)
    batches = [[10, 11, 12], [20, 21, 22], [30]]
    holder: list = []
    runner = threading.Thread(target=lambda: holder.append(_concurrently(group, batches, commit)))
    runner.start()
    while len(group._pending) < 3:
        time.sleep(0.001)
    gate.release()
    head.join(5)
    runner.join(10)
    assert [(committed, failure) for committed, failure in holder[0]] == [(set(b), None) for b in batches]
    assert all(len(call) <= 5 for call in calls)  # never more than max_items in one commit
    assert sorted(item for call in calls[1:] for item in call) == [10, 11, 12, 20, 21, 22, 30]


def test_a_failed_commit_fails_every_store_in_it_with_its_message():
    def commit(items: list[int]) -> set[int]:
        raise RuntimeError("connection lost before COMMIT")

    results = _concurrently(_group(), [[1], [2], [3]], commit)
    assert results == [(set(), "connection lost before COMMIT")] * 3


def test_an_interrupted_committer_still_answers_the_stores_it_took():
    group = _group()

    def commit(items: list[int]) -> set[int]:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        group.run([1], commit)
    assert group._pending == []
    # The next store is not stuck behind the interrupted one.
    assert group.run([2], lambda items: set(items)) == ({2}, None)


@pytest.mark.django_db
def test_one_commit_for_stores_of_two_partitions_keeps_each_in_its_own():
    from changefeed.models import ChangeFeedEntry
    from partitions.models import Partition
    from studies.dicom.reader import instance_parse
    from studies.dicom.streams import FileSlice
    from studies.models import Instance, InstanceStatus, Study
    from studies.services import store as store_module
    from tests.helpers import dicom_bytes, uids_of

    data = dicom_bytes()
    study_uid, _series_uid, sop_uid = uids_of(data)
    partitions = [Partition.objects.create(partition_name=name) for name in ("site-a", "site-b")]
    items = []
    for partition in partitions:
        parsed = instance_parse(FileSlice(io.BytesIO(data), 0, len(data)), validate_all=True)
        item = store_module._Item(parsed=parsed, partition_id=partition.pk)
        store_module._reserve(partition=partition, items=[item])
        items.append(item)
    flipped = store_module._commit(items=items)

    assert flipped == {item.instance_id for item in items}
    rows = Instance.objects.filter(sop_instance_uid=sop_uid).order_by("partition_id")
    assert [(row.partition_id, row.status) for row in rows] == [(p.pk, InstanceStatus.CREATED) for p in partitions]
    feed = ChangeFeedEntry.objects.filter(sop_instance_uid=sop_uid).order_by("partition_id")
    assert [(entry.partition_id, entry.watermark) for entry in feed] == [(i.partition_id, i.watermark) for i in items]
    studies = Study.objects.filter(study_instance_uid=study_uid).order_by("partition_id")
    assert [(s.partition_id, s.num_instances, s.num_series) for s in studies] == [(p.pk, 1, 1) for p in partitions]


def test_a_store_inside_a_transaction_commits_alone_in_its_own_thread():
    group = _group()
    busy = threading.Lock()
    busy.acquire()
    group._commit_lock = busy  # another thread is committing: a queued store would wait
    threads = []

    def commit(items: list[int]) -> set[int]:
        threads.append(threading.get_ident())
        return set(items)

    assert group.run([7], commit, alone=True) == ({7}, None)
    assert threads == [threading.get_ident()] and group._pending == []


@pytest.mark.django_db
def test_the_store_service_inside_a_transaction_does_not_queue(monkeypatch):
    from studies.services import store as store_module
    from tests.helpers import dicom_bytes

    def queued(*args, **kwargs):  # noqa: ANN002, ANN003
        raise AssertionError("queued behind other threads while inside a transaction")

    monkeypatch.setattr(store_module._GROUP, "_take", queued)
    from partitions.services import partition_default
    from studies.dicom.reader import instance_parse
    from studies.dicom.streams import FileSlice

    data = dicom_bytes()
    parsed = instance_parse(FileSlice(io.BytesIO(data), 0, len(data)), validate_all=True)
    assert store_module.instances_store(partition=partition_default(), parsed=[parsed]) == [None]
