"""Entry states are derived from the live instance: current, replaced, deleted."""

from __future__ import annotations

import json

import pytest

from changefeed.models import ChangeAction, ChangeFeedEntry, ChangeState
from changefeed.selectors import changefeed_queryset, changefeed_state_q
from studies.dicom.bulkdata import bulkdata_uris_resolve
from studies.models import Instance, InstanceStatus
from tests.helpers import delete, dicom_bytes, instance_url, response_bytes, store, update

pytestmark = pytest.mark.django_db


def api_feed(client) -> list[dict]:  # noqa: ANN001
    response = client.get("/v2/changefeed?limit=200")
    assert response.status_code == 200
    return json.loads(response_bytes(response))


def actions_and_states(client) -> list[tuple[str, str]]:  # noqa: ANN001
    return [(e["action"], e["state"]) for e in api_feed(client)]


def test_create_delete_create_reads_replaced_replaced_current(client):
    data = dicom_bytes(PatientID="FIRST")
    (first,) = store(data)
    assert actions_and_states(client) == [("create", "current")]
    delete(first)
    assert actions_and_states(client) == [("create", "deleted"), ("delete", "deleted")]
    (second,) = store(data.replace(b"FIRST", b"AGAIN"))
    assert second.sop_instance_uid == first.sop_instance_uid
    assert second.watermark != first.watermark
    entries = api_feed(client)
    assert [(e["action"], e["state"]) for e in entries] == [
        ("create", "replaced"),
        ("delete", "replaced"),
        ("create", "current"),
    ]
    # Every entry of a SOP that still exists carries the *current* version's metadata.
    assert [e["metadata"]["00100020"]["Value"] for e in entries] == [["AGAIN"]] * 3
    served = bulkdata_uris_resolve(second.metadata, instance_url=f"http://127.0.0.1:8000{instance_url(data)}")
    assert all(e["metadata"] == json.loads(served) for e in entries)


def test_create_update_delete(client):
    (instance,) = store(dicom_bytes(PatientID="BEFORE"))
    assert actions_and_states(client) == [("create", "current")]

    updated = update(instance, **{"00100020": "AFTER"})
    assert updated.watermark != instance.watermark
    assert updated.original_watermark == instance.watermark
    entries = api_feed(client)
    assert [(e["action"], e["state"]) for e in entries] == [("create", "replaced"), ("update", "current")]
    assert [e["metadata"]["00100020"]["Value"] for e in entries] == [["AFTER"], ["AFTER"]]

    update(updated, **{"00100020": "AGAIN"})
    assert actions_and_states(client) == [("create", "replaced"), ("update", "replaced"), ("update", "current")]

    delete(updated)
    entries = api_feed(client)
    assert [(e["action"], e["state"]) for e in entries] == [
        ("create", "deleted"),
        ("update", "deleted"),
        ("update", "deleted"),
        ("delete", "deleted"),
    ]
    assert not any("metadata" in e for e in entries)
    # The delete entry describes the version that was deleted (the latest update).
    delete_row = ChangeFeedEntry.objects.get(action=ChangeAction.DELETE)
    assert delete_row.watermark == ChangeFeedEntry.objects.filter(action=ChangeAction.UPDATE).last().watermark


def test_states_are_per_instance_and_per_partition(client, settings):
    settings.DICOM_ENABLE_DATA_PARTITIONS = True
    data = dicom_bytes()
    (in_alpha,) = store(data, partition="alpha")
    (in_beta,) = store(data, partition="beta")
    (neighbour,) = store(dicom_bytes(), partition="alpha")
    delete(in_alpha)
    states = {(e["partitionName"], e["sopInstanceUid"], e["action"]): e["state"] for e in api_feed(client)}
    assert states == {
        ("alpha", in_alpha.sop_instance_uid, "create"): "deleted",
        ("alpha", in_alpha.sop_instance_uid, "delete"): "deleted",
        ("beta", in_beta.sop_instance_uid, "create"): "current",
        ("alpha", neighbour.sop_instance_uid, "create"): "current",
    }


def test_an_instance_being_stored_again_does_not_count_as_live(client):
    (instance,) = store()
    delete(instance)
    # A new STOW of the same UIDs has reserved its row but not yet committed it.
    Instance.objects.create(
        partition_id=instance.partition_id,
        study_id=store()[0].study_id,
        series_id=store()[0].series_id,
        study_instance_uid=instance.study_instance_uid,
        series_instance_uid=instance.series_instance_uid,
        sop_instance_uid=instance.sop_instance_uid,
        status=InstanceStatus.CREATING,
        watermark=instance.watermark + 1000,
        metadata='{"00100020": {"vr": "LO", "Value": ["HALF-WRITTEN"]}}',
    )
    entries = [e for e in api_feed(client) if e["sopInstanceUid"] == instance.sop_instance_uid]
    assert [(e["action"], e["state"]) for e in entries] == [("create", "deleted"), ("delete", "deleted")]
    assert not any("metadata" in e for e in entries)


def test_state_is_filterable_in_sql():
    (kept,) = store()
    (gone,) = store()
    (replaced,) = store()
    delete(gone)
    update(replaced, **{"00100020": "NEW"})
    by_state = {
        state.value: sorted(changefeed_queryset().filter(state=state).values_list("sop_instance_uid", "action"))
        for state in ChangeState
    }
    # The cheaper filters select exactly what the annotation says.
    for state in ChangeState:
        filtered = changefeed_queryset().filter(changefeed_state_q(state=state))
        assert sorted(filtered.values_list("sop_instance_uid", "action")) == by_state[state.value]
    assert by_state == {
        "current": sorted([(kept.sop_instance_uid, 0), (replaced.sop_instance_uid, 2)]),
        "replaced": [(replaced.sop_instance_uid, 0)],
        "deleted": sorted([(gone.sop_instance_uid, 0), (gone.sop_instance_uid, 1)]),
    }
