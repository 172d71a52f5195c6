"""The admin console: dashboard, change feed, partitions, studies/series/instances, operations.

Personas: alice is a superuser, bob is in "DICOM administrators", carol in "Operations",
dave is staff without a group, eve is not staff.
"""

from __future__ import annotations

import io
import json
import re

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from changefeed.models import ChangeFeedEntry
from operations.models import Operation, OperationStatus, OperationType
from partitions.models import DEFAULT_PARTITION_NAME, Partition
from studies.blobstore import blob_name, blob_open, blob_write
from studies.models import Instance, Series, Study
from studies.workitems.models import Workitem
from tests.helpers import (
    admin_page,
    delete,
    dicom_bytes,
    first_value,
    new_workitem,
    response_bytes,
    state_change,
    store,
    update,
    ups,
)

pytestmark = pytest.mark.django_db











def changelist(model: str) -> str:
    return reverse(f"admin:{model.replace('.', '_')}_changelist")


def change(model: str, pk: object) -> str:
    return reverse(f"admin:{model.replace('.', '_')}_change", args=[pk])


def feed_sequences(html: str) -> list[int]:
    return [int(s) for s in re.findall(r'<th class="field-sequence"><a href="[^"]+">(\d+)</a>', html)]


# --- groups -------------------------------------------------------------------------------


def test_groups_come_from_the_data_migration():
    permissions = {
        group.name: sorted(f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all())
        for group in Group.objects.all()
    }
    assert permissions == {
        "DICOM administrators": [
            "changefeed.view_changefeedentry", "operations.view_operation", "partitions.view_partition",
            "studies.view_extendedquerytag", "studies.view_extendedquerytagerror",
            "studies.view_instance", "studies.view_series", "studies.view_study", "workitems.view_workitem",
        ],
        "Operations": ["changefeed.view_changefeedentry", "operations.view_operation"],
    }


# --- access -------------------------------------------------------------------------------

ALL_LISTS = ["changefeed.changefeedentry", "operations.operation", "partitions.partition",
             "studies.study", "studies.series", "studies.instance", "workitems.workitem"]


@pytest.mark.parametrize("model", ALL_LISTS)
def test_lists_render_for_superuser_and_administrators(alice, bob, model):
    store()
    admin_page(alice, changelist(model))
    admin_page(bob, changelist(model))


@pytest.mark.parametrize("model", ALL_LISTS)
def test_staff_without_a_group_is_forbidden_and_non_staff_sent_to_login(dave, eve, model):
    assert dave.get(changelist(model)).status_code == 403
    response = eve.get(changelist(model))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_operations_group_sees_only_feed_and_operations(carol):
    (instance,) = store()
    admin_page(carol, changelist("changefeed.changefeedentry"))
    admin_page(carol, changelist("operations.operation"))
    for model in ("partitions.partition", "studies.study", "studies.series", "studies.instance"):
        assert carol.get(changelist(model)).status_code == 403
    assert carol.get(change("studies.instance", instance.pk)).status_code == 403
    download = reverse("admin:studies_instance_download", args=[instance.pk])
    assert carol.get(download).status_code == 403
    index = admin_page(carol, reverse("admin:index"))
    assert "Change feed entries" in index and "Operations" in index
    assert "Studies" not in index and "partition-stats" not in index


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_dicom_data_is_read_only_for_everyone(request, who):
    client = request.getfixturevalue(who)
    (instance,) = store()
    pages = {
        "studies.study": instance.study_id, "studies.series": instance.series_id, "studies.instance": instance.pk,
        "partitions.partition": instance.partition_id,
        "changefeed.changefeedentry": ChangeFeedEntry.objects.get().pk,
    }
    for model, pk in pages.items():
        html = admin_page(client, change(model, pk))
        assert 'name="_save"' not in html
        app, name = model.split(".")
        assert client.get(reverse(f"admin:{app}_{name}_add")).status_code == 403
        assert client.get(reverse(f"admin:{app}_{name}_delete", args=[pk])).status_code == 403
        assert client.post(change(model, pk), {}).status_code == 403
    assert Instance.objects.filter(pk=instance.pk).exists()


