"""Talking to the API: multipart bodies, response bytes, STOW requests, and `store()`."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from rest_framework.test import APIClient

from partitions.models import DEFAULT_PARTITION_NAME
from studies.models import Instance
from tests.helpers.dicom import dicom_bytes, uids_of

DICOM_JSON = "application/dicom+json"
MULTIPART_DICOM = 'multipart/related; type="application/dicom"; boundary=XBOUNDARYX'
# Accept for WADO-RS in the stored transfer syntax.
ORIGINAL = "application/dicom; transfer-syntax=*"
FAILED_SOP_SEQUENCE = "00081198"


def base(partition: str | None = None, version: str = "v2") -> str:
    """The URL prefix of a partition's resources (the base URL when `partition` is None)."""
    return f"/{version}/partitions/{partition}" if partition else f"/{version}"


def multipart_body(parts: list[bytes], boundary: str = "XBOUNDARYX", part_type: str | None = "application/dicom") -> bytes:
    out = b""
    for data in parts:
        out += f"--{boundary}\r\n".encode()
        if part_type:
            out += f"Content-Type: {part_type}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--".encode()
    return out


def multipart_parts(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """Split a multipart/related response into (headers, body) pairs, strictly."""
    boundary = content_type.split("boundary=")[1].split(";")[0].strip().strip('"')
    delim = f"--{boundary}".encode()
    assert body.startswith(delim + b"\r\n"), body[:80]
    assert body.endswith(delim + b"--"), body[-80:]
    chunks = body[: -len(delim + b"--")].split(b"\r\n" + delim + b"\r\n")
    chunks[0] = chunks[0][len(delim) + 2 :]
    out = []
    for i, chunk in enumerate(chunks):
        if i == len(chunks) - 1:
            assert chunk.endswith(b"\r\n")
            chunk = chunk[:-2]
        head, _, data = chunk.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode().split("\r\n"):
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        out.append((headers, data))
    return out


def response_bytes(response: Any) -> bytes:
    if getattr(response, "streaming", False):
        if getattr(response, "is_async", False):
            from asgiref.sync import async_to_sync

            async def collect() -> bytes:
                return b"".join([chunk async for chunk in response.streaming_content])

            return async_to_sync(collect)()
        return b"".join(response.streaming_content)
    return response.content


def instance_url(data: bytes, prefix: str = "/v2") -> str:
    st, se, sop = uids_of(data)
    return f"{prefix}/studies/{st}/series/{se}/instances/{sop}"


def stow(client: Any, parts: list[bytes], *, url: str = "/v2/studies", **headers: str) -> Any:
    """One STOW-RS request, returned unchecked: for tests whose subject is the STOW response.

    To put data in the archive before the story starts, use `store()`.
    """
    headers.setdefault("HTTP_ACCEPT", DICOM_JSON)
    return client.post(url, data=multipart_body(parts), content_type=MULTIPART_DICOM, **headers)


def store(*files: bytes, partition: str | None = None, status: int = 200) -> list[Instance]:
    """Store `files` (one fresh CT_small when none is given) with one STOW-RS request.

    Asserts the response is `status` (202 for files stored with a warning) and that no file
    failed, and returns their rows in the order of `files`. `partition` is the
    /partitions/{name}/ route segment, so it needs data partitions on; without it the request
    goes to the base URL (the default partition).
    """
    files = files or (dicom_bytes(),)
    response = stow(APIClient(), list(files), url=f"{base(partition)}/studies")
    assert response.status_code == status, response.content
    assert FAILED_SOP_SEQUENCE not in response.json(), response.content
    stored_in = Instance.objects.filter(partition__partition_name=partition or DEFAULT_PARTITION_NAME)
    return [stored_in.get(sop_instance_uid=uids_of(data)[2]) for data in files]


async def asgi_get(path: str, *, accept: str = "application/json") -> tuple[int, bytes]:
    """GET `path` through the ASGI application itself (no test client in between). Like uvicorn,
    `receive` answers `http.disconnect` once the response is complete."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"accept", accept.encode())], "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
    }  # fmt: skip
    sent = asyncio.Event()
    complete = asyncio.Event()

    async def receive() -> dict:
        if sent.is_set():
            await complete.wait()
            return {"type": "http.disconnect"}
        sent.set()
        return {"type": "http.request", "body": b"", "more_body": False}

    status, body = 0, b""

    async def send(message: dict) -> None:
        nonlocal status, body
        if message["type"] == "http.response.start":
            status = message["status"]
        else:
            body += message.get("body", b"")
            if not message.get("more_body", False):
                complete.set()

    await importlib.import_module("dicomsvc.asgi").application(scope, receive, send)
    return status, body
