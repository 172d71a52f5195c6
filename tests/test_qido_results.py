"""What QIDO-RS returns: attributes per version, includefield, computed attributes, paging,
character sets, and a fixed number of SQL queries per search."""

from __future__ import annotations

import json

import pytest
from pydicom.uid import generate_uid

from studies.blobstore import storage
from studies.models import Instance, PersonNameWord, Study
from tests.helpers import Archive, column, dicom_bytes, key, results, search, store, value


def _keys(*keywords: str) -> set[str]:
    return {key(keyword) for keyword in keywords}


V2_STUDY = _keys(
    "StudyInstanceUID", "StudyDate", "StudyDescription", "AccessionNumber", "ReferringPhysicianName",
    "PatientName", "PatientID", "PatientBirthDate",
)
V2_SERIES = _keys("SeriesInstanceUID", "Modality", "PerformedProcedureStepStartDate", "ManufacturerModelName")
# v1 defaults present in CT_small.dcm (InstanceAvailability and NumberOfFrames are not in the file).
V1_STUDY = _keys(
    "SpecificCharacterSet", "StudyDate", "StudyTime", "AccessionNumber", "ReferringPhysicianName",
    "TimezoneOffsetFromUTC", "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyID",
    "StudyInstanceUID",
)
V1_SERIES = _keys(
    "SpecificCharacterSet", "Modality", "TimezoneOffsetFromUTC", "SeriesInstanceUID",
    "PerformedProcedureStepStartDate",
)
V1_INSTANCE = _keys(
    "SpecificCharacterSet", "SOPClassUID", "SOPInstanceUID", "TimezoneOffsetFromUTC", "InstanceNumber", "Rows",
    "Columns", "BitsAllocated",
)
STUDY_UID, SERIES_UID, SOP_UID = key("StudyInstanceUID"), key("SeriesInstanceUID"), key("SOPInstanceUID")


@pytest.fixture
def archive(db) -> Archive:  # noqa: ANN001
    return Archive()


def _paths(archive: Archive) -> dict[str, str]:
    a = archive.alice
    return {
        "studies": "studies",
        "series": "series",
        "instances": "instances",
        "study-series": f"studies/{a.uid}/series",
        "study-instances": f"studies/{a.uid}/instances",
        "series-instances": f"studies/{a.uid}/series/{a.series[0]}/instances",
    }


@pytest.mark.django_db
def test_v2_default_attributes_per_resource(client, archive) -> None:  # noqa: ANN001
    paths = _paths(archive)
    expected = {
        "studies": V2_STUDY,
        "series": V2_STUDY | V2_SERIES,
        "instances": V2_STUDY | V2_SERIES | {SOP_UID},
        "study-series": V2_SERIES | {STUDY_UID},
        "study-instances": V2_SERIES | {SOP_UID, STUDY_UID},
        "series-instances": {SOP_UID, STUDY_UID, SERIES_UID},
    }
    for resource, keys in expected.items():
        for dataset in results(search(client, paths[resource], {"PatientID": "PID-ALICE"}
                                      if resource in ("studies", "series", "instances") else None)):
            assert set(dataset) == keys, resource


@pytest.mark.django_db
def test_v1_default_attributes_differ(client, archive) -> None:  # noqa: ANN001
    paths = _paths(archive)
    expected = {
        "studies": V1_STUDY,
        "series": V1_STUDY | V1_SERIES,
        "study-series": V1_SERIES | {STUDY_UID},
        "series-instances": V1_INSTANCE | {STUDY_UID, SERIES_UID},
    }
    for version in ("v1", "v1.0-prerelease"):
        for resource, keys in expected.items():
            params = {"PatientID": "PID-ALICE"} if resource in ("studies", "series") else None
            for dataset in results(search(client, paths[resource], params, version=version)):
                assert set(dataset) == keys, (version, resource)


@pytest.mark.django_db
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_includefield_all_returns_the_larger_set(client, archive, version) -> None:  # noqa: ANN001
    extra_study = _keys("StudyDescription", "PatientAge", "PatientWeight", "AdditionalPatientHistory")
    computed_study = _keys("ModalitiesInStudy", "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances")
    (study,) = results(search(client, "studies", {"PatientID": "PID-ALICE", "includefield": "all"}, version=version))
    assert set(study) == V1_STUDY | extra_study | computed_study
    series = results(search(client, f"studies/{archive.alice.uid}/series", {"includefield": "ALL"}, version=version))
    for dataset in series:
        assert set(dataset) == V1_SERIES | _keys(
            "SeriesNumber", "Laterality", "SeriesDate", "SeriesTime", "NumberOfSeriesRelatedInstances"
        ) | {STUDY_UID}