# --- dashboard ----------------------------------------------------------------------------


def test_dashboard_shows_partition_counts_and_the_last_20_entries(alice, settings):
    settings.DICOM_ENABLE_DATA_PARTITIONS = True
    study = dicom_bytes()
    instances = store(study, partition=DEFAULT_PARTITION_NAME) + [store(partition="beta")[0] for _ in range(21)]
    html = admin_page(alice, reverse("admin:index"))
    stats = html.split('id="partition-stats"')[1].split("</table>")[0]
    beta_size = sum(i.file_size for i in instances[1:])
    rows = re.findall(r"<tr>\s*<td><a[^>]*>([^<]+)</a></td>\s*<td[^>]*><a[^>]*>(\d+)</a></td>\s*"
                      r"<td[^>]*>(\d+)</td>\s*<td[^>]*>([^<]+)</td>", stats)
    assert [(name, int(s), int(i)) for name, s, i, _ in rows] == [
        ("Microsoft.Default", 1, 1), ("beta", 21, 21),
    ]
    assert rows[1][3].replace("\xa0", " ") == f"{beta_size / 1024:.1f} KB"
    feed = html.split('id="recent-feed"')[1]
    shown = re.findall(r'changefeedentry/(\d+)/change/', feed)
    sequences = list(ChangeFeedEntry.objects.order_by("-sequence").values_list("sequence", flat=True))
    assert [int(s) for s in shown] == sequences[:20]
    assert instances[0].sop_instance_uid not in feed  # the oldest two fell off
    assert instances[-1].sop_instance_uid in feed
    assert reverse("admin:studies_instance_change", args=[instances[-1].pk]) in feed


def test_dashboard_hides_data_from_staff_without_groups(dave):
    store()
    html = admin_page(dave, reverse("admin:index"))
    assert "partition-stats" not in html and "recent-feed" not in html


# --- change feed --------------------------------------------------------------------------


def test_feed_list_rows_states_links_and_filters(alice):
    (kept,) = store()
    (gone,) = store()
    delete(gone)
    updated = update(store()[0], **{"00100020": "NEW"})
    url = changelist("changefeed.changefeedentry")
    rows = list(ChangeFeedEntry.objects.order_by("-sequence"))

    html = admin_page(alice, url)
    assert feed_sequences(html) == [row.sequence for row in rows]
    assert html.count('class="feed-state feed-state-current"') == 2
    assert html.count('class="feed-state feed-state-replaced"') == 1
    assert html.count('class="feed-state feed-state-deleted"') == 2
    assert change("studies.instance", kept.pk) in html and change("studies.instance", updated.pk) in html
    assert "COUNT" not in html and "more follow" not in html

    def shown(query: str) -> list[int]:
        return feed_sequences(admin_page(alice, f"{url}?{query}"))

    assert shown("action__exact=1") == [r.sequence for r in rows if r.action == 1]
    def of(instance: Instance) -> list[int]:
        return [r.sequence for r in rows if r.sop_instance_uid == instance.sop_instance_uid]

    assert shown("state=deleted") == of(gone)
    assert shown("state=replaced") == of(updated)[1:]
    assert shown(f"q={kept.study_instance_uid}") == of(kept)
    assert shown(f"q={gone.series_instance_uid}") == of(gone)
    assert shown(f"q=%20{updated.sop_instance_uid}%20") == of(updated)
    assert shown("q=1.2.3.999") == []
    assert shown("partition__partition_key__exact=1") == [r.sequence for r in rows]


