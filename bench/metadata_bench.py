"""Benchmark: the two paths bulk data touches, in process: reading a STOW part's header, serving metadata.

Usage (from the repository root; SQLite in a temp dir unless DATABASE_URL is set):

    python bench/metadata_bench.py [--instances 200] [--rounds 50]

Prints the median CPU time of `instance_parse` of a 512x512 CT slice (CT_small tiled, fresh UIDs: the
header group cache at work, as in a series' STOW) and of GET .../metadata for
one instance and for a series of `--instances` instances (one client request each, in process).
Run it at two commits to compare them.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _environment() -> None:
    data_dir = tempfile.mkdtemp(prefix="dicomsvc-metadata-bench-")
    os.environ["DICOM_DATA_DIR"] = data_dir
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{data_dir}/db.sqlite3")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dicomsvc.settings")
    sys.path.insert(0, str(ROOT))


def _slices(count: int) -> list[bytes]:
    import numpy as np
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    pixels = np.tile(template.pixel_array, (4, 4))
    template.Rows, template.Columns = pixels.shape
    template.PixelData = pixels.tobytes()
    study, series = generate_uid(), generate_uid()
    out = []
    for number in range(count):
        template.StudyInstanceUID, template.SeriesInstanceUID = study, series
        template.SOPInstanceUID = template.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        template.InstanceNumber = number + 1
        buffer = io.BytesIO()
        template.save_as(buffer, enforce_file_format=True)
        out.append(buffer.getvalue())
    return out


def _median_ms(action, rounds: int) -> float:  # noqa: ANN001
    """Median CPU time of the calling thread: the shared benchmark machine's load leaves it alone."""
    times = []
    for _ in range(rounds):
        start = time.thread_time()
        action()
        times.append((time.thread_time() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    _environment()
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client

    from studies.dicom.reader import instance_parse
    from studies.dicom.streams import FileSlice

    call_command("migrate", verbosity=0)
    files = _slices(args.instances)
    parts = iter(files * (1 + args.rounds * 2 // len(files)))

    def parse() -> None:
        data = next(parts)
        instance_parse(FileSlice(io.BytesIO(data), 0, len(data)), validate_all=True)

    parse()  # the first part fills the header group cache, as the first slice of a series does
    print(f"instance_parse, 512x512 CT slice: {_median_ms(parse, args.rounds * 2):.3f} ms (median CPU)")

    client = Client()
    boundary = "BENCH"
    body = b"".join(
        b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + data + b"\r\n" for data in files
    ) + b"--" + boundary.encode() + b"--"
    response = client.post(
        "/v2/studies", body, content_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
        HTTP_ACCEPT="application/dicom+json",
    )
    assert response.status_code == 200, response.content[:300]
    import pydicom

    first = pydicom.dcmread(io.BytesIO(files[0]), stop_before_pixels=True)
    series_url = f"/v2/studies/{first.StudyInstanceUID}/series/{first.SeriesInstanceUID}"
    instance_url = f"{series_url}/instances/{first.SOPInstanceUID}"
    for label, url in (("instance", instance_url), (f"series of {args.instances}", series_url)):
        def get(url: str = url) -> None:
            assert client.get(f"{url}/metadata", HTTP_ACCEPT="application/dicom+json").status_code == 200

        get()
        print(f"GET metadata, {label}: {_median_ms(get, args.rounds):.3f} ms (median CPU)")


if __name__ == "__main__":
    main()
