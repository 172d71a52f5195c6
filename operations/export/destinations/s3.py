"""The `s3` destination: a bucket on AWS or any S3-compatible server.

Credentials come only from the server's environment (boto3's usual chain); a request names
the bucket, a key prefix, a region and, if the server allows it, an endpoint. Endpoints are
an allow-list (DICOM_EXPORT_S3_ALLOWED_ENDPOINTS) so export cannot be aimed at internal hosts.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings

from dicomsvc.errors import BadRequest
from operations.export.destinations.base import DestinationUnavailable, SourceStream
from operations.export.fields import FieldInvalid, object_fields, optional_string, required_string

logger = logging.getLogger(__name__)
_FAILURES = (BotoCoreError, ClientError)

TYPE = "s3"
FIELD = "destination.settings"
# Parts of 8 MiB: one part in memory at a time whatever the file size (S3 allows 10,000 parts).
PART_SIZE = 8 * 1024 * 1024
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_REGION_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_NAMES = {"bucket": "bucket", "prefix": "prefix", "endpointurl": "endpointUrl", "region": "region"}


def _endpoint_normalize(text: str) -> str | None:
    """`scheme://host[:port]` in lower case, or None when `text` is not such a URL."""
    parts = urlsplit(text.strip())
    try:
        parts.port  # noqa: B018 -- raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        return None
    if (
        parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.query
        or parts.fragment
        or parts.path not in ("", "/")
    ):
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def _allowed_endpoints() -> set[str]:
    normalized = (_endpoint_normalize(entry) for entry in settings.DICOM_EXPORT_S3_ALLOWED_ENDPOINTS)
    return {endpoint for endpoint in normalized if endpoint is not None}


def _bucket_allowed(bucket: str) -> bool:
    allowed = settings.DICOM_EXPORT_S3_ALLOWED_BUCKETS
    return "*" in allowed or bucket in allowed


def _prefix_parse(fields: dict[str, Any]) -> str:
    prefix = (optional_string(fields, "prefix", field=f"{FIELD}.prefix") or "").strip("/")
    if len(prefix) > 512:
        raise FieldInvalid(f"{FIELD}.prefix", "at most 512 characters are allowed.")
    if any(segment in ("", ".", "..") for segment in prefix.split("/")) and prefix:
        raise FieldInvalid(f"{FIELD}.prefix", f"'{prefix}' must not contain empty, '.' or '..' segments.")
    return prefix


def s3_destination_parse(value: Any) -> S3Destination:
    if not settings.DICOM_EXPORT_S3_ALLOWED_BUCKETS:
        raise BadRequest("The export destination 's3' is disabled: DICOM_EXPORT_S3_ALLOWED_BUCKETS is not set.")
    fields = object_fields(value, field=FIELD, names=_NAMES)
    bucket = required_string(fields, "bucket", field=f"{FIELD}.bucket")
    if not _BUCKET_RE.fullmatch(bucket):
        raise FieldInvalid(f"{FIELD}.bucket", f"'{bucket}' is not a valid S3 bucket name.")
    if not _bucket_allowed(bucket):
        raise FieldInvalid(f"{FIELD}.bucket", f"this server does not export to bucket '{bucket}'.")
    endpoint = optional_string(fields, "endpointUrl", field=f"{FIELD}.endpointUrl")
    endpoint_url = None
    if endpoint is not None:
        endpoint_url = _endpoint_normalize(endpoint)
        if endpoint_url is None:
            raise FieldInvalid(f"{FIELD}.endpointUrl", f"'{endpoint}' is not a URL of the form http(s)://host[:port].")
        if endpoint_url not in _allowed_endpoints():
            raise FieldInvalid(f"{FIELD}.endpointUrl", f"this server does not export to endpoint '{endpoint}'.")
    region = optional_string(fields, "region", field=f"{FIELD}.region")
    if region is not None and not _REGION_RE.fullmatch(region):
        raise FieldInvalid(f"{FIELD}.region", f"'{region}' is not a valid region name.")
    return S3Destination(bucket=bucket, prefix=_prefix_parse(fields), endpoint_url=endpoint_url, region=region)


@dataclass(frozen=True)
class S3Destination:
    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str | None

    def parameters(self) -> dict[str, Any]:
        return {
            "type": TYPE,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "endpointUrl": self.endpoint_url,
            "region": self.region,
        }

    def object_url(self, key: str) -> str:
        if self.endpoint_url:
            return f"{self.endpoint_url}/{self.bucket}/{quote(key)}"
        host = f"{self.bucket}.s3.{self.region}.amazonaws.com" if self.region else f"{self.bucket}.s3.amazonaws.com"
        return f"https://{host}/{quote(key)}"

    def open(self, *, folder: str) -> S3Sink:
        # Settings may have changed since the request was accepted.
        if not _bucket_allowed(self.bucket) or (
            self.endpoint_url is not None and self.endpoint_url not in _allowed_endpoints()
        ):
            raise DestinationUnavailable(f"This server no longer exports to bucket '{self.bucket}' at that endpoint.")
        return S3Sink(destination=self, base=f"{self.prefix}/{folder}" if self.prefix else folder)

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=10,
            read_timeout=60,
            retries={"max_attempts": 5, "mode": "standard"},
            # S3-compatible servers rarely have per-bucket DNS names.
            s3={"addressing_style": "path"} if self.endpoint_url else None,
        )
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=config
        )


def _read_full(stream: SourceStream, size: int) -> bytes:
    """Up to `size` bytes; fewer only at the end of the stream."""
    chunks = []
    remaining = size
    while remaining:
        data = stream.read(remaining)
        if not data:
            break
        chunks.append(data)
        remaining -= len(data)
    return b"".join(chunks)


class S3Sink:
    """Objects under `[<prefix>/]<operation>/`.

    S3 has no append: errors.log lines collect in a local spool and the whole log is put
    again on each flush.
    """

    def __init__(self, *, destination: S3Destination, base: str) -> None:
        self._destination = destination
        self._bucket = destination.bucket
        self._base = base
        self._errors_key = f"{base}/errors.log"
        self.error_href = destination.object_url(self._errors_key)
        self._errors = tempfile.SpooledTemporaryFile(max_size=1024 * 1024)
        self._dirty = False

    def _unavailable(self, exc: Exception) -> DestinationUnavailable:
        return DestinationUnavailable(f"The export destination cannot be written: {exc}")

    def prepare(self, *, resume: bool) -> None:
        try:
            self._client = self._destination.client()
            if resume and self._load_earlier_errors():
                return
            self._client.put_object(
                Bucket=self._bucket, Key=self._errors_key, Body=b"", ContentType="application/x-ndjson"
            )
        except _FAILURES as exc:
            raise self._unavailable(exc) from exc

    def _load_earlier_errors(self) -> bool:
        """Lines a killed run already wrote, so the re-put log keeps them; False if there are none."""
        try:
            earlier = self._client.get_object(Bucket=self._bucket, Key=self._errors_key)["Body"]
        except ClientError as exc:
            # Write-only credentials cannot read the log back: it restarts with this run's lines.
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "AccessDenied", "403"):
                logger.warning("export %s: earlier errors.log not readable (%s)", self._base, exc)
                return False
            raise
        for chunk in earlier.iter_chunks(1024 * 1024):
            self._errors.write(chunk)
        return True

    def write(self, *, name: str, stream: SourceStream) -> None:
        key = f"{self._base}/{name}"
        try:
            chunk = _read_full(stream, PART_SIZE)
            if len(chunk) < PART_SIZE:
                self._client.put_object(Bucket=self._bucket, Key=key, Body=chunk, ContentType="application/dicom")
                return
            upload_id = self._client.create_multipart_upload(
                Bucket=self._bucket, Key=key, ContentType="application/dicom"
            )["UploadId"]
            try:
                parts: list[dict[str, Any]] = []
                while chunk:
                    number = len(parts) + 1
                    part = self._client.upload_part(
                        Bucket=self._bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                    )
                    parts.append({"ETag": part["ETag"], "PartNumber": number})
                    chunk = _read_full(stream, PART_SIZE)
                self._client.complete_multipart_upload(
                    Bucket=self._bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
            except BaseException:
                self._abort(key, upload_id)
                raise
        except _FAILURES as exc:
            raise self._unavailable(exc) from exc

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self._bucket, Key=key, UploadId=upload_id)
        except _FAILURES:
            logger.warning("export: could not abort the multipart upload of %s", key)

    def error_append(self, line: str) -> None:
        self._errors.write(line.encode() + b"\n")
        self._dirty = True

    def flush(self) -> None:
        if not self._dirty:
            return
        self._errors.seek(0)
        try:
            self._client.put_object(
                Bucket=self._bucket, Key=self._errors_key, Body=self._errors, ContentType="application/x-ndjson"
            )
        except _FAILURES as exc:
            raise self._unavailable(exc) from exc
        self._errors.seek(0, 2)
        self._dirty = False
