"""UPS-RS workitems as a worklist is used: a scheduler (sam) creates work, a performer (pat)
claims it, reports progress and completes it; a clerk (cleo) cancels what is no longer needed."""

from __future__ import annotations

import json

import pytest

from partitions.models import Partition
from studies.workitems.models import Workitem, WorkitemNameWord
from tests.helpers import (
    code,
    dataset,
    first_value,
    new_workitem,
    performed_procedure,
    referenced_request,
    response_bytes,
    state_change,
    tag,
    ups,
)

pytestmark = pytest.mark.django_db

UPS_PUSH = "1.2.840.10008.5.1.4.34.6.1"
TXN = "1.2.826.0.1.3680043.8.498.77"


def create(client, workitem, *, partition=None, query_uid=True):  # noqa: ANN001, ANN201
    uid = first_value(workitem, "SOPInstanceUID")
    response = ups(client, "POST", f"?{uid}" if query_uid else "", workitem, partition=partition)
    assert response.status_code == 201, response_bytes(response)
    return uid


def retrieve(client, uid, *, partition=None):  # noqa: ANN001, ANN201
    response = ups(client, "GET", f"/{uid}", partition=partition)
    assert response.status_code == 200, response_bytes(response)
    (found,) = json.loads(response_bytes(response))
    return found


def answer(response) -> tuple[int, str]:  # noqa: ANN001
    return response.status_code, response_bytes(response).decode()


