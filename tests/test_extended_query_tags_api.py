"""The extended query tag API at /v{n}/extendedquerytags: add, list, get, patch, delete, errors."""

from __future__ import annotations

import pytest

from operations.models import Operation, OperationStatus, OperationType
from studies.eqt.models import ExtendedQueryTag, ExtendedQueryTagValue
from tests.helpers import add_tags, dicom_bytes, reindex, store, tag_entry, tags_ready

pytestmark = pytest.mark.django_db

BASE = "http://127.0.0.1:8000"


def _bad(response, message: str, status: int = 400) -> None:  # noqa: ANN001
    assert (response.status_code, response.content.decode()) == (status, message)


def test_add_answers_202_with_the_reindex_operation(client, django_capture_on_commit_callbacks) -> None:  # noqa: ANN001
    with django_capture_on_commit_callbacks() as callbacks:
        response = add_tags(client, tag_entry("BodyPartExamined", "Series"), tag_entry("00181030", "study", vr="LO"))
    assert response.status_code == 202
    operation = Operation.objects.get()
    assert (operation.type, operation.status) == (OperationType.REINDEX, OperationStatus.NOT_STARTED)
    assert response.json() == {"id": operation.pk.hex, "href": f"{BASE}/v2/operations/{operation.pk.hex}"}
    assert response["Location"] == f"{BASE}/v2/operations/{operation.pk.hex}"
    assert len(callbacks) == 2  # the task is enqueued once the rows commit (and the caches cleared)
    assert operation.resources == [f"{BASE}/v2/extendedquerytags/00180015", f"{BASE}/v2/extendedquerytags/00181030"]
    listed = client.get("/v2/extendedquerytags").json()
    operation_ref = {"id": operation.pk.hex, "href": f"{BASE}/v2/operations/{operation.pk.hex}"}
    assert listed == [
        {"path": "00180015", "vr": "CS", "level": "series", "status": "adding", "queryStatus": "enabled",
         "operation": operation_ref},
        {"path": "00181030", "vr": "LO", "level": "study", "status": "adding", "queryStatus": "enabled",
         "operation": operation_ref},
    ]


def test_a_finished_reindex_makes_the_tags_ready(client) -> None:  # noqa: ANN001
    operation = tags_ready(client, tag_entry("00180015", "series"))
    assert operation.status == OperationStatus.SUCCEEDED
    assert client.get("/v2/extendedquerytags/BodyPartExamined").json() == {
        "path": "00180015", "vr": "CS", "level": "series", "status": "ready", "queryStatus": "enabled",
    }
    body = client.get(f"/v2/operations/{operation.pk.hex}").json()
    assert (body["type"], body["status"], body["percentComplete"]) == ("reindex", "succeeded", 100)
    assert body["resources"] == [f"{BASE}/v2/extendedquerytags/00180015"]
    assert client.get(f"/v1/operations/{operation.pk.hex}").json()["status"] == "completed"


def test_routes_are_at_the_base_uri_only(client, partitions_on) -> None:  # noqa: ANN001
    assert client.get("/v2/extendedquerytags").status_code == 200
    assert client.get("/v1/extendedquerytags").status_code == 200
    assert client.get("/v2/partitions/Microsoft.Default/extendedquerytags").status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "The extended query tag(s) is missing."),
        ([{"level": "study"}], "The Dicom Tag Property Path must be specified and must not be null, empty or whitespace."),
        ([{"path": "00180015"}], "The level for extended query tag '00180015' is missing."),
        ([{"path": "00180015", "level": "patient"}],
         "Input Dicom Tag Level 'patient' is invalid. It must have value 'Study', 'Series' or 'Instance'."),
        ([{"path": "NotAKeyword", "level": "study"}],
         "The extended query tag 'NotAKeyword' is invalid as it cannot be parsed into a valid Dicom Tag."),
        ([{"path": "0018001", "level": "study"}],
         "The extended query tag '0018001' is invalid as it cannot be parsed into a valid Dicom Tag."),
        ([{"path": "PatientName", "level": "study"}], "The query tag 'PatientName' is already supported."),
        ([{"path": "0020000D", "level": "study"}], "The query tag '0020000D' is already supported."),
        ([{"path": "ReferencedStudySequence", "level": "study"}], "Sequential dicom tags are currently not supported."),
        ([{"path": "00081110.00081150", "level": "study"}], "Sequential dicom tags are currently not supported."),
        ([{"path": "00180015", "level": "series"}, {"path": "BodyPartExamined", "level": "study"}],
         "The extended query tag '00180015' has been specified before."),
        ([{"path": "00180015", "level": "series", "vr": "LO"}],
         "The VR code 'LO' is incorrectly specified for '00180015'. The expected VR code for it is 'CS'. "
         "Retry this request either with the correct VR code or without specifying it."),
        ([{"path": "00180015", "level": "series", "vr": "XX"}], "The VR code 'XX' for tag '00180015' is invalid."),
        ([{"path": "00280010", "level": "instance", "vr": "US"}], None),  # Rows: supported
        ([{"path": "00081140", "level": "study", "vr": "SQ"}], "Sequential dicom tags are currently not supported."),
        ([{"path": "00204000", "level": "study"}], "The VR code 'LT' specified for tag '00204000' is not supported."),
        ([{"path": "00180015", "level": "series", "privateCreator": "ACME"}],
         "The private creator is not empty for standard tag '00180015'."),
        ([{"path": "00191010", "level": "series", "vr": "LO"}],
         "The private creator for private tag '00191010' is missing."),
        ([{"path": "00191010", "level": "series", "vr": "LO", "privateCreator": "A\\B"}],
         "The private creator for tag '00191010' is not a valid LO attribute."),
        ([{"path": "00191010", "level": "series", "privateCreator": "ACME"}], "The vr for tag '00191010' is missing."),
        ([{"path": "00190010", "level": "series", "privateCreator": "ACME"}],
         "The private creator is not empty for private identification code '00190010'."),
    ],
)
def test_add_validation_messages(client, body, message) -> None:  # noqa: ANN001
    response = client.post("/v2/extendedquerytags", data=body, format="json")
    if message is None:
        assert response.status_code == 202, response.content
        return
    _bad(response, message)
    assert not ExtendedQueryTag.objects.exists()
    assert not Operation.objects.exists()


