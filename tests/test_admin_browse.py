"""The admin as an imaging administrator's browser (issue #20): worklist columns and query
counts, QIDO's fuzzy search, errors said on the page, thumbnails and the frame viewer, the
streamed ZIP, operation pages and the failed operation's API JSON, the small things.

Personas as in test_admin.py: alice is a superuser, carol in "Operations", dave staff without a group.
"""

from __future__ import annotations

import io
import json
import logging
import re
import tracemalloc
import zipfile

import pydicom
import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from PIL import Image
from pydicom.data import get_testdata_file

from changefeed.models import ChangeAction, ChangeFeedEntry
from operations.models import Operation, OperationStatus, OperationType
from studies.blobstore import blob_name, blob_open
from studies.models import Instance, Study
from tests.helpers import (
    admin_login,
    admin_page,
    dicom_bytes,
    new_workitem,
    response_bytes,
    store,
    study_files,
    update,
    ups,
)

pytestmark = pytest.mark.django_db








def cells(html: str, field: str) -> list[str]:
    """The text of every `field-<field>` cell of a change list, tags stripped."""
    found = re.findall(rf'<t[dh] class="field-{field}(?: [^"]*)?">(.*?)</t[dh]>', html, re.S)
    return [re.sub(r"<button.*?</button>|<[^>]+>", "", cell).strip() for cell in found]


def stored_bytes(instance: Instance) -> bytes:
    with blob_open(name=blob_name(partition_key=instance.partition_id, watermark=instance.watermark)) as blob:
        return blob.read()


STUDY_LIST = reverse("admin:studies_study_changelist")


# --- lists: columns and query counts ------------------------------------------------------


def test_study_list_reads_like_a_worklist(alice):
    files = study_files(3, PatientName="DOE^JOHN", PatientID="P-1", PatientBirthDate="19700102",
                        StudyDate="20240305", AccessionNumber="ACC-9", StudyDescription="CT CHEST")
    (first, *_) = store(*files)
    html = admin_page(alice, STUDY_LIST)
    assert cells(html, "patient") == ["DOE, JOHN"]
    assert cells(html, "patient_id") == ["P-1"]
    assert cells(html, "birth_date") == ["1970-01-02"]
    assert cells(html, "date") == ["2024-03-05"]
    assert cells(html, "modalities") == ["CT"]
    assert cells(html, "study_description") == ["CT CHEST"]
    assert cells(html, "accession_number") == ["ACC-9"]
    assert cells(html, "series_count") == ["2"] and cells(html, "instance_count") == ["3"]
    # The UID is shortened to its end, whole in the tooltip and the copy button, linked to the study.
    uid = first.study_instance_uid
    assert cells(html, "uid") == ["…" + uid[-12:]]
    assert f'title="{uid}"' in html and f'data-uid="{uid}"' in html
    assert reverse("admin:studies_study_change", args=[first.study_id]) in html
    # Sortable by study date, newest first on request.
    assert 'href="?o=3"' in html  # the study date column (the only sortable one)
    store(*study_files(1, PatientName="ROE^RICHARD", StudyDate="20250101"))
    assert cells(admin_page(alice, f"{STUDY_LIST}?o=-3"), "patient") == ["ROE, RICHARD", "DOE, JOHN"]
    assert cells(admin_page(alice, f"{STUDY_LIST}?o=3"), "patient") == ["DOE, JOHN", "ROE, RICHARD"]


def test_series_and_instance_lists_name_what_they_show(alice):
    (instance,) = store(dicom_bytes(SeriesNumber=7, SeriesDescription="AXIAL", BodyPartExamined="CHEST"))
    html = admin_page(alice, reverse("admin:studies_series_changelist"))
    assert cells(html, "modality_link") == ["CT"]
    assert cells(html, "number") == ["7"] and cells(html, "description") == ["AXIAL"]
    assert cells(html, "body_part") == ["CHEST"] and cells(html, "instance_count") == ["1"]
    html = admin_page(alice, reverse("admin:studies_instance_changelist"))
    assert cells(html, "sop_class") == ["CT Image Storage"]
    assert cells(html, "transfer_syntax") == ["Explicit VR Little Endian"]
    assert cells(html, "frames") == ["1"]
    assert cells(html, "size")[0].endswith("KB")
    for model, pk in (("series", instance.series_id), ("study", instance.study_id), ("instance", instance.pk)):
        assert reverse(f"admin:studies_{model}_change", args=[pk]) in html


