"""OpenAPI (drf-spectacular): how a view documents its routes, and the document of one API version.

The views' bodies are DICOM, multipart and plain text, not serializers, so nothing can be
guessed from them: every view method says what it answers with `dicom_schema` (a thin layer
over drf-spectacular's `extend_schema`), in one decorator beside the code:

    @dicom_schema("Retrieve a study's thumbnail", ok={200: [JPEG, PNG], 304: None},
                  query=[VIEWPORT], headers=[ACCEPT, IF_NONE_MATCH])
    def get(self, request, **kwargs): ...

`tests/test_openapi.py` walks the URL resolver and fails on a route whose method has none.
`openapi_document` builds the document of one version: every route under `/v{n}/` (the
partition-scoped ones also under `/v{n}/partitions/{partition_name}/`), with the version
written into the paths rather than left as a parameter.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any, ClassVar, TypeVar

from django.http import HttpResponse
from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.renderers import OpenApiJsonRenderer, OpenApiYamlRenderer
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.request import Request

from dicomsvc.api.views import DicomView

F = TypeVar("F", bound=Callable[..., Any])

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
JSON = "application/json"
YAML = "application/yaml"
OCTET = "application/octet-stream"
JPEG = "image/jpeg"
PNG = "image/png"
TEXT = "text/plain"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"'
MULTIPART_OCTET = 'multipart/related; type="application/octet-stream"'
_JSON_TYPES = (DICOM_JSON, JSON)

# Errors nearly every DICOMweb route answers: a malformed UID or parameter, an unknown
# resource (or partition), an Accept it cannot satisfy.
READ_ERRORS = (400, 404, 406)

ACCEPT = OpenApiParameter(
    "Accept", location=OpenApiParameter.HEADER, description="Media types the client accepts (PS3.18 §8.7)."
)
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match", location=OpenApiParameter.HEADER, description="An ETag from an earlier answer: 304 if current."
)
REQUEST_ORIGINAL = OpenApiParameter(
    "msdicom-request-original",
    location=OpenApiParameter.HEADER,
    description="`true`: the version first stored, before any bulk update.",
)
RANGE = OpenApiParameter(
    "Range", location=OpenApiParameter.HEADER, description="One byte range (`bytes=first-last`, `bytes=-suffix`)."
)
VIEWPORT = OpenApiParameter("viewport", description="`vw,vh` or `vw,vh,sx,sy,sw,sh` (PS3.18 §8.3.5.1.3).")
QUALITY = OpenApiParameter("quality", int, description="JPEG quality, 1 to 100 (default 100).")
SEARCH = [
    OpenApiParameter("includefield", description="Attributes to return besides the defaults, or `all`."),
    OpenApiParameter("limit", int, description="Results per page (at most 200)."),
    OpenApiParameter("offset", int, description="Results to skip."),
    OpenApiParameter("fuzzymatching", bool, description="Person names match word prefixes."),
]
PAGING = [
    OpenApiParameter("limit", int, description="Entries per page (1 to 200, default 100)."),
    OpenApiParameter("offset", int, description="Entries to skip."),
]
SEARCH_DESCRIPTION = "Other parameters match attributes by keyword or tag, e.g. `PatientID=123` (docs/search.md)."


def _body_type(media_type: str) -> Any:
    return OpenApiTypes.OBJECT if media_type in _JSON_TYPES else OpenApiTypes.BINARY


def dicom_schema(
    summary: str,
    *,
    ok: dict[int, Sequence[str] | None],
    errors: Sequence[int] = READ_ERRORS,
    query: Sequence[OpenApiParameter] = (),
    headers: Sequence[OpenApiParameter] = (),
    body: Sequence[str] = (),
    description: str = "",
) -> Callable[[F], F]:
    """Document one view method: its successes (`{status: [media types] or None for no body}`),
    the errors it answers in plain text, its query and header parameters and request body types."""
    responses: dict[Any, Any] = {}
    for status, media_types in ok.items():
        phrase = HTTPStatus(status).phrase
        if not media_types:
            responses[status] = OpenApiResponse(description=phrase)
        for media_type in media_types or ():
            responses[(status, media_type)] = OpenApiResponse(_body_type(media_type), description=phrase)
    for status in errors:
        responses[(status, TEXT)] = OpenApiResponse(OpenApiTypes.STR, description=HTTPStatus(status).phrase)
    return extend_schema(
        summary=summary,
        description=description or None,
        parameters=[*query, *headers],
        request={media_type: _body_type(media_type) for media_type in body} if body else None,
        responses=responses,
    )


class DicomAutoSchema(AutoSchema):
    """Operation ids and tags from the route itself: `get_studies_study_series_series`, tag `studies`."""

    def get_operation_id(self) -> str:
        words = re.findall(r"[A-Za-z0-9]+", self.path)[2:]  # without "v{version}"
        return "_".join([self.method.lower(), *words])

    def get_tags(self) -> list[str]:
        return [_resource(self.path)]


class _Endpoints(EndpointEnumerator):
    """Routes as written: DRF reads a route as a regex and drops its `$`, but `$bulkUpdate` is literal."""

    def get_path_from_regex(self, path_regex: str) -> str:
        path: str = super().get_path_from_regex(path_regex.replace("$", "DOLLAR-SIGN"))  # type: ignore[no-untyped-call]
        return path.replace("DOLLAR-SIGN", "$")


class _Generator(SchemaGenerator):
    endpoint_inspector_cls = _Endpoints


def _resource(path: str) -> str:
    """The tag of a route: its first segment after the version and partition (studies, changefeed, ...)."""
    segments = path.split("/")[2:]
    if segments[:1] == ["partitions"] and len(segments) > 2:
        segments = segments[2:]
    return segments[0]


def openapi_document(*, version: str) -> dict[str, Any]:
    """The OpenAPI document of `/v{version}/`: its paths with the version written in."""
    # Generated on each request (~50 ms): a document is asked for rarely, and never goes stale.
    document: dict[str, Any] = _Generator().get_schema(request=None, public=True)  # type: ignore[no-untyped-call]
    document["info"]["version"] = version
    paths: dict[str, Any] = {}
    for path, item in document["paths"].items():
        if not path.startswith("/v{version}/"):
            continue
        for operation in item.values():
            operation["parameters"] = [p for p in operation.get("parameters", []) if p["name"] != "version"]
        paths[path.replace("{version}", version, 1)] = item
    document["paths"] = paths
    return document


class OpenApiView(DicomView):
    """`/v{n}/api.json` and `/v{n}/api.yaml`: the OpenAPI document of that version, whatever Accept asks."""

    data_actions: ClassVar[dict[str, str]] = {"GET": "read"}
    document_format = "json"

    @dicom_schema("This API version's OpenAPI document", ok={200: [JSON, YAML]}, errors=())
    def get(self, request: Request, **kwargs: Any) -> HttpResponse:
        document = openapi_document(version=self.version_segment)
        if self.document_format == "yaml":
            yaml_text = OpenApiYamlRenderer().render(document)  # type: ignore[no-untyped-call]
            return HttpResponse(yaml_text, content_type=f"{YAML}; charset=utf-8")
        json_text = OpenApiJsonRenderer().render(document)
        return HttpResponse(json_text, content_type=f"{JSON}; charset=utf-8")
