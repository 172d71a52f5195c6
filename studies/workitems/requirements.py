"""What a workitem dataset must and must not hold, as Microsoft's server checks PS3.4.

Create and update follow PS3.4 Table CC.2.5-3 (SCU/SCP codes: 1/1 present with a value,
2/1 and 2/2 present, 1C and 2C treated as optional, "-" not allowed, "empty" present only
empty). Completing or canceling follows the final-state codes of PS3.4 CC.2.5.1.1 (R both,
P when COMPLETED, X when CANCELED). A sequence's items are checked when the sequence is
1/1 or holds items.
"""

from __future__ import annotations

from dataclasses import dataclass

from dicomsvc.errors import WorkitemDatasetInvalid
from studies.workitems.dataset import TEXT_VRS, Dataset, key, tag_text

# Microsoft's DicomCoreResource texts (MissingRequiredTag, MissingRequiredValue, AttributeMustNotBeEmpty,
# AttributeMustBeEmpty, AttributeNotAllowed), the tag written as fo-dicom prints one: (gggg,eeee).
MISSING = "The required tag '{0}' is missing."
MISSING_VALUE = "The value for tag '{0}' is missing."
BLANK = "The attribute with tag '{0}' must not be empty."
MUST_BE_EMPTY = "The attribute with tag '{0}' must be empty."
NOT_ALLOWED = "The attribute with tag '{0}' cannot be present."

PRESENT = frozenset({"1/1", "2/1", "2/2"})
WITH_VALUE = frozenset({"1/1"})


@dataclass(frozen=True)
class Rule:
    keyword: str
    code: str
    items: tuple[Rule, ...] | None = None


def _rules(code: str, *keywords: str) -> tuple[Rule, ...]:
    return tuple(Rule(keyword, code) for keyword in keywords)


# PS3.4 Table CC.2.5-2a, the UPS code sequence macro: CodeMeaning is all Microsoft requires.
CODE = (Rule("CodeMeaning", "1/1"),)
CONTENT_ITEM = (Rule("ValueType", "1/1"), Rule("ConceptNameCodeSequence", "1/1", CODE))
REFERENCED_INSTANCES = (
    Rule("TypeOfInstances", "1/1"),
    Rule("ReferencedSOPSequence", "1/1", _rules("1/1", "ReferencedSOPClassUID", "ReferencedSOPInstanceUID")),
)
HUMAN_PERFORMER = (
    Rule("HumanPerformerCodeSequence", "1/1", CODE),
    *_rules("1/1", "HumanPerformerName", "HumanPerformerOrganization"),
)
ISSUER_QUALIFIERS = (
    *_rules("2/2", "UniversalEntityID", "IdentifierTypeCode", "AssigningFacilitySequence"),
    Rule("AssigningJurisdictionCodeSequence", "2/2", CODE),
    Rule("AssigningAgencyOrDepartmentCodeSequence", "2/2", CODE),
)
REFERENCED_REQUEST = (
    Rule("StudyInstanceUID", "1/1"),
    *_rules("2/2", "AccessionNumber", "IssuerOfAccessionNumberSequence", "OrderPlacerIdentifierSequence"),
    *_rules("2/2", "OrderFillerIdentifierSequence", "RequestedProcedureID", "RequestedProcedureDescription"),
    Rule("RequestedProcedureCodeSequence", "2/2", CODE),
)
# Set by the server on create, or owned by the state machine: never sent in an update.
SERVER_SET = ("SOPClassUID", "SOPInstanceUID", "ProcedureStepState")
# The patient and request a workitem is for are fixed at creation.
FIXED_AFTER_CREATE = (
    "PatientName", "PatientID", "IssuerOfPatientID", "IssuerOfPatientIDQualifiersSequence", "PatientBirthDate",
    "PatientSex", "AdmissionID", "IssuerOfAdmissionIDSequence", "AdmittingDiagnosesDescription",
    "AdmittingDiagnosesCodeSequence", "ReferencedRequestSequence", "ReplacedProcedureStepSequence",
)
PROGRESS_ITEM = (
    "ProcedureStepProgress", "ProcedureStepProgressDescription", "ProcedureStepProgressParametersSequence",
    "ProcedureStepCommunicationsURISequence", "ProcedureStepCancellationDateTime", "ReasonForCancellation",
    "ProcedureStepDiscontinuationReasonCodeSequence",
)
PERFORMED_ITEM = (
    "ActualHumanPerformersSequence", "PerformedStationNameCodeSequence", "PerformedStationClassCodeSequence",
    "PerformedStationGeographicLocationCodeSequence", "PerformedProcedureStepStartDateTime",
    "PerformedProcedureStepDescription", "CommentsOnThePerformedProcedureStep", "PerformedWorkitemCodeSequence",
    "PerformedProcessingParametersSequence", "PerformedProcedureStepEndDateTime", "OutputInformationSequence",
)

