"""A store and a delete of one study serialise: whichever way they interleave, both succeed.

The delete is paused after each of its statements in turn (a Django execute wrapper on its
connection) while a store into the same study runs; the pause is then lifted. Whatever the
store saw, it must end stored and visible in a study of its own counters, and the delete must
have removed exactly what it named. On PostgreSQL a store reserving between the delete's
choice of series to drop and its DELETE once lost its row to the delete's cascade (272), or
made the delete fail at COMMIT on a foreign key (500).
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from pydicom.uid import generate_uid

from changefeed.models import ChangeAction, ChangeFeedEntry
from partitions.services import partition_default
from studies.dicom.streams import FileSlice
from studies.models import Instance, InstanceStatus, Series, Study
from studies.services import instances_delete
from studies.services.stow import stow_process
from tests.helpers import dicom_bytes

pytestmark = pytest.mark.django_db(transaction=True)

# SQLite: time for the store to reach the database lock the paused delete holds.
STORE_HEAD_START = 0.25


def _store_waits(storer: threading.Thread) -> None:
    """Until the store waits for a lock the paused delete holds (at its reservation or its commit)."""
    if connection.vendor != "postgresql":
        storer.join(timeout=STORE_HEAD_START)
        return
    deadline = time.monotonic() + 30
    while storer.is_alive() and time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return
        time.sleep(0.02)


def _stow(data: bytes) -> str | None:
    result = stow_process(
        parts=[FileSlice(io.BytesIO(data), 0, len(data))], partition=partition_default(), study_uid=None, api_version=2
    )
    return result.outcomes[0].failure_reason


def _race(pause_after: int, delete: Callable[[], int], store: Callable[[], str | None]) -> tuple[bool, Any, Any]:
    """Run `delete`, paused after its `pause_after`-th statement while `store` runs; both outcomes."""
    paused, resume = threading.Event(), threading.Event()
    seen = 0
    results: dict[str, Any] = {}

    def pause_wrapper(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        nonlocal seen
        result = execute(sql, params, many, context)
        seen += 1
        if seen == pause_after:
            paused.set()
            resume.wait(timeout=30)
        return result

    def run(name: str, work: Callable[[], Any], wrapped: bool) -> None:
        try:
            if wrapped:
                with connection.execute_wrapper(pause_wrapper):
                    results[name] = work()
            else:
                results[name] = work()
        except BaseException as exc:  # reported by the assertions
            results[name] = exc
        finally:
            connection.close()

    deleter = threading.Thread(target=run, args=("delete", delete, True))
    deleter.start()
    while not paused.wait(timeout=0.05):
        if not deleter.is_alive():  # finished before reaching that statement: no more points
            deleter.join()
            return False, results["delete"], None
    storer = threading.Thread(target=run, args=("store", store, False))
    storer.start()
    _store_waits(storer)
    resume.set()
    deleter.join(timeout=60)
    storer.join(timeout=60)
    return True, results["delete"], results["store"]


def _assert_only(study_uid: str, sop_uid: str) -> None:
    """The study holds exactly the stored instance, visible, with counters that say so."""
    rows = list(Instance.objects.filter(study_instance_uid=study_uid).values_list("sop_instance_uid", "status"))
    assert rows == [(sop_uid, InstanceStatus.CREATED)]
    study = Study.objects.get(study_instance_uid=study_uid)
    assert (study.num_instances, study.num_series) == (1, 1)
    assert [series.num_instances for series in Series.objects.filter(study=study)] == [1]
    creates = ChangeFeedEntry.objects.filter(sop_instance_uid=sop_uid, action=ChangeAction.CREATE).count()
    assert creates == 1


def _points(scenario: Callable[[int], bool]) -> int:
    point = 1
    while scenario(point):
        point += 1
    return point - 1


def _delete_racing_store(point: int, *, delete: Callable[[], int], study_uid: str, series_uid: str) -> bool:
    """Store one instance into `series_uid` of the study while `delete` removes its one instance."""
    new_sop = generate_uid()
    later = dicom_bytes(StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid, SOPInstanceUID=new_sop)
    raced, deleted, stored = _race(point, delete, lambda: _stow(later))
    assert deleted == 1, f"delete paused after statement {point}: {deleted!r}"
    if raced:
        assert stored is None, f"store racing statement {point} of the delete: {stored!r}"
        _assert_only(study_uid, new_sop)
    return raced


def test_series_delete_racing_a_store_into_that_series():
    def scenario(point: int) -> bool:
        study_uid, series_uid = generate_uid(), generate_uid()
        assert _stow(dicom_bytes(StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid)) is None
        return _delete_racing_store(
            point,
            delete=lambda: instances_delete(
                partition=partition_default(), study_instance_uid=study_uid, series_instance_uid=series_uid
            ),
            study_uid=study_uid,
            series_uid=series_uid,
        )

    assert _points(scenario) >= 3  # the lock, the rows, the deletes: several interleavings tried


def test_study_delete_racing_a_store_of_a_new_series():
    def scenario(point: int) -> bool:
        study_uid = generate_uid()
        assert _stow(dicom_bytes(StudyInstanceUID=study_uid)) is None
        return _delete_racing_store(
            point,
            delete=lambda: instances_delete(partition=partition_default(), study_instance_uid=study_uid),
            study_uid=study_uid,
            series_uid=generate_uid(),
        )

    assert _points(scenario) >= 3


def test_a_study_that_keeps_vanishing_fails_its_instance_not_the_request(monkeypatch):
    # As if a delete of the study committed after every round of creating its rows.
    from studies.services import store_rows

    monkeypatch.setattr(store_rows, "studies_series_create", lambda **_kwargs: [])
    study_uid = generate_uid()
    assert _stow(dicom_bytes(StudyInstanceUID=study_uid)) == 272
    assert not Instance.objects.filter(study_instance_uid=study_uid).exists()
    assert not Study.objects.filter(study_instance_uid=study_uid).exists()
