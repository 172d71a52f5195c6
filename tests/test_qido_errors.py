"""QIDO-RS 400/406 answers, word for word, at every resource they apply to."""

from __future__ import annotations

import pytest
from pydicom.uid import generate_uid

from tests.helpers import dicom_bytes, search, store

STUDY = generate_uid()
SERIES = generate_uid()
RESOURCES = {
    "studies": "studies",
    "series": "series",
    "instances": "instances",
    "study-series": f"studies/{STUDY}/series",
    "study-instances": f"studies/{STUDY}/instances",
    "series-instances": f"studies/{STUDY}/series/{SERIES}/instances",
}
# An attribute each resource accepts, and one that is valid DICOM but not searchable there.
ACCEPTED = {
    "studies": "PatientID",
    "series": "Modality",
    "instances": "SOPInstanceUID",
    "study-series": "Modality",
    "study-instances": "SOPInstanceUID",
    "series-instances": "SOPInstanceUID",
}
NOT_SEARCHABLE_HERE = {
    "studies": "Modality",
    "series": "SOPInstanceUID",
    "instances": "InstanceNumber",
    "study-series": "PatientID",
    "study-instances": "AccessionNumber",
    "series-instances": "Modality",
}
# A non-list (non-UID) attribute each resource accepts; series' instances accepts only UIDs.
NON_LIST = {
    "studies": ("PatientID", "00100020"),
    "series": ("Modality", "00080060"),
    "instances": ("AccessionNumber", "00080050"),
    "study-series": ("ManufacturerModelName", "00081090"),
    "study-instances": ("Modality", "00080060"),
}
# A date attribute each resource accepts.
DATES = {
    "studies": "StudyDate",
    "series": "PatientBirthDate",
    "instances": "StudyDate",
    "study-series": "PerformedProcedureStepStartDate",
    "study-instances": "PerformedProcedureStepStartDate",
}


def _bad(response, message: str) -> None:  # noqa: ANN001
    assert response.status_code == 400, (response.status_code, response.content)
    assert response.content.decode() == message


@pytest.fixture(autouse=True)
def _stored(db) -> None:  # noqa: ANN001
    """Something to find, so an error is never a side effect of an empty archive."""
    store(dicom_bytes(StudyInstanceUID=STUDY, SeriesInstanceUID=SERIES, PatientID="P", StudyDate="20200101"))


@pytest.mark.parametrize("resource", RESOURCES)
def test_unknown_attribute_names_the_parameter(client, resource) -> None:  # noqa: ANN001
    for name in ("Foo", "patientid", "0010002"):
        _bad(
            search(client, RESOURCES[resource], {name: "x"}),
            f"Invalid query: unknown query parameter '{name}'. If the parameter is an attribute keyword, check the "
            "casing as they are case-sensitive. The conformance statement has a list of supported query "
            "parameters, attributes and the levels.",
        )


@pytest.mark.parametrize("resource", RESOURCES)
def test_attribute_not_searchable_at_this_level(client, resource) -> None:  # noqa: ANN001
    name = NOT_SEARCHABLE_HERE[resource]
    _bad(
        search(client, RESOURCES[resource], {name: "1"}),
        f"Invalid query: AttributeId {name} is not queryable. If the parameter is an attribute keyword, check the "
        "casing as they are case-sensitive. The conformance statement has a list of supported query parameters, "
        "attributes and the levels.",
    )


@pytest.mark.parametrize("resource", RESOURCES)
def test_empty_value(client, resource) -> None:  # noqa: ANN001
    name = ACCEPTED[resource]
    for empty in ("", "   "):
        _bad(
            search(client, RESOURCES[resource], {name: empty}),
            f"Invalid query: AttributeId '{name}' has empty string value that is not supported.",
        )


@pytest.mark.parametrize("resource", RESOURCES)
def test_a_nul_character_in_a_value(client, resource) -> None:  # noqa: ANN001
    # No DICOM value holds one; PostgreSQL answered 500 to a search for one.
    name = ACCEPTED[resource]
    for value in ("a\x00b", "\x00", "P\x00*"):
        _bad(
            search(client, RESOURCES[resource], {name: value}),
            f"Invalid query: the value of '{name}' holds a NUL character (U+0000), which no DICOM value may contain.",
        )


@pytest.mark.parametrize("resource", NON_LIST)
def test_duplicate_attribute(client, resource) -> None:  # noqa: ANN001
    keyword, tag = NON_LIST[resource]
    path = RESOURCES[resource]
    _bad(
        search(client, path, {keyword: ["A", "B"]}),
        f"Invalid QIDO-RS query. Duplicate AttributeId '{keyword}'. "
        "Each attribute is only allowed to be specified once.",
    )
    _bad(
        search(client, path, [(keyword, "A"), (tag, "A")]),
        f"Invalid query: attribute '{tag}' has been specified more than once using different ID formats. "
        "Each attribute is only allowed to be specified once.",
    )


@pytest.mark.parametrize("resource", DATES)
def test_malformed_dates_and_ranges(client, resource) -> None:  # noqa: ANN001
    name = DATES[resource]
    path = RESOURCES[resource]
    for bad in ("2020-01-01", "20201301", "2020", "x-20200101", "20200101-2021", "20200101-20200102-20200103"):
        response = search(client, path, {name: bad})
        assert response.status_code == 400
        assert f"is invalid for attribute '{name}'" in response.content.decode()
    _bad(
        search(client, path, {name: "20200230"}),
        f"Invalid query: specified Date value '20200230' is invalid for attribute '{name}'. "
        "Date should be valid and formatted as yyyyMMdd.",
    )
    _bad(
        search(client, path, {name: "-"}),
        "Invalid query: specified range is invalid. Both parts in the range cannot be empty.",
    )
    _bad(
        search(client, path, {name: "20200102-20200101"}),
        f"Invalid query: specified range '20200102-20200101' is invalid for attribute '{name}'. "
        "The first part 20200102 should be lesser than or equal to the second part 20200101.",
    )


