"""Workitems: a dataset with every attribute PS3.4 requires at creation, and UPS-RS requests."""

from __future__ import annotations

import json
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.uid import generate_uid

from tests.helpers.http import DICOM_JSON, base


def tag(keyword: str) -> str:
    found = tag_for_keyword(keyword)
    assert found is not None, keyword
    return f"{found:08X}"


def element(keyword: str, *values: Any) -> dict[str, Any]:
    """A DICOM JSON element; strings of a PN become {"Alphabetic": ...}; dict values of an SQ are items."""
    vr = str(dictionary_VR(tag_for_keyword(keyword)))
    found: dict[str, Any] = {"vr": vr}
    if values:
        found["Value"] = [{"Alphabetic": v} if vr == "PN" and isinstance(v, str) else v for v in values]
    return found


def dataset(**attributes: Any) -> dict[str, Any]:
    """{keyword: value or tuple of values or None (present, empty)} as a DICOM JSON dataset."""
    out = {}
    for keyword, value in attributes.items():
        if value is None:
            out[tag(keyword)] = element(keyword)
        elif isinstance(value, tuple):
            out[tag(keyword)] = element(keyword, *value)
        else:
            out[tag(keyword)] = element(keyword, value)
    return out


def code(meaning: str, value: str = "CODE") -> dict[str, Any]:
    return dataset(CodeValue=value, CodingSchemeDesignator="99TEST", CodeMeaning=meaning)


def referenced_request(**overrides: Any) -> dict[str, Any]:
    """An item of ReferencedRequestSequence, every attribute PS3.4 requires there."""
    attributes: dict[str, Any] = {
        "StudyInstanceUID": "1.2.826.0.1.3680043.8.498.1",
        "AccessionNumber": "ACC-1",
        "IssuerOfAccessionNumberSequence": None,
        "OrderPlacerIdentifierSequence": None,
        "OrderFillerIdentifierSequence": None,
        "RequestedProcedureID": "RP-1",
        "RequestedProcedureDescription": "CT chest",
        "RequestedProcedureCodeSequence": None,
        **overrides,
    }
    return dataset(**attributes)


def new_workitem(uid: str | None = None, **overrides: Any) -> dict[str, Any]:
    """A dataset a scheduler sends to create a workitem; `overrides` as for `dataset()`."""
    attributes: dict[str, Any] = {
        "TransactionUID": None,
        "SOPInstanceUID": uid or generate_uid(),
        "ScheduledProcedureStepPriority": "MEDIUM",
        "ProcedureStepLabel": "CT chest",
        "WorklistLabel": "Radiology",
        "ScheduledProcessingParametersSequence": None,
        "ScheduledStationNameCodeSequence": code("CT scanner 1", "CT1"),
        "ScheduledStationClassCodeSequence": code("CT", "CT"),
        "ScheduledStationGeographicLocationCodeSequence": code("Building A", "BLDA"),
        "ScheduledProcedureStepStartDateTime": "20260105093000",
        "ScheduledWorkitemCodeSequence": code("Imaging"),
        "CommentsOnTheScheduledProcedureStep": None,
        "InputReadinessState": "READY",
        "InputInformationSequence": None,
        "StudyInstanceUID": "1.2.826.0.1.3680043.8.498.1",
        "PatientName": "Doe^Jane",
        "PatientID": "PID-1",
        "IssuerOfPatientID": None,
        "IssuerOfPatientIDQualifiersSequence": None,
        "OtherPatientIDsSequence": None,
        "PatientBirthDate": "19700101",
        "PatientSex": "F",
        "AdmissionID": None,
        "IssuerOfAdmissionIDSequence": None,
        "AdmittingDiagnosesDescription": None,
        "AdmittingDiagnosesCodeSequence": None,
        "ReferencedRequestSequence": referenced_request(),
        "ProcedureStepState": "SCHEDULED",
        "ProcedureStepProgressInformationSequence": None,
        "UnifiedProcedureStepPerformedProcedureSequence": None,
    }
    attributes.update(overrides)
    return dataset(**{k: v for k, v in attributes.items() if v is not ...})


def performed_procedure() -> dict[str, Any]:
    """What a performer reports before completing (PS3.4 final-state attributes of COMPLETED)."""
    return dataset(
        UnifiedProcedureStepPerformedProcedureSequence=dataset(
            ActualHumanPerformersSequence=dataset(
                HumanPerformerCodeSequence=code("Technologist"), HumanPerformerName="Tech^Tom",
            ),
            PerformedStationNameCodeSequence=code("CT scanner 1", "CT1"),
            PerformedProcedureStepStartDateTime="20260105093500",
            PerformedWorkitemCodeSequence=code("Imaging"),
            PerformedProcedureStepEndDateTime="20260105100000",
            OutputInformationSequence=dataset(
                TypeOfInstances="DICOM",
                ReferencedSOPSequence=dataset(ReferencedSOPClassUID="1.2.3", ReferencedSOPInstanceUID="1.2.3.4"),
            ),
        )
    )


def state_change(state: str, transaction_uid: str | None) -> dict[str, Any]:
    attributes: dict[str, Any] = {"ProcedureStepState": state}
    if transaction_uid is not None:
        attributes["TransactionUID"] = transaction_uid
    return dataset(**attributes)


def ups(client: Any, method: str, path: str, body: Any = None, *, partition: str | None = None,
        accept: str = DICOM_JSON, content_type: str = DICOM_JSON) -> Any:
    """A UPS-RS request to `{base}/workitems{path}`; a dict or list body is sent as DICOM JSON."""
    url = f"{base(partition)}/workitems{path}"
    data = json.dumps([body] if isinstance(body, dict) else body) if body is not None else None
    call = getattr(client, method.lower())
    if data is None:
        return call(url, HTTP_ACCEPT=accept)
    return call(url, data=data, content_type=content_type, HTTP_ACCEPT=accept)


def first_value(dataset_: dict[str, Any], keyword: str) -> Any:
    values = dataset_.get(tag(keyword), {}).get("Value", [])
    return values[0] if values else None
