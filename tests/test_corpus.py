"""Every file pydicom ships, posted as is: never a 500, and whatever is stored round-trips."""

from __future__ import annotations

from pathlib import Path

import pydicom.data
import pytest

from studies.models import Instance, InstanceStatus
from tests.helpers import response_bytes, stow

pytestmark = pytest.mark.django_db

FILES = sorted(
    p for p in (Path(pydicom.data.__file__).parent / "test_files").iterdir() if p.is_file() and p.suffix == ".dcm"
)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_any_file_is_answered_and_round_trips(client, path, version):
    data = path.read_bytes()
    response = stow(client, [data], url=f"/{version}/studies")
    assert response.status_code in (200, 202, 409), response.content[:300]
    body = response.json()
    for item in body.get("00081199", {}).get("Value", []):
        url = item["00081190"]["Value"][0].removeprefix("http://127.0.0.1:8000")
        served = client.get(url, HTTP_ACCEPT="application/dicom; transfer-syntax=*")
        assert served.status_code == 200
        stored = response_bytes(served)
        if data[128:132] == b"DICM":
            assert stored == data
        else:  # a zeroed preamble (and DICM) put in front of what was sent
            assert stored[:128] == b"\x00" * 128 and stored[128:132] == b"DICM"
            assert stored.endswith(data[4:] if data[:4] == b"DICM" else data)
        transcoded = client.get(url, HTTP_ACCEPT='multipart/related; type="application/dicom"')
        assert transcoded.status_code in (200, 406)
        if transcoded.status_code == 200:
            assert b"transfer-syntax=1.2.840.10008.1.2.1\r\n" in response_bytes(transcoded)
        metadata = client.get(f"{url}/metadata", HTTP_ACCEPT="application/dicom+json")
        assert metadata.status_code == 200
    failed = body.get("00081198", {}).get("Value", [])
    assert len(failed) + len(body.get("00081199", {}).get("Value", [])) == 1
    if failed:
        assert not Instance.objects.filter(status=InstanceStatus.CREATED).exists()
