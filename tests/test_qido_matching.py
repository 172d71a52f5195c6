"""QIDO-RS matching rules, each at every resource that accepts the attribute.

Results are checked by the attribute values they return, not only by how many there are.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from partitions.models import DEFAULT_PARTITION_NAME, Partition
from studies.models import Instance, InstanceStatus, Series, Study
from tests.helpers import Archive, column, results, search, value

# Resources that accept study-level attributes, and how many of alice's results each returns.
STUDY_LEVEL = [("studies", 1), ("series", 2), ("instances", 3)]


@pytest.fixture
def archive(db) -> Archive:  # noqa: ANN001
    return Archive()


def _study_uids(response) -> set[str]:  # noqa: ANN001
    return set(column(response, "StudyInstanceUID"))


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "count"), STUDY_LEVEL)
def test_string_match_is_exact_and_case_insensitive(client, archive, path, count) -> None:  # noqa: ANN001
    assert column(search(client, path, {"PatientID": "pid-alice"}), "PatientID") == ["PID-ALICE"] * count
    assert column(search(client, path, {"AccessionNumber": "acc-100"}), "AccessionNumber") == ["ACC-100"] * count
    assert column(search(client, path, {"StudyDescription": "CHEST ct"}), "StudyDescription") == ["Chest CT"] * count
    assert search(client, path, {"PatientID": "PID-ALIC"}).status_code == 204
    assert search(client, path, {"PatientID": "PID-ALICE2"}).status_code == 204


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "count"), STUDY_LEVEL)
def test_wildcards_on_string_attributes(client, archive, path, count) -> None:  # noqa: ANN001
    assert column(search(client, path, {"PatientID": "*ALICE"}), "PatientID") == ["PID-ALICE"] * count
    assert column(search(client, path, {"PatientID": "PID-?O?"}), "PatientID") == ["PID-BOB"]
    # Case-insensitive like exact matching: "pid-charlie" matches too.
    assert set(column(search(client, path, {"PatientID": "pid-*"}), "PatientID")) == {
        "PID-ALICE", "PID-BOB", "pid-charlie",
    }
    assert set(column(search(client, path, {"AccessionNumber": "ACC-?00"}), "AccessionNumber")) == {
        "ACC-100", "ACC-200", "ACC-300",
    }
    # LIKE's own metacharacters are literals in a DICOM value.
    assert search(client, path, {"PatientID": "PID_ALICE"}).status_code == 204
    assert search(client, path, {"PatientID": "PID%"}).status_code == 204


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "count"), STUDY_LEVEL)
def test_person_name_is_case_and_accent_insensitive(client, archive, path, count) -> None:  # noqa: ANN001
    assert column(search(client, path, {"PatientName": "MULLER^jurgen"}), "PatientName") == ["Müller^Jürgen"]
    assert column(search(client, path, {"PatientName": "doe^john"}), "PatientName") == ["Doe^John"] * count
    assert column(search(client, path, {"ReferringPhysicianName": "house^gregory"}), "PatientName") == [
        "Doe^John"
    ] * count
    # Exact: a part of the name is not the name.
    assert search(client, path, {"PatientName": "Müller"}).status_code == 204


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "count"), STUDY_LEVEL)
def test_fuzzy_matching_is_word_prefix(client, archive, path, count) -> None:  # noqa: ANN001
    fuzzy = {"fuzzymatching": "true"}
    # "joh" prefixes John and Johnson, "do" prefixes Doe and Dorothy.
    found = column(search(client, path, {**fuzzy, "PatientName": "joh do"}), "PatientName")
    assert sorted(set(found)) == ["Doe^John", "Johnson^Dorothy"]
    assert column(search(client, path, {**fuzzy, "PatientName": "doe JOHN"}), "PatientName") == ["Doe^John"] * count
    assert column(search(client, path, {**fuzzy, "PatientName": "jürg"}), "PatientName") == ["Müller^Jürgen"]
    assert search(client, path, {**fuzzy, "PatientName": "ohn"}).status_code == 204
    assert search(client, path, {**fuzzy, "PatientName": "joh xyz"}).status_code == 204
    # Without fuzzymatching the same value is an exact match.
    assert search(client, path, {"PatientName": "joh do"}).status_code == 204
    assert search(client, path, {"fuzzymatching": "false", "PatientName": "doe"}).status_code == 204


@pytest.mark.django_db
@pytest.mark.parametrize("path", [path for path, _count in STUDY_LEVEL])
def test_fuzzy_matching_edge_cases(client, archive, path) -> None:  # noqa: ANN001
    fuzzy = {"fuzzymatching": "true"}

    def names(value: str) -> list[str]:
        return sorted(set(column(search(client, path, {**fuzzy, "PatientName": value}), "PatientName")))

    # One-letter words, in either order; every word must match some word of the name.
    assert names("j d") == names("d j") == ["Doe^John", "Johnson^Dorothy"]
    assert names("m j") == ["Müller^Jürgen"]
    assert search(client, path, {**fuzzy, "PatientName": "j x"}).status_code == 204
    # A short word only matches at the start of a word: "o" starts none of these names' words.
    assert search(client, path, {**fuzzy, "PatientName": "joh o"}).status_code == 204
    # Accents and case are folded on both sides, whichever word is the longest.
    assert names("MÜL j") == names("mul JÜRG") == names("müller^jürgen") == ["Müller^Jürgen"]
    # Two query words may match the same name word; a longer word must still match on its own.
    assert names("jo joh") == ["Doe^John", "Johnson^Dorothy"]
    assert names("john johnson") == ["Johnson^Dorothy"]
    assert search(client, path, {**fuzzy, "PatientName": "doe johnson"}).status_code == 204
    # Wildcards stay within one word: "d*n" would match across "doe john" but no word of
    # alice's or charlie's name starts with d and has an n after it.
    assert names("j*n d") == ["Doe^John", "Johnson^Dorothy"]
    assert search(client, path, {**fuzzy, "PatientName": "joh d*n"}).status_code == 204
    assert names("d?r joh") == ["Johnson^Dorothy"]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "count"), STUDY_LEVEL)
def test_fuzzy_matching_applies_to_each_person_name_attribute(client, archive, path, count) -> None:  # noqa: ANN001
    fuzzy = {"fuzzymatching": "true"}
    assert column(search(client, path, {**fuzzy, "ReferringPhysicianName": "gre ho"}), "PatientName") == [
        "Doe^John"
    ] * count
    # "doe" is alice's family name but charlie's referring physician's.
    assert column(search(client, path, {**fuzzy, "ReferringPhysicianName": "doe"}), "PatientName") == [
        "Johnson^Dorothy"
    ]
    assert column(search(client, path, {**fuzzy, "PatientName": "doe"}), "PatientName") == ["Doe^John"] * count


@pytest.mark.django_db
@pytest.mark.parametrize("path", [path for path, _count in STUDY_LEVEL])
def test_fuzzy_matching_on_both_person_name_attributes(client, archive, path) -> None:  # noqa: ANN001
    def names(params: dict[str, str]) -> list[str]:
        response = search(client, path, {"fuzzymatching": "true", **params})
        return sorted(set(column(response, "PatientName"))) if response.status_code == 200 else []

    # Either attribute may hold the longest word; both conditions hold.
    assert names({"PatientName": "joh", "ReferringPhysicianName": "ho gre"}) == ["Doe^John"]
    assert names({"PatientName": "d", "ReferringPhysicianName": "gregory"}) == ["Doe^John"]
    assert names({"PatientName": "m", "ReferringPhysicianName": "wilson"}) == ["Müller^Jürgen"]
    assert names({"PatientName": "m", "ReferringPhysicianName": "house"}) == []
    assert names({"PatientName": "jo d", "ReferringPhysicianName": "d"}) == ["Johnson^Dorothy"]
    # Wildcards stay within one word on the other attribute too: charlie's physician is Doe^Jane.
    assert names({"PatientName": "johnson", "ReferringPhysicianName": "j*e"}) == ["Johnson^Dorothy"]
    assert names({"PatientName": "johnson", "ReferringPhysicianName": "d*j"}) == []


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "count"), STUDY_LEVEL)
def test_person_name_wildcards(client, archive, path, count) -> None:  # noqa: ANN001
    assert column(search(client, path, {"PatientName": "*son^*"}), "PatientName") == ["Johnson^Dorothy"]
    assert column(search(client, path, {"PatientName": "doe*"}), "PatientName") == ["Doe^John"] * count
    assert column(search(client, path, {"PatientName": "M?ller^*"}), "PatientName") == ["Müller^Jürgen"]


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "count"), STUDY_LEVEL)
def test_date_value_and_ranges(client, archive, path, count) -> None:  # noqa: ANN001
    assert column(search(client, path, {"StudyDate": "20200115"}), "StudyDate") == ["20200115"] * count
    assert set(column(search(client, path, {"StudyDate": "20210101-20221231"}), "StudyDate")) == {
        "20210620", "20220301",
    }
    assert set(column(search(client, path, {"StudyDate": "20210620-"}), "StudyDate")) == {"20210620", "20220301"}
    assert set(column(search(client, path, {"StudyDate": "-20210620"}), "StudyDate")) == {"20200115", "20210620"}
    assert column(search(client, path, {"PatientBirthDate": "-19601231"}), "PatientBirthDate") == ["19551231"]
    assert column(search(client, path, {"00100030": "19700101-19700101"}), "PatientID") == ["PID-ALICE"] * count
    assert search(client, path, {"StudyDate": "20230101-"}).status_code == 204


@pytest.mark.django_db
def test_series_date_ranges_at_every_series_resource(client, archive) -> None:  # noqa: ANN001
    a = archive.alice
    late = {"PerformedProcedureStepStartDate": "20200116-"}
    assert set(column(search(client, "series", late), "PerformedProcedureStepStartDate")) == {
        "20200116", "20210620", "20220301",
    }
    assert column(search(client, f"studies/{a.uid}/series", {"PerformedProcedureStepStartDate": "-20200115"}),
                  "SeriesInstanceUID") == [a.series[0]]
    assert column(search(client, f"studies/{a.uid}/instances", late), "SOPInstanceUID") == a.sops[a.series[1]]
    assert len(results(search(client, "instances", late))) == 3


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["series", "instances", "study-series", "study-instances"])
def test_series_string_attributes(client, archive, path) -> None:  # noqa: ANN001
    a = archive.alice
    path = {"study-series": f"studies/{a.uid}/series", "study-instances": f"studies/{a.uid}/instances"}.get(
        path, path
    )
    in_alice = path.startswith("studies/")
    modalities = column(search(client, path, {"Modality": "mr"}), "Modality")
    assert modalities == ["MR"] if in_alice else sorted(modalities) == ["MR", "MR"]
    models = column(search(client, path, {"ManufacturerModelName": "signa*"}), "ManufacturerModelName")
    assert sorted(models) == (["Signa HDxt"] if in_alice else ["Signa", "Signa HDxt"])
    assert search(client, path, {"Modality": "M"}).status_code == 204


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "alice_count"), STUDY_LEVEL)
def test_modalities_in_study_matches_any_series(client, archive, path, alice_count) -> None:  # noqa: ANN001
    # alice has a CT and an MR series: an MR search finds her whole study, CT series included.
    found = results(search(client, path, {"ModalitiesInStudy": "MR"}))
    by_patient = {}
    for dataset in found:
        by_patient.setdefault(value(dataset, "PatientID"), []).append(dataset)
    assert sorted(by_patient) == ["PID-ALICE", "PID-BOB"]
    assert len(by_patient["PID-ALICE"]) == alice_count
    # The filter attribute is returned, computed from the index.
    assert by_patient["PID-ALICE"][0]["00080061"] == {"vr": "CS", "Value": ["CT", "MR"]}
    assert set(column(search(client, path, {"ModalitiesInStudy": "us\\ct"}), "PatientID")) == {
        "PID-ALICE", "pid-charlie",
    }
    assert set(column(search(client, path, {"00080061": "U*"}), "PatientID")) == {"pid-charlie"}
    assert search(client, path, {"ModalitiesInStudy": "XA"}).status_code == 204


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["studies", "series", "instances"])
def test_study_uid_single_and_lists(client, archive, path) -> None:  # noqa: ANN001
    a, b, c = archive.alice.uid, archive.bob.uid, archive.charlie.uid
    assert _study_uids(search(client, path, {"StudyInstanceUID": a})) == {a}
    assert _study_uids(search(client, path, {"StudyInstanceUID": f"{a}\\{b}"})) == {a, b}
    assert _study_uids(search(client, path, {"StudyInstanceUID": f"{a},{c}"})) == {a, c}
    assert _study_uids(search(client, path, {"StudyInstanceUID": [b, c]})) == {b, c}
    assert _study_uids(search(client, path, {"StudyInstanceUID": b, "0020000D": c})) == {b, c}
    assert search(client, path, {"StudyInstanceUID": "1.2.3"}).status_code == 204


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["series", "instances", "study-series", "study-instances"])
def test_series_uid_single_and_lists(client, archive, path) -> None:  # noqa: ANN001
    a = archive.alice
    path = {"study-series": f"studies/{a.uid}/series", "study-instances": f"studies/{a.uid}/instances"}.get(
        path, path
    )
    first, second = a.series
    found = column(search(client, path, {"SeriesInstanceUID": second}), "SeriesInstanceUID")
    assert found == [second]
    found = column(search(client, path, {"SeriesInstanceUID": f"{first}\\{second}"}), "SeriesInstanceUID")
    assert set(found) == {first, second}
    # A series of another study is not in alice's study.
    other = archive.bob.series[0]
    response = search(client, path, {"SeriesInstanceUID": f"{other},{second}"})
    expected = {second} if path.startswith("studies/") else {other, second}
    assert set(column(response, "SeriesInstanceUID")) == expected


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["instances", "study-instances", "series-instances"])
def test_sop_uid_and_class_matching(client, archive, path) -> None:  # noqa: ANN001
    a = archive.alice
    path = {
        "study-instances": f"studies/{a.uid}/instances",
        "series-instances": f"studies/{a.uid}/series/{a.series[0]}/instances",
    }.get(path, path)
    one, two = a.sops[a.series[0]]
    assert column(search(client, path, {"SOPInstanceUID": one}), "SOPInstanceUID") == [one]
    assert set(column(search(client, path, {"00080018": f"{one},{two}"}), "SOPInstanceUID")) == {one, two}
    ct_image = "1.2.840.10008.5.1.4.1.1.2"
    mr_image = "1.2.840.10008.5.1.4.1.1.4"
    ct = results(search(client, path, {"SOPClassUID": ct_image}))
    assert {value(dataset, "SOPClassUID") for dataset in ct} == {ct_image}
    mr = search(client, path, {"SOPClassUID": mr_image})
    if path == "instances":
        assert column(mr, "SOPInstanceUID") == archive.bob.all_sops
    else:
        assert mr.status_code == 204


@pytest.mark.django_db
def test_lower_levels_accept_parent_attributes(client, archive) -> None:  # noqa: ANN001
    a = archive.alice
    ct_image = "1.2.840.10008.5.1.4.1.1.2"
    response = search(client, "instances", {"PatientID": "PID-ALICE", "Modality": "MR", "SOPClassUID": ct_image})
    assert column(response, "SOPInstanceUID") == a.sops[a.series[1]]
    response = search(client, "series", {"PatientName": "doe^john", "Modality": "CT"})
    assert column(response, "SeriesInstanceUID") == [a.series[0]]
    response = search(client, f"studies/{a.uid}/instances", {"Modality": "CT"})
    assert set(column(response, "SOPInstanceUID")) == set(a.sops[a.series[0]])
    # Every condition must hold.
    assert search(client, "instances", {"PatientID": "PID-BOB", "Modality": "CT"}).status_code == 204


@pytest.mark.django_db
def test_study_scoped_resources_stay_in_their_study(client, archive) -> None:  # noqa: ANN001
    a = archive.alice
    assert column(search(client, f"studies/{a.uid}/series"), "SeriesInstanceUID") == list(reversed(a.series))
    assert set(column(search(client, f"studies/{a.uid}/instances"), "SOPInstanceUID")) == set(a.all_sops)
    series_instances = search(client, f"studies/{a.uid}/series/{a.series[0]}/instances")
    assert set(column(series_instances, "SOPInstanceUID")) == set(a.sops[a.series[0]])
    assert set(column(series_instances, "StudyInstanceUID")) == {a.uid}
    assert set(column(series_instances, "SeriesInstanceUID")) == {a.series[0]}
    # A series UID under the wrong study finds nothing.
    assert search(client, f"studies/{archive.bob.uid}/series/{a.series[0]}/instances").status_code == 204
    assert search(client, "studies/1.2.3/series").status_code == 204


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["studies", "series", "instances", "study-series", "study-instances"])
def test_rows_without_created_instances_are_invisible(client, archive, path) -> None:  # noqa: ANN001
    """A study or series whose only instance is still being stored is never returned."""
    partition = Partition.objects.get(partition_name=DEFAULT_PARTITION_NAME)
    study = Study.objects.create(partition=partition, study_instance_uid="1.2.3.4", patient_id="PID-ALICE")
    series = Series.objects.create(partition=partition, study=study, series_instance_uid="1.2.3.4.5", modality="CT")
    Instance.objects.create(
        partition=partition, study=study, series=series, study_instance_uid="1.2.3.4",
        series_instance_uid="1.2.3.4.5", sop_instance_uid="1.2.3.4.5.6", status=InstanceStatus.CREATING,
        watermark=10**12, metadata='{"00100020": {"vr": "LO", "Value": ["PID-ALICE"]}}', created_at=timezone.now(),
    )
    # A creating instance in a visible series is invisible too.
    Instance.objects.create(
        partition=partition, study_id=Study.objects.get(study_instance_uid=archive.alice.uid).pk,
        series_id=Series.objects.get(series_instance_uid=archive.alice.series[0]).pk,
        study_instance_uid=archive.alice.uid, series_instance_uid=archive.alice.series[0],
        sop_instance_uid="1.2.3.4.5.7", status=InstanceStatus.CREATING, watermark=10**12 + 1,
    )
    path = {"study-series": "studies/1.2.3.4/series", "study-instances": "studies/1.2.3.4/instances"}.get(path, path)
    if path.startswith("studies/"):
        assert search(client, path).status_code == 204
        return
    found = results(search(client, path, {"PatientID": "PID-ALICE"}))
    assert {value(dataset, "StudyInstanceUID") for dataset in found} == {archive.alice.uid}
    sops = {value(dataset, "SOPInstanceUID") for dataset in found if "00080018" in dataset}
    assert "1.2.3.4.5.7" not in sops
