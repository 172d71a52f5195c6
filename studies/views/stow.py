"""STOW-RS views: POST studies and POST studies/{study}."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse
from rest_framework.request import Request

from dicomsvc.api.body import request_body_file
from dicomsvc.api.mediatypes import accepts_dicom_json, media_type_parse
from dicomsvc.errors import NotAcceptable, UnsupportedMediaType
from partitions.api import PartitionedView
from studies.dicom.dicomjson import json_dumps_fast
from studies.dicom.uids import uid_require
from studies.search.attributes import Resource
from studies.services.stow import MULTIPLE_VALUES_WARNING, stow_parts, stow_process
from studies.views.search import search_response
from studies.views.stow_response import stow_response_dataset

DICOM_JSON = "application/dicom+json"


def warning_header(message: str) -> str:
    host = urlsplit(settings.DICOM_PUBLIC_BASE_URL).netloc or "-"
    return f'299 {host}: "{message}"'


class StowMixin(PartitionedView):
    creates_partition_for = frozenset({"POST"})

    def stow(self, request: Request, study_uid: str | None) -> HttpResponse:
        if study_uid is not None:
            study_uid = uid_require(name="StudyInstanceUID", value=study_uid)
        if not accepts_dicom_json(request):
            raise NotAcceptable()
        content_type = request.META.get("CONTENT_TYPE", "")
        media = media_type_parse(content_type)
        if media is None:
            raise UnsupportedMediaType(content_type)
        body, size = request_body_file(request._request, limit=settings.DICOM_MAX_STOW_BYTES)
        parts = stow_parts(body=body, size=size, media=media)
        result = stow_process(
            parts=parts, partition=self.partition, study_uid=study_uid, api_version=self.api_version
        )
        if result.status_code == 204:
            return HttpResponse(status=204)
        dataset = stow_response_dataset(result, base_url=self.base_url(), study_uid=study_uid)
        response = HttpResponse(
            json_dumps_fast(dataset), status=result.status_code, content_type=DICOM_JSON
        )
        if result.multi_valued_warning:
            response["Warning"] = warning_header(MULTIPLE_VALUES_WARNING)
        return response


class StudiesView(StowMixin):
    """`/studies`: STOW (POST) and QIDO (GET)."""

    def post(self, request: Request, **kwargs: Any) -> HttpResponse:
        return self.stow(request, None)

    def get(self, request: Request, **kwargs: Any) -> HttpResponse:
        return search_response(self, request, resource=Resource.STUDIES)