CREATE = (
    Rule("TransactionUID", "empty"),
    *_rules("1/1", "SOPClassUID", "SOPInstanceUID", "ScheduledProcedureStepPriority", "ProcedureStepLabel"),
    Rule("WorklistLabel", "2/1"),
    Rule("ScheduledProcessingParametersSequence", "2/2", CONTENT_ITEM),
    Rule("ScheduledStationNameCodeSequence", "2/2", CODE),
    Rule("ScheduledStationClassCodeSequence", "2/2", CODE),
    Rule("ScheduledStationGeographicLocationCodeSequence", "2/2", CODE),
    Rule("ScheduledHumanPerformersSequence", "2C/2C", HUMAN_PERFORMER),
    Rule("ScheduledProcedureStepStartDateTime", "1/1"),
    Rule("ScheduledWorkitemCodeSequence", "2/2", CODE),
    Rule("CommentsOnTheScheduledProcedureStep", "2/2"),
    Rule("InputReadinessState", "1/1"),
    Rule("InputInformationSequence", "2/2", REFERENCED_INSTANCES),
    Rule("PatientName", "2/2"),
    Rule("IssuerOfPatientID", "2/2"),
    Rule("IssuerOfPatientIDQualifiersSequence", "2/2", ISSUER_QUALIFIERS),
    Rule("OtherPatientIDsSequence", "2/2", (
        Rule("PatientID", "1/1"), Rule("IssuerOfPatientID", "2/2"),
        Rule("IssuerOfPatientIDQualifiersSequence", "2/2", ISSUER_QUALIFIERS),
    )),
    *_rules("2/2", "PatientBirthDate", "PatientSex", "AdmissionID", "IssuerOfAdmissionIDSequence"),
    Rule("AdmittingDiagnosesDescription", "2/2"),
    Rule("AdmittingDiagnosesCodeSequence", "2/2", CODE),
    Rule("ReferencedRequestSequence", "2/2", REFERENCED_REQUEST),
    Rule("ReplacedProcedureStepSequence", "1C/1C", _rules("1/1", "ReferencedSOPClassUID", "ReferencedSOPInstanceUID")),
    Rule("ProcedureStepState", "1/1"),
    # Progress and performance are the performer's to report, after creation.
    Rule("ProcedureStepProgressInformationSequence", "2/2", _rules("-", *PROGRESS_ITEM)),
    Rule("UnifiedProcedureStepPerformedProcedureSequence", "2/2", _rules("-", *PERFORMED_ITEM)),
)

UPDATE = (
    *_rules("-", *SERVER_SET, *FIXED_AFTER_CREATE),
    Rule("TransactionUID", "-"),
    Rule("ScheduledProcessingParametersSequence", "3/2", CONTENT_ITEM),
    Rule("ScheduledStationNameCodeSequence", "3/2", CODE),
    Rule("ScheduledStationClassCodeSequence", "3/2", CODE),
    Rule("ScheduledStationGeographicLocationCodeSequence", "3/2", CODE),
    Rule("ScheduledHumanPerformersSequence", "3/2", HUMAN_PERFORMER),
    Rule("ScheduledWorkitemCodeSequence", "3/1", CODE),
    Rule("InputInformationSequence", "3/2", REFERENCED_INSTANCES),
    Rule("ProcedureStepProgressInformationSequence", "3/2", (
        Rule("ProcedureStepCommunicationsURISequence", "3/1", (Rule("ContactURI", "1/1"),)),
        Rule("ProcedureStepDiscontinuationReasonCodeSequence", "3/1", CODE),
    )),
    Rule("UnifiedProcedureStepPerformedProcedureSequence", "3/2", (
        Rule("ActualHumanPerformersSequence", "3/1", (Rule("HumanPerformerCodeSequence", "3/1", CODE),)),
        Rule("PerformedStationNameCodeSequence", "3/2", CODE),
        Rule("PerformedStationClassCodeSequence", "3/2", CODE),
        Rule("PerformedStationGeographicLocationCodeSequence", "3/2", CODE),
        Rule("PerformedWorkitemCodeSequence", "3/1", CODE),
        Rule("PerformedProcessingParametersSequence", "3/1", CONTENT_ITEM),
    )),
)

