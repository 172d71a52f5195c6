"""Many clients storing into one study at once: every instance stored, counters exact, no 500."""

from __future__ import annotations

import io
import threading

import pytest
from django.db import connection
from pydicom.uid import generate_uid

from changefeed.models import ChangeFeedEntry
from partitions.services import partition_default
from studies.dicom.streams import FileSlice
from studies.models import Instance, InstanceStatus, Series, Study
from studies.services.stow import stow_process
from tests.helpers import dicom_bytes

CLIENTS = 8
PER_CLIENT = 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_stows_into_one_study_all_succeed():
    # One STOW per instance from several clients into the same study and series, as a modality
    # sending a study slice by slice over parallel associations does. On PostgreSQL the commit
    # step's row locks on the study and series once deadlocked with the deferred foreign-key
    # checks of concurrent reservations, failing stores with 272.
    study_uid, series_uid = generate_uid(), generate_uid()
    payloads = [
        [dicom_bytes(StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid) for _ in range(PER_CLIENT)]
        for _ in range(CLIENTS)
    ]
    partition = partition_default()
    barrier = threading.Barrier(CLIENTS)
    outcomes: list[int | None] = []
    errors: list[BaseException] = []

    def client(datas: list[bytes]) -> None:
        try:
            barrier.wait()
            for data in datas:
                result = stow_process(
                    parts=[FileSlice(io.BytesIO(data), 0, len(data))],
                    partition=partition,
                    study_uid=None,
                    api_version=2,
                )
                outcomes.extend(outcome.failure_reason for outcome in result.outcomes)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(datas,)) for datas in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    total = CLIENTS * PER_CLIENT
    assert not errors, errors
    assert outcomes == [None] * total
    assert Instance.objects.filter(study_instance_uid=study_uid, status=InstanceStatus.CREATED).count() == total
    study = Study.objects.get(study_instance_uid=study_uid)
    assert (study.num_instances, study.num_series) == (total, 1)
    assert Series.objects.get(series_instance_uid=series_uid).num_instances == total
    assert ChangeFeedEntry.objects.filter(study_instance_uid=study_uid).count() == total


@pytest.mark.django_db(transaction=True)
def test_deletes_racing_stores_into_one_study():
    """Deleting instances of a study while others are stored into it: no deadlock, exact counters."""
    from studies.services import instances_delete

    study_uid, series_uid = generate_uid(), generate_uid()
    partition = partition_default()
    first = [dicom_bytes(StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid) for _ in range(8)]
    for data in first:
        stow_process(parts=[FileSlice(io.BytesIO(data), 0, len(data))], partition=partition, study_uid=None,
                     api_version=2)
    sops = list(Instance.objects.filter(study_instance_uid=study_uid).values_list("sop_instance_uid", flat=True))
    later = [dicom_bytes(StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid) for _ in range(8)]
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def storer() -> None:
        try:
            barrier.wait()
            for data in later:
                result = stow_process(parts=[FileSlice(io.BytesIO(data), 0, len(data))], partition=partition,
                                      study_uid=None, api_version=2)
                assert result.outcomes[0].failure_reason is None
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    def deleter() -> None:
        try:
            barrier.wait()
            for sop in sops:
                instances_delete(partition=partition, study_instance_uid=study_uid,
                                 series_instance_uid=series_uid, sop_instance_uid=sop)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=storer), threading.Thread(target=deleter)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert Instance.objects.filter(study_instance_uid=study_uid, status=InstanceStatus.CREATED).count() == 8
    study = Study.objects.get(study_instance_uid=study_uid)
    assert (study.num_instances, study.num_series) == (8, 1)
    assert Series.objects.get(series_instance_uid=series_uid).num_instances == 8