@pytest.mark.parametrize("model", ["studies.study", "studies.series", "studies.instance", "changefeed.changefeedentry",
                                   "operations.operation", "workitems.workitem", "partitions.partition"])
def test_each_list_runs_the_same_queries_for_two_rows_as_for_eight(alice, model, settings):
    url = reverse(f"admin:{model.replace('.', '_')}_changelist")
    partitions = iter(range(100))

    def queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            admin_page(alice, url)
        return [query["sql"] for query in captured.captured_queries]

    def add(count: int) -> None:
        store(*study_files(count))
        for _ in range(count):
            Operation.objects.create(type=OperationType.EXPORT, status=OperationStatus.FAILED, percent_complete=5,
                                     errors=["The export destination cannot be written."])
            assert ups(Client(), "POST", "", new_workitem()).status_code == 201
            if model == "partitions.partition":  # one more partition, holding a study
                settings.DICOM_ENABLE_DATA_PARTITIONS = True
                store(partition=f"p{next(partitions)}")
                settings.DICOM_ENABLE_DATA_PARTITIONS = False

    add(2)
    few = queries()
    add(6)
    many = queries()
    assert len(many) == len(few) <= 8, many
    # Partitions are few: their list counts them, and each one's studies in its page query.
    assert model == "partitions.partition" or not [sql for sql in many if "COUNT(" in sql.upper()]


# --- search -------------------------------------------------------------------------------


def test_patient_name_search_is_qidos_fuzzy_match_through_the_search_service(alice, monkeypatch):
    from studies.admin import search as admin_search

    calls = []
    original = admin_search.study_matches_q

    def spy(**kwargs):
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(admin_search, "study_matches_q", spy)
    (john,) = store(dicom_bytes(PatientName="DOE^JOHN", PatientID="A"))
    (jane,) = store(dicom_bytes(PatientName="DOE^JANE", PatientID="B"))
    (other,) = store(dicom_bytes(PatientName="JOHNSON^DOERTE", PatientID="C"))

    html = admin_page(alice, f"{STUDY_LIST}?patient_name=jo+doe")
    assert cells(html, "patient_id") == ["C", "A"]  # every word starts a word of the name, any order
    assert calls and all(call["query"].fuzzy for call in calls)
    html = admin_page(alice, f"{STUDY_LIST}?patient_name=doe+ja")
    assert cells(html, "patient_id") == ["B"]
    # The same answer as QIDO's fuzzy matching gives.
    qido = Client().get("/v2/studies?PatientName=doe%20ja&fuzzymatching=true",
                        headers={"Accept": "application/dicom+json"})
    assert [study["00100020"]["Value"][0] for study in qido.json()] == ["B"]
    assert 'name="patient_name" value="doe ja"' in html
    assert john.study_id != jane.study_id != other.study_id


def test_search_by_id_accession_dates_modality_and_partition(alice):
    store(dicom_bytes(PatientID="X1", AccessionNumber="AC1", StudyDate="20240110", Modality="MR"))
    store(dicom_bytes(PatientID="X2", AccessionNumber="AC2", StudyDate="20240220", Modality="CT"))
    assert cells(admin_page(alice, f"{STUDY_LIST}?patient_id=X2"), "patient_id") == ["X2"]
    assert cells(admin_page(alice, f"{STUDY_LIST}?accession=ac1"), "patient_id") == ["X1"]
    assert cells(admin_page(alice, f"{STUDY_LIST}?date_from=2024-02-01"), "patient_id") == ["X2"]
    assert cells(admin_page(alice, f"{STUDY_LIST}?date_to=2024-01-31"), "patient_id") == ["X1"]
    assert cells(admin_page(alice, f"{STUDY_LIST}?modality=MR"), "patient_id") == ["X1"]
    assert cells(admin_page(alice, f"{STUDY_LIST}?modality=MR&partition__partition_key__exact=1"), "patient_id") == ["X1"]
    assert cells(admin_page(alice, f"{STUDY_LIST}?modality=MR&partition__partition_key__exact=999"), "patient_id") == []