def test_keys_are_case_insensitive_and_private_tags_are_accepted(client) -> None:  # noqa: ANN001
    response = client.post(
        "/v2/extendedquerytags",
        data=[{"PATH": "00191010", "Vr": "lo", "PrivateCreator": "ACME 1.0", "LEVEL": "Instance"}],
        format="json",
    )
    assert response.status_code == 202, response.content
    assert client.get("/v2/extendedquerytags/00191010").json()["privateCreator"] == "ACME 1.0"


def test_a_body_that_is_not_an_array_is_400(client) -> None:  # noqa: ANN001
    _bad(client.post("/v2/extendedquerytags", data={"path": "00180015"}, format="json"),
         "The syntax of the request body is invalid.")
    _bad(client.post("/v2/extendedquerytags", data="[", content_type="application/json"),
         "The syntax of the request body is invalid.")


def test_existing_tags_conflict(client) -> None:  # noqa: ANN001
    tags_ready(client, tag_entry("00180015", "series"))
    _bad(add_tags(client, tag_entry("BodyPartExamined", "series")), "One or more extended query tags already exist.", 409)
    assert ExtendedQueryTag.objects.count() == 1


def test_a_running_reindex_conflicts_with_its_location(client) -> None:  # noqa: ANN001
    first = add_tags(client, tag_entry("00180015", "series"))
    response = add_tags(client, tag_entry("ProtocolName", "series"))
    active = first.json()["id"]
    _bad(response, f"There is already an active re-index operation with ID '{active}'.", 409)
    assert response["Location"] == f"{BASE}/v2/operations/{active}"
    assert ExtendedQueryTag.objects.count() == 1


def test_more_than_128_tags_is_400(client) -> None:  # noqa: ANN001
    ExtendedQueryTag.objects.bulk_create(
        ExtendedQueryTag(path=f"0019{0x1000 + n:04X}", vr="LO", private_creator="ACME", level="study", status="ready")
        for n in range(127)
    )
    _bad(add_tags(client, tag_entry("00180015", "series"), tag_entry("ProtocolName", "series")),
         "Extended query tags exceeds max allowed count '128'.")
    assert add_tags(client, tag_entry("00180015", "series")).status_code == 202


def test_get_one_by_hex_or_keyword_and_its_errors(client) -> None:  # noqa: ANN001
    _bad(client.get("/v2/extendedquerytags/NoSuchKeyword"),
         "The extended query tag 'NoSuchKeyword' is invalid as it cannot be parsed into a valid Dicom Tag.")
    _bad(client.get("/v2/extendedquerytags/00180015"),
         "The specified extended query tag with tag path 00180015 cannot be found.", 404)
    _bad(client.get("/v2/extendedquerytags/00180015/errors"),
         "The specified extended query tag with tag path 00180015 cannot be found.", 404)
    tags_ready(client, tag_entry("00180015", "series"))
    assert client.get("/v2/extendedquerytags/00180015").json()["path"] == "00180015"
    assert client.get("/v2/extendedquerytags/BodyPartExamined/errors").json() == []