# Final-state codes: R for both final states, P for COMPLETED, X for CANCELED.
FINAL = (
    *_rules("R", "SOPClassUID", "SOPInstanceUID", "ScheduledProcedureStepPriority"),
    *_rules("R", "ScheduledProcedureStepModificationDateTime", "ScheduledProcedureStepStartDateTime"),
    *_rules("R", "InputReadinessState", "ProcedureStepState"),
    Rule("ProcedureStepProgressInformationSequence", "X", _rules(
        "X", "ProcedureStepCancellationDateTime", "ProcedureStepDiscontinuationReasonCodeSequence",
    )),
    Rule("UnifiedProcedureStepPerformedProcedureSequence", "P", _rules(
        "P", "PerformedStationNameCodeSequence", "PerformedProcedureStepStartDateTime",
        "PerformedWorkitemCodeSequence", "PerformedProcedureStepEndDateTime", "OutputInformationSequence",
    )),
)


def _fail(message: str, tag: str) -> WorkitemDatasetInvalid:
    return WorkitemDatasetInvalid(message.format(tag_text(tag)))


def _check_present(dataset: Dataset, tag: str, *, present: bool, with_value: bool) -> None:
    element = dataset.get(tag)
    if element is None:
        if present:
            raise _fail(MISSING, tag)
        return
    if not with_value:
        return
    found = element.get("Value", [])
    if not found:
        raise _fail(MISSING_VALUE, tag)
    if element.get("vr") in TEXT_VRS and all(isinstance(v, str) and not v.strip() for v in found):
        raise _fail(BLANK, tag)


def _check(dataset: Dataset, rule: Rule, code: str) -> None:
    tag = key(rule.keyword)
    if code == "-":
        if tag in dataset:
            raise _fail(NOT_ALLOWED, tag)
    elif code == "empty":
        if (dataset.get(tag) or {}).get("Value"):
            raise _fail(MUST_BE_EMPTY, tag)
    else:
        _check_present(dataset, tag, present=code in PRESENT, with_value=code in WITH_VALUE)


def _items(dataset: Dataset, rule: Rule) -> list[Dataset]:
    return [item for item in (dataset.get(key(rule.keyword)) or {}).get("Value", []) if isinstance(item, dict)]


def requirements_check(*, dataset: Dataset, rules: tuple[Rule, ...]) -> None:
    """Raise WorkitemDatasetInvalid at the first rule `dataset` breaks (create or update table)."""
    for rule in rules:
        _check(dataset, rule, rule.code)
        if rule.items is None or rule.code == "-":
            continue
        items = _items(dataset, rule)
        if rule.code == "1/1" and not items:
            continue  # already refused above
        for item in items:
            requirements_check(dataset=item, rules=rule.items)


def _final_code(code: str, state: str) -> str:
    required = code == "R" or (code == "P" and state == "COMPLETED") or (code == "X" and state == "CANCELED")
    return "1/1" if required else "3/3"


def final_state_check(*, dataset: Dataset, state: str, rules: tuple[Rule, ...] = FINAL) -> None:
    """Raise WorkitemDatasetInvalid when `dataset` lacks what PS3.4 requires of a workitem in `state`."""
    for rule in rules:
        _check(dataset, rule, _final_code(rule.code, state))
        for item in _items(dataset, rule) if rule.items else ():
            final_state_check(dataset=item, state=state, rules=rule.items or ())