# --- invalid filters and pages ------------------------------------------------------------


def test_invalid_filters_and_pages_are_said_on_the_page(alice):
    store(*study_files(3))
    html = admin_page(alice, f"{STUDY_LIST}?date_from=yesterday")
    assert "Invalid search: &#x27;yesterday&#x27; is not a date for Study date from" in html
    assert cells(html, "patient_id") == [] and 'name="date_from" value="yesterday"' in html
    html = admin_page(alice, f"{STUDY_LIST}?date_from=2024-03-01&date_to=2024-01-01")
    assert "Invalid search: Invalid query: specified range" in html and cells(html, "patient") == []
    html = admin_page(alice, f"{STUDY_LIST}?p=2")
    assert "There is no page 2 of this list" in html and cells(html, "patient") == []
    html = admin_page(alice, f"{STUDY_LIST}?p=two")
    assert "Invalid page number &#x27;two&#x27;." in html and cells(html, "patient") == []
    html = admin_page(alice, f"{reverse('admin:studies_instance_changelist')}?status__exact=abc")
    assert "Invalid filter" in html and cells(html, "number") == []
    feed = reverse("admin:changefeed_changefeedentry_changelist")
    html = admin_page(alice, f"{feed}?p=2")
    assert "There is no page 2 of this list" in html
    # Further past the end too, not Django's redirect to ?e=1 with the whole list.
    for url in (f"{feed}?p=3", f"{STUDY_LIST}?p=9", f"{STUDY_LIST}?p=3&patient_id=X"):
        response = alice.get(url)
        assert response.status_code == 200, (url, response.status_code)
        page = url.split("p=")[1].split("&")[0]
        html = response.content.decode()
        assert f"There is no page {page} of this list" in html and cells(html, "patient") == []


def result_rows(html: str) -> int:
    """Rows of a change list's results table (none when the list shows no table)."""
    if 'id="result_list"' not in html:
        return 0
    return html.split('id="result_list"')[1].split("</table>")[0].split("<tbody>")[1].count("<tr")


@pytest.mark.parametrize("model", ["studies.study", "studies.series", "studies.instance", "studies.extendedquerytag",
                                   "studies.extendedquerytagerror", "partitions.partition", "workitems.workitem",
                                   "changefeed.changefeedentry", "operations.operation"])
def test_every_list_says_a_page_past_the_end_or_an_unknown_filter_on_the_page(alice, model):
    store(*study_files(2))
    url = reverse(f"admin:{model.replace('.', '_')}_changelist")
    nul = "Invalid filter: a value holds a NUL character (%00)."
    for query, message in (
        ("p=9", "There is no page 9 of this list"), ("nope=1", "Invalid filter"), ("q=a%00b", nul), ("nope=%00", nul)
    ):  # fmt: skip
        response = alice.get(f"{url}?{query}")
        assert response.status_code == 200, (query, response.get("Location"))
        html = response.content.decode()
        assert message in html and result_rows(html) == 0, query


@pytest.mark.parametrize("model", ["operations.operation", "studies.extendedquerytag"])
def test_a_nul_character_in_a_filter_value_is_an_error_on_the_page(alice, model):
    # PostgreSQL refuses a NUL in a text parameter: the status filter answered 500 there.
    url = reverse(f"admin:{model.replace('.', '_')}_changelist")
    html = admin_page(alice, f"{url}?status=%00")
    assert "Invalid filter: a value holds a NUL character (%00)." in html and result_rows(html) == 0


