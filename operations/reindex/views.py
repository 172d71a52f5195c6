"""Extended query tags at /v{n}/extendedquerytags (base URI only, never in a partition)."""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework.request import Request
from rest_framework.response import Response

from dicomsvc.api.openapi import JSON, PAGING, dicom_schema
from dicomsvc.api.query import MAX_OFFSET, integer_parameter
from dicomsvc.api.views import DicomView
from operations.reindex.services import extended_query_tag_delete, reindex_create
from operations.reindex.wire import tag_error_json, tag_json
from operations.wire import operation_reference, operation_url
from studies.eqt.selectors import tag_errors_page, tag_get, tags_page
from studies.eqt.services import query_status_parse, tag_query_status_set

MAX_LIMIT = 200
DEFAULT_LIMIT = 100


def _page(request: Request) -> tuple[int, int]:
    """`limit` (1..200, default 100) and `offset` (>= 0) with Microsoft's model-binding messages."""
    bounds = {"limit": (1, MAX_LIMIT, DEFAULT_LIMIT), "offset": (0, MAX_OFFSET, 0)}
    given = {key.lower(): values[0] for key, values in request.query_params.lists()}
    found = {
        name: default if name not in given else integer_parameter(name, name.capitalize(), given[name], low, high)
        for name, (low, high, default) in bounds.items()
    }
    return found["limit"], found["offset"]


class ExtendedQueryTagsView(DicomView):
    """`extendedquerytags`: list, and add (202 with the reindex operation)."""

    data_actions: ClassVar[dict[str, str]] = {"GET": "read", "POST": "manageExtendedQueryTags"}

    @dicom_schema("List extended query tags", ok={200: [JSON]}, errors=(400,), query=PAGING)
    def get(self, request: Request, **kwargs: Any) -> Response:
        limit, offset = _page(request)
        tags = tags_page(limit=limit, offset=offset)
        return Response([tag_json(tag, version_segment=self.version_segment) for tag in tags])

    @dicom_schema(
        "Add extended query tags (starts a reindex operation)", ok={202: [JSON]}, errors=(400, 409), body=[JSON]
    )
    def post(self, request: Request, **kwargs: Any) -> Response:
        operation, _tags = reindex_create(body=request.data, version_segment=self.version_segment)
        response = Response(operation_reference(version_segment=self.version_segment, operation=operation), status=202)
        response["Location"] = operation_url(version_segment=self.version_segment, operation_id=operation.pk)
        return response


class ExtendedQueryTagView(DicomView):
    """`extendedquerytags/{path}`: get, enable or disable searching, delete."""

    data_actions: ClassVar[dict[str, str]] = {
        "GET": "read",
        "PATCH": "manageExtendedQueryTags",
        "DELETE": "manageExtendedQueryTags",
    }

    @dicom_schema("An extended query tag", ok={200: [JSON]}, errors=(400, 404))
    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response(tag_json(tag_get(path=kwargs["path"]), version_segment=self.version_segment))

    @dicom_schema("Enable or disable searching on a tag", ok={200: [JSON]}, errors=(400, 404), body=[JSON])
    def patch(self, request: Request, **kwargs: Any) -> Response:
        query_status = query_status_parse(body=request.data)
        tag = tag_query_status_set(path=kwargs["path"], query_status=query_status)
        return Response(tag_json(tag, version_segment=self.version_segment))

    @dicom_schema("Delete an extended query tag and its values", ok={204: None}, errors=(400, 404))
    def delete(self, request: Request, **kwargs: Any) -> Response:
        extended_query_tag_delete(path=kwargs["path"])
        return Response(status=204)


class ExtendedQueryTagErrorsView(DicomView):
    """`extendedquerytags/{path}/errors`: the instances the reindex could not index, paged."""

    data_actions: ClassVar[dict[str, str]] = {"GET": "read"}

    @dicom_schema("The instances a tag could not index", ok={200: [JSON]}, errors=(400, 404), query=PAGING)
    def get(self, request: Request, **kwargs: Any) -> Response:
        limit, offset = _page(request)
        rows = tag_errors_page(path=kwargs["path"], limit=limit, offset=offset)
        return Response([tag_error_json(row) for row in rows])