def test_feed_time_range_filter(alice):
    store()
    store()
    first, second = ChangeFeedEntry.objects.order_by("sequence")
    ChangeFeedEntry.objects.filter(pk=first.pk).update(timestamp="2024-03-01T10:00:00Z")
    ChangeFeedEntry.objects.filter(pk=second.pk).update(timestamp="2024-03-01T12:00:00Z")
    url = changelist("changefeed.changefeedentry")
    assert feed_sequences(admin_page(alice, f"{url}?since=2024-03-01T11:00")) == [second.sequence]
    assert feed_sequences(admin_page(alice, f"{url}?until=2024-03-01T11:00")) == [first.sequence]
    both = f"{url}?since=2024-03-01T10:00&until=2024-03-01T13:00%2B01:00"
    assert feed_sequences(admin_page(alice, both)) == [first.sequence]
    html = admin_page(alice, f"{url}?since=2024-03-01T10:00&action__exact=0")
    assert 'name="since" value="2024-03-01T10:00"' in html
    assert '<input type="hidden" name="action__exact" value="0">' in html
    # A value that is not a time is said on the page, over an empty list, the form keeping it.
    html = admin_page(alice, f"{url}?since=yesterday")
    assert "Invalid filter: &#x27;yesterday&#x27; is not a time for since" in html
    assert 'name="since" value="yesterday"' in html
    assert feed_sequences(html) == []


def test_operations_group_sees_the_feed_without_instance_links(carol):
    (instance,) = store()
    html = admin_page(carol, changelist("changefeed.changefeedentry"))
    assert instance.sop_instance_uid in html
    assert "/admin/studies/" not in html
    assert "stored" in html
    detail = admin_page(carol, change("changefeed.changefeedentry", ChangeFeedEntry.objects.get().pk))
    assert instance.sop_instance_uid in detail and "/admin/studies/" not in detail


def test_export_selected_entries_as_json_lines(carol):
    (first,) = store()
    (second,) = store()
    delete(first)
    url = changelist("changefeed.changefeedentry")
    chosen = ChangeFeedEntry.objects.filter(sop_instance_uid=first.sop_instance_uid).order_by("sequence")
    response = carol.post(url, {"action": "export_json_lines", "_selected_action": [e.pk for e in chosen]})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    assert response["Content-Disposition"].startswith('attachment; filename="changefeed-')
    lines = [json.loads(line) for line in response_bytes(response).decode().splitlines()]
    assert [(e["sequence"], e["action"], e["state"]) for e in lines] == [
        (chosen[0].sequence, "create", "deleted"), (chosen[1].sequence, "delete", "deleted"),
    ]
    assert lines[0]["sopInstanceUid"] == first.sop_instance_uid and "metadata" not in lines[0]

    # "Select all" exports everything the filters match, across pages.
    response = carol.post(f"{url}?state=current", {
        "action": "export_json_lines", "select_across": "1", "_selected_action": [chosen[0].pk],
    })
    lines = [json.loads(line) for line in response_bytes(response).decode().splitlines()]
    assert [(e["sopInstanceUid"], e["state"]) for e in lines] == [(second.sop_instance_uid, "current")]


def _feed_rows(count: int) -> None:
    ChangeFeedEntry.objects.bulk_create(
        [
            ChangeFeedEntry(
                timestamp="2024-03-01T00:00:00Z", action=index % 3, partition_id=1,
                study_instance_uid=f"1.2.826.0.1.3680043.10.1.{index // 100}",
                series_instance_uid=f"1.2.826.0.1.3680043.10.2.{index // 10}",
                sop_instance_uid=f"1.2.826.0.1.3680043.10.3.{index}", watermark=index,
            )
            for index in range(count)
        ],
        batch_size=2000,
    )


def _list_queries(client: Client, url: str, django_assert_max_num_queries) -> list[str]:  # noqa: ANN001
    with django_assert_max_num_queries(6) as captured:
        html = admin_page(client, url)
    assert "1.2.826.0.1.3680043.10.3." in html
    return [query["sql"] for query in captured.captured_queries]


