"""The audit log: exactly one well-formed line per API request, never the token or the query."""

from __future__ import annotations

import errno
import json
import multiprocessing
import os
import threading
import uuid
from pathlib import Path

import pytest

from dicomsvc.audit import AuditFile
from partitions.models import Partition
from tests.helpers import bearer, dicom_bytes, stow, uids_of

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/dicom+json"}
FIELDS = ["time", "user", "method", "path", "status", "action", "partition", "correlationId", "study", "customHeaders"]


def audit_lines(settings) -> list[dict]:  # noqa: ANN001
    text = Path(settings.DICOM_AUDIT_LOG).read_text()
    assert text.endswith("\n")
    entries = [json.loads(line) for line in text.splitlines()]
    for entry in entries:
        assert list(entry) == FIELDS
    return entries


def test_one_line_per_request_and_never_the_token_or_the_query(client, settings, auth_on, partitions_on):
    reader, writer = auth_on.token("globalReader"), auth_on.token("aliceStaff", sub="writer@example.org")
    data = dicom_bytes()
    study = uids_of(data)[0]
    responses = [
        client.get("/v2/partitions/alice/studies"),
        stow(client, [data], url="/v2/partitions/alice/studies", **bearer(writer)),
        client.get("/v2/partitions/alice/studies?PatientName=Doe^John&PatientBirthDate=19700101", **bearer(reader), **JSON),
        client.get(f"/v2/partitions/alice/studies/{study}/metadata", **bearer(writer), **JSON),
        client.delete(f"/v2/partitions/alice/studies/{study}", **bearer(reader)),
        client.get("/v2/changefeed", **bearer("not-a-token")),
        client.get("/v2/nothing-here", **bearer(reader)),
    ]
    # Neither the health check nor the admin is an API request.
    assert client.get("/health/check").status_code == 200
    assert client.get("/admin/login/").status_code == 200

    entries = audit_lines(settings)
    assert [(e["method"], e["path"], e["status"], e["user"], e["action"], e["partition"], e["study"]) for e in entries] == [
        ("GET", "/v2/partitions/alice/studies", 401, None, "read", "alice", None),
        ("POST", "/v2/partitions/alice/studies", 200, "writer@example.org", "write", "alice", None),
        ("GET", "/v2/partitions/alice/studies", 204, "alice@example.org", "read", "alice", None),  # no Doe^John
        ("GET", f"/v2/partitions/alice/studies/{study}/metadata", 200, "writer@example.org", "read", "alice", study),
        ("DELETE", f"/v2/partitions/alice/studies/{study}", 403, "alice@example.org", "delete", "alice", study),
        ("GET", "/v2/changefeed", 401, None, "read", None, None),
        ("GET", "/v2/nothing-here", 404, None, None, None, None),
    ]
    assert [e["correlationId"] for e in entries] == [r["X-Request-Id"] for r in responses]
    assert all(uuid.UUID(e["correlationId"]) for e in entries)
    assert all(e["time"].endswith("Z") and e["customHeaders"] == {} for e in entries)
    text = Path(settings.DICOM_AUDIT_LOG).read_text()
    for secret in (reader, writer, "not-a-token", "Doe", "19700101", "PatientName"):
        assert secret not in text


def test_a_proxys_request_id_is_the_correlation_id(client, settings, auth_on):
    assert client.get("/v2/studies", HTTP_X_REQUEST_ID="req-42.a:b")["X-Request-Id"] == "req-42.a:b"
    replaced = client.get("/v2/studies", HTTP_X_REQUEST_ID='x" injected')["X-Request-Id"]
    assert uuid.UUID(replaced)
    assert [e["correlationId"] for e in audit_lines(settings)] == ["req-42.a:b", replaced]


def test_audited_with_auth_off_too(client, settings, tmp_path):
    settings.DICOM_AUDIT_LOG = str(tmp_path / "audit.jsonl")
    assert client.get("/v2/studies", **JSON).status_code == 204
    [entry] = audit_lines(settings)
    assert (entry["user"], entry["status"], entry["action"], entry["partition"]) == (None, 204, "read", None)


def test_custom_audit_headers_are_copied(client, settings, auth_on):
    headers = {"HTTP_X_MS_AZUREDICOM_AUDIT_SITE": "north", "HTTP_X_MS_AZUREDICOM_AUDIT_REASON": "a" * 2048}
    assert client.get("/v2/studies", **bearer(auth_on.token("globalReader")), **JSON, **headers).status_code == 204
    [entry] = audit_lines(settings)
    assert entry["customHeaders"] == {"X-MS-AZUREDICOM-AUDIT-SITE": "north", "X-MS-AZUREDICOM-AUDIT-REASON": "a" * 2048}


def test_too_many_custom_audit_headers_is_400(client, settings, auth_on):
    headers = {f"HTTP_X_MS_AZUREDICOM_AUDIT_H{i}": "v" for i in range(11)}
    response = client.get("/v2/studies", **bearer(auth_on.token("globalReader")), **JSON, **headers)
    assert (response.status_code, response.content.decode()) == (
        400,
        "The maximum number of custom audit headers allowed is 10. The number of custom audit headers supplied is 11.",
    )
    [entry] = audit_lines(settings)
    assert (entry["status"], entry["customHeaders"]) == (400, {})


