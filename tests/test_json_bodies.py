"""JSON request bodies holding a NUL character (U+0000) are refused whole, on every JSON route.

PostgreSQL refuses a NUL in text and in jsonb, so these bodies were answers of 500 there (a
workitem's PatientID, a private creator, a bulk update's trailing-NUL value, which passes the
DICOM padding rule) while SQLite stored them.
"""

from __future__ import annotations

import json

import pytest

from dicomsvc.api.json_body import json_nul_refuse
from dicomsvc.errors import BadRequest
from operations.models import Operation
from studies.eqt.models import ExtendedQueryTag
from studies.workitems.models import Workitem
from tests.helpers import DICOM_JSON, new_workitem, store

pytestmark = pytest.mark.django_db

NUL = "The request body holds a NUL character (\\u0000), which no value may contain."


def _bodies(study: str) -> dict[str, tuple[str, object, str]]:
    """route -> (URL, body, Content-Type), each with one NUL somewhere."""
    return {
        "export path": ("/v2/export", {
            "source": {"type": "identifiers", "settings": {"values": [study]}},
            "destination": {"type": "filesystem", "settings": {"path": "/tmp/out\x00"}},
        }, "application/json"),
        "export key": ("/v2/export", {
            "source": {"type": "identifiers", "settings": {"values": [study]}, "x\x00": 1},
            "destination": {"type": "filesystem", "settings": {"path": "/tmp/out"}},
        }, "application/json"),
        "bulk update": ("/v2/studies/$bulkUpdate", {
            "studyInstanceUids": [study], "changeDataset": {"00100020": {"vr": "LO", "Value": ["PID\x00"]}},
        }, "application/json"),
        "extended query tag": ("/v2/extendedquerytags", [
            {"path": "00091001", "level": "Instance", "vr": "SH", "privateCreator": "Creator\x00"},
        ], "application/json"),
        "workitem": ("/v2/workitems", [new_workitem(PatientID="P\x00")], DICOM_JSON),
    }  # fmt: skip


@pytest.mark.parametrize("route", ["export path", "export key", "bulk update", "extended query tag", "workitem"])
def test_a_body_holding_a_nul_is_refused_whole_and_nothing_is_created(client, route):
    study = store()[0].study_instance_uid
    url, body, content_type = _bodies(study)[route]

    response = client.post(url, data=json.dumps(body), content_type=content_type, HTTP_ACCEPT="*/*")

    assert (response.status_code, response.content.decode()) == (400, NUL)
    assert not Operation.objects.exists()
    assert not ExtendedQueryTag.objects.exists()
    assert not Workitem.objects.exists()


def test_the_rule_finds_a_nul_in_keys_and_deep_inside_without_recursion():
    deep: object = "x\x00"
    for _ in range(100_000):
        deep = [deep]
    for data in ({"a\x00": 1}, [{"a": [1, {"b": "c\x00"}]}], deep):
        with pytest.raises(BadRequest) as raised:
            json_nul_refuse(data)
        assert raised.value.message == NUL
    json_nul_refuse({"a": [1, 2.5, None, True, {"b": "\\u0000 as text"}]})  # an escaped backslash is no NUL
