"""Against a real ASGI server: keys read at start-up, dicomweb-client with a bearer token, the audit file."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from dicomweb_client.api import DICOMwebClient

from tests.helpers import AUDIENCE, ROLES, dicom_bytes, live_server, read

# serialized_rollback, as the other transactional tests that run before test_changefeed_concurrency:
# a flush without it re-creates content types under new keys, which the serialized tests then clash with.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def test_a_real_server_with_auth(tmp_path, oidc):
    roles = tmp_path / "roles.json"
    roles.write_text(json.dumps(ROLES))
    audit = tmp_path / "audit.jsonl"
    env = {
        "DICOM_AUTH_ENABLED": "true", "DICOM_AUTH_AUTHORITY": oidc.url, "DICOM_AUTH_AUDIENCE": AUDIENCE,
        "DICOM_AUTH_ROLES_FILE": str(roles), "DICOM_AUDIT_LOG": str(audit),
    }  # fmt: skip
    with live_server(tmp_path, **env) as base:
        assert oidc.fetches == {"discovery": 1, "jwks": 1}  # at start-up, before any request
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{base}/v2/studies", timeout=10)
        assert refused.value.code == 401
        assert refused.value.headers["WWW-Authenticate"].startswith(f'Bearer authorization_uri="{oidc.url}"')

        data = dicom_bytes()
        token = oidc.token("globalAdmin", sub="robot")
        client = DICOMwebClient(url=f"{base}/v2", headers={"Authorization": f"Bearer {token}"})
        client.store_instances([read(data)])
        [found] = client.search_for_studies()
        fetched = client.retrieve_study(found["0020000D"]["Value"][0])
        assert fetched[0].SOPInstanceUID == read(data).SOPInstanceUID
        assert oidc.fetches == {"discovery": 1, "jwks": 1}

    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(e["method"], e["path"], e["status"], e["user"]) for e in entries] == [
        ("GET", "/v2/studies", 401, None),
        ("POST", "/v2/studies", 200, "robot"),
        ("GET", "/v2/studies", 200, "robot"),
        ("GET", f"/v2/studies/{found['0020000D']['Value'][0]}", 200, "robot"),
    ]
    assert token not in audit.read_text()

