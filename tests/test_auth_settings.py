"""The auth settings: the roles file read at start-up, and what stops the server from starting."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dicomsvc.api.roles import DATA_ACTIONS, Role, roles_file_read, roles_parse

# Importing the ASGI module sets Django up (and its logging) once, here rather than inside a test.
from dicomsvc.asgi import auth_startup
from dicomsvc.env import SettingError
from tests.helpers import ROLES, ROOT


def role(**fields) -> dict:  # noqa: ANN003
    return {"roles": [{"name": "r", "dataActions": ["read"], "notDataActions": [], "scopes": ["/"], **fields}]}


def test_microsofts_roles_file_is_read(tmp_path):
    path = tmp_path / "roles.json"
    path.write_text(json.dumps(ROLES))
    roles = roles_file_read("DICOM_AUTH_ROLES_FILE", str(path))
    assert roles is not None
    assert roles["globalAdmin"] == Role(name="globalAdmin", actions=DATA_ACTIONS, scopes=frozenset({"/"}))
    assert roles["allButDelete"].actions == DATA_ACTIONS - {"delete"}
    assert roles["aliceReader"] == Role(name="aliceReader", actions=frozenset({"read"}), scopes=frozenset({"/partitions/alice"}))


def test_no_file_means_no_authorization():
    assert roles_file_read("DICOM_AUTH_ROLES_FILE", "") is None


def test_not_data_actions_may_be_left_out():
    document = role()
    del document["roles"][0]["notDataActions"]
    assert roles_parse(document)["r"].actions == {"read"}


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ([], 'expected an object with a "roles" list'),
        ({"role": []}, 'expected an object with a "roles" list'),
        ({"roles": [], "extra": 1}, "unknown key 'extra'"),
        ({"roles": ["reader"]}, "roles[0] must be an object"),
        (role(name=""), "roles[0].name must be a non-empty string"),
        (role(dataAction=["read"]), "roles[0]: unknown key 'dataAction'"),
        (role(dataActions=["raed"]), "role 'r'.dataActions: unknown data action 'raed' (expected one of *, delete, export, manageExtendedQueryTags, read, write)"),
        (role(dataActions="read"), "role 'r'.dataActions must be a list of data actions"),
        (role(notDataActions=["purge"]), "role 'r'.notDataActions: unknown data action 'purge' (expected one of *, delete, export, manageExtendedQueryTags, read, write)"),
        (role(scopes=[]), "role 'r'.scopes must be a non-empty list of scopes"),
        (role(scopes=["partitions/a"]), "role 'r'.scopes: scope 'partitions/a' is neither '/' nor '/partitions/{name}'"),
        (role(scopes=["/partitions/a/studies"]), "role 'r'.scopes: scope '/partitions/a/studies' is neither '/' nor '/partitions/{name}'"),
        (role(roleScopes=["/"]), "role 'r': give scopes or roleScopes, not both"),
        ({"roles": [{"name": "r", "dataActions": ["read"]}]}, "role 'r': scopes is missing"),
        ({"roles": [{"name": "r", "scopes": ["/"]}]}, "role 'r': dataActions is missing"),
        ({"roles": role()["roles"] * 2}, "role 'r' is defined twice"),
    ],
)
def test_a_malformed_roles_file_names_its_problem(tmp_path, document, problem):
    path = tmp_path / "roles.json"
    path.write_text(json.dumps(document))
    with pytest.raises(SettingError) as raised:
        roles_file_read("DICOM_AUTH_ROLES_FILE", str(path))
    assert str(raised.value) == f"DICOM_AUTH_ROLES_FILE: {path}: {problem}"


def test_a_roles_file_that_is_not_json_or_not_there(tmp_path):
    path = tmp_path / "roles.json"
    path.write_text('{"roles": [}')
    with pytest.raises(SettingError, match="is not valid JSON"):
        roles_file_read("DICOM_AUTH_ROLES_FILE", str(path))
    with pytest.raises(SettingError, match="cannot read"):
        roles_file_read("DICOM_AUTH_ROLES_FILE", str(tmp_path / "missing.json"))


def start(tmp_path, **env: str) -> subprocess.CompletedProcess:  # noqa: ANN001
    environment = {**os.environ, "DICOM_DATA_DIR": str(tmp_path), **env}
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=60
    )


def test_a_malformed_roles_file_stops_start_up(tmp_path):
    path = tmp_path / "roles.json"
    path.write_text(json.dumps(role(dataActions=["raed"])))
    result = start(tmp_path, DICOM_AUTH_ROLES_FILE=str(path))
    assert result.returncode != 0
    assert f"DICOM_AUTH_ROLES_FILE: {path}: role 'r'.dataActions: unknown data action 'raed'" in result.stderr


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({"DICOM_AUTH_AUDIENCE": "api"}, "DICOM_AUTH_AUTHORITY: required when DICOM_AUTH_ENABLED is true"),
        ({"DICOM_AUTH_AUTHORITY": "https://idp.example.org"}, "DICOM_AUTH_AUDIENCE: required"),
        ({"DICOM_AUTH_AUTHORITY": "http://idp.example.org", "DICOM_AUTH_AUDIENCE": "api"}, "DICOM_AUTH_AUTHORITY: must be https://"),
    ],
)
def test_auth_without_an_issuer_stops_start_up(tmp_path, env, problem):
    result = start(tmp_path, DICOM_AUTH_ENABLED="true", **env)
    assert result.returncode != 0
    assert problem in result.stderr


def test_start_up_warns_when_the_api_is_open(settings, caplog):
    settings.DICOM_AUTH_ENABLED = False
    with caplog.at_level("WARNING", logger="dicomsvc.asgi"):
        auth_startup()
    assert [r.getMessage() for r in caplog.records if r.name == "dicomsvc.asgi"] == [
        "DICOM_AUTH_ENABLED is false: every DICOMweb route answers unauthenticated requests (docs/auth.md)"
    ]


def test_start_up_reads_the_issuers_keys(auth_on, caplog):
    with caplog.at_level("WARNING"):
        auth_startup()
    assert auth_on.fetches == {"discovery": 1, "jwks": 1}
    assert not caplog.records


def test_start_up_goes_on_when_the_issuer_is_away(auth_on, caplog):
    auth_on.down = True
    with caplog.at_level("WARNING", logger="dicomsvc.api.tokens"):
        auth_startup()
    assert "The issuer's keys could not be read at start-up; the first request retries" in caplog.text
