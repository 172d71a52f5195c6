"""Writes of workitems: create, update, change state, request cancellation.

Every change after create is a compare-and-swap on the row's `version`: the request reads the
workitem, decides, and writes only if nobody wrote in between; otherwise it changes nothing and
answers 409, so of two racing changes the second fails whole or never started.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from dicomsvc.dicom_values import pn_search_form, uid_is_valid_unpadded
from dicomsvc.errors import (
    InvalidUid,
    WorkitemAlreadyExists,
    WorkitemChanged,
    WorkitemDatasetInvalid,
    WorkitemStateConflict,
    WorkitemStateInvalid,
    WorkitemUidMismatch,
)
from partitions.models import Partition
from studies.workitems.dataset import Dataset, dataset_text, first_item, key, put, tag_text, text, values
from studies.workitems.models import (
    FINAL_STATES,
    PERSON_NAME_WORD_LENGTH,
    ProcedureStepState,
    Workitem,
    WorkitemNameWord,
)
from studies.workitems.requirements import (
    CREATE,
    UPDATE,
    Rule,
    final_state_check,
    requirements_check,
)
from studies.workitems.selectors import workitem_dataset, workitem_get
from studies.workitems.states import Event, transition
from studies.workitems.values import dt_bounds

UPS_PUSH_SOP_CLASS = "1.2.840.10008.5.1.4.34.6.1"
# Microsoft's texts (DicomCoreResource.resx); docs/workitems.md has the table of which is whose.
INVALID_TRANSACTION_UID = "Invalid TransactionUID for the specified Workitem Instance UID."
NOT_CLAIMED = "The target URI did not reference a claimed Workitem."
UPDATE_CONFLICT = "The submitted request is inconsistent with the current state of the Workitem."
ALREADY_COMPLETED = "The UPS is already COMPLETED."
ALREADY_CANCELED = "The UPS is already in the requested state of CANCELED."
UNEXPECTED_VALUE = "Expected value '{0}' to be one of the following values: [{1}]"
TRANSITION_INVALID = "The workitem instance can not transition to '{0}' state: {1}."
IN_FINAL_STATE = "The workitem instance is already in the final state '{0}'. {1}."
UPDATE_WARNING_TAGS = "Following tags could not be updated as they were not present when the workitem was created: {0}"
# Ours: Microsoft's server overwrites the state of a new workitem, does not check the start as a DT
# on create, and its text for a cancellation request on a claimed workitem is not known.
NOT_SCHEDULED = "The ProcedureStepState (0074,1000) of a new workitem must be SCHEDULED."
INVALID_START = "The ScheduledProcedureStepStartDateTime (0040,4005) value '{0}' is not a valid DT."
NOT_CANCELED_BY_PERFORMER = "The performer chooses not to cancel."
# The states a change may ask for, exactly as written (case counts), in Microsoft's order.
CHANGE_TARGETS = (ProcedureStepState.IN_PROGRESS, ProcedureStepState.CANCELED, ProcedureStepState.COMPLETED)
CANCEL_REFUSED = {"C311": ALREADY_COMPLETED, "C312": NOT_CANCELED_BY_PERFORMER, "B304": ALREADY_CANCELED}
CHANGE_STATE_BODY = (Rule("TransactionUID", "1/1"), Rule("ProcedureStepState", "1/1"))
# Cancellation details a cancellation request may carry (PS3.4 CC.2.4.2).
CANCEL_DETAILS = ("ReasonForCancellation", "ProcedureStepDiscontinuationReasonCodeSequence")
CONTACT = ("ContactURI", "ContactDisplayName")


def _now_dt() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S.%f")


def _columns(dataset: Dataset) -> dict[str, Any]:
    """The searchable columns of a dataset (the first item's value for attributes in a sequence)."""
    start = text(dataset, "ScheduledProcedureStepStartDateTime")
    bounds = dt_bounds(start) if start else None
    if start and bounds is None:
        raise WorkitemDatasetInvalid(INVALID_START.format(start))
    study = text(dataset, "StudyInstanceUID")
    if study and not uid_is_valid_unpadded(study):
        raise InvalidUid("StudyInstanceUID", study)
    request = first_item(dataset, "ReferencedRequestSequence")
    name = text(dataset, "PatientName")
    return {
        "patient_name": name[:330],
        "patient_name_search": pn_search_form(name)[:330],
        "patient_id": text(dataset, "PatientID")[:64],
        "accession_number": text(request, "AccessionNumber")[:64],
        "requested_procedure_id": text(request, "RequestedProcedureID")[:64],
        "scheduled_start": bounds[0] if bounds else "",
        "station_name_code": text(first_item(dataset, "ScheduledStationNameCodeSequence"), "CodeValue")[:64],
        "station_class_code": text(first_item(dataset, "ScheduledStationClassCodeSequence"), "CodeValue")[:64],
        "station_location_code": text(
            first_item(dataset, "ScheduledStationGeographicLocationCodeSequence"), "CodeValue"
        )[:64],
        "study_instance_uid": study,
    }


def _uid_reconcile(dataset: Dataset, query_uid: str | None) -> str:
    body_uid = text(dataset, "SOPInstanceUID")
    if query_uid and body_uid and body_uid != query_uid:
        raise WorkitemUidMismatch()
    uid = query_uid or body_uid
    if not uid:
        raise WorkitemDatasetInvalid(f"The required tag '{tag_text(key('SOPInstanceUID'))}' is missing.")
    if not uid_is_valid_unpadded(uid):
        raise InvalidUid("SOPInstanceUID", uid)
    return uid


def workitem_create(*, partition: Partition, dataset: Dataset, query_uid: str | None, worklist: str) -> Workitem:
    """Create a SCHEDULED workitem; its UID is the query's (when given) or the dataset's SOPInstanceUID.

    The server sets SOPClassUID (UPS Push), SOPInstanceUID, ScheduledProcedureStepModificationDateTime,
    ProcedureStepState and, when the dataset has none, WorklistLabel (`worklist`).
    """
    uid = _uid_reconcile(dataset, query_uid)
    state = text(dataset, "ProcedureStepState")
    if state and state.upper() != ProcedureStepState.SCHEDULED:
        raise WorkitemDatasetInvalid(NOT_SCHEDULED)
    put(dataset, "SOPClassUID", UPS_PUSH_SOP_CLASS)
    put(dataset, "SOPInstanceUID", uid)
    put(dataset, "ScheduledProcedureStepModificationDateTime", _now_dt())
    if not text(dataset, "WorklistLabel"):
        put(dataset, "WorklistLabel", worklist)
    put(dataset, "ProcedureStepState", ProcedureStepState.SCHEDULED.value)
    requirements_check(dataset=dataset, rules=CREATE)
    dataset.pop(key("TransactionUID"), None)  # present only empty; the column holds the real one
    columns = _columns(dataset)
    try:
        with transaction.atomic():
            workitem = Workitem.objects.create(
                partition=partition,
                workitem_uid=uid,
                state=ProcedureStepState.SCHEDULED,
                dataset=dataset_text(dataset),
                **columns,
            )
            name = columns["patient_name_search"]
            WorkitemNameWord.objects.bulk_create(
                WorkitemNameWord(partition=partition, workitem=workitem, word=word[:PERSON_NAME_WORD_LENGTH], name=name)
                for word in dict.fromkeys(name.split())
            )
    except IntegrityError:
        raise WorkitemAlreadyExists() from None
    return workitem


def _swap(workitem: Workitem, dataset: Dataset, **fields: Any) -> None:
    """Write the workitem if it is still the version that was read; else 409, nothing written."""
    written = Workitem.objects.filter(pk=workitem.pk, version=workitem.version).update(
        version=workitem.version + 1,
        dataset=dataset_text(dataset),
        updated_at=timezone.now(),
        **fields,
    )
    if written != 1:
        raise WorkitemChanged()


def _update_allowed(workitem: Workitem, transaction_uid: str | None) -> None:
    if workitem.state == ProcedureStepState.COMPLETED:
        raise WorkitemStateInvalid(f"{UPDATE_CONFLICT} {ALREADY_COMPLETED}")
    if workitem.state == ProcedureStepState.CANCELED:
        raise WorkitemStateInvalid(f"{UPDATE_CONFLICT} {ALREADY_CANCELED}")
    if workitem.state == ProcedureStepState.SCHEDULED:
        if transaction_uid:
            raise WorkitemStateInvalid(INVALID_TRANSACTION_UID)
        return
    if transaction_uid != workitem.transaction_uid:  # none given, or not the owner's
        raise WorkitemStateInvalid(NOT_CLAIMED)


def workitem_update(
    *, partition: Partition, uid: str, transaction_uid: str | None, dataset: Dataset
) -> str | None:
    """Replace the attributes `dataset` gives; returns the warning when some were not in the workitem.

    A SCHEDULED workitem is updated without a transaction UID, one IN PROGRESS only with its own;
    a COMPLETED or CANCELED one never. Attributes the workitem was created without are ignored.
    """
    workitem = workitem_get(partition=partition, uid=uid)
    _update_allowed(workitem, transaction_uid)
    requirements_check(dataset=dataset, rules=UPDATE)
    stored = workitem_dataset(workitem=workitem)
    ignored = sorted(tag for tag in dataset if tag not in stored)
    stored.update({tag: element for tag, element in dataset.items() if tag in stored})
    put(stored, "ScheduledProcedureStepModificationDateTime", _now_dt())
    _swap(workitem, stored, **_columns(stored))
    if not ignored:
        return None
    return UPDATE_WARNING_TAGS.format(", ".join(tag_text(tag) for tag in ignored))


def _progress_item(dataset: Dataset) -> Dataset:
    """The first item of ProcedureStepProgressInformationSequence, added when there is none."""
    items = values(dataset, "ProcedureStepProgressInformationSequence")
    if not items:
        items = [{}]
        put(dataset, "ProcedureStepProgressInformationSequence", *items)
    item: Dataset = items[0]
    return item


def workitem_state_change(*, partition: Partition, uid: str, dataset: Dataset) -> str | None:
    """Claim (IN PROGRESS with a new transaction UID), complete or cancel; returns a warning (B304/B306)
    when the workitem is in the requested final state already."""
    requirements_check(dataset=dataset, rules=CHANGE_STATE_BODY)
    target = text(dataset, "ProcedureStepState")
    if target not in CHANGE_TARGETS:
        raise WorkitemDatasetInvalid(
            UNEXPECTED_VALUE.format(tag_text(key("ProcedureStepState")), ",".join(CHANGE_TARGETS))
        )
    transaction_uid = text(dataset, "TransactionUID")
    if not uid_is_valid_unpadded(transaction_uid):
        raise InvalidUid("TransactionUID", transaction_uid)
    workitem = workitem_get(partition=partition, uid=uid)
    owner = transaction_uid == workitem.transaction_uid or (
        not workitem.transaction_uid and target == ProcedureStepState.IN_PROGRESS
    )
    result = transition(event=Event(ProcedureStepState(target)), state=workitem.state, owner=owner)
    if result.code is not None and result.is_error:
        raise WorkitemStateInvalid(TRANSITION_INVALID.format(target, result.code))
    if result.code is not None:
        # Microsoft answers a repeated cancellation with the request-cancel text, a repeated completion
        # with the final-state one.
        return ALREADY_CANCELED if result.code == "B304" else IN_FINAL_STATE.format(workitem.state, result.code)
    stored = workitem_dataset(workitem=workitem)
    put(stored, "ProcedureStepState", target)
    if target == ProcedureStepState.CANCELED:
        put(_progress_item(stored), "ProcedureStepCancellationDateTime", _now_dt())
    if target in FINAL_STATES:
        final_state_check(dataset=stored, state=target)
    _swap(workitem, stored, state=target, transaction_uid=transaction_uid)
    return None


def workitem_cancel_request(*, partition: Partition, uid: str, dataset: Dataset) -> None:
    """Cancel a SCHEDULED workitem on behalf of someone who does not own it (409 in any other state).

    The request's reason, discontinuation code and contact are kept in the progress information.
    """
    workitem = workitem_get(partition=partition, uid=uid)
    result = transition(event=Event.REQUEST_CANCEL, state=workitem.state)
    if result.code is not None:
        raise WorkitemStateConflict(CANCEL_REFUSED[result.code])
    stored = workitem_dataset(workitem=workitem)
    put(stored, "ProcedureStepState", ProcedureStepState.CANCELED.value)
    progress = _progress_item(stored)
    put(progress, "ProcedureStepCancellationDateTime", _now_dt())
    for name in CANCEL_DETAILS:
        if key(name) in dataset:
            progress[key(name)] = dataset[key(name)]
    contact = {key(name): dataset[key(name)] for name in CONTACT if key(name) in dataset}
    if contact:
        put(progress, "ProcedureStepCommunicationsURISequence", contact)
    _swap(workitem, stored, state=ProcedureStepState.CANCELED)