def test_a_filter_the_sidebar_does_not_show_is_not_ignored(alice):
    """With one partition the sidebar shows no partition filter; a value given for it still filters."""
    store(dicom_bytes(), dicom_bytes())  # two studies
    for model in ("studies.study", "studies.instance", "changefeed.changefeedentry"):
        url = reverse(f"admin:{model.replace('.', '_')}_changelist")
        assert result_rows(admin_page(alice, url)) == 2, model
        html = admin_page(alice, f"{url}?partition__partition_key__exact=abc")
        assert "Invalid filter" in html and result_rows(html) == 0, model
        assert result_rows(admin_page(alice, f"{url}?partition__partition_key__exact=999")) == 0, model
        assert result_rows(admin_page(alice, f"{url}?partition__partition_key__exact=1")) == 2, model
    html = admin_page(alice, f"{reverse('admin:changefeed_changefeedentry_changelist')}?state=bogus")
    assert "Invalid filter: &#x27;bogus&#x27; is not a state" in html and result_rows(html) == 0


# --- pictures -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm"])
def test_thumbnails_render_stored_transfer_syntaxes_and_are_cached_by_etag(alice, name):
    (instance,) = store(dicom_bytes(name))
    url = reverse("admin:studies_instance_rendered", args=[instance.pk])
    response = alice.get(f"{url}?v={instance.watermark}")
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    ds = pydicom.dcmread(get_testdata_file(name))
    assert image.size == (ds.Columns, ds.Rows)
    assert response["Cache-Control"] == "private, max-age=86400"
    again = alice.get(f"{url}?v={instance.watermark}", headers={"If-None-Match": response["ETag"]})
    assert again.status_code == 304 and again.content == b""
    # The study, series and instance pages all show it, lazily.
    for model, pk in (("study", instance.study_id), ("series", instance.series_id)):
        html = admin_page(alice, reverse(f"admin:studies_{model}_change", args=[pk]))
        assert f'src="{url}?v={instance.watermark}" loading="lazy"' in html


def test_unrenderable_instances_get_a_placeholder_with_the_reason(alice):
    (no_pixels,) = store(dicom_bytes(PixelData=None))
    (broken,) = store(dicom_bytes(Rows=1024))  # pixel data far shorter than the image it declares
    for instance, reason in ((no_pixels, "The instance has no pixel data."),
                             (broken, "An error was encountered when attempting to convert")):
        response = alice.get(reverse("admin:studies_instance_rendered", args=[instance.pk]))
        assert response.status_code == 200 and response["Content-Type"] == "image/svg+xml"
        assert f"<title>{reason}" in response.content.decode()
        assert "no-store" in response["Cache-Control"]
    html = admin_page(alice, reverse("admin:studies_instance_change", args=[no_pixels.pk]))
    assert "This instance has no pixel data." in html


def test_frame_viewer_has_a_slider_and_the_datasets_window_presets(alice):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    data = dicom_bytes(NumberOfFrames=3, PixelData=ds.PixelData * 3, WindowCenter=[40, 300],
                       WindowWidth=[400, 1500], WindowCenterWidthExplanation=["SOFT", "BONE"])
    (instance,) = store(data)
    html = admin_page(alice, reverse("admin:studies_instance_change", args=[instance.pk]))
    assert 'class="frame-slider" min="1" max="3"' in html
    assert 'data-center="40.0" data-width="400.0"' in html and ">BONE</button>" in html
    url = reverse("admin:studies_instance_rendered", args=[instance.pk])
    third = alice.get(f"{url}?frame=3&wc=300&ww=1500")
    assert third.status_code == 200 and third["Content-Type"] == "image/jpeg"
    plain = alice.get(f"{url}?frame=3")
    assert plain.content != third.content and plain["ETag"] != third["ETag"]
    assert alice.get(f"{url}?frame=4")["Content-Type"] == "image/svg+xml"
    assert alice.get(f"{url}?frame=x").status_code == 400


