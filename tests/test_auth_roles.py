"""Authorization: each route's data action, the roles that grant it, and partition scopes.

The action of every route comes from its view's `data_actions`, so the stories below walk the
URL resolver: a route added later is covered (and refused until it declares its actions).
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import get_resolver

from partitions.models import Partition
from tests.helpers import ROLE_FOR, bearer, dicom_bytes, served_patterns, stow, uids_of, view_methods

pytestmark = pytest.mark.django_db

ACTIONS = {"read", "write", "delete", "export", "manageExtendedQueryTags"}
VALUES = {
    "version": "2", "study": "1.2.3", "series": "1.2.3.4", "instance": "1.2.3.4.5", "frames": "1", "frame": "1",
    "operation_id": str(uuid.UUID(int=7)),
}  # fmt: skip
PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")
JSON = {"HTTP_ACCEPT": "application/dicom+json"}

# Microsoft's controllers, route by route (the brief's table); routes added later are held to
# declaring an action by test_every_dicomweb_view_declares_an_action_per_method.
MICROSOFT = {
    ("POST", "studies"): "write",
    ("POST", "studies/{study}"): "write",
    ("POST", "studies/$bulkUpdate"): "write",
    ("GET", "studies"): "read",
    ("GET", "series"): "read",
    ("GET", "instances"): "read",
    ("GET", "studies/{study}"): "read",
    ("GET", "studies/{study}/metadata"): "read",
    ("GET", "studies/{study}/series"): "read",
    ("GET", "studies/{study}/instances"): "read",
    ("GET", "studies/{study}/series/{series}"): "read",
    ("GET", "studies/{study}/series/{series}/metadata"): "read",
    ("GET", "studies/{study}/series/{series}/instances"): "read",
    ("GET", "studies/{study}/series/{series}/instances/{instance}"): "read",
    ("GET", "studies/{study}/series/{series}/instances/{instance}/metadata"): "read",
    ("GET", "studies/{study}/series/{series}/instances/{instance}/rendered"): "read",
    ("GET", "studies/{study}/series/{series}/instances/{instance}/frames/{frames}"): "read",
    ("GET", "studies/{study}/series/{series}/instances/{instance}/frames/{frame}/rendered"): "read",
    ("DELETE", "studies/{study}"): "delete",
    ("DELETE", "studies/{study}/series/{series}"): "delete",
    ("DELETE", "studies/{study}/series/{series}/instances/{instance}"): "delete",
    ("POST", "export"): "export",
    ("GET", "changefeed"): "read",
    ("GET", "changefeed/latest"): "read",
    ("GET", "operations/{operation_id}"): "read",
    ("GET", "partitions"): "read",
}


def dicomweb_routes() -> list[tuple[str, str, type]]:
    """(method, route, view class) of every route at the base URL /v{n}/ (not under a partition)."""
    found = []
    for route, callback in served_patterns(get_resolver().url_patterns):
        if route.startswith("v<") and "partition_name" not in route:
            for method in view_methods(callback):
                found.append((method, route, getattr(callback, "view_class", None)))
    return found


def template(route: str) -> str:
    return PARAMETER.sub(r"{\1}", route.split("/", 1)[1])


def url(route: str, partition: str | None = None) -> str:
    path = "/" + PARAMETER.sub(lambda m: VALUES.get(m.group(1), "1.2.840.1"), route)
    return path.replace("/v2/", f"/v2/partitions/{partition}/", 1) if partition else path


def send(client, method: str, path: str, *roles: str, issuer=None):  # noqa: ANN001
    headers = bearer(issuer.token(*roles)) if issuer else {}
    return getattr(client, method.lower())(path, **headers, **JSON)


def route_params():
    return [pytest.param(method, route, id=f"{method} {template(route)}") for method, route, _ in dicomweb_routes()]


def assert_403(response) -> None:  # noqa: ANN001
    assert response.status_code == 403
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response.content == b"Authorization failed."


# --- every route declares its action ---------------------------------------------------------


def test_every_dicomweb_view_declares_an_action_per_method():
    missing = []
    for route, callback in served_patterns(get_resolver().url_patterns):
        if not route.startswith("v<"):
            continue
        declared = getattr(getattr(callback, "view_class", None), "data_actions", None) or {}
        for method in view_methods(callback) or ["(not a DRF view)"]:
            if declared.get(method) not in ACTIONS:
                missing.append(f"{method} /{template(route)}: {declared.get(method)!r}")
    assert not missing, "DICOMweb views without a data action for a method:\n" + "\n".join(missing)


def test_the_actions_are_microsofts():
    declared = {(method, template(route)): view.data_actions[method] for method, route, view in dicomweb_routes()}
    assert {key: declared.get(key) for key in MICROSOFT} == MICROSOFT


# --- each role against each route ------------------------------------------------------------


@pytest.mark.parametrize(("method", "route"), route_params())
def test_no_token_is_401(client, auth_on, method, route):
    assert send(client, method, url(route)).status_code == 401


@pytest.mark.parametrize(("method", "route"), route_params())
def test_the_routes_action_lets_in(client, auth_on, method, route):
    action = dict(dicomweb_routes_actions())[(method, route)]
    response = send(client, method, url(route), ROLE_FOR[action], issuer=auth_on)
    assert response.status_code not in (401, 403), response.content


@pytest.mark.parametrize(("method", "route"), route_params())
def test_every_other_action_is_403(client, auth_on, method, route):
    action = dict(dicomweb_routes_actions())[(method, route)]
    others = [role for granted, role in ROLE_FOR.items() if granted != action]
    assert_403(send(client, method, url(route), *others, issuer=auth_on))


def dicomweb_routes_actions() -> list[tuple[tuple[str, str], str]]:
    return [((method, route), view.data_actions[method]) for method, route, view in dicomweb_routes()]


def test_not_data_actions_are_taken_away(client, auth_on):
    study = "/v2/studies/1.2.3"
    assert send(client, "GET", study, "allButDelete", issuer=auth_on).status_code == 406  # past authorization
    assert_403(send(client, "DELETE", study, "allButDelete", issuer=auth_on))
    assert send(client, "DELETE", study, "allButDelete", "globalDeleter", issuer=auth_on).status_code == 404


def test_unknown_role_names_grant_nothing(client, auth_on):
    assert_403(send(client, "GET", "/v2/studies", "Reader", "globalreader", "admin", issuer=auth_on))
    assert_403(send(client, "GET", "/v2/studies", issuer=auth_on))  # no roles claim at all


def test_without_a_roles_file_any_valid_token_may_do_everything(client, settings, auth_on):
    settings.DICOM_AUTH_ROLES = None
    assert send(client, "DELETE", "/v2/studies/1.2.3", issuer=auth_on).status_code == 404
    assert send(client, "GET", "/v2/studies").status_code == 401


def test_roles_claim_as_a_string_and_as_a_nested_claim(client, settings, auth_on):
    token = auth_on.token(roles="globalReader")
    assert client.get("/v2/studies", **bearer(token), **JSON).status_code == 204
    settings.DICOM_AUTH_ROLES_CLAIM = "realm_access.roles"
    assert_403(client.get("/v2/studies", **bearer(token), **JSON))
    nested = auth_on.token(realm_access={"roles": ["globalReader"]})
    assert client.get("/v2/studies", **bearer(nested), **JSON).status_code == 204


def test_a_method_the_route_does_not_answer_is_405_once_authenticated(client, auth_on):
    assert client.put("/v2/studies", **bearer(auth_on.token("globalReader"))).status_code == 405
    assert client.put("/v2/studies").status_code == 401


def test_options_declares_no_action_so_it_is_refused(client, auth_on):
    assert_403(client.options("/v2/studies", **bearer(auth_on.token("globalAdmin"))))
    assert client.options("/v2/studies").status_code == 401


def test_head_needs_gets_action(client, auth_on):
    assert client.head("/v2/studies", **bearer(auth_on.token("globalReader")), **JSON).status_code == 204
    assert client.head("/v2/studies", **bearer(auth_on.token("globalWriter")), **JSON).status_code == 403


# --- partition scopes ------------------------------------------------------------------------


def test_a_partition_role_works_in_its_partition_only(client, auth_on, partitions_on):
    token = auth_on.token("aliceStaff")
    data = dicom_bytes()
    assert stow(client, [data], url="/v2/partitions/alice/studies", **bearer(token)).status_code == 200
    study = uids_of(data)[0]
    assert client.get("/v2/partitions/alice/studies", **bearer(token), **JSON).json()[0]["0020000D"]["Value"] == [study]
    assert client.get(f"/v2/partitions/alice/studies/{study}/metadata", **bearer(token), **JSON).status_code == 200
    # bob's routes are refused before anything is looked up, whatever the request.
    assert_403(stow(client, [dicom_bytes()], url="/v2/partitions/bob/studies", **bearer(token)))
    assert_403(client.get("/v2/partitions/bob/studies", **bearer(token), **JSON))
    assert_403(client.delete(f"/v2/partitions/bob/studies/{study}", **bearer(token)))
    assert_403(client.get("/v2/partitions/Alice/studies", **bearer(token), **JSON))  # names are exact
    assert client.delete(f"/v2/partitions/alice/studies/{study}", **bearer(token)).status_code == 204


@pytest.mark.parametrize("path", ["/v2/changefeed", "/v2/changefeed/latest", "/v2/partitions", f"/v2/operations/{uuid.UUID(int=7)}"])
def test_routes_across_partitions_need_the_global_scope(client, auth_on, partitions_on, path):
    assert_403(send(client, "GET", path, "aliceStaff", issuer=auth_on))
    assert send(client, "GET", path, "globalReader", issuer=auth_on).status_code not in (401, 403)


def test_a_partition_writer_creates_its_own_partition_never_another(client, auth_on, partitions_on):
    token = auth_on.token("aliceStaff")
    assert_403(stow(client, [dicom_bytes()], url="/v2/partitions/carol/studies", **bearer(token)))
    assert not Partition.objects.filter(partition_name="carol").exists()
    assert stow(client, [dicom_bytes()], url="/v2/partitions/alice/studies", **bearer(token)).status_code == 200
    assert Partition.objects.filter(partition_name="alice").exists()


def test_a_partition_reader_reads_and_writes_nothing(client, auth_on, partitions_on):
    assert_403(send(client, "GET", "/v2/partitions/Microsoft.Default/studies", "aliceReader", issuer=auth_on))
    assert_403(stow(client, [dicom_bytes()], url="/v2/partitions/alice/studies", **bearer(auth_on.token("aliceReader"))))
    assert not Partition.objects.filter(partition_name="alice").exists()


def test_roles_add_up_per_scope(client, auth_on, partitions_on):
    token = auth_on.token("aliceReader", "globalWriter")
    for partition in ("alice", "bob"):
        assert stow(client, [dicom_bytes()], url=f"/v2/partitions/{partition}/studies", **bearer(token)).status_code == 200
    assert client.get("/v2/partitions/alice/studies", **bearer(token), **JSON).status_code == 200
    assert_403(client.get("/v2/partitions/bob/studies", **bearer(token), **JSON))


def test_with_partitions_off_a_partition_role_reaches_nothing(client, auth_on):
    assert_403(send(client, "GET", "/v2/studies", "aliceStaff", issuer=auth_on))


# --- the admin -------------------------------------------------------------------------------


def test_the_admin_still_logs_in_with_a_password(auth_on):
    User.objects.create_superuser("root", "root@example.org", "a long password")
    browser = Client()
    assert browser.get("/admin/").status_code == 302  # to the login page, not a 401
    response = browser.post("/admin/login/?next=/admin/", {"username": "root", "password": "a long password"})
    assert (response.status_code, response["Location"]) == (302, "/admin/")
    page = browser.get("/admin/")
    assert page.status_code == 200
    assert b"Log out" in page.content
