"""Searching on extended query tags: what is indexed when, each VR's matching, levels,
partitions, and the STOW behaviour of v1 and v2 on an invalid indexed value."""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from operations.runner import operation_run
from studies.eqt.models import ExtendedQueryTag, ExtendedQueryTagValue
from tests.helpers import (
    add_tags,
    column,
    dicom_bytes,
    key,
    reindex,
    results,
    search,
    start,
    store,
    stow,
    tag_entry,
    tags_ready,
    uids_of,
    with_private,
)

pytestmark = pytest.mark.django_db


def _sops(response) -> set[str]:  # noqa: ANN001
    if response.status_code == 204:
        return set()
    return set(column(response, "SOPInstanceUID"))


def test_data_stored_before_a_tag_is_searchable_once_reindexed_and_after_at_once(client) -> None:  # noqa: ANN001
    (before,) = store(dicom_bytes(BodyPartExamined="CHEST"))
    response = add_tags(client, tag_entry("BodyPartExamined", "instance"))
    (after,) = store(dicom_bytes(BodyPartExamined="CHEST"))
    # Adding: not yet searchable (today's message), but the new instance is indexed already.
    not_yet = search(client, "instances", {"BodyPartExamined": "CHEST"})
    assert not_yet.status_code == 400
    assert "is not queryable" in not_yet.content.decode()
    assert ExtendedQueryTagValue.objects.filter(instance=after).count() == 1
    assert not ExtendedQueryTagValue.objects.filter(instance=before).exists()
    reindex(response)
    assert _sops(search(client, "instances", {"BodyPartExamined": "CHEST"})) == {
        before.sop_instance_uid, after.sop_instance_uid
    }
    (later,) = store(dicom_bytes(BodyPartExamined="CHEST"))
    assert later.sop_instance_uid in _sops(search(client, "instances", {"00180015": "chest"}))


VR_CASES = [
    # keyword, stored values of three instances, query, indexes of the instances it finds
    ("BodyPartExamined", ["CHEST", "HEAD", "CHESTWALL"], "chest", [0]),  # CS, case-insensitive
    ("BodyPartExamined", ["CHEST", "HEAD", "CHESTWALL"], "CHEST*", [0, 2]),
    ("ProtocolName", ["Brain Routine", "Brain Fast", "Knee"], "brain ?outine", [0]),  # LO
    ("StationName", ["CT01", "CT02", "MR01"], "CT*", [0, 1]),  # SH
    ("RetrieveAETitle", ["PACS", "ARCHIVE", "PACS"], "PACS", [0, 2]),  # AE
    ("PatientAge", ["045Y", "012M", "045Y"], "045Y", [0, 2]),  # AS
    ("FrameOfReferenceUID", ["1.2.3", "1.2.4", "1.2.5"], "1.2.3,1.2.5", [0, 2]),  # UI list
    ("PerformingPhysicianName", ["Smith^John", "Smythe^Jane", "Doe^John"], "smith^john", [0]),  # PN
    ("SeriesDate", ["20200101", "20200315", "20210101"], "20200101-20201231", [0, 1]),  # DA range
    ("SeriesDate", ["20200101", "20200315", "20210101"], "-20200101", [0]),
    ("AcquisitionDateTime", ["20200101120000", "20200101130000.5", "2021"], "20200101123000-20201231", [1]),  # DT
    ("AcquisitionDateTime", ["20200101120000", "20200101130000.5", "2021"], "2021", [2]),
    ("SeriesTime", ["083000", "120000.25", "2359"], "0900-2359", [1, 2]),  # TM
    ("SliceThickness", ["2.5", "5", "5.0"], "5", [1, 2]),  # DS numeric
    ("SeriesNumber", ["1", "2", "02"], "2", [1, 2]),  # IS numeric
    ("RecommendedDisplayFrameRateInFloat", [0.1, 2.5, 0.1], "0.1", [0, 2]),  # FL
    ("DiffusionBValue", [1000.0, 500.0, 1000.0], "1000", [0, 2]),  # FD
    ("TagAngleSecondAxis", [-5, 5, 7], "-5", [0]),  # SS
    ("ReferencePixelX0", [-70000, 70000, 1], "70000", [1]),  # SL
    ("DataPointRows", [4000000000, 1, 2], "4000000000", [0]),  # UL
]


