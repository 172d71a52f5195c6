"""Copy one large file through each export destination; print throughput and peak memory.

    .venv/bin/python bench/export_copy.py [size_mib]   (default 256)

The S3 run targets a moto server started here on 127.0.0.1:18602 (an in-memory fake, so
its throughput says little about real S3; the memory figure is this process's own).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

PORT = 18602
ENDPOINT = f"http://127.0.0.1:{PORT}"
BUCKET = "bench-export"


def _settings(work: Path) -> None:
    os.environ.update(
        {
            "DICOM_DATA_DIR": str(work / "data"),
            "DICOM_EXPORT_FILESYSTEM_ROOTS": str(work / "exports"),
            "DICOM_EXPORT_S3_ALLOWED_BUCKETS": BUCKET,
            "DICOM_EXPORT_S3_ALLOWED_ENDPOINTS": ENDPOINT,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "DJANGO_SETTINGS_MODULE": "dicomsvc.settings",
        }
    )
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    import django

    django.setup()


def _source(path: Path, size_mib: int) -> None:
    with open(path, "wb") as out:
        for _ in range(size_mib):
            out.write(os.urandom(1024 * 1024))


def _measure(label: str, sink, source: Path, size_mib: int) -> None:  # noqa: ANN001
    from operations.export.destinations import SourceStream

    with open(source, "rb") as blob:
        started = time.perf_counter()
        sink.write(name="results/timed.dcm", stream=SourceStream(blob))
        seconds = time.perf_counter() - started
    tracemalloc.start()
    with open(source, "rb") as blob:
        sink.write(name="results/traced.dcm", stream=SourceStream(blob))
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rate = size_mib / seconds
    print(f"{label:<11} {size_mib:>5} MiB  {seconds:7.2f} s  {rate:8.1f} MiB/s  peak {peak / 1024:8.0f} KiB")


def _wait_for_port() -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", PORT)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit("moto server did not start")


def main() -> None:
    size_mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "exports").mkdir()
        _settings(work)
        from operations.export.destinations.filesystem import FilesystemDestination
        from operations.export.destinations.s3 import S3Destination

        source = work / "source.dcm"
        _source(source, size_mib)

        sink = FilesystemDestination(path=str(work / "exports")).open(folder="bench")
        sink.prepare(resume=False)
        _measure("filesystem", sink, source, size_mib)

        moto = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(PORT)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_for_port()
            import boto3

            boto3.client("s3", endpoint_url=ENDPOINT).create_bucket(Bucket=BUCKET)
            destination = S3Destination(bucket=BUCKET, prefix="", endpoint_url=ENDPOINT, region=None)
            s3_sink = destination.open(folder="bench")
            s3_sink.prepare(resume=False)
            _measure("s3 (moto)", s3_sink, source, size_mib)
        finally:
            moto.terminate()
            moto.wait(timeout=30)


if __name__ == "__main__":
    main()
