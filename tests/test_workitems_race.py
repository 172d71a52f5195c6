"""Two performers claim one workitem at the same moment: exactly one owns it, the other gets 409."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection

from dicomsvc.errors import WorkitemChanged
from partitions.services import partition_default
from studies.workitems import services
from studies.workitems.dataset import body_dataset
from studies.workitems.models import Workitem
from tests.helpers import first_value, new_workitem, state_change

PERFORMERS = ("1.2.826.0.1.3680043.8.498.1001", "1.2.826.0.1.3680043.8.498.1002")


@pytest.mark.django_db(transaction=True)
def test_two_racing_claims_exactly_one_wins(monkeypatch) -> None:  # noqa: ANN001
    workitem = new_workitem()
    uid = first_value(workitem, "SOPInstanceUID")
    services.workitem_create(partition=partition_default(), dataset=workitem, query_uid=None, worklist="W")

    # Both performers read the SCHEDULED workitem before either writes.
    read = services.workitem_get
    both_read = threading.Barrier(len(PERFORMERS))

    def read_then_wait(**kwargs):  # noqa: ANN003, ANN202
        found = read(**kwargs)
        both_read.wait(timeout=30)
        return found

    monkeypatch.setattr(services, "workitem_get", read_then_wait)
    outcomes: dict[str, str] = {}

    def claim(transaction_uid: str) -> None:
        try:
            body = body_dataset(body=json.dumps([state_change("IN PROGRESS", transaction_uid)]).encode())
            services.workitem_state_change(partition=partition_default(), uid=uid, dataset=body)
            outcomes[transaction_uid] = "claimed"
        except WorkitemChanged as conflict:
            outcomes[transaction_uid] = f"{conflict.status_code} {conflict.message}"
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(performer,)) for performer in PERFORMERS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    row = Workitem.objects.get(workitem_uid=uid)
    assert row.state == "IN PROGRESS"
    assert row.version == 2  # one write, not two
    assert outcomes[row.transaction_uid] == "claimed"
    (loser,) = set(PERFORMERS) - {row.transaction_uid}
    assert outcomes[loser] == "409 The workitem was changed by another request at the same time. Retry the request."