@pytest.mark.parametrize(("keyword", "stored", "query", "found"), VR_CASES, ids=lambda v: str(v)[:20])
def test_each_vr_matches_by_its_rules(client, keyword, stored, query, found) -> None:  # noqa: ANN001
    tags_ready(client, tag_entry(keyword, "instance"))
    rows = store(*(dicom_bytes(**{keyword: value}) for value in stored))
    response = search(client, "instances", {keyword: query})
    assert _sops(response) == {rows[index].sop_instance_uid for index in found}


def test_person_names_match_fuzzily_with_fuzzymatching(client) -> None:  # noqa: ANN001
    tags_ready(client, tag_entry("PerformingPhysicianName", "series"))
    john, jane = store(dicom_bytes(PerformingPhysicianName="Smith^John"), dicom_bytes(PerformingPhysicianName="Doe^Jane"))
    params = {"PerformingPhysicianName": "jo smi", "fuzzymatching": "true"}
    assert _sops(search(client, "instances", params)) == {john.sop_instance_uid}
    assert len(results(search(client, "series", {"PerformingPhysicianName": "jo", "fuzzymatching": "true"}))) == 1
    assert search(client, "series", {"PerformingPhysicianName": "ohn", "fuzzymatching": "true"}).status_code == 204
    assert _sops(search(client, "instances", {"PerformingPhysicianName": "jo"})) == set()  # exact without fuzzy
    assert jane.sop_instance_uid in _sops(search(client, "instances", {"PerformingPhysicianName": "DOE^JANE"}))


def test_bad_values_are_400(client) -> None:  # noqa: ANN001
    tags_ready(client, tag_entry("SeriesNumber", "instance"), tag_entry("DiffusionBValue", "instance"),
               tag_entry("AcquisitionDateTime", "instance"), tag_entry("SeriesTime", "instance"))
    store(dicom_bytes(SeriesNumber="1"))
    cases = {
        "SeriesNumber": ("x", "Invalid query: specified value 'x' for attribute 'SeriesNumber' is not a valid long value."),
        "DiffusionBValue": ("1,5", "Invalid query: specified value '1,5' for attribute 'DiffusionBValue' is not a valid "
                            "double value."),
        "AcquisitionDateTime": ("20201301", "Invalid query: specified DateTime value '20201301' is invalid for attribute "
                                "'AcquisitionDateTime'. DateTime should be valid and formatted as yyyyMMddHHmmss.FFFFFF."),
        "SeriesTime": ("2500", "Invalid query: specified Time value '2500' is invalid for attribute 'SeriesTime'. Time "
                       "should be valid and formatted as HHmmss.FFFFFF."),
    }
    for keyword, (query, message) in cases.items():
        response = search(client, "instances", {keyword: query})
        assert (response.status_code, response.content.decode()) == (400, message)
    response = search(client, "instances", {"AcquisitionDateTime": "20200101120000+0100"})
    assert response.status_code == 400
    assert "contains an offset, which is not supported" in response.content.decode()


def test_a_tag_is_searchable_at_its_level_and_below(client) -> None:  # noqa: ANN001
    tags_ready(client, tag_entry("ProtocolName", "series"))
    (row,) = store(dicom_bytes(ProtocolName="Knee"))
    assert len(results(search(client, "series", {"ProtocolName": "Knee"}))) == 1
    assert _sops(search(client, "instances", {"ProtocolName": "Knee"})) == {row.sop_instance_uid}
    assert len(results(search(client, f"studies/{row.study_instance_uid}/series", {"ProtocolName": "Knee"}))) == 1
    refused = search(client, "studies", {"ProtocolName": "Knee"})
    assert refused.status_code == 400
    assert refused.content.decode().startswith("Invalid query: AttributeId ProtocolName is not queryable.")