def test_open_in_viewer_link_comes_from_the_template(alice, settings):
    (instance,) = store()
    study_page = reverse("admin:studies_study_change", args=[instance.study_id])
    assert "Open in viewer" not in admin_page(alice, study_page)
    settings.DICOM_VIEWER_URL = "https://ohif.example/viewer?StudyInstanceUIDs={StudyInstanceUID}"
    html = admin_page(alice, study_page)
    assert f'href="https://ohif.example/viewer?StudyInstanceUIDs={instance.study_instance_uid}"' in html


# --- ZIP download -------------------------------------------------------------------------


def test_study_and_series_zip_hold_the_stored_files_of_their_partition(alice, settings):
    files = study_files(3)
    instances = store(*files)
    study_uid = instances[0].study_instance_uid
    settings.DICOM_ENABLE_DATA_PARTITIONS = True
    (elsewhere,) = store(dicom_bytes(StudyInstanceUID=study_uid), partition="other")

    response = alice.get(reverse("admin:studies_study_zip", args=[instances[0].study_id]))
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="study-{study_uid}.zip"'
    archive = zipfile.ZipFile(io.BytesIO(response_bytes(response)))
    expected = {f"{i.study_instance_uid}/{i.series_instance_uid}/{i.sop_instance_uid}.dcm": stored_bytes(i)
                for i in instances}
    assert {name: archive.read(name) for name in archive.namelist()} == expected
    assert elsewhere.sop_instance_uid not in " ".join(archive.namelist())

    series = instances[0]
    response = alice.get(reverse("admin:studies_series_zip", args=[series.series_id]))
    names = zipfile.ZipFile(io.BytesIO(response_bytes(response))).namelist()
    assert sorted(names) == sorted(n for n in expected if f"/{series.series_instance_uid}/" in n)


def test_zip_stream_memory_stays_flat_for_a_large_study(alice):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    pixels = b"\x01\x02" * (1024 * 1024)  # 2 MiB of pixel data per instance
    files = study_files(12, Rows=1024, Columns=1024, PixelData=pixels)
    instances = store(*files)
    assert ds.Rows == 128 and sum(i.file_size for i in instances) > 24 * 1024 * 1024
    response = alice.get(reverse("admin:studies_study_zip", args=[instances[0].study_id]))

    async def consume() -> int:
        total = 0
        async for chunk in response.streaming_content:
            total += len(chunk)
        return total

    tracemalloc.start()
    try:
        total = async_to_sync(consume)()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > 24 * 1024 * 1024
    assert peak < 6 * 1024 * 1024, peak  # a few 1 MiB chunks, not the 24 MiB study


# --- operations ---------------------------------------------------------------------------


def test_failed_operation_page_says_where_and_why(carol, tmp_path, settings):
    settings.DICOM_EXPORT_FILESYSTEM_ROOTS = [str(tmp_path)]
    (instance,) = store()
    log = tmp_path / "op" / "errors.log"
    log.parent.mkdir()
    log.write_text(json.dumps({"identifier": "1.2.3", "error": "The study cannot be found."}) + "\n")
    operation = Operation.objects.create(
        type=OperationType.EXPORT, status=OperationStatus.FAILED, percent_complete=40,
        partition_id=instance.partition_id,
        parameters={"identifiers": [instance.study_instance_uid, "1.2.3"],
                    "destination": {"type": "filesystem", "path": str(tmp_path)}},
        results={"exported": 2, "skipped": 1, "errorHref": log.as_uri()},
        errors=["The export destination cannot be written: disk full"],
    )
    html = admin_page(carol, reverse("admin:operations_operation_change", args=[operation.pk]))
    assert "failed at 40 %" in html
    assert "<li>The export destination cannot be written: disk full</li>" in html
    assert "The study cannot be found." in html  # the errors.log line, inline
    assert reverse("admin:studies_study_change", args=[instance.study_id]) in html
    assert 'http-equiv="refresh"' not in html and "Duration" in html

    api = Client().get(f"/v2/operations/{operation.pk.hex}").json()
    assert api["status"] == "failed" and api["percentComplete"] == 40
    assert api["results"]["errors"] == ["The export destination cannot be written: disk full"]

    dashboard = admin_page(carol, reverse("admin:index"))
    assert "failed at 40 %" in dashboard and "disk full" in dashboard