def test_a_workitem_from_scheduling_to_completion(client) -> None:  # noqa: ANN001
    # sam schedules a CT for Jane Doe.
    workitem = new_workitem(WorklistLabel=...)
    uid = first_value(workitem, "SOPInstanceUID")
    response = ups(client, "POST", f"?{uid}", workitem)
    assert response.status_code == 201
    assert response["Location"] == response["Content-Location"] == f"http://127.0.0.1:8000/v2/workitems/{uid}"
    row = Workitem.objects.get(workitem_uid=uid)
    assert (row.state, row.transaction_uid, row.patient_name_search, row.scheduled_start) == (
        "SCHEDULED", "", "doe jane", "20260105093000.000000",
    )
    assert (row.accession_number, row.station_name_code) == ("ACC-1", "CT1")
    # The words fuzzy matching looks up, each with the whole folded name.
    assert sorted(WorkitemNameWord.objects.filter(workitem=row).values_list("word", "name")) == [
        ("doe", "doe jane"), ("jane", "doe jane"),
    ]

    # What the server set: the SOP class, the state, a modification time, a default worklist.
    found = retrieve(client, uid)
    assert first_value(found, "SOPClassUID") == UPS_PUSH
    assert first_value(found, "ProcedureStepState") == "SCHEDULED"
    assert first_value(found, "WorklistLabel") == "Microsoft.Default"
    assert len(first_value(found, "ScheduledProcedureStepModificationDateTime")) == 21
    assert tag("TransactionUID") not in found
    assert list(found) == sorted(found)

    # sam moves it to another station while it is SCHEDULED (no transaction UID then).
    response = ups(client, "POST", f"/{uid}", dataset(ScheduledStationNameCodeSequence=code("CT scanner 2", "CT2")))
    assert response.status_code == 200
    assert response["Content-Location"] == f"http://127.0.0.1:8000/v2/workitems/{uid}"
    assert Workitem.objects.get(workitem_uid=uid).station_name_code == "CT2"
    assert answer(ups(client, "POST", f"/{uid}?{TXN}", dataset(ProcedureStepLabel="x"))) == (
        400, "Invalid TransactionUID for the specified Workitem Instance UID.",
    )

    # pat claims it with a transaction UID of their own.
    assert answer(ups(client, "PUT", f"/{uid}/state", state_change("IN PROGRESS", TXN))) == (200, "")
    row = Workitem.objects.get(workitem_uid=uid)
    assert (row.state, row.transaction_uid) == ("IN PROGRESS", TXN)
    found = retrieve(client, uid)
    assert first_value(found, "ProcedureStepState") == "IN PROGRESS"
    assert tag("TransactionUID") not in found  # stored, never returned

    # Only the owner updates it now, and never the state, the patient or the request.
    assert answer(ups(client, "POST", f"/{uid}", dataset(ProcedureStepLabel="x"))) == (
        400, "The target URI did not reference a claimed Workitem.",
    )
    assert answer(ups(client, "POST", f"/{uid}?1.2.3", dataset(ProcedureStepLabel="x"))) == (
        400, "The target URI did not reference a claimed Workitem.",
    )
    assert answer(ups(client, "POST", f"/{uid}?{TXN}", dataset(ProcedureStepState="COMPLETED"))) == (
        400, "The attribute with tag '(0074,1000)' cannot be present.",
    )
    assert answer(ups(client, "POST", f"/{uid}?{TXN}", dataset(PatientName="Other^Name"))) == (
        400, "The attribute with tag '(0010,0010)' cannot be present.",
    )
    # Completing before reporting what was performed is refused.
    assert answer(ups(client, "PUT", f"/{uid}/state", state_change("COMPLETED", TXN))) == (
        400, "The value for tag '(0074,1216)' is missing.",
    )

    # pat reports the performed procedure; an attribute the workitem never had is not added.
    progress = performed_procedure()
    progress[tag("ScheduledHumanPerformersSequence")] = {"vr": "SQ", "Value": []}
    response = ups(client, "POST", f"/{uid}?{TXN}", progress)
    assert response.status_code == 200
    assert response["Warning"] == (
        '299 127.0.0.1:8000: "Following tags could not be updated as they were not present when the workitem '
        'was created: (0040,4034)"'
    )
    found = retrieve(client, uid)
    performed = first_value(found, "UnifiedProcedureStepPerformedProcedureSequence")
    assert first_value(performed, "PerformedProcedureStepEndDateTime") == "20260105100000"
    assert tag("ScheduledHumanPerformersSequence") not in found

    # pat completes it; a second completion only warns.
    assert answer(ups(client, "PUT", f"/{uid}/state", state_change("COMPLETED", TXN))) == (200, "")
    assert first_value(retrieve(client, uid), "ProcedureStepState") == "COMPLETED"
    response = ups(client, "PUT", f"/{uid}/state", state_change("COMPLETED", TXN))
    assert answer(response) == (200, "The workitem instance is already in the final state 'COMPLETED'. B306.")
    assert response["Warning"] == (
        '299 127.0.0.1:8000: "The workitem instance is already in the final state \'COMPLETED\'. B306."'
    )

    # A completed workitem is never changed again.
    assert answer(ups(client, "POST", f"/{uid}?{TXN}", dataset(ProcedureStepLabel="x"))) == (
        400, "The submitted request is inconsistent with the current state of the Workitem. "
        "The UPS is already COMPLETED.",
    )
    response = ups(client, "POST", f"/{uid}/cancelrequest")
    assert answer(response) == (409, "The UPS is already COMPLETED.")
    assert response["Warning"] == '299 127.0.0.1:8000: "The UPS is already COMPLETED."'


def test_a_scheduled_workitem_is_canceled_on_request(client) -> None:  # noqa: ANN001
    uid = create(client, new_workitem())
    request = dataset(
        ReasonForCancellation="Patient went home",
        ProcedureStepDiscontinuationReasonCodeSequence=code("Patient refused"),
        ContactDisplayName="Cleo",
        ContactURI="mailto:cleo@example.org",
    )
    assert answer(ups(client, "POST", f"/{uid}/cancelrequest", request)) == (202, "")
    found = retrieve(client, uid)
    assert first_value(found, "ProcedureStepState") == "CANCELED"
    progress = first_value(found, "ProcedureStepProgressInformationSequence")
    assert first_value(progress, "ReasonForCancellation") == "Patient went home"
    assert first_value(first_value(progress, "ProcedureStepDiscontinuationReasonCodeSequence"), "CodeMeaning") == (
        "Patient refused"
    )
    assert first_value(first_value(progress, "ProcedureStepCommunicationsURISequence"), "ContactDisplayName") == "Cleo"
    assert len(first_value(progress, "ProcedureStepCancellationDateTime")) == 21
    assert Workitem.objects.get(workitem_uid=uid).state == "CANCELED"

    # Asking again: 409, and the warning Microsoft's server sends.
    response = ups(client, "POST", f"/{uid}/cancelrequest", request)
    assert answer(response) == (409, "The UPS is already in the requested state of CANCELED.")
    assert response["Warning"] == '299 127.0.0.1:8000: "The UPS is already in the requested state of CANCELED."'
    # Nor may anyone claim or update it.
    assert answer(ups(client, "PUT", f"/{uid}/state", state_change("IN PROGRESS", TXN))) == (
        400, "The workitem instance can not transition to 'IN PROGRESS' state: C300.",
    )
    assert answer(ups(client, "POST", f"/{uid}", dataset(ProcedureStepLabel="x"))) == (
        400, "The submitted request is inconsistent with the current state of the Workitem. "
        "The UPS is already in the requested state of CANCELED.",
    )
    # A cancellation request needs no body at all.
    other = create(client, new_workitem())
    assert ups(client, "POST", f"/{other}/cancelrequest", content_type="").status_code == 202