def test_the_newest_stored_instance_wins_at_study_level(client) -> None:  # noqa: ANN001
    tags_ready(client, tag_entry("BodyPartExamined", "study"))
    first = dicom_bytes(BodyPartExamined="HEAD")
    study = uids_of(first)[0]
    store(first)
    store(dicom_bytes(StudyInstanceUID=study, BodyPartExamined="CHEST"))
    store(dicom_bytes(StudyInstanceUID=study, BodyPartExamined=None))  # empty: not indexed
    assert search(client, "studies", {"BodyPartExamined": "HEAD"}).status_code == 204
    assert column(search(client, "studies", {"BodyPartExamined": "CHEST"}), "StudyInstanceUID") == [study]
    assert ExtendedQueryTagValue.objects.count() == 1


def test_only_the_first_value_of_a_multi_valued_attribute_is_indexed(client) -> None:  # noqa: ANN001
    tags_ready(client, tag_entry("StationName", "instance"))
    response = stow(client, [dicom_bytes(StationName=["CT01", "CT02"])])
    assert response.status_code == 200
    assert "only first value is indexed" in response["Warning"]
    assert _sops(search(client, "instances", {"StationName": "CT02"})) == set()
    assert len(_sops(search(client, "instances", {"StationName": "CT01"}))) == 1


def test_values_are_per_partition(client, partitions_on) -> None:  # noqa: ANN001
    tags_ready(client, tag_entry("BodyPartExamined", "series"))
    data = {"alice": dicom_bytes(BodyPartExamined="CHEST")}
    study, series, sop = uids_of(data["alice"])
    data["bob"] = dicom_bytes(StudyInstanceUID=study, SeriesInstanceUID=series, SOPInstanceUID=sop,
                              BodyPartExamined="HEAD")
    store(data["alice"], partition="alice")
    store(data["bob"], partition="bob")
    for partition, (mine, theirs) in {"alice": ("CHEST", "HEAD"), "bob": ("HEAD", "CHEST")}.items():
        assert column(search(client, "series", {"BodyPartExamined": mine}, partition=partition),
                      "SeriesInstanceUID") == [series]
        assert search(client, "series", {"BodyPartExamined": theirs}, partition=partition).status_code == 204


def test_includefield_returns_the_tag(client) -> None:  # noqa: ANN001
    tags_ready(client, tag_entry("BodyPartExamined", "series"))
    store(dicom_bytes(BodyPartExamined="CHEST"))
    (dataset,) = results(search(client, "series", {"includefield": "BodyPartExamined"}))
    assert dataset[key("BodyPartExamined")] == {"vr": "CS", "Value": ["CHEST"]}
    (dataset,) = results(search(client, "instances", {"BodyPartExamined": "CHEST"}))
    assert dataset[key("BodyPartExamined")] == {"vr": "CS", "Value": ["CHEST"]}


def test_disabled_and_unknown_tags_keep_their_messages(client) -> None:  # noqa: ANN001
    tags_ready(client, tag_entry("BodyPartExamined", "series"))
    store(dicom_bytes(BodyPartExamined="CHEST"))
    client.patch("/v2/extendedquerytags/BodyPartExamined", data={"queryStatus": "disabled"}, format="json")
    response = search(client, "series", {"BodyPartExamined": "CHEST"})
    assert (response.status_code, response.content.decode()) == (
        400, "Query is disabled on specified attribute 'BodyPartExamined'."
    )
    response = search(client, "series", {"ProtocolName": "x"})
    assert response.content.decode().startswith("Invalid query: AttributeId ProtocolName is not queryable.")


def test_one_sql_statement_per_search_with_tags(client, django_assert_num_queries) -> None:  # noqa: ANN001
    tags_ready(client, tag_entry("BodyPartExamined", "series"), tag_entry("ProtocolName", "instance"),
               tag_entry("SeriesDate", "study"))
    store(dicom_bytes(BodyPartExamined="CHEST", ProtocolName="Knee", SeriesDate="20200101", Modality="CT"))
    search(client, "studies")  # the partition and the tag list are cached from here on
    params = {"BodyPartExamined": "CHEST", "ProtocolName": "Knee", "SeriesDate": "20200101-", "Modality": "CT"}
    with django_assert_num_queries(1):
        assert len(results(search(client, "instances", params))) == 1
    with django_assert_num_queries(1):
        assert len(results(search(client, "studies", {"SeriesDate": "20200101", "PatientID": "1CT1"}))) == 1


