"""Every writer of a study's instance rows locks the study row first (PostgreSQL).

A DELETE locks the study FOR UPDATE, then deletes its instance rows. A writer that took
instance rows first and the study (or its foreign-key check on it) second deadlocked with it:
the bulk update releasing a failed study's reservations did (drills/race.py, a DELETE
answering 500), and a reindex batch, whose values' foreign keys are checked at COMMIT, could.
Each test holds the study as a DELETE does and checks the writer waits for it before it
touches an instance row: it must neither finish nor hold an instance row meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from pydicom.uid import generate_uid

from dicomsvc.dicom_values import pn_search_form
from dicomsvc.sqlbatch import statements_joined, statements_run
from partitions.services import partition_default
from studies.eqt.reindex import reindex_batch
from studies.models import Instance, PersonNameWord, Study
from studies.services.person_names import person_name_words_statements
from studies.services.study_update import study_update_release, study_update_reserve
from tests.helpers import dicom_bytes, store

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="row locks are PostgreSQL's"),
]


def _waiting_for_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return bool(cursor.fetchone()[0])


def _instance_rows_free(study_uid: str) -> bool:
    """No other transaction holds one of the study's instance rows (NOWAIT would fail)."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                list(Instance.objects.select_for_update(nowait=True).filter(study_instance_uid=study_uid))
        except Exception:  # noqa: BLE001 (LockNotAvailable, wrapped by Django as OperationalError)
            return False
    return True


def _started(work: Callable[[], Any], outcome: dict[str, Any]) -> threading.Thread:
    """`work` run in a thread of its own (its own connection); its result or exception in `outcome`,
    once the thread is waiting for a lock (or ended, or 30 s passed)."""

    def run() -> None:
        try:
            outcome["result"] = work()
        except BaseException as exc:  # reported by the caller
            outcome["result"] = exc
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 30
    while thread.is_alive() and not _waiting_for_lock() and time.monotonic() < deadline:
        time.sleep(0.01)
    return thread


def _in_transaction(writer: Callable[[], Any]) -> Callable[[], Any]:
    def run() -> Any:
        with transaction.atomic():
            return writer()

    return run


def _assert_waits_for_study(study_uid: str, writer: Callable[[], Any]) -> Any:
    """Hold the study as a DELETE does while `writer` runs in its own transaction; its result."""
    outcome: dict[str, Any] = {}
    with transaction.atomic():
        Study.objects.select_for_update().get(study_instance_uid=study_uid)
        thread = _started(_in_transaction(writer), outcome)
        assert thread.is_alive(), f"the writer did not wait for the study row: {outcome.get('result')!r}"
        assert _waiting_for_lock()
    # The DELETE's transaction ended (here: without deleting); the writer goes on.
    thread.join(timeout=30)
    assert not isinstance(outcome["result"], BaseException), outcome["result"]
    return outcome["result"]


def _stored_study() -> str:
    study_uid = generate_uid()
    for _ in range(3):
        store(dicom_bytes(StudyInstanceUID=study_uid))
    return study_uid


def test_releasing_a_failed_update_waits_for_the_study_before_its_rows(client) -> None:  # noqa: ANN001
    study_uid = _stored_study()
    with transaction.atomic():
        pending = study_update_reserve(partition=partition_default(), study_uid=study_uid)
    assert len(pending) == 3
    queued = _assert_waits_for_study(
        study_uid, lambda: study_update_release(partition=partition_default(), study_uid=study_uid, pending=pending)
    )
    assert len(queued) == 3
    assert not Instance.objects.filter(study_instance_uid=study_uid, new_watermark__isnull=False).exists()
    assert _instance_rows_free(study_uid)


def test_a_reindex_batch_waits_for_the_study_before_its_rows(client) -> None:  # noqa: ANN001
    study_uid = _stored_study()
    batch = _assert_waits_for_study(study_uid, lambda: reindex_batch(tags=(), after=0, limit=100))
    watermarks = sorted(Instance.objects.filter(study_instance_uid=study_uid).values_list("watermark", flat=True))
    assert (batch.read, batch.indexed, batch.last) == (3, 3, watermarks[-1])


def test_a_store_that_waited_for_the_study_rewrites_the_name_words_written_meanwhile(client) -> None:  # noqa: ANN001
    """The commit reads the study's name word rows only once it holds the study: a committer
    that held it first and wrote another name's words is seen, and its words replaced."""
    study_uid = generate_uid()
    (first,) = store(dicom_bytes(StudyInstanceUID=study_uid, PatientName="ALPHA^ONE"))
    outcome: dict[str, Any] = {}
    with transaction.atomic():
        # As a concurrent store's commit does: the study FOR NO KEY UPDATE, then its name's words.
        Study.objects.select_for_update(no_key=True).get(pk=first.study_id)
        thread = _started(
            lambda: store(dicom_bytes(StudyInstanceUID=study_uid, PatientName="CHARLIE^THREE")), outcome
        )
        assert _waiting_for_lock(), f"the store did not wait for the study: {outcome.get('result')!r}"
        columns = {"patient_name_search": pn_search_form("BRAVO^TWO")}
        statements_run(statements_joined(
            person_name_words_statements(partition_id=first.partition_id, study_id=first.study_id, columns=columns)
        ))  # fmt: skip
        Study.objects.filter(pk=first.study_id).update(**columns)
    thread.join(timeout=30)
    assert not isinstance(outcome["result"], BaseException), outcome["result"]
    words = set(PersonNameWord.objects.filter(study_id=first.study_id).values_list("word", "name"))
    assert words == {("charlie", "charlie three"), ("three", "charlie three")}