def test_an_owned_workitem_is_canceled_by_its_performer_only(client) -> None:  # noqa: ANN001
    uid = create(client, new_workitem())
    assert ups(client, "PUT", f"/{uid}/state", state_change("IN PROGRESS", TXN)).status_code == 200
    response = ups(client, "POST", f"/{uid}/cancelrequest")
    assert answer(response) == (409, "The performer chooses not to cancel.")
    assert response["Warning"] == '299 127.0.0.1:8000: "The performer chooses not to cancel."'
    # The performer cancels with its transaction UID, once it gave a discontinuation reason.
    assert answer(ups(client, "PUT", f"/{uid}/state", state_change("CANCELED", TXN))) == (
        400, "The required tag '(0074,100e)' is missing.",
    )
    reason = dataset(ProcedureStepProgressInformationSequence=dataset(
        ProcedureStepDiscontinuationReasonCodeSequence=code("Equipment failure"),
    ))
    assert ups(client, "POST", f"/{uid}?{TXN}", reason).status_code == 200
    assert answer(ups(client, "PUT", f"/{uid}/state", state_change("CANCELED", TXN))) == (200, "")
    progress = first_value(retrieve(client, uid), "ProcedureStepProgressInformationSequence")
    assert len(first_value(progress, "ProcedureStepCancellationDateTime")) == 21
    response = ups(client, "PUT", f"/{uid}/state", state_change("CANCELED", TXN))
    assert answer(response) == (200, "The UPS is already in the requested state of CANCELED.")


@pytest.mark.parametrize(
    ("claimed", "body", "expected"),
    [
        # Nobody owns a SCHEDULED workitem: completing or canceling it is C301, as Microsoft's table has it.
        (False, state_change("COMPLETED", TXN), "The workitem instance can not transition to 'COMPLETED' state: C301."),
        (False, state_change("CANCELED", TXN), "The workitem instance can not transition to 'CANCELED' state: C301."),
        (True, state_change("IN PROGRESS", TXN), "The workitem instance can not transition to 'IN PROGRESS' state: C302."),
        (True, state_change("IN PROGRESS", "1.2.3"),
         "The workitem instance can not transition to 'IN PROGRESS' state: C301."),
        (True, state_change("COMPLETED", "1.2.3"), "The workitem instance can not transition to 'COMPLETED' state: C301."),
        (False, state_change("SCHEDULED", TXN),
         "Expected value '(0074,1000)' to be one of the following values: [IN PROGRESS,CANCELED,COMPLETED]"),
        (False, state_change("in progress", TXN),
         "Expected value '(0074,1000)' to be one of the following values: [IN PROGRESS,CANCELED,COMPLETED]"),
        (False, state_change("IN PROGRESS", None), "The required tag '(0008,1195)' is missing."),
        (False, dataset(TransactionUID=TXN), "The required tag '(0074,1000)' is missing."),
        (False, state_change("IN PROGRESS", "not.a.uid"), "The specified TransactionUID 'not.a.uid' is not a valid DICOM UID."),
    ],
)
def test_illegal_state_changes_are_refused(client, claimed, body, expected) -> None:  # noqa: ANN001
    uid = create(client, new_workitem())
    if claimed:
        assert ups(client, "PUT", f"/{uid}/state", state_change("IN PROGRESS", TXN)).status_code == 200
    before = Workitem.objects.get(workitem_uid=uid)
    assert answer(ups(client, "PUT", f"/{uid}/state", body)) == (400, expected)
    after = Workitem.objects.get(workitem_uid=uid)
    assert (after.state, after.transaction_uid, after.version) == (before.state, before.transaction_uid, before.version)


