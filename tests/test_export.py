"""Export to a directory: request validation, layout, bytes, skips, failures, partitions, resume.

The worker side runs by calling `operation_run` directly (never Celery eager mode); that the
request enqueues the task is asserted from the captured on-commit callbacks.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from operations import services as operations_services
from operations.export import services as export_services
from operations.models import Operation, OperationStatus, OperationType
from operations.runner import RunResult, operation_run
from studies.blobstore import blob_name, storage
from studies.models import Instance
from tests.helpers import (
    WorkerKilled,
    dicom_bytes,
    export_body,
    files_under,
    post_export,
    result_path,
    run_export,
    store,
    uids_of,
    wado_original,
)

pytestmark = pytest.mark.django_db

ORIGINAL = "application/dicom; transfer-syntax=*"


@pytest.fixture
def root(tmp_path: Path, settings) -> Path:  # noqa: ANN001
    """The one directory this server may export to."""
    exports = tmp_path / "exports"
    exports.mkdir()
    settings.DICOM_EXPORT_FILESYSTEM_ROOTS = [str(exports)]
    return exports


def error_lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "errors.log").read_text().splitlines()]


def test_export_of_a_study_a_series_and_an_instance(client, root, django_capture_on_commit_callbacks):
    # Study A: two series, every instance exported. Study B: only series B1. Study C: one instance.
    study_a = generate_uid()
    a = [dicom_bytes("CT_small.dcm", StudyInstanceUID=study_a) for _ in range(2)]
    a.append(dicom_bytes("MR_small_RLE.dcm", StudyInstanceUID=study_a, SeriesInstanceUID=uids_of(a[0])[1]))
    study_b, series_b1 = generate_uid(), generate_uid()
    b1 = [dicom_bytes("JPEG2000.dcm", StudyInstanceUID=study_b, SeriesInstanceUID=series_b1) for _ in range(2)]
    b2 = dicom_bytes("CT_small.dcm", StudyInstanceUID=study_b)
    c_wanted = dicom_bytes("MR_small.dcm")
    c_other = dicom_bytes("MR_small.dcm", StudyInstanceUID=uids_of(c_wanted)[0], SeriesInstanceUID=uids_of(c_wanted)[1])
    store(*a, *b1, b2, c_wanted, c_other)
    missing = f"{generate_uid()}/{generate_uid()}"

    with django_capture_on_commit_callbacks() as callbacks:
        response = post_export(
            client, export_body([study_a, f"{study_b}/{series_b1}", "/".join(uids_of(c_wanted)), missing], root)
        )
    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"id", "href"}
    assert body["href"] == f"http://127.0.0.1:8000/v2/operations/{body['id']}"
    assert response["Location"] == body["href"]
    operation = Operation.objects.get(pk=body["id"])
    assert (operation.type, operation.status, operation.partition_id) == (OperationType.EXPORT, "notStarted", 1)
    # The task is enqueued once the row is committed, with the operation's id.
    (callback,) = callbacks
    assert callback.func == operations_services._enqueue and callback.args == (str(operation.pk),)
    assert files_under(root) == set()

    operation = run_export(response)
    folder = root / operation.pk.hex
    exported = [*a, *b1, c_wanted]
    assert files_under(folder) == {folder / "errors.log"} | {result_path(folder, data) for data in exported}
    for data in exported:
        assert result_path(folder, data).read_bytes() == wado_original(client, data) == data
    (line,) = error_lines(folder)
    assert line["identifier"] == missing
    assert line["error"] == "The specified series cannot be found."
    assert line["timestamp"].endswith("Z")
    assert operation.status == OperationStatus.SUCCEEDED
    assert operation.percent_complete == 100
    assert operation.results == {
        "exported": 6, "skipped": 1, "errorHref": (folder / "errors.log").as_uri(),
    }
    status = client.get(f"/v2/operations/{operation.pk.hex}").json()
    assert (status["status"], status["type"], status["results"]) == ("succeeded", "export", operation.results)


def test_identifiers_matching_nothing_are_skipped_and_the_operation_succeeds(client, root):
    data = dicom_bytes()
    store(data)
    study, series, sop = uids_of(data)
    unknown = [generate_uid(), f"{study}/{generate_uid()}", f"{study}/{series}/{generate_uid()}"]

    operation = run_export(post_export(client, export_body(unknown, root)))

    folder = root / operation.pk.hex
    assert files_under(folder) == {folder / "errors.log"}
    lines = error_lines(folder)
    assert [line["identifier"] for line in lines] == unknown
    assert [line["error"] for line in lines] == [
        "The specified study cannot be found.",
        "The specified series cannot be found.",
        "The specified instance cannot be found.",
    ]
    assert operation.status == OperationStatus.SUCCEEDED
    assert (operation.results["exported"], operation.results["skipped"]) == (0, 3)


def test_overlapping_identifiers_copy_each_instance_once(client, root):
    data = dicom_bytes()
    store(data)
    study, series, sop = uids_of(data)
    operation = run_export(post_export(client, export_body([f"{study}/{series}/{sop}", study, study], root)))
    assert (operation.results["exported"], operation.results["skipped"]) == (1, 0)
    assert operation.parameters["identifiers"] == [f"{study}/{series}/{sop}", study]
    assert error_lines(root / operation.pk.hex) == []


def test_a_missing_series_or_instance_under_an_exported_study_is_still_reported(client, root):
    data = dicom_bytes()
    store(data)
    study, series, sop = uids_of(data)
    missing = [f"{study}/{generate_uid()}", f"{study}/{series}/{generate_uid()}"]
    identifiers = [study, missing[0], f"{study}/{series}", missing[1], f"{study}/{series}/{sop}"]

    operation = run_export(post_export(client, export_body(identifiers, root)))

    folder = root / operation.pk.hex
    assert result_path(folder, data).read_bytes() == data
    assert [(line["identifier"], line["error"]) for line in error_lines(folder)] == [
        (missing[0], "The specified series cannot be found."),
        (missing[1], "The specified instance cannot be found."),
    ]
    assert (operation.results["exported"], operation.results["skipped"]) == (1, 2)
    assert operation.status == OperationStatus.SUCCEEDED


def test_property_names_are_case_insensitive_and_sources_is_accepted(client, root):
    data = dicom_bytes()
    store(data)
    body = {
        "Sources": {"Type": "Identifiers", "SETTINGS": {"Values": [uids_of(data)[0]]}},
        "DESTINATION": {"type": "FileSystem", "Settings": {"PATH": str(root / "batch-1")}},
    }
    operation = run_export(post_export(client, body))
    assert result_path(root / "batch-1" / operation.pk.hex, data).read_bytes() == data
    assert operation.results["exported"] == 1


@pytest.mark.parametrize(
    ("make_body", "message"),
    [
        (lambda v, p: {**export_body(v, p), "source": {"type": "query", "settings": {"values": v}}},
         "Unsupported export source 'query'."),
        (lambda v, p: {**export_body(v, p), "destination": {"type": "azureBlob", "settings": {}}},
         "Unsupported export destination 'azureBlob'."),
        (lambda v, p: export_body([], p), "Missing value for property 'Values'."),
        (lambda v, p: {**export_body(v, p), "source": {"type": "identifiers", "settings": {}}},
         "Missing value for property 'Values'."),
        (lambda v, p: {**export_body(v, p), "source": {"type": "identifiers", "settings": {"values": "1.2.3"}}},
         "The field 'source.settings.values' in request body is invalid: expected an array of strings."),
        (lambda v, p: export_body([*v, 5], p),
         "The field 'source.settings.values[1]' in request body is invalid: expected a string."),
        (lambda v, p: export_body([*v, "1.2//3"], p),
         "The field 'source.settings.values[1]' in request body is invalid: "
         "'1.2//3': The specified SeriesInstanceUID '' is not a valid DICOM UID."),
        (lambda v, p: export_body(["1.2/3.4/5.6/7.8"], p),
         "The field 'source.settings.values[0]' in request body is invalid: "
         "'1.2/3.4/5.6/7.8': expected 'study', 'study/series' or 'study/series/instance'."),
        (lambda v, p: export_body(["1.2.3/1.2.abc"], p),
         "The field 'source.settings.values[0]' in request body is invalid: "
         "'1.2.3/1.2.abc': The specified SeriesInstanceUID '1.2.abc' is not a valid DICOM UID."),
        (lambda v, p: export_body(v * 4, p),
         "The field 'source.settings.values' in request body is invalid: "
         "at most 3 identifiers are allowed in one export, got 4."),
        (lambda v, p: {"source": export_body(v, p)["source"]},
         "The field 'destination' in request body is invalid: a value is required."),
        (lambda v, p: {"destination": export_body(v, p)["destination"]},
         "The field 'source' in request body is invalid: a value is required."),
        (lambda v, p: {**export_body(v, p), "notify": True},
         "The field 'notify' in request body is invalid: unknown property."),
        (lambda v, p: {**export_body(v, p), "Source": export_body(v, p)["source"]},
         "The field 'Source' in request body is invalid: property 'source' is given more than once."),
        (lambda v, p: {**export_body(v, p), "destination": {"type": "filesystem"}},
         "The field 'destination.settings' in request body is invalid: a value is required."),
        (lambda v, p: {**export_body(v, p), "destination": {"type": "filesystem", "settings": {"x": 1}}},
         "The field 'destination.settings.x' in request body is invalid: unknown property."),
        (lambda v, p: [export_body(v, p)], "The syntax of the request body is invalid."),
        (lambda v, p: "{not json", "The syntax of the request body is invalid."),
    ],
)
def test_invalid_requests_are_400_naming_the_field(client, root, settings, make_body, message):
    settings.DICOM_EXPORT_MAX_IDENTIFIERS = 3
    body = make_body([generate_uid()], root)
    response = post_export(client, body)
    assert (response.status_code, response.content.decode()) == (400, message)
    assert response["Content-Type"].startswith("text/plain")
    assert not Operation.objects.exists()


def test_a_body_that_is_not_json_is_415(client, root):
    body = json.dumps(export_body([generate_uid()], root))
    for content_type in ("text/plain", "application/dicom+json", ""):
        response = client.generic("POST", "/v2/export", body, content_type=content_type)
        assert response.status_code == 415, content_type
        assert response.content.decode() == f"The specified content type '{content_type}' is not supported."
    response = client.post("/v2/export", data=body, content_type="Application/JSON; charset=utf-8")
    assert response.status_code == 202
    assert Operation.objects.count() == 1


def test_destinations_outside_the_roots_are_400_and_nothing_is_written(client, root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    (root / "a-file").write_bytes(b"x")
    values = [generate_uid()]
    cases = {
        str(outside): "is not under a directory this server exports to.",
        f"{root}/../outside": "must not contain '..'.",
        str(root / "escape"): "is not under a directory this server exports to.",
        str(root / "escape" / "deeper"): "is not under a directory this server exports to.",
        "exports/relative": "is not an absolute path.",
        f"{root}-sibling": "is not under a directory this server exports to.",
        str(root / "a-file"): "is not a directory.",
    }
    for path, reason in cases.items():
        response = post_export(client, export_body(values, path))
        assert response.status_code == 400, path
        assert response.content.decode() == (
            f"The field 'destination.settings.path' in request body is invalid: '{path}' {reason}"
        )
    assert not Operation.objects.exists()
    assert files_under(outside) == set()
    assert {path.name for path in root.iterdir()} == {"escape", "a-file"}


def test_filesystem_destination_is_disabled_without_roots(client, tmp_path, settings):
    settings.DICOM_EXPORT_FILESYSTEM_ROOTS = []
    response = post_export(client, export_body([generate_uid()], tmp_path))
    assert response.status_code == 400
    assert response.content.decode() == (
        "The export destination 'filesystem' is disabled: DICOM_EXPORT_FILESYSTEM_ROOTS is not set."
    )
    assert files_under(tmp_path) == set()


def test_a_symlink_swapped_in_after_the_request_fails_the_operation_and_writes_nothing(client, root, tmp_path):
    data = dicom_bytes()
    store(data)
    outside = tmp_path / "outside"
    outside.mkdir()
    response = post_export(client, export_body([uids_of(data)[0]], root / "later"))
    (root / "later").symlink_to(outside)

    operation = run_export(response)

    assert operation.status == OperationStatus.FAILED
    assert operation.errors == [
        f"The export path '{root / 'later'}' is no longer under a directory this server exports to."
    ]
    assert files_under(outside) == set()


def test_an_unwritable_destination_fails_the_operation(client, root):
    data = dicom_bytes()
    store(data)
    response = post_export(client, export_body([uids_of(data)[0]], root / "target"))
    (root / "target").write_bytes(b"not a directory")

    operation = run_export(response)

    assert operation.status == OperationStatus.FAILED
    (error,) = operation.errors
    assert error.startswith("The export destination cannot be written: ")
    assert "Not a directory" in error or "File exists" in error
    assert (root / "target").read_bytes() == b"not a directory"


def test_an_unreadable_stored_file_skips_that_instance_only(client, root):
    study = generate_uid()
    parts = [dicom_bytes(StudyInstanceUID=study) for _ in range(3)]
    store(*parts)
    lost = Instance.objects.get(sop_instance_uid=uids_of(parts[1])[2])
    storage().delete(blob_name(partition_key=1, watermark=lost.watermark))

    operation = run_export(post_export(client, export_body([study], root)))

    folder = root / operation.pk.hex
    assert files_under(folder) == {folder / "errors.log", result_path(folder, parts[0]), result_path(folder, parts[2])}
    (line,) = error_lines(folder)
    assert line["identifier"] == "/".join(uids_of(parts[1]))
    assert line["error"] == "The stored file of the instance could not be read."
    assert operation.status == OperationStatus.SUCCEEDED
    assert (operation.results["exported"], operation.results["skipped"]) == (2, 1)


def test_export_from_one_partition_never_reads_the_other(client, root, settings):
    settings.DICOM_ENABLE_DATA_PARTITIONS = True
    study, series, sop = generate_uid(), generate_uid(), generate_uid()
    alice = dicom_bytes(StudyInstanceUID=study, SeriesInstanceUID=series, SOPInstanceUID=sop, PatientName="Alice")
    bob = dicom_bytes(StudyInstanceUID=study, SeriesInstanceUID=series, SOPInstanceUID=sop, PatientName="Bob")
    bob_only = dicom_bytes(PatientName="Bob")
    store(alice, partition="alice")
    store(bob, bob_only, partition="bob")

    response = post_export(client, export_body([study, uids_of(bob_only)[0]], root), prefix="/v2/partitions/alice")
    operation = run_export(response)

    folder = root / operation.pk.hex
    assert files_under(folder) == {folder / "errors.log", result_path(folder, alice)}
    assert result_path(folder, alice).read_bytes() == alice == wado_original(client, alice, "/v2/partitions/alice")
    assert pydicom.dcmread(result_path(folder, alice)).PatientName == "Alice"
    assert [line["identifier"] for line in error_lines(folder)] == [uids_of(bob_only)[0]]
    assert operation.partition.partition_name == "alice"
    assert (operation.results["exported"], operation.results["skipped"]) == (1, 1)


def test_partition_routes_follow_the_partition_rules(client, root, settings):
    body = export_body([generate_uid()], root)
    response = post_export(client, body, prefix="/v2/partitions/alice")
    assert (response.status_code, response.content.decode()) == (400, "Data partitions feature is disabled.")
    settings.DICOM_ENABLE_DATA_PARTITIONS = True
    response = post_export(client, body, prefix="/v2/partitions/nobody")
    assert (response.status_code, response.content.decode()) == (400, "Specified PartitionName nobody does not exist.")
    assert not Operation.objects.exists()


def test_export_exists_from_v1_not_in_the_prerelease(client, root):
    body = export_body([generate_uid()], root)
    assert post_export(client, body, prefix="/v1.0-prerelease").status_code == 404
    response = post_export(client, body, prefix="/v1")
    assert response.status_code == 202
    assert response["Location"] == f"http://127.0.0.1:8000/v1/operations/{response.json()['id']}"
    operation = run_export(response)
    assert client.get(f"/v1/operations/{operation.pk.hex}").json()["status"] == "completed"


def test_a_redelivered_task_resumes_without_counting_twice(client, root, monkeypatch):
    study = generate_uid()
    parts = [dicom_bytes(StudyInstanceUID=study) for _ in range(5)]
    store(*parts)
    missing = generate_uid()
    response = post_export(client, export_body([missing, study], root))
    monkeypatch.setattr(export_services, "CHECKPOINT_EVERY", 2)
    real_open = type(storage()).open
    opened = []

    def dies_on_the_fourth_file(self, name, mode="rb"):  # noqa: ANN001, ANN202
        opened.append(name)
        if len(opened) == 4:
            raise WorkerKilled()
        return real_open(self, name, mode)

    monkeypatch.setattr(type(storage()), "open", dies_on_the_fourth_file)
    with pytest.raises(WorkerKilled):
        run_export(response)
    operation = Operation.objects.get(pk=response.json()["id"])
    # Three instances copied, but the last checkpoint (every 2) recorded two of them.
    assert operation.status == OperationStatus.RUNNING
    assert operation.results["exported"] == 2 and operation.results["skipped"] == 1
    assert operation.percent_complete == 40
    assert operation.checkpoint["done"] == 2

    monkeypatch.setattr(type(storage()), "open", real_open)
    operation = run_export(response, after_crash=True)  # the redelivered task

    folder = root / operation.pk.hex
    assert operation.status == OperationStatus.SUCCEEDED
    assert operation.results == {"exported": 5, "skipped": 1, "errorHref": (folder / "errors.log").as_uri()}
    assert files_under(folder) == {folder / "errors.log"} | {result_path(folder, data) for data in parts}
    assert [line["identifier"] for line in error_lines(folder)] == [missing]
    for data in parts:
        assert result_path(folder, data).read_bytes() == data
    assert not [path for path in folder.rglob(".*.part")]
    # A third delivery finds the operation finished and does nothing.
    assert operation_run(operation_id=operation.pk) == RunResult(status=None, retry_in=None)
    assert Operation.objects.get(pk=operation.pk).results["exported"] == 5


def test_memory_stays_flat_while_a_large_file_is_copied(client, root):
    ds = pydicom.dcmread(io.BytesIO(dicom_bytes()))
    ds.Rows, ds.Columns = 4096, 4096  # 32 MiB of 16-bit pixels
    ds.PixelData = os.urandom(4096 * 4096 * 2)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    data = out.getvalue()
    store(data)
    del ds, out
    response = post_export(client, export_body(["/".join(uids_of(data))], root))
    operation_id = response.json()["id"]

    tracemalloc.start()
    try:
        operation_run(operation_id=operation_id)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    operation = Operation.objects.get(pk=operation_id)
    assert operation.results["exported"] == 1
    assert result_path(root / operation.pk.hex, data).read_bytes() == data
    assert peak < 8 * 1024 * 1024, peak


def test_a_relative_export_root_stops_startup(tmp_path):
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "DICOM_EXPORT_FILESYSTEM_ROOTS": f"{tmp_path}:exports", "DICOM_DATA_DIR": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=root, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DICOM_EXPORT_FILESYSTEM_ROOTS: 'exports' is not an absolute path" in result.stderr
