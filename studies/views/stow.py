"""STOW-RS: POST studies and POST studies/{study} (served by `studies.views.resources`)."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse
from rest_framework.request import Request

from dicomsvc.api.body import request_body_file
from dicomsvc.api.mediatypes import accepts_dicom_json, media_type_parse
from dicomsvc.errors import NotAcceptable
from partitions.api import PartitionedView
from studies.dicom.dicomjson import json_dumps_fast
from studies.dicom.uids import uid_require
from studies.services.stow import MULTIPLE_VALUES_WARNING, stow_parts, stow_process
from studies.views.stow_response import stow_response_dataset

DICOM_JSON = "application/dicom+json"


def warning_header(message: str) -> str:
    host = urlsplit(settings.DICOM_PUBLIC_BASE_URL).netloc or "-"
    return f'299 {host}: "{message}"'


def store_response(view: PartitionedView, request: Request, *, study: str | None) -> HttpResponse:
    """Validate, store the request's instances in the view's partition (into `study` if given), render."""
    study_uid = uid_require(name="StudyInstanceUID", value=study) if study is not None else None
    if not accepts_dicom_json(request):
        raise NotAcceptable()
    content_type = request.META.get("CONTENT_TYPE", "")
    media = media_type_parse(content_type)
    body, size = request_body_file(request, limit=settings.DICOM_MAX_STOW_BYTES)
    parts = stow_parts(body=body, size=size, media=media)
    result = stow_process(parts=parts, partition=view.partition, study_uid=study_uid, api_version=view.api_version)
    if result.status_code == 204:
        return HttpResponse(status=204)
    dataset = stow_response_dataset(result, base_url=view.base_url(), study_uid=study_uid)
    response = HttpResponse(json_dumps_fast(dataset), status=result.status_code, content_type=DICOM_JSON)
    if result.multi_valued_warning:
        response["Warning"] = warning_header(MULTIPLE_VALUES_WARNING)
    return response