def test_unknown_workitems_are_404_everywhere(client) -> None:  # noqa: ANN001
    missing = "1.2.3.404"
    expected = (404, "The workitem instance is not found.")
    assert answer(ups(client, "GET", f"/{missing}")) == expected
    assert answer(ups(client, "POST", f"/{missing}", dataset(ProcedureStepLabel="x"))) == expected
    assert answer(ups(client, "PUT", f"/{missing}/state", state_change("IN PROGRESS", TXN))) == expected
    assert answer(ups(client, "POST", f"/{missing}/cancelrequest")) == expected


def without(workitem: dict, keyword: str) -> dict:
    return {k: v for k, v in workitem.items() if k != tag(keyword)}


@pytest.mark.parametrize(
    ("workitem", "expected"),
    [
        (without(new_workitem(), "ScheduledProcedureStepPriority"), "The required tag '(0074,1200)' is missing."),
        (without(new_workitem(), "PatientName"), "The required tag '(0010,0010)' is missing."),
        (new_workitem(ProcedureStepLabel=None), "The value for tag '(0074,1204)' is missing."),
        (new_workitem(ProcedureStepLabel="  "), "The attribute with tag '(0074,1204)' must not be empty."),
        (new_workitem(TransactionUID="1.2.3"), "The attribute with tag '(0008,1195)' must be empty."),
        (new_workitem(ProcedureStepState="COMPLETED"),
         "The ProcedureStepState (0074,1000) of a new workitem must be SCHEDULED."),
        (new_workitem(ReferencedRequestSequence=dataset(AccessionNumber="A")), "The required tag '(0020,000d)' is missing."),
        (new_workitem(ScheduledStationNameCodeSequence=dataset(CodeValue="X")), "The required tag '(0008,0104)' is missing."),
        (new_workitem(UnifiedProcedureStepPerformedProcedureSequence=dataset(PerformedProcedureStepEndDateTime="2026")),
         "The attribute with tag '(0040,4051)' cannot be present."),
        (new_workitem(ScheduledProcedureStepStartDateTime="tomorrow"),
         "The ScheduledProcedureStepStartDateTime (0040,4005) value 'tomorrow' is not a valid DT."),
    ],
)
def test_create_refuses_an_incomplete_dataset(client, workitem, expected) -> None:  # noqa: ANN001
    assert answer(ups(client, "POST", "", workitem)) == (400, expected)
    assert not Workitem.objects.exists()


def test_create_checks_the_uid_the_body_and_the_headers(client) -> None:  # noqa: ANN001
    workitem = new_workitem()
    uid = first_value(workitem, "SOPInstanceUID")
    assert answer(ups(client, "POST", "?1.2.3.9", workitem)) == (
        400, "SOPInstanceUID in the payload does not match the workitem query parameter.",
    )
    assert answer(ups(client, "POST", "", without(workitem, "SOPInstanceUID"))) == (
        400, "The required tag '(0008,0018)' is missing.",
    )
    assert answer(ups(client, "POST", "", workitem, content_type="application/json")) == (
        415, "The specified content type 'application/json' is not supported.",
    )
    assert answer(ups(client, "POST", "", workitem, accept="application/dicom")) == (
        406, "The request headers are not acceptable",
    )
    response = client.post("/v2/workitems", data="[{", content_type="application/dicom+json",
                           HTTP_ACCEPT="application/dicom+json")
    assert answer(response) == (400, "The syntax of the request body is invalid.")
    assert not Workitem.objects.exists()
    # The UID from the body alone; the query's alone (the body without one).
    assert create(client, workitem, query_uid=False) == uid
    assert answer(ups(client, "POST", f"?{uid}", workitem)) == (
        409, "The workitem instance already exists. Try creating using a different UID.",
    )
    other = new_workitem()
    other_uid = first_value(other, "SOPInstanceUID")
    assert ups(client, "POST", f"?{other_uid}", without(other, "SOPInstanceUID")).status_code == 201
    assert first_value(retrieve(client, other_uid), "SOPInstanceUID") == other_uid


