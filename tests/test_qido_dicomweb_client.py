"""QIDO-RS through dicomweb-client against a live server, paging with get_remaining=True.

pytest-django's `live_server` (threaded WSGI) serves the searches: QIDO requests have no
body, so WSGI's trouble with chunked request bodies does not arise, and the server shares
the test database. Data is stored beforehand through the test client. Set
DJANGO_LIVE_TEST_SERVER_ADDRESS=127.0.0.1:<port> to pin the address (default: a free port).
The test database is flushed after a transactional test; the Microsoft.Default partition is
re-created on demand (partitions.services.partition_default).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.uid import generate_uid

from tests.helpers import dicom_bytes, store

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dicomweb(live_server) -> Iterator[DICOMwebClient]:  # noqa: ANN001
    client = DICOMwebClient(url=f"{live_server.url}/v2")
    yield client
    # End the keep-alive connection: its server thread then closes its database connection,
    # which would otherwise keep the test database from being dropped.
    client._session.close()


def _values(datasets: list[dict], keyword_tag: str) -> list:
    return [dataset[keyword_tag]["Value"][0] for dataset in datasets]


def test_search_for_studies_series_and_instances(client, dicomweb) -> None:  # noqa: ANN001
    studies = [
        store(dicom_bytes(PatientID="DWC", PatientName=f"Jones^Patient{i}"))[0].study_instance_uid for i in range(5)
    ]
    big_study, big_series = generate_uid(), generate_uid()
    sops = [
        store(dicom_bytes(StudyInstanceUID=big_study, SeriesInstanceUID=big_series, PatientID="DWC-BIG"))[0].sop_instance_uid
        for _ in range(5)
    ]
    store(dicom_bytes(StudyInstanceUID=big_study, PatientID="DWC-BIG", Modality="MR"))

    found = dicomweb.search_for_studies(search_filters={"PatientID": "DWC"}, limit=2, get_remaining=True)
    assert _values(found, "0020000D") == list(reversed(studies))  # every page, newest first
    assert set(_values(found, "00100020")) == {"DWC"}

    one_page = dicomweb.search_for_studies(search_filters={"PatientID": "DWC"}, limit=2)
    assert _values(one_page, "0020000D") == list(reversed(studies))[:2]

    fuzzy = dicomweb.search_for_studies(
        search_filters={"PatientName": "jon patient3"}, fuzzymatching=True, fields=["NumberOfStudyRelatedInstances"]
    )
    assert _values(fuzzy, "00100010") == [{"Alphabetic": "Jones^Patient3"}]
    assert _values(fuzzy, "00201208") == [1]

    series = dicomweb.search_for_series(study_instance_uid=big_study, get_remaining=True, limit=1)
    assert sorted(_values(series, "00080060")) == ["CT", "MR"]
    all_series = dicomweb.search_for_series(search_filters={"PatientID": "DWC-BIG", "Modality": "CT"})
    assert _values(all_series, "0020000E") == [big_series]

    instances = dicomweb.search_for_instances(
        study_instance_uid=big_study, series_instance_uid=big_series, limit=2, get_remaining=True
    )
    assert _values(instances, "00080018") == list(reversed(sops))
    everywhere = dicomweb.search_for_instances(search_filters={"PatientID": "DWC-BIG"}, get_remaining=True, limit=4)
    assert len(everywhere) == 6
    assert dicomweb.search_for_studies(search_filters={"PatientID": "NOBODY"}) == []