@pytest.mark.django_db
def test_includefield_by_keyword_tag_repeated_and_comma_separated(client, archive) -> None:  # noqa: ANN001
    params = [("PatientID", "PID-ALICE"), ("includefield", "PatientSex,00101010"), ("includefield", "StudyID"),
              ("includefield", "00091001"), ("includefield", "PatientSize")]
    (study,) = results(search(client, "studies", params))
    # Any attribute may be asked for, private ones too; it is returned when stored (PatientSize is not).
    assert set(study) == V2_STUDY | _keys("PatientSex", "PatientAge", "StudyID") | {"00091001"}
    assert value(study, "PatientSex") == "O"
    assert value(study, "PatientAge") == "000Y"
    assert value(study, "StudyID") == "1CT1"


@pytest.mark.django_db
def test_filter_attributes_are_returned(client, archive) -> None:  # noqa: ANN001
    (study,) = results(search(client, "studies", {"PatientID": "PID-ALICE", "ModalitiesInStudy": "CT"}))
    assert set(study) == V2_STUDY | _keys("ModalitiesInStudy")
    mr_image = "1.2.840.10008.5.1.4.1.1.4"
    (instance,) = results(search(client, "instances", {"PatientID": "PID-BOB", "SOPClassUID": mr_image}))
    assert value(instance, "SOPClassUID") == mr_image


@pytest.mark.django_db
def test_computed_attributes(client, archive) -> None:  # noqa: ANN001
    a = archive.alice
    fields = {"includefield": "ModalitiesInStudy,NumberOfStudyRelatedSeries,NumberOfStudyRelatedInstances,"
                              "NumberOfSeriesRelatedInstances"}
    (study,) = results(search(client, "studies", {"PatientID": "PID-ALICE", **fields}))
    assert study["00080061"] == {"vr": "CS", "Value": ["CT", "MR"]}
    assert study["00201206"] == {"vr": "IS", "Value": [2]}
    assert study["00201208"] == {"vr": "IS", "Value": [3]}
    assert "00201209" not in study  # a series attribute has no value for a study
    series = results(search(client, "series", {"PatientID": "PID-ALICE", **fields}))
    counts = {value(item, "SeriesInstanceUID"): value(item, "NumberOfSeriesRelatedInstances") for item in series}
    assert counts == {a.series[0]: 2, a.series[1]: 1}
    assert {value(dataset, "NumberOfStudyRelatedInstances") for dataset in series} == {3}
    instances = results(search(client, f"studies/{a.uid}/instances", fields))
    assert sorted(value(dataset, "NumberOfSeriesRelatedInstances") for dataset in instances) == [1, 2, 2]
    assert {json.dumps(dataset["00080061"]) for dataset in instances} == {'{"vr": "CS", "Value": ["CT", "MR"]}'}


@pytest.mark.django_db
def test_study_and_series_values_come_from_the_newest_instance(client) -> None:  # noqa: ANN001
    study = generate_uid()
    store(dicom_bytes(StudyInstanceUID=study, PatientName="Old^Name", PatientID="OLD", StudyDescription="First"))
    store(dicom_bytes(StudyInstanceUID=study, PatientName="New^Name", PatientID="NEW", StudyDescription="Second"))
    (found,) = results(search(client, "studies", {"PatientID": "NEW"}))
    assert (value(found, "PatientName"), value(found, "StudyDescription")) == ("New^Name", "Second")
    assert search(client, "studies", {"PatientID": "OLD"}).status_code == 204
    assert search(client, "studies", {"PatientName": "old", "fuzzymatching": "true"}).status_code == 204
    assert column(search(client, "studies", {"PatientName": "nam", "fuzzymatching": "true"}), "PatientID") == ["NEW"]
    # The word rows follow the newest name, and so does the whole name each of them carries.
    assert column(search(client, "studies", {"PatientName": "nam ne", "fuzzymatching": "true"}), "PatientID") == [
        "NEW"
    ]
    assert search(client, "studies", {"PatientName": "nam old", "fuzzymatching": "true"}).status_code == 204
    words = PersonNameWord.objects.filter(study__study_instance_uid=study).values_list("word", "name")
    assert sorted(words) == [("name", "new name"), ("new", "new name")]


@pytest.mark.django_db
def test_results_are_newest_first_and_paged(client) -> None:  # noqa: ANN001
    uids = [store(dicom_bytes(PatientID="PAGE"))[0].study_instance_uid for _ in range(5)]
    newest_first = list(reversed(uids))
    first = search(client, "studies", {"PatientID": "PAGE", "limit": "2"})
    assert column(first, "StudyInstanceUID") == newest_first[:2]
    assert first["Warning"] == '299 127.0.0.1:8000: "There are additional results that can be requested."'
    second = search(client, "studies", {"PatientID": "PAGE", "limit": "2", "offset": "2"})
    assert column(second, "StudyInstanceUID") == newest_first[2:4]
    assert "Warning" in second
    last = search(client, "studies", {"PatientID": "PAGE", "limit": "2", "offset": "4"})
    assert column(last, "StudyInstanceUID") == newest_first[4:]
    assert "Warning" not in last
    exact = search(client, "studies", {"PatientID": "PAGE", "limit": "5"})
    assert len(results(exact)) == 5 and "Warning" not in exact
    past_end = search(client, "studies", {"PatientID": "PAGE", "offset": "5"})
    assert (past_end.status_code, past_end.content) == (204, b"")
    assert "Content-Type" not in past_end or past_end["Content-Type"] != "application/dicom+json"


