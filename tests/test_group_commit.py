"""Group commit (`studies.services.group_commit`): concurrent commit steps share one transaction."""

from __future__ import annotations

import io
import threading
import time

import pytest

from studies.services.group_commit import CommitFailed, GroupCommit, _Ticket


def _group() -> GroupCommit[int]:
    return GroupCommit(key=lambda item: item, max_items=5)


def _outcome(group: GroupCommit, items: list, commit, **kwargs) -> tuple[set[int], str | None]:  # noqa: ANN001, ANN003
    """What `run` answered: (keys committed, None), or (set(), why) when it raised CommitFailed."""
    try:
        return group.run(items, commit, **kwargs), None
    except CommitFailed as exc:
        return set(), str(exc)


def _concurrently(group: GroupCommit[int], batches: list[list[int]], commit) -> list[tuple[set[int], str | None]]:  # noqa: ANN001
    results: list[tuple[set[int], str | None] | None] = [None] * len(batches)

    def store(n: int) -> None:
        results[n] = _outcome(group, batches[n], commit)

    threads = [threading.Thread(target=store, args=(n,)) for n in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert all(result is not None for result in results)
    return results  # type: ignore[return-value]


def test_alone_a_store_commits_at_once_by_itself():
    calls = []
    assert _outcome(_group(), [1, 2], lambda items: calls.append(items) or set(items)) == ({1, 2}, None)
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

    first = threading.Thread(target=lambda: _outcome(group, [1], commit))
    first.start()
    first_running.wait(5)
    waiting: list[tuple[set[int], str | None]] = []
    others = [threading.Thread(target=lambda n=n: waiting.append(_outcome(group, [n], commit))) for n in (2, 3, 4)]
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

    head = threading.Thread(target=lambda: _outcome(group, [0], commit))
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


def test_a_failed_commit_fails_every_store_in_it_with_its_message():  # each retried alone, each failing
    def commit(items: list[int]) -> set[int]:
        raise RuntimeError("connection lost before COMMIT")

    results = _concurrently(_group(), [[1], [2], [3]], commit)
    assert results == [(set(), "connection lost before COMMIT")] * 3


def test_a_store_never_fails_because_of_another_requests_store():
    group = _group()
    calls: list[list[int]] = []

    def commit(items: list[int]) -> set[int]:
        calls.append(sorted(items))
        if 2 in items:
            raise RuntimeError("value too long for type character varying(64)")
        return set(items)

    # Two requests queued behind a running commit: the next commit takes both.
    results: dict[int, tuple[set[int], str | None]] = {}
    first_running, release = threading.Event(), threading.Event()

    def blocking(items: list[int]) -> set[int]:
        first_running.set()
        release.wait(5)
        return set(items)

    head = threading.Thread(target=lambda: _outcome(group, [0], blocking))
    head.start()
    first_running.wait(5)
    others = [
        threading.Thread(target=lambda n=n, items=items: results.__setitem__(n, _outcome(group, items, commit)))
        for n, items in ((1, [1, 11]), (2, [2, 22]))
    ]
    for thread in others:
        thread.start()
    while len(group._pending) < 2:
        time.sleep(0.001)
    release.set()
    for thread in (head, *others):
        thread.join(5)

    assert calls[0] == [1, 2, 11, 22]  # batched together, failed, then each request alone
    assert sorted(calls[1:]) == [[1, 11], [2, 22]]
    assert results[1] == ({1, 11}, None)
    assert results[2] == (set(), "value too long for type character varying(64)")


def test_an_interrupted_retry_still_answers_every_store():
    group = _group()
    group._pending = [_Ticket(items=[1]), _Ticket(items=[2])]
    tickets = list(group._pending)

    def commit(items: list[int]) -> set[int]:
        if len(items) > 1:
            raise RuntimeError("batch failed")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        with group._commit_lock:
            group._commit(group._take(), commit)
    assert all(ticket.done and ticket.failure == "the commit was interrupted" for ticket in tickets)


def test_an_interrupted_committer_still_answers_the_stores_it_took():
    group = _group()

    def commit(items: list[int]) -> set[int]:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _outcome(group, [1], commit)
    assert group._pending == []
    # The next store is not stuck behind the interrupted one.
    assert _outcome(group, [2], lambda items: set(items)) == ({2}, None)


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

    assert _outcome(group, [7], commit, alone=True) == ({7}, None)
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


@pytest.mark.django_db(transaction=True)
def test_a_poisoned_request_in_a_shared_commit_leaves_the_others_instances_committed_and_readable(client):
    from partitions.services import partition_default
    from studies.dicom.reader import instance_parse
    from studies.dicom.streams import FileSlice
    from studies.models import Instance, InstanceStatus
    from studies.services import store as store_module
    from tests.helpers import dicom_bytes, instance_url, response_bytes, uids_of

    partition = partition_default()
    good, bad = dicom_bytes(), dicom_bytes()
    requests = []
    for data in (good, bad):
        parsed = instance_parse(FileSlice(io.BytesIO(data), 0, len(data)), validate_all=True)
        item = store_module._Item(parsed=parsed, partition_id=partition.pk)
        store_module._reserve(partition=partition, items=[item])
        name = store_module.blob_name(partition_key=partition.partition_key, watermark=item.watermark)
        store_module.blob_write(name=name, stream=parsed.stream, size=parsed.stream.size)
        requests.append([item])
    poisoned = requests[1][0]

    def commit(items: list) -> set[int]:  # noqa: ANN001
        if poisoned in items:
            raise RuntimeError("the poisoned instance's statement failed")
        return store_module._commit(items=items)

    group: GroupCommit = GroupCommit(key=lambda item: item.instance_id or 0, max_items=5)
    group._pending = [_Ticket(items=requests[1])]  # the poisoned request queued first, then ours
    committed, failure = _outcome(group, requests[0], commit)

    assert (committed, failure) == ({requests[0][0].instance_id}, None)
    assert group._pending == []
    good_uids = uids_of(good)
    assert Instance.objects.get(sop_instance_uid=good_uids[2]).status == InstanceStatus.CREATED
    assert Instance.objects.get(sop_instance_uid=uids_of(bad)[2]).status == InstanceStatus.CREATING
    response = client.get(instance_url(good), HTTP_ACCEPT="application/dicom; transfer-syntax=*")
    assert response.status_code == 200
    assert response_bytes(response) == good
