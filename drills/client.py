"""A black-box client: plain HTTP against the drilled server, no Django in this process."""

from __future__ import annotations

import copy
import http.client
import io
import json
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

BOUNDARY = "DRILLBOUNDARY"
STOW_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
DICOM_JSON = "application/dicom+json"
ORIGINAL = "application/dicom; transfer-syntax=*"


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    def __init__(self, base: str, timeout: float = 60) -> None:
        parsed = urllib.parse.urlsplit(base)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.timeout = timeout

    def request(self, method: str, path: str, body: bytes | None = None, **headers: str) -> Response:
        """One request on a fresh connection (a killed server leaves no half-used one)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            connection.request(method, path, body=body, headers={k.replace("_", "-"): v for k, v in headers.items()})
            response = connection.getresponse()
            return Response(response.status, response.read(), {k.lower(): v for k, v in response.getheaders()})
        finally:
            connection.close()

    def stow(self, parts: list[bytes], path: str = "/v2/studies") -> Response:
        return self.request("POST", path, multipart(parts), Content_Type=STOW_TYPE, Accept=DICOM_JSON)

    def get(self, path: str, accept: str = "*/*") -> Response:
        return self.request("GET", path, Accept=accept)

    def delete(self, path: str) -> Response:
        return self.request("DELETE", path)

    def post_json(self, path: str, payload: Any) -> Response:
        return self.request("POST", path, json.dumps(payload).encode(), Content_Type="application/json")

    def operation_wait(self, operation_id: str, *, timeout: float) -> tuple[dict[str, Any], float]:
        """The finished operation's body and how long it took to finish, polling every 0.2 s."""
        started = time.monotonic()
        deadline = started + timeout
        while True:
            try:
                response = self.get(f"/v2/operations/{operation_id}", accept="application/json")
                if response.status == 200:
                    return response.json(), time.monotonic() - started
            except OSError:
                pass  # the web process is being restarted
            if time.monotonic() > deadline:
                raise DrillFailure(f"operation {operation_id} did not finish within {timeout:.0f} s")
            time.sleep(0.2)

    def operation_status(self, operation_id: str) -> dict[str, Any]:
        return self.get(f"/v2/operations/{operation_id}", accept="application/json").json()

    def feed(self) -> list[dict[str, Any]]:
        """The whole change feed, paged."""
        entries: list[dict[str, Any]] = []
        while True:
            page = self.get(f"/v2/changefeed?offset={entries[-1]['Sequence'] if entries else 0}&limit=200",
                            accept="application/json").json()  # fmt: skip
            if not page:
                return entries
            entries.extend(page)


class DrillFailure(AssertionError):
    """An invariant did not hold."""


def multipart(parts: list[bytes], boundary: str = BOUNDARY) -> bytes:
    out = io.BytesIO()
    for data in parts:
        out.write(f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode())
        out.write(data)
        out.write(b"\r\n")
    out.write(f"--{boundary}--".encode())
    return out.getvalue()


_TEMPLATES: dict[str, pydicom.Dataset] = {}


def instance(
    *, study: str | None = None, series: str | None = None, name: str = "CT_small.dcm", pixels: int = 0, **values: Any
) -> tuple[tuple[str, str, str], bytes]:
    """A test file with fresh UIDs (or the given study/series); `pixels` bytes of extra Pixel Data pad it larger."""
    if name not in _TEMPLATES:
        _TEMPLATES[name] = pydicom.dcmread(get_testdata_file(name))
    # A deep copy: Dataset.copy() shares the elements, and client threads build files at once.
    ds = copy.deepcopy(_TEMPLATES[name])
    ds.StudyInstanceUID = study or generate_uid()
    ds.SeriesInstanceUID = series or generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    for key, value in values.items():
        setattr(ds, key, value)
    if pixels:
        ds.add_new(0x00091010, "OB", bytes(pixels))  # private padding, stored and served as is
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return (str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)), out.getvalue()


def instance_path(uids: tuple[str, str, str], prefix: str = "/v2") -> str:
    return f"{prefix}/studies/{uids[0]}/series/{uids[1]}/instances/{uids[2]}"


def stored_sops(response: Response) -> set[str]:
    """SOP Instance UIDs a STOW response acknowledges as stored."""
    if response.status not in (200, 202):
        return set()
    items = response.json().get("00081199", {}).get("Value", [])
    return {item["00081155"]["Value"][0] for item in items}


def failure_reasons(response: Response) -> list[int]:
    if response.status not in (200, 202, 409):
        return []
    items = response.json().get("00081198", {}).get("Value", [])
    return [item["00081197"]["Value"][0] for item in items]


def single_part(body: bytes) -> bytes:
    """The one part of a multipart/related WADO response (its framing stripped)."""
    head, _, rest = body.partition(b"\r\n\r\n")
    boundary = head.split(b"\r\n")[0]
    return rest[: rest.rindex(b"\r\n" + boundary + b"--")]