@pytest.mark.parametrize("resource", RESOURCES)
def test_includefield_all_mixed_with_others(client, resource) -> None:  # noqa: ANN001
    path = RESOURCES[resource]
    message = "Invalid query: cannot specify included fields in addition to 'all'."
    _bad(search(client, path, {"includefield": ["all", "PatientAge"]}), message)
    _bad(search(client, path, {"includefield": "00101010,ALL"}), message)


@pytest.mark.parametrize("resource", RESOURCES)
def test_includefield_unknown_attribute(client, resource) -> None:  # noqa: ANN001
    _bad(
        search(client, RESOURCES[resource], {"includefield": "PatientAge,NoSuchKeyword"}),
        "Invalid query: IncludeField has unknown attribute 'NoSuchKeyword'.",
    )


@pytest.mark.parametrize(
    ("resource", "name"),
    [
        ("study-series", "StudyInstanceUID"),
        ("study-instances", "StudyInstanceUID"),
        ("series-instances", "StudyInstanceUID"),
        ("series-instances", "SeriesInstanceUID"),
        ("study-instances", "0020000D"),
        ("series-instances", "0020000E"),
    ],
)
def test_path_uid_repeated_as_filter(client, resource, name) -> None:  # noqa: ANN001
    keyword = {"0020000D": "StudyInstanceUID", "0020000E": "SeriesInstanceUID"}.get(name, name)
    _bad(
        search(client, RESOURCES[resource], {name: STUDY if keyword == "StudyInstanceUID" else SERIES}),
        f"Invalid query: cannot specify attribute '{keyword}' for the given resource.",
    )


@pytest.mark.parametrize("resource", RESOURCES)
def test_bad_uid_in_filter(client, resource) -> None:  # noqa: ANN001
    name = {"studies": "StudyInstanceUID", "series": "SeriesInstanceUID", "study-series": "SeriesInstanceUID"}.get(
        resource, "SOPInstanceUID"
    )
    for bad, item in (("1.2.abc", "1.2.abc"), (f"{STUDY},1..2", "1..2"), ("1.2*", "1.2*"), ("1" * 65, "1" * 65)):
        _bad(
            search(client, RESOURCES[resource], {name: bad}),
            f"Invalid query: specified UID value '{item}' is invalid for attribute '{name}'. "
            "A UID is 1 to 64 characters of digits and '.'.",
        )


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("studies/1.2.x/series", "The specified StudyInstanceUID '1.2.x' is not a valid DICOM UID."),
        ("studies/1.2.x/instances", "The specified StudyInstanceUID '1.2.x' is not a valid DICOM UID."),
        (f"studies/{STUDY}/series/abc/instances", "The specified SeriesInstanceUID 'abc' is not a valid DICOM UID."),
    ],
)
def test_bad_uid_in_path(client, path, message) -> None:  # noqa: ANN001
    _bad(search(client, path), message)


@pytest.mark.parametrize("resource", RESOURCES)
def test_limit_offset_and_fuzzymatching_values(client, resource) -> None:  # noqa: ANN001
    path = RESOURCES[resource]
    cases = [
        ({"limit": "ten"}, "The query parameter 'limit' is invalid. The value 'ten' is not valid for Limit."),
        ({"limit": "1.5"}, "The query parameter 'limit' is invalid. The value '1.5' is not valid for Limit."),
        ({"limit": ""}, "The query parameter 'limit' is invalid. The value '' is not valid for Limit."),
        ({"limit": "0"}, "The query parameter 'limit' is invalid. The field Limit must be between 1 and 200."),
        ({"limit": "201"}, "The query parameter 'limit' is invalid. The field Limit must be between 1 and 200."),
        ({"LIMIT": ["5", "6"]}, "The query parameter 'limit' is invalid. It may be specified only once."),
        ({"offset": "-1"},
         "The query parameter 'offset' is invalid. The field Offset must be between 0 and 9223372036854775807."),
        ({"offset": "9223372036854775808"},
         "The query parameter 'offset' is invalid. The field Offset must be between 0 and 9223372036854775807."),
        ({"offset": "x"}, "The query parameter 'offset' is invalid. The value 'x' is not valid for Offset."),
        ({"fuzzymatching": "yes"},
         "The query parameter 'fuzzymatching' is invalid. The value 'yes' is not valid for FuzzyMatching."),
    ]
    for params, message in cases:
        _bad(search(client, path, params), message)
    # The four parameter names are case-insensitive; limit 200 is the maximum, not an error.
    assert search(client, path, {"Limit": "200", "OFFSET": "0", "FuzzyMatching": "TRUE"}).status_code == 200


@pytest.mark.parametrize("resource", RESOURCES)
# No Accept header at all is `*/*` (tests/test_missing_accept.py).
@pytest.mark.parametrize("accept", ["application/dicom", "text/html", "application/dicom+json+x", "image/*"])
def test_unacceptable_accept_is_406(client, resource, accept) -> None:  # noqa: ANN001
    response = search(client, RESOURCES[resource], accept=accept)
    assert response.status_code == 406


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize(
    "accept", ["application/dicom+json", "application/json", "*/*", "application/*", "text/html, application/json"]
)
def test_acceptable_accept(client, resource, accept) -> None:  # noqa: ANN001
    response = search(client, RESOURCES[resource], accept=accept)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom+json"
