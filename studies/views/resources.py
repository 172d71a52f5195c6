"""The DICOMweb resource routes that answer several methods: search, store, retrieve and delete."""

from __future__ import annotations

from typing import Any, ClassVar

from django.http import HttpResponse, StreamingHttpResponse
from rest_framework.request import Request

from dicomsvc.api.openapi import (
    ACCEPT,
    DICOM_JSON,
    MULTIPART_DICOM,
    REQUEST_ORIGINAL,
    SEARCH,
    SEARCH_DESCRIPTION,
    dicom_schema,
)
from partitions.api import PartitionedView
from studies.search.attributes import Resource
from studies.services import instances_delete
from studies.views.retrieve import instances_response, route_uids
from studies.views.search import search_response
from studies.views.stow import store_response

RETRIEVE = dicom_schema(
    "Retrieve the instances (WADO-RS)",
    ok={200: [MULTIPART_DICOM, "application/dicom"]},
    headers=[ACCEPT, REQUEST_ORIGINAL],
    description="Multipart of the instances as stored (`transfer-syntax=*`) or in Explicit VR Little Endian; "
    "a single instance may be asked for as `application/dicom`.",
)
STORE = dicom_schema(
    "Store instances (STOW-RS)",
    ok={200: [DICOM_JSON], 202: [DICOM_JSON]},
    errors=(400, 406, 409, 413, 415),
    headers=[ACCEPT],
    body=[MULTIPART_DICOM],
    description="202 when some instances failed or were stored with warnings; 409 when none was stored.",
)
DELETE = dicom_schema("Delete the instances", ok={204: None}, errors=(400, 404))
SEARCH_STUDIES = dicom_schema(
    "Search studies (QIDO-RS)",
    ok={200: [DICOM_JSON], 204: None},
    errors=(400, 406),
    query=SEARCH,
    headers=[ACCEPT],
    description=SEARCH_DESCRIPTION,
)


class StudiesView(PartitionedView):
    """`/studies`: search studies (GET, QIDO-RS) and store instances (POST, STOW-RS)."""

    data_actions: ClassVar[dict[str, str]] = {"GET": "read", "POST": "write"}

    creates_partition_for = frozenset({"POST"})

    @SEARCH_STUDIES
    def get(self, request: Request, **kwargs: Any) -> HttpResponse:
        return search_response(self, request, resource=Resource.STUDIES)

    @STORE
    def post(self, request: Request, **kwargs: Any) -> HttpResponse:
        return store_response(self, request, study=None)


class InstancesView(PartitionedView):
    """A resource holding instances: retrieve them (GET), delete them. The series and instance
    views add only their docstring, which the OpenAPI document shows as DELETE's description;
    the study view adds POST (store into the study)."""

    data_actions: ClassVar[dict[str, str]] = {"GET": "read", "DELETE": "delete"}

    @RETRIEVE
    def get(self, request: Request, **kwargs: Any) -> HttpResponse | StreamingHttpResponse:
        return instances_response(self, request, kwargs)

    @DELETE
    def delete(self, request: Request, **kwargs: Any) -> HttpResponse:
        study, series, instance = route_uids(kwargs)
        instances_delete(
            partition=self.partition, study_instance_uid=study, series_instance_uid=series, sop_instance_uid=instance
        )
        return HttpResponse(status=204)


class StudyView(InstancesView):
    """`/studies/{study}`: retrieve the study (GET), store into it (POST), delete it."""

    data_actions: ClassVar[dict[str, str]] = {"GET": "read", "POST": "write", "DELETE": "delete"}

    creates_partition_for = frozenset({"POST"})

    @STORE
    def post(self, request: Request, **kwargs: Any) -> HttpResponse:
        return store_response(self, request, study=kwargs["study"])


class SeriesView(InstancesView):
    """`/studies/{study}/series/{series}`: retrieve the series (GET), delete it."""


class InstanceView(InstancesView):
    """`/studies/{study}/series/{series}/instances/{instance}`: retrieve the instance (GET), delete it."""