def test_a_store_without_tags_touches_no_tag_table(client) -> None:  # noqa: ANN001
    store(dicom_bytes())  # the tag list is cached from here on
    with CaptureQueriesContext(connection) as queries:
        store(dicom_bytes())
    assert not any(ExtendedQueryTag._meta.db_table in query["sql"] for query in queries.captured_queries)
    tags_ready(client, tag_entry("BodyPartExamined", "series"))
    before = ExtendedQueryTagValue.objects.count()
    store(dicom_bytes(BodyPartExamined="CHEST"))
    assert ExtendedQueryTagValue.objects.count() == before + 1


def test_v1_fails_an_instance_with_an_invalid_indexed_value_and_v2_warns(client) -> None:  # noqa: ANN001
    tags_ready(client, tag_entry("BodyPartExamined", "instance"))
    bad = dicom_bytes(BodyPartExamined="chest")  # CS is upper case
    response = stow(client, [bad], url="/v1/studies")
    assert response.status_code == 409
    failed = response.json()["00081198"]["Value"][0]
    assert failed["00081197"]["Value"] == [43264]
    assert not ExtendedQueryTagValue.objects.exists()
    response = stow(client, [bad], url="/v2/studies")
    assert response.status_code == 202
    (referenced,) = response.json()["00081199"]["Value"]
    assert referenced["00081196"]["Value"] == [1]
    comments = json.dumps(referenced)
    assert "(0018,0015)" in comments
    assert not ExtendedQueryTagValue.objects.exists()
    assert search(client, "instances", {"BodyPartExamined": "chest"}).status_code == 204


def test_delete_removes_values_with_the_instance(client) -> None:  # noqa: ANN001
    tags_ready(client, tag_entry("BodyPartExamined", "instance"), tag_entry("ProtocolName", "study"))
    (row,) = store(dicom_bytes(BodyPartExamined="CHEST", ProtocolName="Knee"))
    assert ExtendedQueryTagValue.objects.count() == 2
    assert client.delete(f"/v2/studies/{row.study_instance_uid}").status_code == 204
    assert not ExtendedQueryTagValue.objects.exists()


def test_bulk_update_reindexes_what_it_changes(client) -> None:  # noqa: ANN001
    tags_ready(client, tag_entry("PatientSex", "study"), tag_entry("PatientAge", "study"))
    (row,) = store(dicom_bytes(PatientSex="F", PatientAge="040Y"))
    change = {"00100040": {"vr": "CS", "Value": ["M"]}, "00101010": {"vr": "AS", "Value": ["041Y"]}}
    response = start(client, {"studyInstanceUids": [row.study_instance_uid], "changeDataset": change})
    assert response.status_code == 202, response.content
    operation_run(operation_id=response.json()["id"])
    assert search(client, "studies", {"PatientSex": "F"}).status_code == 204
    assert column(search(client, "studies", {"PatientSex": "M"}), "StudyInstanceUID") == [row.study_instance_uid]
    assert search(client, "studies", {"PatientAge": "040Y"}).status_code == 204
    assert len(results(search(client, "studies", {"PatientAge": "041Y"}))) == 1


@pytest.mark.parametrize("implicit", [False, True], ids=["explicit VR", "implicit VR"])
def test_a_private_tag_is_indexed_where_its_creator_reserved_the_block(client, implicit) -> None:  # noqa: ANN001
    tags_ready(client, tag_entry("00991010", "instance", vr="LO", private_creator="ACME 1.0"))
    ours = with_private(dicom_bytes(), group=0x0099, creator="ACME 1.0", offset=0x10, vr="LO", value="Fast Scan",
                        implicit=implicit)
    theirs = with_private(dicom_bytes(), group=0x0099, creator="OTHER", offset=0x10, vr="LO", value="Fast Scan",
                          implicit=implicit)
    (row, _other) = store(ours, theirs, status=202 if implicit else 200)
    found = _sops(search(client, "instances", {"00991010": "fast scan"}))
    # Under implicit VR the attribute is UN: bulk data, left out of the metadata, so not indexed.
    assert found == (set() if implicit else {row.sop_instance_uid})