def test_search_finds_workitems_by_every_searchable_attribute(client) -> None:  # noqa: ANN001
    jane = create(client, new_workitem(PatientName="Doe^Jane Ann", PatientID="P-JANE"))
    john = create(client, new_workitem(
        PatientName="Müller^John", PatientID="P-JOHN", ScheduledProcedureStepStartDateTime="20260106140000",
        ReferencedRequestSequence=referenced_request(StudyInstanceUID="1.2.3", AccessionNumber="ACC-2", RequestedProcedureID="RP-2"),
        ScheduledStationClassCodeSequence=code("MR", "MR"), StudyInstanceUID="1.2.3",
    ))
    assert ups(client, "PUT", f"/{john}/state", state_change("IN PROGRESS", TXN)).status_code == 200

    def uids(query: str) -> list[str]:
        response = ups(client, "GET", f"?{query}")
        if response.status_code == 204:
            return []
        assert response.status_code == 200, response_bytes(response)
        assert response["Content-Type"] == "application/dicom+json"
        return [first_value(found, "SOPInstanceUID") for found in json.loads(response_bytes(response))]

    assert uids("PatientName=doe^jane ann") == [jane]
    assert uids("PatientName=mueller^john") == []
    assert uids("PatientName=muller^john") == [john]  # accents and case are ignored
    assert uids("PatientName=an&fuzzymatching=true") == [jane]
    assert uids("PatientName=j&fuzzymatching=true") == [jane, john]
    assert uids("PatientName=jo mu&fuzzymatching=true") == [john]
    assert uids("PatientID=p-jane") == [jane]
    assert uids("ReferencedRequestSequence.AccessionNumber=ACC-2") == [john]
    assert uids("0040A370.00401001=RP-2") == [john]
    assert uids("ScheduledProcedureStepStartDateTime=20260106") == [john]
    assert uids("ScheduledProcedureStepStartDateTime=20260105-20260105") == [jane]
    assert uids("ScheduledProcedureStepStartDateTime=-20260106120000") == [jane]
    assert uids("ScheduledProcedureStepStartDateTime=202601-") == [jane, john]
    assert uids("ScheduledStationNameCodeSequence.CodeValue=CT1") == [jane, john]
    assert uids("ScheduledStationClassCodeSequence.CodeValue=MR") == [john]
    assert uids("ScheduledStationGeographicLocationCodeSequence.CodeValue=BLDA&limit=1&offset=1") == [john]
    assert uids("ProcedureStepState=IN PROGRESS") == [john]
    assert uids("ProcedureStepState=scheduled") == [jane]
    assert uids("StudyInstanceUID=1.2.3") == [john]
    assert uids("PatientID=nobody") == []
    assert uids("includefield=all&PatientID=P-JOHN") == [john]
    # Results never hold the transaction UID.
    found = json.loads(response_bytes(ups(client, "GET", "?PatientID=P-JOHN")))
    assert tag("TransactionUID") not in found[0]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("Modality=CT", "Invalid workitem query. AttributeId Modality is not queryable.  If the parameter is an "
         "attribute keyword, check the casing as they are case-sensitive. The conformance statement has a list of "
         "supported query parameters and attributes."),
        ("Nonsense=1", "Invalid query: AttributeId Nonsense is not queryable.  If the parameter is an attribute "
         "keyword, check the casing as they are case-sensitive. The conformance statement has a list of supported "
         "query parameters, attributes and the levels."),
        ("0040A370.00080051.00400031=X", "Nested Dicom sequence tags are currently not supported."),
        ("PatientID=a&00100020=b", "Invalid query: attribute '00100020' has been specified more than once using "
         "different ID formats. Each attribute is only allowed to be specified once."),
        ("limit=201", "The query parameter 'limit' is invalid. The field Limit must be between 1 and 200."),
        ("limit=0", "The query parameter 'limit' is invalid. The field Limit must be between 1 and 200."),
        ("offset=-1", "The query parameter 'offset' is invalid. The field Offset must be between 0 and 9223372036854775807."),
        ("fuzzymatching=maybe", "The query parameter 'fuzzymatching' is invalid. The value 'maybe' is not valid for FuzzyMatching."),
        ("PatientID=", "Invalid query: AttributeId 'PatientID' has empty string value that is not supported."),
        ("PatientID=a%00", "Invalid query: the value of 'PatientID' holds a NUL character (U+0000), which no DICOM "
         "value may contain."),
        ("PatientID=a&PatientID=b", "Invalid QIDO-RS query. Duplicate AttributeId 'PatientID'. Each attribute is only allowed to be specified once."),
        ("includefield=ReferencedRequestSequence.AccessionNumber", "Sequential dicom tags are currently not supported."),
        ("includefield=all,PatientID", "Invalid query: cannot specify included fields in addition to 'all'."),
        ("includefield=Nonsense", "Invalid query: IncludeField has unknown attribute 'Nonsense'."),
        ("ScheduledProcedureStepStartDateTime=20260230",
         "Invalid query: specified DateTime value '20260230' is invalid for attribute 'ScheduledProcedureStepStartDateTime'. "
         "DateTime should be valid and formatted as yyyyMMddHHmmss.FFFFFF where yyyy is mandatory."),
        ("ScheduledProcedureStepStartDateTime=20260102-20260101",
         "Invalid query: specified range '20260102-20260101' is invalid for attribute 'ScheduledProcedureStepStartDateTime'. "
         "The first part 20260102 should be lesser than or equal to the second part 20260101."),
        ("StudyInstanceUID=1.2.x", "Invalid query: specified UID value '1.2.x' is invalid for attribute 'StudyInstanceUID'. "
         "A UID is 1 to 64 characters of digits and '.'."),
    ],
)
def test_search_refuses_what_it_cannot_answer(client, query, expected) -> None:  # noqa: ANN001
    assert answer(ups(client, "GET", f"?{query}")) == (400, expected)