def test_feed_list_with_10000_rows_runs_a_bounded_number_of_queries_and_no_count(alice, django_assert_max_num_queries):
    url = changelist("changefeed.changefeedentry")
    _feed_rows(10)
    small = _list_queries(alice, url, django_assert_max_num_queries)
    ChangeFeedEntry.objects.all().delete()
    _feed_rows(10_000)
    for query in ("", "?p=2", "?p=200", "?state=deleted", "?action__exact=2", "?q=1.2.826.0.1.3680043.10.1.7"):
        big = _list_queries(alice, url + query, django_assert_max_num_queries)
        assert not [sql for sql in big if "COUNT(" in sql.upper()], big
        if not query:
            assert len(big) == len(small)
    html = admin_page(alice, f"{url}?p=2")
    sequences = list(ChangeFeedEntry.objects.order_by("-sequence").values_list("sequence", flat=True)[50:100])
    assert feed_sequences(html) == sequences
    assert "50 change feed entries on this page; more follow" in html
    last = admin_page(alice, f"{url}?p=200")
    assert "more follow" not in last
    past = admin_page(alice, f"{url}?p=201")  # past the end: said on the page, not a redirect to ?e=1
    assert "There is no page 201 of this list" in past and feed_sequences(past) == []


# --- partitions ---------------------------------------------------------------------------


def test_partition_list_counts_studies_instances_and_size(alice, settings):
    settings.DICOM_ENABLE_DATA_PARTITIONS = True
    study = dicom_bytes()
    (a,) = store(study, partition="alpha")
    (b,) = store(dicom_bytes(StudyInstanceUID=a.study_instance_uid), partition="alpha")
    (c,) = store(partition="alpha")
    store(study, partition="beta")
    (gone,) = store(partition="beta")
    delete(gone)
    updated = update(a, **{"00100020": "NEW"})
    Instance.objects.filter(pk=updated.pk).update(original_file_size=1000)
    html = admin_page(alice, changelist("partitions.partition"))
    alpha = Partition.objects.get(partition_name="alpha")
    row = html.split(f">{alpha.pk}</a></th>")[1].split("</tr>")[0]
    cells = re.findall(r'<td class="field-(\w+)[^"]*">(.*?)</td>', row)
    values = {name: re.sub("<[^>]+>", "", value).replace("\xa0", " ") for name, value in cells}
    total = sum(i.file_size for i in (a, b, c)) + 1000
    assert values == {
        "partition_name": "alpha", "created_date": values["created_date"], "studies": "2", "instances": "3",
        "stored_size": f"{total / 1024:.1f} KB",
    }
    assert f"?partition__partition_key__exact={alpha.pk}" in row


# --- studies, series, instances -----------------------------------------------------------


def test_study_list_counts_search_and_detail(alice):
    data = dicom_bytes(PatientID="PID-42")
    (first,) = store(data)
    (second,) = store(dicom_bytes(StudyInstanceUID=first.study_instance_uid, PatientID="PID-42"))
    (other,) = store(dicom_bytes(PatientID="PID-7"))
    url = changelist("studies.study")
    html = admin_page(alice, url)
    assert first.study_instance_uid in html and other.study_instance_uid in html
    row = html.split(f'data-uid="{first.study_instance_uid}"')[0].rsplit("<tr", 1)[1]
    assert f'<td class="field-series_count"><a href="/admin/studies/series/?study__id__exact={first.study_id}">2</a>' in row
    assert f'<td class="field-instance_count"><a href="/admin/studies/instance/?study__id__exact={first.study_id}">2</a>' in row

    for term in ("PID-42", first.study_instance_uid):
        found = admin_page(alice, f"{url}?q={term}")
        assert first.study_instance_uid in found and other.study_instance_uid not in found
    assert other.study_instance_uid not in admin_page(alice, f"{url}?q=PID-4")  # exact, not a prefix

    detail = admin_page(alice, change("studies.study", first.study_id))
    for instance in (first, second):
        assert change("studies.series", instance.series_id) in detail and instance.series_instance_uid in detail
    assert f"?study__id__exact={first.study_id}" in detail


