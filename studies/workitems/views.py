"""UPS-RS routes: workitems (search, create), workitems/{uid} (retrieve, update), its state and
cancellation request. Each parses the request, calls one service or selector, and renders."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse
from rest_framework.request import Request

from dicomsvc.api.body import request_body_file
from dicomsvc.api.mediatypes import accepts_dicom_json, media_type_parse
from dicomsvc.api.openapi import DICOM_JSON, SEARCH, dicom_schema
from dicomsvc.dicom_values import uid_is_valid_unpadded
from dicomsvc.errors import InvalidUid, NotAcceptable, UnsupportedMediaType, WorkitemStateConflict
from partitions.api import PartitionedView
from studies.workitems.dataset import Dataset, body_dataset
from studies.workitems.query import workitem_query_parse
from studies.workitems.selectors import workitem_get, workitem_search
from studies.workitems.services import (
    workitem_cancel_request,
    workitem_create,
    workitem_state_change,
    workitem_update,
)

# A workitem is a few kilobytes of JSON; anything near this is not one.
MAX_BODY_BYTES = 4 * 1024 * 1024


def warning(message: str) -> str:
    host = urlsplit(settings.DICOM_PUBLIC_BASE_URL).netloc or "-"
    return f'299 {host}: "{message}"'


def workitem_uid(value: str) -> str:
    if not uid_is_valid_unpadded(value):
        raise InvalidUid("WorkitemInstanceUID", value)
    return value


def first_query_name(request: Request) -> str | None:
    """The name of the first query parameter: UPS-RS puts a UID there (`workitems?{uid}`)."""
    return next(iter(request.query_params.keys()), None) or None


def request_dataset(request: Request, *, optional: bool = False) -> Dataset:
    """The first dataset of a DICOM JSON body; 415 for another media type."""
    body, size = request_body_file(request, limit=MAX_BODY_BYTES)
    if optional and size == 0:
        return {}
    content_type = request.META.get("CONTENT_TYPE", "")
    if media_type_parse(content_type).type != DICOM_JSON:
        raise UnsupportedMediaType(content_type)
    return body_dataset(body=body.read())


def dicom_json_array(datasets: list[str]) -> HttpResponse:
    """A DICOM JSON array of datasets already encoded as JSON text."""
    return HttpResponse(f"[{','.join(datasets)}]".encode(), content_type=DICOM_JSON)


def require_dicom_json_accept(request: Request) -> None:
    if not accepts_dicom_json(request):
        raise NotAcceptable()


class WorkitemsView(PartitionedView):
    """`workitems`: search (GET) and create (POST), which creates a missing partition as STOW does."""

    creates_partition_for = frozenset({"POST"})
    data_actions: ClassVar[dict[str, str]] = {"GET": "read", "POST": "write"}

    @dicom_schema(
        "Search workitems (UPS-RS)", ok={200: [DICOM_JSON], 204: None}, errors=(400, 406), query=SEARCH,
        description="Filters: PatientName, PatientID, ScheduledProcedureStepStartDateTime, ProcedureStepState, "
        "StudyInstanceUID and the other attributes docs/workitems.md lists.",
    )
    def get(self, request: Request, **kwargs: Any) -> HttpResponse:
        require_dicom_json_accept(request)
        query = workitem_query_parse(params=request.query_params.lists())
        found = workitem_search(partition=self.partition, query=query)
        return dicom_json_array(found) if found else HttpResponse(status=204)

    @dicom_schema(
        "Create a workitem; its UID is the first query parameter's name or the dataset's SOPInstanceUID",
        ok={201: None}, errors=(400, 406, 409, 415), body=[DICOM_JSON],
    )
    def post(self, request: Request, **kwargs: Any) -> HttpResponse:
        require_dicom_json_accept(request)
        query_uid = first_query_name(request)
        dataset = request_dataset(request)
        workitem = workitem_create(
            partition=self.partition, dataset=dataset, query_uid=query_uid, worklist=self.partition.partition_name
        )
        response = HttpResponse(status=201)
        response["Location"] = response["Content-Location"] = f"{self.base_url()}/workitems/{workitem.workitem_uid}"
        return response


class WorkitemView(PartitionedView):
    """`workitems/{uid}`: retrieve (GET) and update (POST, `?{transactionUid}` once claimed)."""

    data_actions: ClassVar[dict[str, str]] = {"GET": "read", "POST": "write"}

    @dicom_schema("Retrieve a workitem", ok={200: [DICOM_JSON]}, errors=(400, 404, 406))
    def get(self, request: Request, **kwargs: Any) -> HttpResponse:
        uid = workitem_uid(kwargs["workitem"])
        require_dicom_json_accept(request)
        workitem = workitem_get(partition=self.partition, uid=uid)
        return dicom_json_array([workitem.dataset])

    @dicom_schema(
        "Update a workitem (the transaction UID as the query, once claimed)",
        ok={200: None}, errors=(400, 404, 409, 415), body=[DICOM_JSON],
    )
    def post(self, request: Request, **kwargs: Any) -> HttpResponse:
        uid = workitem_uid(kwargs["workitem"])
        dataset = request_dataset(request)
        message = workitem_update(
            partition=self.partition, uid=uid, transaction_uid=first_query_name(request), dataset=dataset
        )
        response = HttpResponse(status=200)
        response["Content-Location"] = f"{self.base_url()}/workitems/{uid}"
        if message:
            response["Warning"] = warning(message)
        return response


class WorkitemStateView(PartitionedView):
    """`workitems/{uid}/state`: claim, complete or cancel (PUT)."""

    data_actions: ClassVar[dict[str, str]] = {"PUT": "write"}

    @dicom_schema("Change a workitem's state", ok={200: None}, errors=(400, 404, 409, 415), body=[DICOM_JSON])
    def put(self, request: Request, **kwargs: Any) -> HttpResponse:
        uid = workitem_uid(kwargs["workitem"])
        dataset = request_dataset(request)
        message = workitem_state_change(partition=self.partition, uid=uid, dataset=dataset)
        response = HttpResponse(message or "", status=200, content_type="text/plain; charset=utf-8")
        if message:
            response["Warning"] = warning(message)
        return response


class WorkitemCancelRequestView(PartitionedView):
    """`workitems/{uid}/cancelrequest`: ask for a SCHEDULED workitem to be canceled (POST, 202)."""

    data_actions: ClassVar[dict[str, str]] = {"POST": "write"}

    @dicom_schema("Request the cancellation of a workitem", ok={202: None}, errors=(400, 404, 409, 415))
    def post(self, request: Request, **kwargs: Any) -> HttpResponse:
        uid = workitem_uid(kwargs["workitem"])
        dataset = request_dataset(request, optional=True)
        try:
            workitem_cancel_request(partition=self.partition, uid=uid, dataset=dataset)
        except WorkitemStateConflict as conflict:
            # Microsoft's server repeats the reason of a refused cancellation as a Warning.
            response = HttpResponse(conflict.message, status=409, content_type="text/plain; charset=utf-8")
            response["Warning"] = warning(conflict.message)
            return response
        return HttpResponse(status=202)
