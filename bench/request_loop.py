"""N requests of one kind through Django's test client, after a warm-up: the body of
bench/request_instructions.sh, which counts their instructions under valgrind's callgrind.

    python bench/request_loop.py wado|stow N      (run from the checkout to measure)

The database is the checkout's settings' (DATABASE_URL, else SQLite under DICOM_DATA_DIR); it
is migrated first. Warm-up: 10 one-instance STOWs and 20 GETs of the last instance stored.
"""

from __future__ import annotations

import io
import os
import sys

sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dicomsvc.settings")

import django  # noqa: E402

django.setup()

import pydicom  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402

BOUNDARY = "REQUESTLOOP"
CONTENT_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
WADO_ACCEPT = "application/dicom; transfer-syntax=*"


def main() -> None:
    which, count = sys.argv[1], int(sys.argv[2])
    call_command("migrate", verbosity=0)
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    serial = iter(range(1, 1_000_000))

    def body() -> bytes:
        # UIDs from a counter, not a random generator: the same work in every run.
        uid = f"1.2.826.0.1.3680043.10.543.{os.getpid()}.{next(serial)}"
        template.StudyInstanceUID, template.SeriesInstanceUID = uid, f"{uid}.1"
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = f"{uid}.1.1"
        out = io.BytesIO()
        template.save_as(out, enforce_file_format=True)
        return (
            f"--{BOUNDARY}\r\nContent-Type: application/dicom\r\n\r\n".encode() + out.getvalue()
            + f"\r\n--{BOUNDARY}--\r\n".encode()
        )

    client = Client()

    def stow(data: bytes) -> None:
        response = client.post(
            "/v2/studies", data=data, content_type=CONTENT_TYPE, HTTP_ACCEPT="application/dicom+json"
        )
        assert response.status_code == 200, response.content[:300]

    def wado(url: str) -> None:
        response = client.get(url, HTTP_ACCEPT=WADO_ACCEPT)
        assert response.status_code == 200, response.status_code
        b"".join(response.streaming_content) if response.streaming else response.content

    for _ in range(10):
        stow(body())
    url = (f"/v2/studies/{template.StudyInstanceUID}/series/{template.SeriesInstanceUID}"
           f"/instances/{template.SOPInstanceUID}")  # fmt: skip
    for _ in range(20):
        wado(url)
    bodies = [body() for _ in range(count)] if which == "stow" else []
    for n in range(count):
        stow(bodies[n]) if which == "stow" else wado(url)


if __name__ == "__main__":
    main()
