"""The contract every DICOMweb route keeps, one row per route and method.

With data partitions on, alice has stored one CT instance and bob one of his own. Every row
says what its route answers to four requests, or why a request does not apply to it:

- a bad Accept (`text/html`): 406;
- alice's UIDs asked for in bob's partition: 404, as if they did not exist (a search: no match);
- no /partitions/{name}/ segment: 400;
- a malformed UID in any one UID segment, the others valid: 400 naming that segment.

Where the server does not keep a clause today, the row says `Missing`: the case runs as a strict
xfail, so it shows in every run and fails once the server starts keeping it. A route Django
serves under /v{n}/ without a row here fails `test_every_served_route_has_a_row`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from operations.models import Operation, OperationStatus, OperationType
from studies.models import Instance
from tests.helpers import (
    MULTIPART_DICOM,
    dataset,
    dicom_bytes,
    export_body,
    first_value,
    multipart_body,
    new_workitem,
    patient_name_change,
    response_bytes,
    served_routes,
    state_change,
    store,
    uids_of,
    ups,
)

pytestmark = pytest.mark.django_db

BAD_ACCEPT = "text/html"
MALFORMED = {
    "study": "1.2.abc", "series": "1.2.abc", "instance": "1.2.abc", "operation_id": "not-a-guid", "workitem": "1.2.abc",
}


@dataclass(frozen=True)
class Expect:
    status: int
    body: str


@dataclass(frozen=True)
class NotApplicable:
    why: str


@dataclass(frozen=True)
class Missing:
    """What the contract wants and the server does not do yet (`today` is what it does)."""

    wanted: Expect
    today: str


Clause = Expect | NotApplicable | Missing


@dataclass(frozen=True)
class Malformed:
    """Each UID segment of the route, malformed in turn, gets a 400 naming it."""


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # as in the urls.py, parameters written {name}
    partitioned: bool  # served under /partitions/{name}/ as well (else at the base URL only)
    bad_accept: Clause
    other_partition: Clause
    no_partition: Clause
    malformed_uid: Malformed | NotApplicable
    query: str = ""


NOT_ACCEPTABLE = Expect(406, "The request headers are not acceptable")
NO_PARTITION = Expect(400, "PartitionName value is missing in the route segment.")
NO_STUDY = Expect(404, "The specified study cannot be found.")
NO_SERIES = Expect(404, "The specified series cannot be found.")
NO_INSTANCE = Expect(404, "The specified instance cannot be found.")
NO_WORKITEM = Expect(404, "The workitem instance is not found.")
NO_MATCH = Expect(204, "")  # a search in bob's partition finds nothing of alice's
MALFORMED_UIDS = Malformed()
UID_MESSAGES = {
    "study": "The specified StudyInstanceUID '{}' is not a valid DICOM UID.",
    "series": "The specified SeriesInstanceUID '{}' is not a valid DICOM UID.",
    "instance": "The specified SOPInstanceUID '{}' is not a valid DICOM UID.",
    "operation_id": "The operation ID '{}' is not a valid GUID.",
    "workitem": "The specified WorkitemInstanceUID '{}' is not a valid DICOM UID.",
}

NO_BODY = NotApplicable("a 204 without a body: nothing to negotiate")
CREATES = NotApplicable("STOW stores into the route's partition, whatever else holds the UIDs")
CREATES_WORKITEM = NotApplicable("creates the workitem in the route's partition, whatever else holds its UID")
NO_ACCEPT_GATE = NotApplicable("answers no DICOM JSON: Microsoft's server checks no Accept here, nor do we")
ASYNC = NotApplicable("the UIDs are in the body; the operation reports studies it cannot find")
BODY_UIDS = NotApplicable("no UID in the path; malformed body UIDs are pinned in the route's own tests")
NO_UIDS = NotApplicable("no UID segment")
QUERY_UIDS = NotApplicable("the UIDs are query parameters; malformed ones are pinned in tests/test_wado_uri.py")
GLOBAL = NotApplicable("served at the base URL only (see test_global_routes_are_not_under_a_partition)")
UNSCOPED = NotApplicable("not partition-scoped: one resource for the whole server")
JSON_ANSWER = NotApplicable(
    "a JSON resource outside DICOMweb: answered as application/json whatever Accept asks, as Microsoft's server does"
)
DOCUMENT = NotApplicable("the OpenAPI document, in the format its name says, whatever Accept asks")

STUDY = "studies/{study}"
SERIES = f"{STUDY}/series/{{series}}"
INSTANCE = f"{SERIES}/instances/{{instance}}"
IN_STUDY = "StudyInstanceUID={study}"
WADO_URI = "requestType=WADO&studyUID={study}&seriesUID={series}&objectUID={instance}&contentType=application/dicom"
WORKITEM = "workitems/{workitem}"

ROUTES = [
    # method, path, partitioned, bad Accept, bob asks for alice's UIDs, no partition, malformed UID
    # STOW-RS
    Route("POST", "studies", True, NOT_ACCEPTABLE, CREATES, NO_PARTITION, NO_UIDS),
    Route("POST", STUDY, True, NOT_ACCEPTABLE, CREATES, NO_PARTITION, MALFORMED_UIDS),
    # WADO-RS
    Route("GET", STUDY, True, NOT_ACCEPTABLE, NO_STUDY, NO_PARTITION, MALFORMED_UIDS),
    Route("GET", f"{STUDY}/metadata", True, NOT_ACCEPTABLE, NO_STUDY, NO_PARTITION, MALFORMED_UIDS),
    Route("GET", SERIES, True, NOT_ACCEPTABLE, NO_SERIES, NO_PARTITION, MALFORMED_UIDS),
    Route("GET", f"{SERIES}/metadata", True, NOT_ACCEPTABLE, NO_SERIES, NO_PARTITION, MALFORMED_UIDS),
    Route("GET", INSTANCE, True, NOT_ACCEPTABLE, NO_INSTANCE, NO_PARTITION, MALFORMED_UIDS),
    Route("GET", f"{INSTANCE}/metadata", True, NOT_ACCEPTABLE, NO_INSTANCE, NO_PARTITION, MALFORMED_UIDS),
    Route("GET", f"{INSTANCE}/frames/{{frames}}", True, NOT_ACCEPTABLE, NO_INSTANCE, NO_PARTITION, MALFORMED_UIDS),
    Route("GET", f"{INSTANCE}/rendered", True, NOT_ACCEPTABLE, NO_INSTANCE, NO_PARTITION, MALFORMED_UIDS),
    Route(
        "GET", f"{INSTANCE}/frames/{{frame}}/rendered", True, NOT_ACCEPTABLE, NO_INSTANCE, NO_PARTITION,
        MALFORMED_UIDS,
    ),
    # WADO-URI: the UIDs are query parameters
    Route("GET", "wado", True, NOT_ACCEPTABLE, NO_INSTANCE, NO_PARTITION, QUERY_UIDS, query=WADO_URI),
    Route(
        "GET", f"{INSTANCE}/bulkdata/{{tags}}", True, NOT_ACCEPTABLE, NO_INSTANCE, NO_PARTITION, MALFORMED_UIDS,
    ),
    Route("GET", f"{STUDY}/thumbnail", True, NOT_ACCEPTABLE, NO_STUDY, NO_PARTITION, MALFORMED_UIDS),
    Route("GET", f"{SERIES}/thumbnail", True, NOT_ACCEPTABLE, NO_SERIES, NO_PARTITION, MALFORMED_UIDS),
    Route("GET", f"{INSTANCE}/thumbnail", True, NOT_ACCEPTABLE, NO_INSTANCE, NO_PARTITION, MALFORMED_UIDS),
    # DELETE
    Route("DELETE", STUDY, True, NO_BODY, NO_STUDY, NO_PARTITION, MALFORMED_UIDS),
    Route("DELETE", SERIES, True, NO_BODY, NO_SERIES, NO_PARTITION, MALFORMED_UIDS),
    Route("DELETE", INSTANCE, True, NO_BODY, NO_INSTANCE, NO_PARTITION, MALFORMED_UIDS),
    # QIDO-RS: a search answers "no match" (204), never 404
    Route("GET", "studies", True, NOT_ACCEPTABLE, NO_MATCH, NO_PARTITION, NO_UIDS, query=IN_STUDY),
    Route("GET", "series", True, NOT_ACCEPTABLE, NO_MATCH, NO_PARTITION, NO_UIDS, query=IN_STUDY),
    Route("GET", "instances", True, NOT_ACCEPTABLE, NO_MATCH, NO_PARTITION, NO_UIDS, query=IN_STUDY),
    Route("GET", f"{STUDY}/series", True, NOT_ACCEPTABLE, NO_MATCH, NO_PARTITION, MALFORMED_UIDS),
    Route("GET", f"{STUDY}/instances", True, NOT_ACCEPTABLE, NO_MATCH, NO_PARTITION, MALFORMED_UIDS),
    Route("GET", f"{SERIES}/instances", True, NOT_ACCEPTABLE, NO_MATCH, NO_PARTITION, MALFORMED_UIDS),
    # Operations started in a partition
    Route(
        "POST", "studies/$bulkUpdate", True, JSON_ANSWER, ASYNC, NO_PARTITION,
        BODY_UIDS,
    ),
    Route("POST", "export", True, JSON_ANSWER, ASYNC, NO_PARTITION, BODY_UIDS),
    # UPS-RS workitems
    Route("POST", "workitems", True, NOT_ACCEPTABLE, CREATES_WORKITEM, NO_PARTITION, NO_UIDS),
    Route("GET", "workitems", True, NOT_ACCEPTABLE, NO_MATCH, NO_PARTITION, NO_UIDS, query=IN_STUDY),
    Route("GET", WORKITEM, True, NOT_ACCEPTABLE, NO_WORKITEM, NO_PARTITION, MALFORMED_UIDS),
    Route("POST", WORKITEM, True, NO_ACCEPT_GATE, NO_WORKITEM, NO_PARTITION, MALFORMED_UIDS),
    Route("PUT", f"{WORKITEM}/state", True, NO_ACCEPT_GATE, NO_WORKITEM, NO_PARTITION, MALFORMED_UIDS),
    Route("POST", f"{WORKITEM}/cancelrequest", True, NO_ACCEPT_GATE, NO_WORKITEM, NO_PARTITION, MALFORMED_UIDS),
    # Global resources
    Route("GET", "operations/{operation_id}", False, JSON_ANSWER, UNSCOPED, GLOBAL,
          MALFORMED_UIDS),
    Route("GET", "partitions", False, JSON_ANSWER, UNSCOPED, GLOBAL, NO_UIDS),
    Route("GET", "changefeed", False, JSON_ANSWER, UNSCOPED, GLOBAL, NO_UIDS),
    Route("GET", "changefeed/latest", False, JSON_ANSWER, UNSCOPED, GLOBAL, NO_UIDS),
    Route("GET", "api.json", False, DOCUMENT, UNSCOPED, GLOBAL, NO_UIDS),
    Route("GET", "api.yaml", False, DOCUMENT, UNSCOPED, GLOBAL, NO_UIDS),
    # Extended query tags: defined for the whole server, their values kept per partition
    Route("GET", "extendedquerytags", False, JSON_ANSWER, UNSCOPED, GLOBAL, NO_UIDS),
    Route("POST", "extendedquerytags", False, JSON_ANSWER, UNSCOPED, GLOBAL, NO_UIDS),
    Route("GET", "extendedquerytags/{path}", False, JSON_ANSWER, UNSCOPED, GLOBAL, NO_UIDS),
    Route("PATCH", "extendedquerytags/{path}", False, JSON_ANSWER, UNSCOPED, GLOBAL, NO_UIDS),
    Route("DELETE", "extendedquerytags/{path}", False, JSON_ANSWER, UNSCOPED, GLOBAL, NO_UIDS),
    Route("GET", "extendedquerytags/{path}/errors", False, JSON_ANSWER, UNSCOPED, GLOBAL, NO_UIDS),
]


@dataclass
class World:
    """Alice's one instance, bob's partition, a finished operation, an export destination."""

    values: dict[str, str]
    export_root: Path


@pytest.fixture
def world(partitions_on, settings, tmp_path: Path) -> World:  # noqa: ANN001
    data = dicom_bytes(PatientName="Alice^Only")
    store(data, partition="alice")
    store(dicom_bytes(PatientName="Bob^Own"), partition="bob")
    operation = Operation.objects.create(type=OperationType.EXPORT, status=OperationStatus.SUCCEEDED)
    settings.DICOM_EXPORT_FILESYSTEM_ROOTS = [str(tmp_path)]
    study, series, instance = uids_of(data)
    workitem = new_workitem(StudyInstanceUID=study)
    assert ups(APIClient(), "POST", "", workitem, partition="alice").status_code == 201
    values = {
        "study": study, "series": series, "instance": instance, "frames": "1", "frame": "1", "tags": "7FE00010",
        "operation_id": operation.pk.hex, "path": "00180015", "workitem": first_value(workitem, "SOPInstanceUID"),
    }
    return World(values=values, export_root=tmp_path)


def send(client, route: Route, world: World, *, partition: str | None, accept: str = "*/*", **values: str) -> Any:  # noqa: ANN001
    """The route's request (a valid body for a POST), with `values` replacing the world's UIDs."""
    filled = {**world.values, **values}
    url = f"/v2/partitions/{partition}/" if partition else "/v2/"
    url += route.path.format(**filled)
    if route.query:
        url += "?" + route.query.format(**filled)
    headers = {"HTTP_ACCEPT": accept}
    if route.method == "GET":
        return client.get(url, **headers)
    if route.method == "DELETE":
        return client.delete(url, **headers)
    if route.method == "PATCH":
        return client.patch(url, data='{"queryStatus": "Enabled"}', content_type="application/json", **headers)
    if route.path == "extendedquerytags":
        body = json.dumps([{"path": filled["path"], "level": "series"}])
        return client.post(url, data=body, content_type="application/json", **headers)
    if route.path == "export":
        body = json.dumps(export_body([filled["study"]], world.export_root))
        return client.post(url, data=body, content_type="application/json", **headers)
    if route.path.startswith("workitems"):
        body = {
            "workitems": new_workitem(),
            WORKITEM: dataset(ProcedureStepLabel="Renamed"),
            f"{WORKITEM}/state": state_change("IN PROGRESS", "1.2.3.4"),
            f"{WORKITEM}/cancelrequest": dataset(ReasonForCancellation="Not needed"),
        }[route.path]
        call = client.put if route.method == "PUT" else client.post
        return call(url, data=json.dumps([body]), content_type="application/dicom+json", **headers)
    if route.path == "studies/$bulkUpdate":
        body = json.dumps({"studyInstanceUids": [filled["study"]], "changeDataset": patient_name_change("New^Name")})
        return client.post(url, data=body, content_type="application/json", **headers)
    data = dicom_bytes(StudyInstanceUID=filled["study"])
    return client.post(url, data=multipart_body([data]), content_type=MULTIPART_DICOM, **headers)


def assert_answers(response: Any, expected: Expect) -> None:
    assert (response.status_code, response_bytes(response).decode()) == (expected.status, expected.body)


def cases(clause: str) -> list[Any]:
    """One pytest param per row whose `clause` applies; strict xfail where it is `Missing`."""
    params = []
    for route in ROUTES:
        cell = getattr(route, clause)
        if isinstance(cell, NotApplicable):
            continue
        marks = []
        if isinstance(cell, Missing):
            marks = [pytest.mark.xfail(strict=True, reason=f"{route.method} {route.path} today: {cell.today}")]
            cell = cell.wanted
        params.append(pytest.param(route, cell, marks=marks, id=f"{route.method} {route.path}"))
    return params


def segments(path: str) -> list[str]:
    return re.findall(r"{(\w+)}", path)


def malformed_cases() -> list[Any]:
    return [
        pytest.param(route, name, id=f"{route.method} {route.path} [{name}]")
        for route in ROUTES
        if isinstance(route.malformed_uid, Malformed)
        for name in segments(route.path)
        if name in UID_MESSAGES
    ]


def partition_of(route: Route) -> str | None:
    return "alice" if route.partitioned else None


@pytest.mark.parametrize(("route", "expected"), cases("bad_accept"))
def test_bad_accept(client, world, route, expected) -> None:  # noqa: ANN001
    assert_answers(send(client, route, world, partition=partition_of(route), accept=BAD_ACCEPT), expected)


@pytest.mark.parametrize(("route", "expected"), cases("other_partition"))
def test_another_partitions_uids(client, world, route, expected) -> None:  # noqa: ANN001
    assert_answers(send(client, route, world, partition="bob"), expected)
    # Nor did bob's request touch alice's instance.
    assert Instance.objects.get(partition__partition_name="alice").sop_instance_uid == world.values["instance"]


@pytest.mark.parametrize(("route", "expected"), cases("no_partition"))
def test_partition_missing(client, world, route, expected) -> None:  # noqa: ANN001
    assert_answers(send(client, route, world, partition=None), expected)


@pytest.mark.parametrize(("route", "segment"), malformed_cases())
def test_malformed_uid(client, world, route, segment) -> None:  # noqa: ANN001
    value = MALFORMED[segment]
    response = send(client, route, world, partition=partition_of(route), **{segment: value})
    assert_answers(response, Expect(400, UID_MESSAGES[segment].format(value)))


@pytest.mark.parametrize("route", [pytest.param(r, id=f"{r.method} {r.path}") for r in ROUTES if not r.partitioned])
def test_global_routes_are_not_under_a_partition(client, world, route) -> None:  # noqa: ANN001
    assert_answers(send(client, route, world, partition="alice"), Expect(404, "The requested resource was not found."))


# --- the table covers what Django serves ------------------------------------------------------

def test_every_served_route_has_a_row() -> None:
    table = {(route.method, route.path, route.partitioned) for route in ROUTES}
    served = served_routes()
    assert served - table == set(), "routes without a contract row"
    assert table - served == set(), "rows for routes Django does not serve"
    assert len(table) == len(ROUTES), "a route has two rows"


def test_partitioned_and_global_routes_share_no_first_segment() -> None:
    # dicomsvc.urls tries the partitioned routes first; a global route whose first segment a
    # partitioned one also has could be shadowed by it.
    from dicomsvc import urls

    def first_segments(patterns: list[Any]) -> set[str]:
        segments = set()
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                segments |= {f"{pattern.pattern}{s}".split("/")[0] for s in first_segments(pattern.url_patterns)}
            else:
                segments.add(str(pattern.pattern).split("/")[0])
        return segments

    partitioned, global_ = first_segments(urls.partitioned), first_segments(urls.global_routes)
    assert "studies" in partitioned and "changefeed" in global_
    assert partitioned & global_ == set()
