"""Against a real ASGI server: dicomweb-client (chunked STOW above 1 MB) and the body limit."""

from __future__ import annotations

import http.client

import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from pydicom.data import get_testdata_file
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from studies.models import Instance, InstanceStatus
from tests.helpers import dicom_bytes, live_server, multipart_body

pytestmark = pytest.mark.django_db(transaction=True)


def _large_dataset() -> pydicom.Dataset:
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = 1024, 768
    ds.PixelData = np.arange(1024 * 768, dtype="<u2").tobytes()
    return ds


def test_dicomweb_client_round_trip_with_chunked_stow(tmp_path):
    ds = _large_dataset()
    with live_server(tmp_path) as base:
        client = DICOMwebClient(url=f"{base}/v2")
        result = client.store_instances([ds])
        assert result.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID

        instance = Instance.objects.get(sop_instance_uid=ds.SOPInstanceUID)
        assert instance.status == InstanceStatus.CREATED
        assert instance.file_size > 1_500_000

        fetched = client.retrieve_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)
        assert fetched.PixelData == ds.PixelData
        series = client.retrieve_series(ds.StudyInstanceUID, ds.SeriesInstanceUID)
        assert [s.SOPInstanceUID for s in series] == [ds.SOPInstanceUID]
        metadata = client.retrieve_study_metadata(ds.StudyInstanceUID)
        assert metadata[0]["00080018"]["Value"] == [ds.SOPInstanceUID]
        frames = client.retrieve_instance_frames(
            ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, frame_numbers=[1]
        )
        assert frames[0] == ds.PixelData
        client.delete_study(ds.StudyInstanceUID)
        assert not Instance.objects.filter(sop_instance_uid=ds.SOPInstanceUID).exists()


def _post(base: str, body_chunks: list[bytes], headers: dict[str, str]) -> tuple[int, bytes]:
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", "/v2/studies")
    for key, value in headers.items():
        conn.putheader(key, value)
    conn.endheaders()
    try:
        for chunk in body_chunks:
            if headers.get("Transfer-Encoding") == "chunked":
                conn.send(f"{len(chunk):X}\r\n".encode() + chunk + b"\r\n")
            else:
                conn.send(chunk)
        if headers.get("Transfer-Encoding") == "chunked":
            conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may answer 413 and close before the whole body is sent
    response = conn.getresponse()
    return response.status, response.read()


def test_body_limit_413_for_declared_and_chunked_bodies(tmp_path):
    body = multipart_body([dicom_bytes(), dicom_bytes()])
    content_type = 'multipart/related; type="application/dicom"; boundary=XBOUNDARYX'
    with live_server(tmp_path, DICOM_MAX_STOW_BYTES=str(len(body) - 1)) as base:
        status, text = _post(
            base, [body], {"Content-Type": content_type, "Accept": "application/dicom+json",
                           "Content-Length": str(len(body))}
        )
        assert (status, text) == (413, f"The request exceeded the allowed limit of {len(body) - 1} bytes.".encode())
        chunks = [body[i : i + 4096] for i in range(0, len(body), 4096)]
        status, text = _post(
            base, chunks, {"Content-Type": content_type, "Accept": "application/dicom+json",
                           "Transfer-Encoding": "chunked"}
        )
        assert status == 413
        assert not Instance.objects.exists()
    with live_server(tmp_path) as base:
        status, text = _post(
            base, chunks, {"Content-Type": content_type, "Accept": "application/dicom+json",
                           "Transfer-Encoding": "chunked"}
        )
        assert status == 200, text
        assert Instance.objects.filter(status=InstanceStatus.CREATED).count() == 2


def test_api_runs_without_browser_middleware_and_the_admin_with_it(tmp_path):
    """Under ASGI the API skips sessions/auth/CSRF/messages; the admin console keeps them."""
    with live_server(tmp_path) as base:
        host, port = base.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=30)
        conn.request("GET", "/v2/studies", headers={"Accept": "application/dicom+json"})
        api = conn.getresponse()
        api.read()
        conn.request("GET", "/admin/login/")
        admin = conn.getresponse()
        page = admin.read()

    assert api.status == 204
    assert api.getheader("X-Content-Type-Options") == "nosniff"  # security headers still set
    assert api.getheader("Set-Cookie") is None and "Cookie" not in (api.getheader("Vary") or "")
    assert api.getheader("X-Frame-Options") is None

    assert admin.status == 200 and b"csrfmiddlewaretoken" in page
    assert "csrftoken=" in admin.getheader("Set-Cookie")
    assert admin.getheader("X-Frame-Options") == "DENY"


def test_the_server_refuses_to_start_when_partitions_were_switched_off_over_partitioned_data(tmp_path):
    import os
    import subprocess
    import sys

    from partitions.models import Partition
    from tests.helpers import ROOT, free_port, test_database_url

    Partition.objects.create(partition_name="charlie")
    env = {
        **os.environ, "DATABASE_URL": test_database_url(), "DICOM_DATA_DIR": str(tmp_path),
        "DICOM_ENABLE_DATA_PARTITIONS": "false",
    }  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "uvicorn", "dicomsvc.asgi:application", "--port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "cannot be disabled" in done.stderr