def test_a_custom_audit_header_too_long_is_400(client, settings, auth_on):
    token = auth_on.token("globalReader")
    response = client.get("/v2/studies", **bearer(token), **JSON, HTTP_X_MS_AZUREDICOM_AUDIT_SITE="x" * 2049)
    assert (response.status_code, response.content.decode()) == (
        400,
        "The maximum length of a custom audit header value is 2048. "
        "The supplied custom audit header 'X-MS-AZUREDICOM-AUDIT-SITE' has length of 2049.",
    )
    # As in Microsoft's server, authentication comes first.
    assert client.get("/v2/studies", **JSON, HTTP_X_MS_AZUREDICOM_AUDIT_SITE="x" * 2049).status_code == 401
    assert "x" * 2049 not in Path(settings.DICOM_AUDIT_LOG).read_text()


def test_without_a_file_lines_go_to_the_audit_logger(client, settings, caplog):
    settings.DICOM_AUDIT_LOG = ""
    with caplog.at_level("INFO", logger="dicomsvc.audit"):
        client.get("/v2/studies", **JSON)
    [record] = [r for r in caplog.records if r.name == "dicomsvc.audit"]
    assert json.loads(record.getMessage())["path"] == "/v2/studies"


def test_a_file_that_cannot_be_written_leaves_the_line_in_the_logger(client, settings, tmp_path, caplog):
    settings.DICOM_AUDIT_LOG = str(tmp_path / "no-such-directory" / "audit.jsonl")
    with caplog.at_level("INFO", logger="dicomsvc.audit"):
        assert client.get("/v2/studies", **JSON).status_code == 204
    [record] = [r for r in caplog.records if r.name == "dicomsvc.audit"]
    assert record.levelname == "ERROR"
    assert '"path":"/v2/studies"' in record.getMessage()


def test_a_rotated_file_is_opened_anew(tmp_path):
    path = tmp_path / "audit.jsonl"
    audit = AuditFile(str(path))
    audit.append(b'{"n":1}\n')
    path.rename(tmp_path / "audit.jsonl.1")
    audit.append(b'{"n":2}\n')
    path.unlink()
    audit.append(b'{"n":3}\n')
    assert (tmp_path / "audit.jsonl.1").read_text() == '{"n":1}\n'
    assert path.read_text() == '{"n":3}\n'
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_write_in_flight_keeps_its_descriptor_through_a_rotation(tmp_path):
    path = tmp_path / "audit.jsonl"
    audit = AuditFile(str(path))
    with audit.writing() as fd:  # another thread's write, not yet made
        path.rename(tmp_path / "audit.jsonl.1")
        audit.append(b'{"n":2}\n')
        os.write(fd, b'{"n":1}\n')
    with pytest.raises(OSError) as closed:
        os.fstat(fd)  # the last write using the replaced descriptor closed it
    assert closed.value.errno == errno.EBADF
    assert (tmp_path / "audit.jsonl.1").read_text() == '{"n":1}\n'
    assert path.read_text() == '{"n":2}\n'


def test_a_slow_write_holds_up_no_other_thread(tmp_path):
    path = tmp_path / "audit.jsonl"
    audit = AuditFile(str(path))
    inside, release = threading.Event(), threading.Event()

    def slow_writer() -> None:
        with audit.writing() as fd:
            inside.set()
            release.wait(timeout=30)
            os.write(fd, b'{"n":1}\n')

    thread = threading.Thread(target=slow_writer)
    thread.start()
    assert inside.wait(timeout=30)
    other = threading.Thread(target=audit.append, args=(b'{"n":2}\n',))
    other.start()
    other.join(timeout=10)
    finished_first = not other.is_alive()
    release.set()
    thread.join(timeout=30)
    other.join(timeout=30)
    assert finished_first
    assert path.read_text() == '{"n":2}\n{"n":1}\n'


def _write_lines(path: str, writer: str, count: int) -> None:
    audit = AuditFile(path)

    def thread(name: str) -> None:
        for n in range(count):
            # Lines of up to ~20 KiB, well past a pipe's atomic size, each one write().
            audit.append(json.dumps({"writer": name, "n": n, "pad": "x" * (n * 97 % 20000)}).encode() + b"\n")

    threads = [threading.Thread(target=thread, args=(f"{writer}-{t}",)) for t in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_concurrent_writers_never_interleave(tmp_path):
    path = str(tmp_path / "audit.jsonl")
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=_write_lines, args=(path, f"p{p}", 200)) for p in range(4)]
    for process in processes:
        process.start()
    _write_lines(path, "main", 200)
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    seen: dict[str, list[int]] = {}
    for line in Path(path).read_text().splitlines():
        entry = json.loads(line)
        assert entry["pad"] == "x" * (entry["n"] * 97 % 20000)
        seen.setdefault(entry["writer"], []).append(entry["n"])
    assert len(seen) == 15
    assert all(numbers == list(range(200)) for numbers in seen.values())


def test_stow_into_a_new_partition_is_audited_with_it(client, settings, auth_on, partitions_on):
    stow(client, [dicom_bytes()], url="/v2/partitions/carol/studies", **bearer(auth_on.token("globalWriter")))
    assert Partition.objects.filter(partition_name="carol").exists()
    [entry] = audit_lines(settings)
    assert (entry["partition"], entry["action"], entry["status"]) == ("carol", "write", 200)
