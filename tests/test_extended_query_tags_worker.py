"""The reindex through real Celery workers (the PostgreSQL/Redis run): a worker SIGKILLed
mid-reindex, and a new worker finishing it with every instance indexed exactly once."""

from __future__ import annotations

import signal

import pytest
from django.conf import settings

from operations.models import Operation, OperationSlice, OperationStatus
from studies.eqt.models import ExtendedQueryTag, ExtendedQueryTagValue
from studies.models import Instance
from tests.helpers import add_tags, dicom_bytes, store, tag_entry, wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(
        not settings.CELERY_BROKER_URL.startswith("redis://")
        or not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
        reason="needs a real worker: run with DATABASE_URL=postgres://... and CELERY_BROKER_URL=redis://...",
    ),
]

INSTANCES = 300
# One instance per batch, so the kill lands between two of many committed batches.
WORKER_ENV = {"DICOM_REINDEX_BATCH_SIZE": "1", "DICOM_EXTENDED_QUERY_TAG_CACHE_MS": "500"}


def _done(operation_id: str) -> int:
    """Instances the committed batches of the operation's slices indexed."""
    return sum(OperationSlice.objects.filter(operation_id=operation_id).values_list("done", flat=True))


def test_a_killed_worker_s_reindex_is_finished_by_a_new_worker_exactly_once(client, workers) -> None:  # noqa: ANN001
    for start in range(0, INSTANCES, 50):
        store(*(dicom_bytes(BodyPartExamined=f"PART{n}") for n in range(start, start + 50)))
    first, _log = workers.start(**WORKER_ENV)
    response = add_tags(client, tag_entry("BodyPartExamined", "instance"))
    assert response.status_code == 202, response.content
    operation_id = response.json()["id"]

    wait_for(lambda: _done(operation_id) >= 20, timeout=60, what="the reindex to be under way")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    done = _done(operation_id)
    assert Operation.objects.get(pk=operation_id).status == OperationStatus.RUNNING
    assert 20 <= done < INSTANCES
    # Values commit with the slice progress that counts them: exactly the batches it records.
    assert ExtendedQueryTagValue.objects.count() == done

    _second, second_log = workers.start(**WORKER_ENV)
    wait_for(lambda: Operation.objects.get(pk=operation_id).status == OperationStatus.SUCCEEDED, timeout=120,
         what="the new worker to finish the reindex")
    assert "taking over from a runner silent" in second_log.read_text()
    assert _done(operation_id) == INSTANCES
    assert Operation.objects.get(pk=operation_id).checkpoint["done"] == INSTANCES
    values = dict(ExtendedQueryTagValue.objects.values_list("instance_id", "text_value"))
    assert len(values) == INSTANCES == ExtendedQueryTagValue.objects.count()
    for instance in Instance.objects.all():
        assert values[instance.pk].startswith("PART")
    assert ExtendedQueryTag.objects.get().status == "ready"