def test_list_is_paged(client) -> None:  # noqa: ANN001
    tags_ready(client, *(tag_entry(path, "study") for path in ("00180015", "00181030", "00081010")))
    paths = [tag["path"] for tag in client.get("/v2/extendedquerytags", {"limit": 2, "offset": 1}).json()]
    assert paths == ["00181030", "00081010"]
    _bad(client.get("/v2/extendedquerytags", {"limit": 201}),
         "The query parameter 'limit' is invalid. The field Limit must be between 1 and 200.")
    _bad(client.get("/v2/extendedquerytags", {"limit": "x"}),
         "The query parameter 'limit' is invalid. The value 'x' is not valid for Limit.")
    _bad(client.get("/v2/extendedquerytags", {"offset": -1}),
         "The query parameter 'offset' is invalid. The field Offset must be between 0 and 9223372036854775807.")
    # A number of 4,301 digits was an answer of 500 (Python's int() refuses it); found by `make drill`.
    for huge in ("1" * 4301, "9" * 20):
        _bad(client.get("/v2/extendedquerytags", {"offset": huge}),
             f"The query parameter 'offset' is invalid. The value '{huge}' is not valid for Offset.")
        _bad(client.get("/v2/extendedquerytags/BodyPartExamined/errors", {"limit": huge}),
             f"The query parameter 'limit' is invalid. The value '{huge}' is not valid for Limit.")


def test_patch_enables_and_disables_searching(client) -> None:  # noqa: ANN001
    tags_ready(client, tag_entry("00180015", "series"))
    response = client.patch("/v2/extendedquerytags/00180015", data={"queryStatus": "Disabled"}, format="json")
    assert response.status_code == 200
    assert response.json()["queryStatus"] == "disabled"
    assert ExtendedQueryTag.objects.get().query_status == "disabled"
    _bad(client.patch("/v2/extendedquerytags/00180015", data={"queryStatus": "Enabled", "level": "study"},
                      format="json"), 'The field is not supported: "level".')
    _bad(client.patch("/v2/extendedquerytags/00180015", data={"vr": "CS"}, format="json"),
         'The field is not supported: "vr".')
    response = client.patch("/v2/extendedquerytags/BodyPartExamined", data={"QueryStatus": "enabled"}, format="json")
    assert response.json()["queryStatus"] == "enabled"
    _bad(client.patch("/v2/extendedquerytags/00181030", data={"queryStatus": "Enabled"}, format="json"),
         "The specified extended query tag with tag path 00181030 cannot be found.", 404)


def test_delete_removes_the_tag_and_its_values(client) -> None:  # noqa: ANN001
    store(dicom_bytes(BodyPartExamined="CHEST"))
    tags_ready(client, tag_entry("00180015", "series"))
    assert ExtendedQueryTagValue.objects.count() == 1
    response = client.delete("/v2/extendedquerytags/BodyPartExamined")
    assert (response.status_code, response.content) == (204, b"")
    assert not ExtendedQueryTag.objects.exists()
    assert not ExtendedQueryTagValue.objects.exists()
    _bad(client.delete("/v2/extendedquerytags/00180015"),
         "The specified extended query tag with tag path 00180015 cannot be found.", 404)


def test_a_tag_being_added_cannot_be_deleted(client) -> None:  # noqa: ANN001
    response = add_tags(client, tag_entry("00180015", "series"))
    _bad(client.delete("/v2/extendedquerytags/00180015"), "The extended query tag '00180015' is being processed.")
    reindex(response)
    assert client.delete("/v2/extendedquerytags/00180015").status_code == 204


def test_a_tag_whose_reindex_failed_can_be_deleted(client) -> None:  # noqa: ANN001
    response = add_tags(client, tag_entry("00180015", "series"))
    Operation.objects.filter(pk=response.json()["id"]).update(status=OperationStatus.FAILED)
    assert client.delete("/v2/extendedquerytags/00180015").status_code == 204


def test_a_broker_refusing_the_task_leaves_the_operation_for_operations_resume(  # noqa: ANN201
    client, monkeypatch, django_capture_on_commit_callbacks  # noqa: ANN001
):
    from operations.tasks import operation_execute

    def refuse(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise ConnectionError("broker down")

    monkeypatch.setattr(operation_execute, "delay", refuse)
    with django_capture_on_commit_callbacks(execute=True):
        response = add_tags(client, tag_entry("00180015", "series"))
    assert response.status_code == 202
    assert Operation.objects.get().status == OperationStatus.NOT_STARTED