def test_series_and_instance_lists_search_and_filter(alice):
    (first,) = store(dicom_bytes(PatientID="PID-S"))
    (sibling,) = store(dicom_bytes(
        StudyInstanceUID=first.study_instance_uid, SeriesInstanceUID=first.series_instance_uid, PatientID="PID-S"
    ))
    (other,) = store()
    series_url, instance_url = changelist("studies.series"), changelist("studies.instance")

    html = admin_page(alice, f"{series_url}?q=PID-S")
    assert first.series_instance_uid in html and other.series_instance_uid not in html
    html = admin_page(alice, f"{series_url}?q={first.study_instance_uid}")
    assert first.series_instance_uid in html and other.series_instance_uid not in html
    assert f'<td class="field-instance_count"><a href="/admin/studies/instance/?series__id__exact={first.series_id}">2</a>' in html

    for query in (f"series__id__exact={first.series_id}", f"q={first.series_instance_uid}",
                  f"q={first.study_instance_uid}", "q=PID-S"):
        html = admin_page(alice, f"{instance_url}?{query}")
        assert first.sop_instance_uid in html and sibling.sop_instance_uid in html, query
        assert other.sop_instance_uid not in html, query
    html = admin_page(alice, f"{instance_url}?q={sibling.sop_instance_uid}")
    assert sibling.sop_instance_uid in html and first.sop_instance_uid not in html
    admin_page(alice, change("studies.series", first.series_id))


def test_instance_detail_renders_attributes_and_downloads_the_stored_file(bob):
    (instance,) = store(dicom_bytes(PatientID="ATTR-1"))
    html = admin_page(bob, change("studies.instance", instance.pk))
    table = html.split('class="dicom-attributes"')[1].split("</table>")[0]
    assert re.search(r'<td class="tag">\(0010,0020\)</td>\s*<td[^>]*>PatientID</td>\s*<td class="vr">LO</td>\s*'
                     r'<td class="value">ATTR-1</td>', table)
    assert re.search(r"\(0010,0010\)</td>\s*<td[^>]*>PatientName</td>\s*<td class=\"vr\">PN</td>", table)
    assert "1.2.840.10008.1.2.1 (Explicit VR Little Endian)" in html
    assert "CT Image Storage" in html
    download = reverse("admin:studies_instance_download", args=[instance.pk])
    assert download in html

    response = bob.get(download)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom"
    assert response["Content-Disposition"] == f'attachment; filename="{instance.sop_instance_uid}.dcm"'
    with blob_open(name=blob_name(partition_key=instance.partition_id, watermark=instance.watermark)) as blob:
        assert response_bytes(response) == blob.read()
    assert int(response["Content-Length"]) == instance.file_size


def test_instance_download_after_update_offers_the_original(bob):
    (instance,) = store()
    updated = update(instance, **{"00100020": "NEW"})
    # The update helper writes rows only; give the new version a file as the bulk update would.
    new_bytes = dicom_bytes(PatientID="NEW")
    blob_write(name=blob_name(partition_key=updated.partition_id, watermark=updated.watermark),
               stream=io.BytesIO(new_bytes), size=len(new_bytes))
    Instance.objects.filter(pk=updated.pk).update(file_size=len(new_bytes), original_file_size=instance.file_size)
    html = admin_page(bob, change("studies.instance", instance.pk))
    download = reverse("admin:studies_instance_download", args=[instance.pk])
    assert f"{download}?version=original" in html
    assert response_bytes(bob.get(download)) == new_bytes
    with blob_open(name=blob_name(partition_key=instance.partition_id, watermark=instance.watermark)) as blob:
        assert response_bytes(bob.get(f"{download}?version=original")) == blob.read()