def test_partitions_keep_their_workitems_apart(client, partitions_on) -> None:  # noqa: ANN001
    # alice's partition does not exist yet: creating a workitem creates it, as a STOW does.
    workitem = new_workitem()
    uid = first_value(workitem, "SOPInstanceUID")
    response = ups(client, "POST", f"?{uid}", workitem, partition="alice")
    assert response.status_code == 201
    assert response["Location"] == f"http://127.0.0.1:8000/v2/partitions/alice/workitems/{uid}"
    assert Partition.objects.filter(partition_name="alice").exists()
    assert first_value(retrieve(client, uid, partition="alice"), "WorklistLabel") == "Radiology"

    # bob has the same UID for other work; the two never meet.
    assert answer(ups(client, "GET", f"/{uid}", partition="bob")) == (400, "Specified PartitionName bob does not exist.")
    create(client, new_workitem(uid, PatientName="Bob^Own", PatientID="P-BOB"), partition="bob")
    assert first_value(retrieve(client, uid, partition="bob"), "PatientName") == {"Alphabetic": "Bob^Own"}
    assert first_value(retrieve(client, uid, partition="alice"), "PatientName") == {"Alphabetic": "Doe^Jane"}
    assert ups(client, "PUT", f"/{uid}/state", state_change("IN PROGRESS", TXN), partition="bob").status_code == 200
    assert Workitem.objects.get(partition__partition_name="alice").state == "SCHEDULED"
    assert ups(client, "GET", "?PatientID=P-BOB", partition="alice").status_code == 204
    response = ups(client, "GET", "?PatientID=P-BOB", partition="bob")
    assert [first_value(found, "PatientID") for found in json.loads(response_bytes(response))] == ["P-BOB"]
    # Without a partition segment, nothing is served.
    assert answer(ups(client, "GET", f"/{uid}")) == (400, "PartitionName value is missing in the route segment.")


def test_every_route_declares_the_data_action_each_method_needs() -> None:
    # Microsoft: create, update, change state and cancel request are writes; retrieve and search reads.
    from studies.workitems.views import WorkitemCancelRequestView, WorkitemStateView, WorkitemsView, WorkitemView

    assert WorkitemsView.data_actions == {"GET": "read", "POST": "write"}
    assert WorkitemView.data_actions == {"GET": "read", "POST": "write"}
    assert WorkitemStateView.data_actions == {"PUT": "write"}
    assert WorkitemCancelRequestView.data_actions == {"POST": "write"}
