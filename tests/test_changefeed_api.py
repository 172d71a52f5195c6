"""GET /v{n}/changefeed and /v{n}/changefeed/latest: paging, windows, JSON shape, errors."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import transaction

from changefeed.models import ChangeAction, ChangeFeedEntry
from changefeed.services import changefeed_append
from tests.helpers import delete, dicom_bytes, feed_rows, response_bytes, store, uids_of

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2024, 3, 1, 12, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)
FAKE_UIDS = {
    "partition_id": 1, "study_instance_uid": "1.2.3", "series_instance_uid": "1.2.3.4", "sop_instance_uid": "1.2.3.4.5"
}


def feed(client, url: str):  # noqa: ANN001, ANN201
    response = client.get(url)
    assert response.status_code == 200, response_bytes(response)
    assert response["Content-Type"] == "application/json; charset=utf-8"
    return json.loads(response_bytes(response))


def sequences(entries: list[dict]) -> list[int]:
    return [entry["sequence"] for entry in entries]


def test_stored_instance_appears_with_every_field_and_its_metadata(client):
    data = dicom_bytes(PatientID="FEED-1")
    study, series, sop = uids_of(data)
    store(data)

    row = ChangeFeedEntry.objects.get()
    for version in ("v1", "v1.0-prerelease", "v2"):
        (entry,) = feed(client, f"/{version}/changefeed?offset={row.sequence - 1 if version != 'v2' else 0}")
        assert list(entry) == [
            "sequence", "partitionName", "studyInstanceUid", "seriesInstanceUid", "sopInstanceUid",
            "action", "timestamp", "state", "metadata",
        ]
        assert entry["sequence"] == row.sequence
        assert entry["partitionName"] == "Microsoft.Default"
        assert (entry["studyInstanceUid"], entry["seriesInstanceUid"], entry["sopInstanceUid"]) == (study, series, sop)
        assert entry["action"] == "create"
        assert entry["state"] == "current"
        assert dt.datetime.fromisoformat(entry["timestamp"]) == row.timestamp
        assert entry["timestamp"].endswith("+00:00")
        assert entry["metadata"]["00100020"] == {"vr": "LO", "Value": ["FEED-1"]}
        assert entry["metadata"]["00080018"]["Value"] == [sop]
        instance = f"http://127.0.0.1:8000/{version}/studies/{study}/series/{series}/instances/{sop}"
        assert entry["metadata"]["7FE00010"] == {"vr": "OW", "BulkDataURI": f"{instance}/bulkdata/7FE00010"}


def test_include_metadata_false_and_deleted_instances_omit_metadata(client):
    (kept,) = store()
    (gone,) = store()
    delete(gone)
    entries = feed(client, "/v2/changefeed?includeMetadata=false")
    assert [("metadata" in e) for e in entries] == [False, False, False]
    entries = feed(client, "/v2/changefeed")
    by_sop = {(e["sopInstanceUid"], e["action"]): e for e in entries}
    served = by_sop[(kept.sop_instance_uid, "create")]["metadata"]
    assert served["7FE00010"]["BulkDataURI"].endswith(f"/instances/{kept.sop_instance_uid}/bulkdata/7FE00010")
    stored = json.loads(kept.metadata)
    assert served.keys() == stored.keys()
    for key, value in stored.items():  # as stored, BulkDataURIs completed
        if "BulkDataURI" in value:
            assert served[key]["BulkDataURI"].endswith(f"/bulkdata/{value['BulkDataURI']}")
        else:
            assert served[key] == value
    assert "metadata" not in by_sop[(gone.sop_instance_uid, "create")]
    assert "metadata" not in by_sop[(gone.sop_instance_uid, "delete")]
    assert by_sop[(gone.sop_instance_uid, "delete")]["state"] == "deleted"


def test_v1_pages_by_sequence_span_with_default_limit_10(client):
    rows = feed_rows(25, start=T0, step=MINUTE)
    first = rows[0].sequence
    all_sequences = [row.sequence for row in rows]

    assert sequences(feed(client, "/v1/changefeed")) == [s for s in all_sequences if s <= 10]
    page = feed(client, f"/v1/changefeed?offset={first - 1}")
    assert sequences(page) == all_sequences[:10]
    page = feed(client, f"/v1/changefeed?offset={first + 9}&limit=100")
    assert sequences(page) == all_sequences[10:]
    # offset < sequence <= offset + limit: the bounds are sequences, not positions.
    page = feed(client, f"/v1/changefeed?offset={first + 2}&limit=3")
    assert sequences(page) == [first + 3, first + 4, first + 5]
    assert feed(client, f"/v1/changefeed?offset={all_sequences[-1]}") == []
    # Polling from the last seen sequence walks the whole feed exactly once.
    seen: list[int] = []
    offset = first - 1
    while page := feed(client, f"/v1/changefeed?offset={offset}&limit=7"):
        seen += sequences(page)
        offset = seen[-1]
    assert seen == all_sequences


def test_a_rolled_back_append_never_hides_later_entries(client):
    before = feed_rows(2, start=T0, step=MINUTE)
    with pytest.raises(RuntimeError), transaction.atomic():
        changefeed_append(entries=[ChangeFeedEntry(**FAKE_UIDS, action=ChangeAction.CREATE, watermark=1)])
        raise RuntimeError("the change failed after its entry was written")
    with transaction.atomic():
        changefeed_append(entries=[ChangeFeedEntry(**FAKE_UIDS, action=ChangeAction.DELETE, watermark=1)])
    after = ChangeFeedEntry.objects.order_by("sequence").last()
    assert after.sequence > before[-1].sequence
    # A reader continuing from the last entry it saw gets the committed one, and only it.
    assert sequences(feed(client, f"/v1/changefeed?offset={before[-1].sequence}&limit=2")) == [after.sequence]
    assert [e["action"] for e in feed(client, "/v2/changefeed?offset=2")] == ["delete"]


def test_v1_ignores_the_v2_window(client):
    rows = feed_rows(3, start=T0, step=MINUTE)
    page = feed(client, f"/v1/changefeed?offset={rows[0].sequence - 1}&startTime=2030-01-01T00:00:00Z")
    assert sequences(page) == [row.sequence for row in rows]


def test_v2_counts_rows_with_default_limit_100_and_windows_on_timestamp(client):
    rows = feed_rows(105, start=T0, step=MINUTE)
    all_sequences = [row.sequence for row in rows]

    assert sequences(feed(client, "/v2/changefeed")) == all_sequences[:100]
    assert sequences(feed(client, "/v2/changefeed?offset=100")) == all_sequences[100:]
    assert sequences(feed(client, "/v2/changefeed?offset=3&limit=2")) == all_sequences[3:5]
    # [startTime, endTime): minute 10 included, minute 13 excluded; offset counts inside the window.
    window = "startTime=2024-03-01T12:10:00Z&endTime=2024-03-01T12:13:00Z"
    assert sequences(feed(client, f"/v2/changefeed?{window}")) == all_sequences[10:13]
    assert sequences(feed(client, f"/v2/changefeed?{window}&offset=1")) == all_sequences[11:13]
    assert sequences(feed(client, f"/v2/changefeed?{window}&offset=1&limit=1")) == all_sequences[11:12]
    # Other offsets denote the same instants; an unencoded '+' (a space) still means an offset.
    shifted = "startTime=2024-03-01T13:10:00%2B01:00&endTime=2024-03-01T13:13:00 01:00"
    assert sequences(feed(client, f"/v2/changefeed?{shifted}")) == all_sequences[10:13]
    assert sequences(feed(client, "/v2/changefeed?startTime=2024-03-01T13:40:00%2B00:00")) == all_sequences[100:]
    assert sequences(feed(client, "/v2/changefeed?endTime=2024-03-01T12:02:00.000001Z")) == all_sequences[:3]
    assert feed(client, "/v2/changefeed?startTime=2025-01-01T00:00:00Z") == []


def test_v2_orders_by_timestamp_then_sequence(client):
    # Rows whose timestamps disagree with their sequences (written by hand; the service never does).
    rows = feed_rows(3, start=T0, step=MINUTE)
    ChangeFeedEntry.objects.filter(pk=rows[0].pk).update(timestamp=T0 + 10 * MINUTE)
    ChangeFeedEntry.objects.filter(pk=rows[2].pk).update(timestamp=T0 + MINUTE)  # ties with rows[1]
    expected = [rows[1].sequence, rows[2].sequence, rows[0].sequence]
    assert sequences(feed(client, "/v2/changefeed")) == expected
    assert sequences(feed(client, f"/v1/changefeed?offset={rows[0].sequence - 1}")) == sorted(expected)


def test_parameter_names_are_case_insensitive(client):
    rows = feed_rows(5, start=T0, step=MINUTE)
    store()
    page = feed(client, f"/v1/changefeed?OFFSET={rows[0].sequence}&Limit=2&INCLUDEMETADATA=False")
    assert sequences(page) == [rows[1].sequence, rows[2].sequence]
    page = feed(client, "/v2/changefeed?starttime=2024-03-01T12:01:00Z&ENDTIME=2024-03-01T12:03:00Z&LIMIT=1&Offset=1")
    assert sequences(page) == [rows[2].sequence]
    newest = feed(client, "/v2/changefeed?offset=5&includemetadata=FALSE")
    assert len(newest) == 1 and "metadata" not in newest[0]


def test_latest_v1_by_sequence_v2_by_timestamp(client):
    assert client.get("/v2/changefeed/latest").status_code == 204
    assert client.get("/v1/changefeed/latest").status_code == 204
    rows = feed_rows(3, start=T0, step=MINUTE)
    ChangeFeedEntry.objects.filter(pk=rows[1].pk).update(timestamp=T0 + 10 * MINUTE)
    assert feed(client, "/v1/changefeed/latest")["sequence"] == rows[2].sequence
    assert feed(client, "/v2/changefeed/latest")["sequence"] == rows[1].sequence


def test_latest_carries_state_and_metadata(client):
    (first,) = store()
    (second,) = store(dicom_bytes(PatientID="LATEST"))
    latest = feed(client, "/v2/changefeed/latest")
    assert latest["sopInstanceUid"] == second.sop_instance_uid
    assert latest["state"] == "current"
    assert latest["metadata"]["00100020"]["Value"] == ["LATEST"]
    assert "metadata" not in feed(client, "/v2/changefeed/latest?includeMetadata=false")
    delete(first)
    latest = feed(client, "/v1/changefeed/latest")
    assert (latest["sopInstanceUid"], latest["action"]) == (first.sop_instance_uid, "delete")
    assert latest["state"] == "deleted"
    assert "metadata" not in latest


OVER = "9223372036854775808"
LIMIT_100 = "The field Limit must be between 1 and 100."
OFFSET_RANGE = "The field Offset must be between 0 and 9223372036854775807."
NO_ZONE = "Date and time value must specify a time zone."


def invalid(name: str, reason: str) -> str:
    return f"The query parameter '{name}' is invalid. {reason}"


def not_valid(name: str, value: str) -> str:
    return invalid(name, f"The value '{value}' is not valid for {name[0].upper()}{name[1:]}.")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/v1/changefeed?limit=-1", invalid("limit", LIMIT_100)),
        ("/v1/changefeed?limit=0", invalid("limit", LIMIT_100)),
        ("/v1/changefeed?limit=101", invalid("limit", LIMIT_100)),
        ("/v2/changefeed?limit=201", invalid("limit", "The field Limit must be between 1 and 200.")),
        ("/v2/changefeed?limit=blah", not_valid("limit", "blah")),
        ("/v2/changefeed?limit=", not_valid("limit", "")),
        ("/v1/changefeed?offset=-1", invalid("offset", OFFSET_RANGE)),
        ("/v2/changefeed?offset=-1", invalid("offset", OFFSET_RANGE)),
        (f"/v1/changefeed?offset={OVER}", not_valid("offset", OVER)),
        ("/v2/changefeed?offset=blah", not_valid("offset", "blah")),
        ("/v2/changefeed?offset=1.5", not_valid("offset", "1.5")),
        ("/v1/changefeed?includeMetadata=0", not_valid("includeMetadata", "0")),
        ("/v2/changefeed?includeMetadata=true-ish", not_valid("includeMetadata", "true-ish")),
        ("/v2/changefeed?includeMetadata=boolean", not_valid("includeMetadata", "boolean")),
        ("/v2/changefeed/latest?includeMetadata=asdf", not_valid("includeMetadata", "asdf")),
        ("/v1/changefeed/latest?includeMetadata=1", not_valid("includeMetadata", "1")),
        ("/v2/changefeed?startTime=foo", not_valid("startTime", "foo")),
        ("/v2/changefeed?endTime=bar", not_valid("endTime", "bar")),
        ("/v2/changefeed?startTime=2024-03-01T12:00:00", invalid("startTime", NO_ZONE)),
        ("/v2/changefeed?endTime=2024-03-01", invalid("endTime", NO_ZONE)),
        (
            "/v2/changefeed?startTime=2024-03-01T12:00:00Z&endTime=2024-03-01T13:00:00%2B01:00",
            "The start time '2024-03-01T12:00:00.0000000+00:00' must occur strictly before the end time "
            "'2024-03-01T13:00:00.0000000+01:00'.",
        ),
        (
            "/v2/changefeed?startTime=2024-03-02T00:00:00.5Z&endTime=2024-03-01T00:00:00Z",
            "The start time '2024-03-02T00:00:00.5000000+00:00' must occur strictly before the end time "
            "'2024-03-01T00:00:00.0000000+00:00'.",
        ),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(client, url, message):
    response = client.get(url)
    assert response.status_code == 400
    assert response.content.decode() == message


def test_first_value_of_a_repeated_parameter_wins(client):
    rows = feed_rows(3, start=T0, step=MINUTE)
    assert sequences(feed(client, "/v2/changefeed?limit=1&LIMIT=blah&limit=2")) == [rows[0].sequence]


def test_offset_near_the_top_of_the_range_does_not_overflow(client):
    feed_rows(2, start=T0, step=MINUTE)
    assert feed(client, "/v1/changefeed?offset=9223372036854775807&limit=100") == []
    assert feed(client, "/v2/changefeed?offset=9223372036854775807") == []


def test_change_feed_is_global_not_under_partitions(client, settings):
    settings.DICOM_ENABLE_DATA_PARTITIONS = True
    data = dicom_bytes()
    store(data, partition="alpha")
    store(partition="beta")
    entries = feed(client, "/v2/changefeed")
    assert [e["partitionName"] for e in entries] == ["alpha", "beta"]
    assert entries[0]["sopInstanceUid"] == uids_of(data)[2]
    assert client.get("/v2/partitions/alpha/changefeed").status_code == 404
    assert client.get("/v2/partitions/alpha/changefeed/latest").status_code == 404


def test_a_page_is_a_fixed_number_of_queries(client, django_assert_max_num_queries):
    for _ in range(3):
        store()
    feed_rows(150, start=T0, step=MINUTE)
    for _ in range(3):
        store()
    # Page query, then one metadata query per batch of 10 entries that name a live instance.
    with django_assert_max_num_queries(1 + 20):
        entries = feed(client, "/v2/changefeed?limit=200")
    assert len(entries) == 156
    assert sum("metadata" in e for e in entries) == 6
    with django_assert_max_num_queries(1):
        assert len(feed(client, "/v2/changefeed?limit=200&includeMetadata=false")) == 156