def test_a_store_whose_tag_list_still_holds_a_tag_being_deleted_writes_no_value_for_it(client) -> None:  # noqa: ANN001
    tags_ready(client, tag_entry("BodyPartExamined", "instance"))
    store(dicom_bytes(BodyPartExamined="HEAD"))  # this process's tag list holds the tag from here on
    # Another process marks it deleting; this one's cached list has not seen that yet.
    ExtendedQueryTag.objects.update(status="deleting")
    (row,) = store(dicom_bytes(BodyPartExamined="CHEST"))
    assert not ExtendedQueryTagValue.objects.filter(instance=row).exists()
    assert ExtendedQueryTagValue.objects.count() == 1


def test_an_instance_search_on_one_value_of_an_instance_tag_is_newest_first_and_pages(client) -> None:  # noqa: ANN001
    """Such a search joins the value row and orders by its watermark (`search_driver`): the
    order must stay the instances' own, a bulk update moving an instance to the front."""
    first = store(dicom_bytes(ProtocolName="KNEE", PatientID="P-FIRST"))[0]
    store(dicom_bytes(ProtocolName="HEAD"))
    tags_ready(client, tag_entry("ProtocolName", "instance"))
    later = [store(dicom_bytes(ProtocolName="knee"))[0] for _ in range(3)]
    newest_first = [row.sop_instance_uid for row in reversed([first, *later])]

    with CaptureQueriesContext(connection) as captured:
        found = column(search(client, "instances", {"ProtocolName": "KNEE"}), "SOPInstanceUID")
    assert found == newest_first
    assert len(captured.captured_queries) == 1
    page = search(client, "instances", {"ProtocolName": "KNEE", "limit": "2", "offset": "1"})
    assert column(page, "SOPInstanceUID") == newest_first[1:3]
    # With a core attribute beside it.
    assert column(search(client, "instances", {"ProtocolName": "KNEE", "PatientID": "P-FIRST"}), "SOPInstanceUID") == [
        first.sop_instance_uid
    ]

    change = {"00100040": {"vr": "CS", "Value": ["M"]}}
    response = start(client, {"studyInstanceUids": [first.study_instance_uid], "changeDataset": change})
    operation_run(operation_id=response.json()["id"])
    found = column(search(client, "instances", {"ProtocolName": "KNEE"}), "SOPInstanceUID")
    assert found == [first.sop_instance_uid, *newest_first[:3]]


@pytest.mark.parametrize(
    ("entry", "path", "attribute", "stored", "query"),
    [
        (tag_entry("BodyPartExamined", "series"), "series", "SeriesInstanceUID", "CHEST", "chest"),
        (tag_entry("AcquisitionDate", "study"), "studies", "StudyInstanceUID", "20200101", "20200101"),
        (tag_entry("SliceThickness", "study"), "studies", "StudyInstanceUID", "5.0", "5"),
    ],
    ids=["series tag on series", "study DA tag on studies", "study DS tag on studies"],
)
def test_a_search_on_one_value_of_a_tag_of_its_level_is_newest_first_and_pages(  # noqa: PLR0913
    client, entry, path, attribute, stored, query  # noqa: ANN001
) -> None:
    keyword = entry["path"]
    rows = [store(dicom_bytes(**{keyword: stored}))[0] for _ in range(2)]
    store(dicom_bytes(**{keyword: "20210101" if keyword == "AcquisitionDate" else "1"}))  # another value
    tags_ready(client, entry)
    rows += [store(dicom_bytes(**{keyword: stored}))[0] for _ in range(2)]
    uid = "series_instance_uid" if path == "series" else "study_instance_uid"
    newest_first = [getattr(row, uid) for row in reversed(rows)]

    with CaptureQueriesContext(connection) as captured:
        assert column(search(client, path, {keyword: query}), attribute) == newest_first
    assert len(captured.captured_queries) == 1
    page = search(client, path, {keyword: query, "limit": "2", "offset": "1"})
    assert column(page, attribute) == newest_first[1:3]
    assert column(search(client, path, {keyword: query, "PatientID": rows[0].study.patient_id, "limit": "1"}),
                  attribute) == newest_first[:1]
