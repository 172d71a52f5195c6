"""Concurrent writers never make a poller skip an entry.

Readers page with `sequence > last seen`. On PostgreSQL a sequence is drawn at INSERT and
becomes visible at COMMIT, so without `changefeed_append`'s advisory lock a transaction
holding sequence 5 could commit after one holding 6, and a poller that had read 6 would
never see 5. These tests run real threads on their own connections; the sleeps widen the
window between drawing a sequence and committing it (they measure nothing).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import pytest
from django.db import close_old_connections, connection, connections, transaction

from changefeed.models import ChangeAction, ChangeFeedEntry
from changefeed.selectors import changefeed_latest, changefeed_list, changefeed_window_list
from changefeed.services import changefeed_append
from tests.helpers import store

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture(autouse=True)
def _postgres_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("SQLite serialises writers for the whole transaction; the race exists on PostgreSQL")


def entry(tag: str) -> ChangeFeedEntry:
    return ChangeFeedEntry(
        action=ChangeAction.CREATE,
        partition_id=1,
        study_instance_uid="1.2.826.0.1.3680043.10.9",
        series_instance_uid="1.2.826.0.1.3680043.10.9.1",
        sop_instance_uid=f"1.2.826.0.1.3680043.10.9.1.{tag}",
        watermark=1,
    )


def in_thread(target: Callable[[], None], errors: list[BaseException]) -> threading.Thread:
    def run() -> None:
        try:
            target()
        except BaseException as exc:  # surfaced by the test
            errors.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def visible_sequences() -> set[int]:
    return set(ChangeFeedEntry.objects.values_list("sequence", flat=True))


def test_a_later_writer_cannot_commit_before_an_earlier_one():
    errors: list[BaseException] = []
    a_appended = threading.Event()
    seen_when_b_returned: set[int] = set()

    def writer_a() -> None:
        with transaction.atomic():
            changefeed_append(entries=[entry("a")])
            a_appended.set()
            time.sleep(0.5)  # A holds its sequence, uncommitted

    def writer_b() -> None:
        a_appended.wait(5)
        with transaction.atomic():
            changefeed_append(entries=[entry("b")])
        close_old_connections()
        seen_when_b_returned.update(visible_sequences())

    threads = [in_thread(writer_a, errors), in_thread(writer_b, errors)]
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    a = ChangeFeedEntry.objects.get(sop_instance_uid__endswith=".a")
    b = ChangeFeedEntry.objects.get(sop_instance_uid__endswith=".b")
    assert a.sequence < b.sequence
    assert a.timestamp <= b.timestamp
    # B's commit could only happen once A's entry was visible.
    assert seen_when_b_returned == {a.sequence, b.sequence}


def test_a_poller_following_the_feed_sees_every_committed_entry_once():
    errors: list[BaseException] = []
    writers_done = threading.Event()
    seen: list[int] = []
    seen_v2: list[int] = []
    rng = random.Random(4)

    def writer(index: int) -> Callable[[], None]:
        delays = [(rng.random() * 0.01, rng.random() * 0.02) for _ in range(15)]

        def run() -> None:
            for number, (before, after) in enumerate(delays):
                with transaction.atomic():
                    time.sleep(before)
                    changefeed_append(entries=[entry(f"{index}.{number}")])
                    time.sleep(after)  # commit later: the window a skipped entry would hide in
                if number % 5 == 4:
                    store()  # and the real store path, whose transaction appends at the end

        return run

    def v1_poller() -> None:
        last = 0
        while True:
            finished = writers_done.is_set()
            page = changefeed_list(offset=last, limit=100)
            seen.extend(row.sequence for row in page)
            if page:
                last = page[-1].sequence
                continue
            latest = changefeed_latest(by_timestamp=False)
            if latest is not None and latest.sequence > last + 100:
                # A visible higher sequence means (last, last + 100] is settled: skip the gap.
                last += 100
            elif finished:
                return

    def v2_poller() -> None:
        while True:
            finished = writers_done.is_set()
            page = changefeed_window_list(start=None, end=None, offset=len(seen_v2), limit=200)
            seen_v2.extend(row.sequence for row in page)
            if not page and finished:
                return

    threads = [in_thread(writer(index), errors) for index in range(6)]
    pollers = [in_thread(v1_poller, errors), in_thread(v2_poller, errors)]
    for thread in threads:
        thread.join(120)
    writers_done.set()
    for thread in pollers:
        thread.join(60)
    assert not errors, errors
    committed = sorted(visible_sequences())
    assert len(committed) == 6 * 15 + 6 * 3
    assert seen == committed
    assert seen_v2 == committed
    timestamps = list(ChangeFeedEntry.objects.order_by("sequence").values_list("timestamp", flat=True))
    assert timestamps == sorted(timestamps)


def test_a_store_commits_only_once_it_holds_the_feed_lock():
    # The store's commit takes the feed's lock in its second statement (the one round trip of
    # `sqlbatch.statements_commit`), not by `changefeed_append`: a writer holding the lock makes
    # it wait, with its instance still invisible, and its entry comes after the writer's.
    from studies.models import Instance, InstanceStatus

    errors: list[BaseException] = []
    stored: list[Instance] = []
    with transaction.atomic():
        changefeed_append(entries=[entry("held")])  # takes the lock until this block ends
        thread = in_thread(lambda: stored.extend(store()), errors)
        deadline = time.monotonic() + 30
        while not Instance.objects.exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # the reservation commits by itself, before the commit step
        time.sleep(0.5)
        assert thread.is_alive(), errors
        assert list(Instance.objects.values_list("status", flat=True)) == [InstanceStatus.CREATING]
    thread.join(30)
    assert not errors, errors
    assert Instance.objects.get().status == InstanceStatus.CREATED
    held, created = ChangeFeedEntry.objects.order_by("sequence")
    assert held.sop_instance_uid.endswith(".held")
    assert created.sop_instance_uid == stored[0].sop_instance_uid
    assert held.timestamp <= created.timestamp