def test_study_and_instance_lists_run_a_bounded_number_of_queries(alice, django_assert_max_num_queries):
    for _ in range(3):
        store()
    for model in ("studies.study", "studies.series", "studies.instance", "partitions.partition"):
        with django_assert_max_num_queries(6) as captured:
            admin_page(alice, changelist(model))
        counts = [q["sql"] for q in captured.captured_queries if "COUNT(" in q["sql"].upper()]
        assert model == "partitions.partition" or not counts, counts
    assert Study.objects.count() == 3 and Series.objects.count() == 3


# --- operations ---------------------------------------------------------------------------


def test_operations_list_and_detail(carol):
    running = Operation.objects.create(type=OperationType.EXPORT, status=OperationStatus.RUNNING, percent_complete=40)
    failed = Operation.objects.create(
        type=OperationType.UPDATE, status=OperationStatus.FAILED, percent_complete=75,
        results={"instanceUpdated": 3, "studyFailed": 1}, errors=["Study 1.2.3 could not be updated."],
    )
    url = changelist("operations.operation")
    html = admin_page(carol, url)
    assert str(running.pk) in html and str(failed.pk) in html
    assert 'aria-valuenow="40"' in html and 'style="width: 40%"' in html
    assert 'class="progress failed"' in html
    html = admin_page(carol, f"{url}?status__exact=failed")
    assert str(failed.pk) in html and str(running.pk) not in html
    html = admin_page(carol, f"{url}?type__exact=export")
    assert str(running.pk) in html and str(failed.pk) not in html
    html = admin_page(carol, f"{url}?q={running.pk.hex}")
    assert str(running.pk) in html and str(failed.pk) not in html
    assert str(running.pk) not in admin_page(carol, f"{url}?q=not-an-id")

    detail = admin_page(carol, change("operations.operation", failed.pk))
    assert "&quot;instanceUpdated&quot;: 3" in detail
    assert "Study 1.2.3 could not be updated." in detail
    assert 'name="_save"' not in detail


def test_workitem_list_filters_searches_and_shows_the_dataset_read_only(bob):
    api = Client()
    jane = new_workitem(PatientName="Doe^Jane", PatientID="P-JANE")
    ups(api, "POST", "", jane)
    ups(api, "POST", "", new_workitem(PatientName="Roe^Rick", PatientID="P-RICK"))
    uid = first_value(jane, "SOPInstanceUID")
    assert ups(api, "PUT", f"/{uid}/state", state_change("IN PROGRESS", "1.2.3.4")).status_code == 200

    html = admin_page(bob, changelist("workitems.workitem"))
    assert "Doe^Jane" in html and "Roe^Rick" in html and "2026-01-05 09:30:00" in html
    html = admin_page(bob, changelist("workitems.workitem") + "?state__exact=IN+PROGRESS")
    assert "Doe^Jane" in html and "Roe^Rick" not in html
    html = admin_page(bob, changelist("workitems.workitem") + "?q=P-RICK")
    assert "Roe^Rick" in html and "Doe^Jane" not in html

    workitem = Workitem.objects.get(workitem_uid=uid)
    html = admin_page(bob, change("workitems.workitem", workitem.pk))
    table = html.split('class="dicom-attributes"')[1].split("</table>")[0]
    assert "ScheduledProcedureStepStartDateTime" in table and "20260105093000" in table
    assert "IN PROGRESS" in table and "1.2.3.4" not in html  # the transaction UID is never shown
    study_search = f"{changelist('studies.study')}?q=1.2.826.0.1.3680043.8.498.1"
    assert f'<a href="{study_search}">1.2.826.0.1.3680043.8.498.1</a>' in html
    assert 'name="_save"' not in html
    assert bob.post(change("workitems.workitem", workitem.pk), {}).status_code == 403
    assert bob.get(reverse("admin:workitems_workitem_delete", args=[workitem.pk])).status_code == 403
