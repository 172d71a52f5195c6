"""QIDO-RS partition scoping: the same UIDs in two partitions are two unrelated archives."""

from __future__ import annotations

import pytest
from pydicom.uid import generate_uid

from tests.helpers import column, dicom_bytes, results, search, store, value

ALICE = "alice-hospital"
BOB = "bob-clinic"


@pytest.fixture
def twins(client, partitions_on, db) -> tuple[str, str, list[str]]:  # noqa: ANN001
    """One study UID and one series UID in both partitions; alice's holds two instances, bob's three."""
    study, series = generate_uid(), generate_uid()
    sops = [generate_uid() for _ in range(3)]
    common = dict(StudyInstanceUID=study, SeriesInstanceUID=series)
    for sop in sops[:2]:
        store(dicom_bytes(SOPInstanceUID=sop, PatientName="Doe^John", PatientID="PID-1",
                          Modality="CT", StudyDate="20200101", **common), partition=ALICE)
    for sop in sops:
        store(dicom_bytes(SOPInstanceUID=sop, PatientName="Doe^Joan", PatientID="PID-1",
                          Modality="MR", StudyDate="20210101", **common), partition=BOB)
    return study, series, sops


COUNTS = {"includefield": "NumberOfStudyRelatedInstances,NumberOfSeriesRelatedInstances,ModalitiesInStudy"}


def test_same_uids_in_two_partitions_are_searched_apart(client, twins) -> None:  # noqa: ANN001
    study, series, sops = twins
    for partition, name, modality, instances in ((ALICE, "Doe^John", "CT", 2), (BOB, "Doe^Joan", "MR", 3)):
        (found,) = results(search(client, "studies", {"PatientID": "PID-1", **COUNTS}, partition=partition))
        assert value(found, "PatientName") == name
        assert value(found, "StudyInstanceUID") == study
        assert value(found, "NumberOfStudyRelatedInstances") == instances
        assert found["00080061"]["Value"] == [modality]
        (found,) = results(search(client, f"studies/{study}/series", COUNTS, partition=partition))
        assert (value(found, "Modality"), value(found, "NumberOfSeriesRelatedInstances")) == (modality, instances)
        found = search(client, f"studies/{study}/series/{series}/instances", partition=partition)
        assert sorted(column(found, "SOPInstanceUID")) == sorted(sops[:instances])
        found = results(search(client, "instances", {"PatientID": "PID-1", "includefield": "PatientName"},
                               partition=partition))
        assert [value(dataset, "PatientName") for dataset in found] == [name] * instances


def test_no_filter_kind_leaks_across_partitions(client, twins) -> None:  # noqa: ANN001
    study, _series, sops = twins
    fuzzy = {"fuzzymatching": "true"}
    # Each partition's own values match; the other partition's never do.
    assert search(client, "studies", {"PatientName": "joan", **fuzzy}, partition=ALICE).status_code == 204
    assert column(search(client, "studies", {"PatientName": "joan", **fuzzy}, partition=BOB), "PatientName") == [
        "Doe^Joan"
    ]
    assert search(client, "studies", {"PatientName": "doe joan", **fuzzy}, partition=ALICE).status_code == 204
    assert column(search(client, "series", {"PatientName": "d jo", **fuzzy}, partition=ALICE), "PatientName") == [
        "Doe^John"
    ]
    assert search(client, "studies", {"ModalitiesInStudy": "MR"}, partition=ALICE).status_code == 204
    assert search(client, "series", {"Modality": "MR"}, partition=ALICE).status_code == 204
    assert search(client, "studies", {"StudyDate": "20210101-"}, partition=ALICE).status_code == 204
    assert search(client, "instances", {"SOPInstanceUID": sops[2]}, partition=ALICE).status_code == 204
    assert column(search(client, "instances", {"SOPInstanceUID": sops[2]}, partition=BOB), "SOPInstanceUID") == [
        sops[2]
    ]
    assert len(results(search(client, f"studies/{study}/instances", partition=ALICE))) == 2


def test_partition_without_data_finds_nothing(client, twins) -> None:  # noqa: ANN001
    store(dicom_bytes(PatientID="OTHER"), partition="charlie-lab")
    assert search(client, "studies", {"PatientID": "PID-1"}, partition="charlie-lab").status_code == 204
    assert search(client, f"studies/{twins[0]}/series", partition="charlie-lab").status_code == 204


def test_unknown_or_missing_partition(client, twins) -> None:  # noqa: ANN001
    response = search(client, "studies", partition="nobody")
    assert (response.status_code, response.content) == (400, b"Specified PartitionName nobody does not exist.")
    response = search(client, "series")
    assert (response.status_code, response.content) == (400, b"PartitionName value is missing in the route segment.")


@pytest.mark.django_db
def test_default_partition_when_the_feature_is_off(client, settings) -> None:  # noqa: ANN001
    settings.DICOM_ENABLE_DATA_PARTITIONS = False
    study = store(dicom_bytes(PatientID="DEFAULT"))[0].study_instance_uid
    assert column(search(client, "studies", {"PatientID": "DEFAULT"}), "StudyInstanceUID") == [study]
    response = search(client, "studies", partition="Microsoft.Default")
    assert (response.status_code, response.content) == (400, b"Data partitions feature is disabled.")