def test_running_operation_page_refreshes_and_shows_tag_keywords(carol):
    (instance,) = store()
    operation = Operation.objects.create(
        type=OperationType.UPDATE, status=OperationStatus.RUNNING, percent_complete=10,
        partition_id=instance.partition_id,
        parameters={"studyInstanceUids": [instance.study_instance_uid],
                    "changeDataset": {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "NEW^NAME"}]}}},
    )
    html = admin_page(carol, reverse("admin:operations_operation_change", args=[operation.pk]))
    assert '<meta http-equiv="refresh" content="5">' in html
    assert "<td>PatientName</td>" in html and "so far" in html
    assert admin_page(carol, reverse("admin:index")).count(f"{operation.pk.hex[:8]}…</a>") == 1


def test_feed_update_entry_links_to_its_instance_and_operation(alice):
    (instance,) = store()
    operation = Operation.objects.create(
        type=OperationType.UPDATE, status=OperationStatus.SUCCEEDED, percent_complete=100,
        partition_id=instance.partition_id, parameters={"studyInstanceUids": [instance.study_instance_uid]},
    )
    updated = update(instance, **{"00100020": "NEW"})
    entry = ChangeFeedEntry.objects.get(action=ChangeAction.UPDATE)
    Operation.objects.filter(pk=operation.pk).update(created_time=entry.timestamp, last_updated_time=entry.timestamp)
    html = admin_page(alice, reverse("admin:changefeed_changefeedentry_changelist"))
    assert reverse("admin:studies_instance_change", args=[updated.pk]) in html
    study_search = f'{reverse("admin:studies_study_changelist")}?q={instance.study_instance_uid}'
    assert f'<a href="{study_search}">{instance.study_instance_uid}</a>' in html
    detail = admin_page(alice, reverse("admin:changefeed_changefeedentry_change", args=[entry.sequence]))
    assert f'<a href="{study_search}">{instance.study_instance_uid}</a>' in detail
    link = reverse("admin:operations_operation_for_change", args=[entry.sequence])
    assert link in html
    response = alice.get(link)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:operations_operation_change", args=[operation.pk])


# --- small things -------------------------------------------------------------------------


def test_forbidden_page_is_styled_and_logged_without_traceback(caplog):
    dave = admin_login("dave")
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = dave.get(STUDY_LIST)
    assert response.status_code == 403
    html = response.content.decode()
    assert "<h1>Permission denied</h1>" in html and "DICOM server administration" in html
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    for handler in logging.getLogger().handlers:
        for log_filter in handler.filters:
            log_filter(record) if callable(log_filter) else log_filter.filter(record)
    assert record.exc_info is None and "Forbidden" in record.getMessage()


def test_no_view_site_no_empty_history_and_watermark_explained(alice):
    (instance,) = store()
    html = admin_page(alice, reverse("admin:studies_instance_change", args=[instance.pk]))
    assert "View site" not in html and "historylink" not in html
    assert "The watermark: a server-wide number" in html


def test_attribute_table_shows_at_values_as_tags_and_can_be_filtered(alice):
    (instance,) = store(dicom_bytes(FrameIncrementPointer=0x00181063))
    html = admin_page(alice, reverse("admin:studies_instance_change", args=[instance.pk]))
    assert "(0018,1063) FrameTime" in html
    assert 'class="attribute-filter"' in html and 'class="sequences-toggle"' in html
    assert Study.objects.count() == 1