@pytest.mark.django_db
def test_default_limit_is_100_and_200_is_allowed(client) -> None:  # noqa: ANN001
    study = generate_uid()
    series = generate_uid()
    sops = [
        store(dicom_bytes(StudyInstanceUID=study, SeriesInstanceUID=series))[0].sop_instance_uid for _ in range(101)
    ]
    path = f"studies/{study}/series/{series}/instances"
    default = search(client, path)
    assert column(default, "SOPInstanceUID") == list(reversed(sops))[:100]
    assert "Warning" in default
    everything = search(client, path, {"limit": "200"})
    assert set(column(everything, "SOPInstanceUID")) == set(sops)
    assert "Warning" not in everything


@pytest.mark.django_db
def test_no_match_is_204_without_body(client, archive) -> None:  # noqa: ANN001
    response = search(client, "studies", {"PatientID": "NOBODY"})
    assert response.status_code == 204
    assert response.content == b""


@pytest.mark.django_db
def test_search_never_reads_blobs(client, archive, monkeypatch) -> None:  # noqa: ANN001
    def refuse(self, name, mode="rb"):  # noqa: ANN001, ANN202
        raise AssertionError("QIDO opened a blob")

    monkeypatch.setattr(type(storage()), "open", refuse)
    for path in _paths(archive).values():
        assert results(search(client, path, {"includefield": "all"}))


@pytest.mark.django_db
def test_each_search_is_one_query_whatever_the_result_size(client, django_assert_num_queries) -> None:  # noqa: ANN001
    archive = Archive()
    paths = _paths(archive)
    for path in paths.values():
        search(client, path)  # the partition lookup is cached from the first request on
    params = {"includefield": "all", "PatientName": "do", "fuzzymatching": "true", "ModalitiesInStudy": "CT"}

    def counts() -> dict[str, int]:
        found = {}
        for resource, path in paths.items():
            scoped = resource not in ("studies", "series", "instances")
            with django_assert_num_queries(1):
                response = search(client, path, None if scoped else params)
            found[resource] = len(results(response))
        return found

    before = counts()
    for _ in range(4):  # alice's study grows and more patients arrive
        store(dicom_bytes(StudyInstanceUID=archive.alice.uid, SeriesInstanceUID=archive.alice.series[0],
                          PatientID="PID-ALICE", PatientName="Doe^John"))
        store(dicom_bytes(PatientID="PID-OTHER", PatientName="Doe^Jim"))
    after = counts()
    assert before == {"studies": 1, "series": 2, "instances": 3, "study-series": 2, "study-instances": 3,
                      "series-instances": 2}
    assert after == {"studies": 5, "series": 6, "instances": 11, "study-series": 2, "study-instances": 7,
                     "series-instances": 6}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("charset", "name", "exact", "fuzzy", "marker"),
    [
        ("ISO_IR 144", "Иванов^Иван", "иванов^ИВАН", "ива", "Иванов"),
        (
            ["", "ISO 2022 IR 87"],
            "Yamada^Tarou=山田^太郎=やまだ^たろう",
            "yamada^tarou=山田^太郎=やまだ^たろう",
            "山田 tar",
            "山田",
        ),
    ],
)
def test_non_default_character_sets_are_matched_and_returned_as_utf8(  # noqa: ANN001
    client, charset, name, exact, fuzzy, marker
) -> None:
    data = dicom_bytes(SpecificCharacterSet=charset, PatientName=name, PatientID="CHARSET")
    assert marker.encode() not in data  # the file holds the name in its own character set, not UTF-8
    store(data)
    assert Study.objects.get(patient_id="CHARSET").patient_name == name
    for params in ({"PatientName": exact}, {"PatientName": fuzzy, "fuzzymatching": "true"}):
        response = search(client, "studies", params)
        (found,) = results(response)
        groups = dict(zip(("Alphabetic", "Ideographic", "Phonetic"), name.split("="), strict=False))
        assert found["00100010"] == {"vr": "PN", "Value": [groups]}
        assert marker.encode() in response.content  # UTF-8 on the wire
    instance = Instance.objects.get(study__patient_id="CHARSET")
    assert json.loads(instance.metadata)["00100010"]["Value"][0] == groups
