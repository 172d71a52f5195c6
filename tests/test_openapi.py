"""The OpenAPI documents at /v{n}/api.json and /v{n}/api.yaml describe every route Django serves."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from django.urls import path
from drf_spectacular.validation import validate_schema
from rest_framework.request import Request
from rest_framework.response import Response

from dicomsvc import urls as root_urls  # registers the route converters
from dicomsvc.api.views import DicomView
from tests.helpers import served_routes

VERSIONS = ["1.0-prerelease", "1", "2"]


def document_of(client: Any, version: str) -> dict[str, Any]:
    response = client.get(f"/v{version}/api.json", HTTP_ACCEPT="text/html")  # Accept plays no part
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    return response.json()  # type: ignore[no-any-return]


def documented(operation: dict[str, Any] | None) -> bool:
    """Whether a view said what the operation answers (`dicom_schema`), not just that it exists."""
    if not operation or not operation.get("summary"):
        return False
    successes = [status for status in operation["responses"] if status.startswith("2") or status == "304"]
    return bool(successes) and all(
        "content" in response or status in ("204", "304")
        or response["description"] != "No response body"
        for status, response in operation["responses"].items()
    )


def undocumented(document: dict[str, Any], version: str) -> list[str]:
    missing = []
    for method, route, partitioned in sorted(served_routes()):
        prefixes = [f"/v{version}/"] + ([f"/v{version}/partitions/{{partition_name}}/"] if partitioned else [])
        for prefix in prefixes:
            operation = document["paths"].get(prefix + route, {}).get(method.lower())
            if not documented(operation):
                missing.append(f"{method} {prefix}{route}")
    return missing


@pytest.mark.parametrize("version", VERSIONS)
def test_every_served_route_is_documented(client, version):
    document = document_of(client, version)
    assert undocumented(document, version) == []
    validate_schema(document)  # valid OpenAPI 3
    assert document["info"]["version"] == version
    assert all(route.startswith(f"/v{version}/") for route in document["paths"])
    assert not any(p["name"] == "version" for item in document["paths"].values() for o in item.values()
                   for p in o["parameters"])


def test_the_yaml_document_is_the_json_one(client):
    response = client.get("/v2/api.yaml")
    assert response["Content-Type"] == "application/yaml; charset=utf-8"
    assert yaml.safe_load(response.content) == document_of(client, "2")


def test_operations_name_their_media_types_parameters_and_statuses(client):
    paths = document_of(client, "2")["paths"]
    bulkdata = paths["/v2/studies/{study}/series/{series}/instances/{instance}/bulkdata/{tags}"]["get"]
    assert set(bulkdata["responses"]) == {"200", "206", "400", "404", "406", "416"}
    assert set(bulkdata["responses"]["206"]["content"]) == {
        'multipart/related; type="application/octet-stream"', "application/octet-stream"
    }
    assert {p["name"] for p in bulkdata["parameters"]} >= {"study", "series", "instance", "tags", "Range", "Accept"}
    thumbnail = paths["/v2/partitions/{partition_name}/studies/{study}/thumbnail"]["get"]
    assert set(thumbnail["responses"]["200"]["content"]) == {"image/jpeg", "image/png"}
    assert {p["name"] for p in thumbnail["parameters"]} >= {"partition_name", "study", "viewport", "If-None-Match"}
    store = paths["/v2/studies"]["post"]
    assert set(store["requestBody"]["content"]) == {'multipart/related; type="application/dicom"'}
    assert set(store["responses"]) == {"200", "202", "400", "406", "409", "413", "415"}
    assert paths["/v2/studies/$bulkUpdate"]["post"]["operationId"] == "post_studies_bulkUpdate"  # `$` kept
    assert paths["/v2/studies/{study}"]["delete"]["responses"]["204"] == {"description": "No Content"}


class Undocumented(DicomView):
    def get(self, request: Request, **kwargs: Any) -> Response:
        return Response({})


# What a merge that adds a view and forgets its schema looks like.
urlpatterns = [path("v<ver:version>/workitems", Undocumented.as_view()), *root_urls.urlpatterns]


@pytest.mark.urls("tests.test_openapi")
def test_a_route_without_a_schema_is_reported(client):
    document = document_of(client, "2")
    assert undocumented(document, "2") == ["GET /v2/workitems"]
