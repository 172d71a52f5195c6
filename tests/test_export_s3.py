"""Export to an S3-compatible bucket, against a moto server on loopback started by these tests.

Objects are checked by listing and downloading them with boto3, as a user of the bucket would.
"""

from __future__ import annotations

import io
import json
import os
import uuid

import boto3
import pydicom
import pytest
from moto.server import ThreadedMotoServer
from pydicom.uid import generate_uid

from operations.export import services as export_services
from operations.models import Operation, OperationStatus
from studies.blobstore import storage
from tests.helpers import WorkerKilled, dicom_bytes, post_export, run_export, store, uids_of, wado_original

pytestmark = pytest.mark.django_db

PORT = 18601
ENDPOINT = f"http://127.0.0.1:{PORT}"


@pytest.fixture(scope="module")
def moto_server():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=PORT, verbose=False)
    server.start()
    yield ENDPOINT
    server.stop()


@pytest.fixture
def s3(moto_server, monkeypatch, settings, tmp_path):  # noqa: ANN001, ANN201
    """A fresh bucket the server may export to, and a client to inspect it."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"export-{uuid.uuid4().hex[:12]}"
    client = boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")
    client.create_bucket(Bucket=bucket)
    settings.DICOM_EXPORT_S3_ALLOWED_BUCKETS = [bucket]
    settings.DICOM_EXPORT_S3_ALLOWED_ENDPOINTS = [moto_server]
    client.bucket = bucket
    return client


def s3_body(values: list[str], bucket: str, **extra: str) -> dict:
    return {
        "source": {"type": "identifiers", "settings": {"values": values}},
        "destination": {"type": "s3", "settings": {"bucket": bucket, "endpointUrl": ENDPOINT, **extra}},
    }


def objects(client, prefix: str) -> dict[str, bytes]:  # noqa: ANN001
    listed = client.list_objects_v2(Bucket=client.bucket, Prefix=prefix).get("Contents", [])
    return {item["Key"]: client.get_object(Bucket=client.bucket, Key=item["Key"])["Body"].read() for item in listed}


def key(base: str, data: bytes) -> str:
    study, series, sop = uids_of(data)
    return f"{base}/results/{study}/{series}/{sop}.dcm"


def test_export_to_an_s3_bucket(client, s3):
    study = generate_uid()
    whole = [dicom_bytes("CT_small.dcm", StudyInstanceUID=study), dicom_bytes("JPEG2000.dcm", StudyInstanceUID=study)]
    single = dicom_bytes("MR_small_RLE.dcm")
    store(*whole, single, dicom_bytes(StudyInstanceUID=uids_of(single)[0]))
    missing = generate_uid()

    operation = run_export(
        post_export(client, s3_body([study, "/".join(uids_of(single)), missing], s3.bucket, prefix="/exports/2026/"))
    )

    base = f"exports/2026/{operation.pk.hex}"
    stored = objects(s3, "exports/")
    assert set(stored) == {f"{base}/errors.log"} | {key(base, data) for data in [*whole, single]}
    for data in [*whole, single]:
        assert stored[key(base, data)] == wado_original(client, data) == data
    (line,) = [json.loads(text) for text in stored[f"{base}/errors.log"].decode().splitlines()]
    assert (line["identifier"], line["error"]) == (missing, "The specified study cannot be found.")
    assert operation.status == OperationStatus.SUCCEEDED
    assert operation.results == {
        "exported": 3, "skipped": 1, "errorHref": f"{ENDPOINT}/{s3.bucket}/{base}/errors.log",
    }
    assert s3.head_object(Bucket=s3.bucket, Key=key(base, single))["ContentType"] == "application/dicom"


def test_a_large_instance_is_uploaded_in_parts(client, s3):
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes()))
    ds.Rows, ds.Columns = 3072, 3072  # 18 MiB of pixels: three 8 MiB parts
    ds.PixelData = os.urandom(3072 * 3072 * 2)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    data = out.getvalue()
    store(data)

    operation = run_export(post_export(client, s3_body(["/".join(uids_of(data))], s3.bucket)))

    name = key(operation.pk.hex, data)
    assert s3.get_object(Bucket=s3.bucket, Key=name)["Body"].read() == data
    assert s3.head_object(Bucket=s3.bucket, Key=name)["ETag"].strip('"').endswith("-3")
    assert not s3.list_multipart_uploads(Bucket=s3.bucket).get("Uploads")
    assert operation.results["exported"] == 1


def test_a_bucket_that_does_not_exist_fails_the_operation(client, s3, settings):
    data = dicom_bytes()
    store(data)
    settings.DICOM_EXPORT_S3_ALLOWED_BUCKETS = ["*"]

    operation = run_export(post_export(client, s3_body([uids_of(data)[0]], "no-such-bucket-here")))

    assert operation.status == OperationStatus.FAILED
    (error,) = operation.errors
    assert error.startswith("The export destination cannot be written: ")
    assert "NoSuchBucket" in error
    assert "testing" not in error  # no credentials in what users see


def test_a_resumed_export_keeps_the_error_lines_already_written(client, s3, monkeypatch):
    study = generate_uid()
    parts = [dicom_bytes(StudyInstanceUID=study) for _ in range(3)]
    store(*parts)
    first_missing, last_missing = generate_uid(), generate_uid()
    response = post_export(client, s3_body([first_missing, study, last_missing], s3.bucket))
    monkeypatch.setattr(export_services, "CHECKPOINT_EVERY", 1)
    real_open = type(storage()).open
    opened = []

    def dies_on_the_second_file(self, name, mode="rb"):  # noqa: ANN001, ANN202
        opened.append(name)
        if len(opened) == 2:
            raise WorkerKilled()
        return real_open(self, name, mode)

    monkeypatch.setattr(type(storage()), "open", dies_on_the_second_file)
    with pytest.raises(WorkerKilled):
        run_export(response)
    monkeypatch.setattr(type(storage()), "open", real_open)
    operation = run_export(response, after_crash=True)

    base = operation.pk.hex
    stored = objects(s3, base)
    assert set(stored) == {f"{base}/errors.log"} | {key(base, data) for data in parts}
    lines = [json.loads(text) for text in stored[f"{base}/errors.log"].decode().splitlines()]
    assert [line["identifier"] for line in lines] == [first_missing, last_missing]
    assert (operation.results["exported"], operation.results["skipped"]) == (3, 2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"endpointUrl": "http://169.254.169.254"},
         "The field 'destination.settings.endpointUrl' in request body is invalid: "
         "this server does not export to endpoint 'http://169.254.169.254'."),
        ({"endpointUrl": "ftp://127.0.0.1:18601"},
         "The field 'destination.settings.endpointUrl' in request body is invalid: "
         "'ftp://127.0.0.1:18601' is not a URL of the form http(s)://host[:port]."),
        ({"endpointUrl": "http://user:pw@127.0.0.1:18601"},
         "The field 'destination.settings.endpointUrl' in request body is invalid: "
         "'http://user:pw@127.0.0.1:18601' is not a URL of the form http(s)://host[:port]."),
        ({"bucket": "someone-elses"},
         "The field 'destination.settings.bucket' in request body is invalid: "
         "this server does not export to bucket 'someone-elses'."),
        ({"bucket": "Bad_Bucket"},
         "The field 'destination.settings.bucket' in request body is invalid: "
         "'Bad_Bucket' is not a valid S3 bucket name."),
        ({"bucket": None},
         "The field 'destination.settings.bucket' in request body is invalid: a value is required."),
        ({"prefix": "a/../b"},
         "The field 'destination.settings.prefix' in request body is invalid: "
         "'a/../b' must not contain empty, '.' or '..' segments."),
        ({"region": "us east"},
         "The field 'destination.settings.region' in request body is invalid: 'us east' is not a valid region name."),
        ({"secretAccessKey": "from-the-request"},
         "The field 'destination.settings.secretAccessKey' in request body is invalid: unknown property."),
    ],
)
def test_invalid_s3_settings_are_400(client, s3, change, message):
    body = s3_body([generate_uid()], s3.bucket)
    body["destination"]["settings"].update(change)
    response = post_export(client, body)
    assert (response.status_code, response.content.decode()) == (400, message)
    assert not Operation.objects.exists()
    assert objects(s3, "") == {}


def test_s3_destination_is_disabled_without_allowed_buckets(client, settings):
    settings.DICOM_EXPORT_S3_ALLOWED_BUCKETS = []
    response = post_export(client, s3_body([generate_uid()], "any-bucket"))
    assert response.status_code == 400
    assert response.content.decode() == (
        "The export destination 's3' is disabled: DICOM_EXPORT_S3_ALLOWED_BUCKETS is not set."
    )
