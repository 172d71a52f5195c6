"""The fast JSON helpers of QIDO agree with the standard library, and fall back where orjson refuses."""

from __future__ import annotations

import json
import math

import orjson

from studies.dicom.dicomjson import json_dumps, json_dumps_fast, json_loads_fast


def test_round_trip_matches_the_standard_library():
    data = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Müller^Jürgen", "Ideographic": "山田^太郎"}]},
            "00180050": {"vr": "DS", "Value": [0.5, 1e-05, -2000.0]}, "00280010": {"vr": "US", "Value": [512]}}  # fmt: skip
    text = json_dumps(data)
    assert json_loads_fast(text) == json.loads(text) == data
    assert json.loads(json_dumps_fast(data)) == data


def test_non_finite_floats_and_huge_integers_fall_back():
    # What the store path writes for a DS of 1e400: valid JSON, not Python's Infinity.
    stored = json_dumps({"00281052": {"vr": "DS", "Value": [float("inf")]}})
    assert stored == '{"00281052":{"vr":"DS","Value":[null]}}'
    # Documents stored before orjson may hold Infinity; they still load.
    legacy = json.dumps({"00281052": {"vr": "DS", "Value": [float("inf")]}})
    assert "Infinity" in legacy
    loaded = json_loads_fast(legacy)
    assert math.isinf(loaded["00281052"]["Value"][0])
    assert json.loads(json_dumps_fast(loaded)) == {"00281052": {"vr": "DS", "Value": [None]}}

    huge = {"00200013": {"vr": "IS", "Value": [10**30]}}
    assert json.loads(json_dumps_fast(huge)) == huge


def test_replayed_json_text_is_written_as_it_is_beside_a_huge_integer():
    # A header replayed from the group cache holds orjson fragments; the fallback for a value
    # orjson refuses writes everything else piece by piece, fragments included, and infinity
    # as null like orjson.
    name = {"vr": "PN", "Value": [{"Alphabetic": "Müller^J"}]}
    data = {
        "00100010": orjson.Fragment(orjson.dumps(name)),
        "00200013": {"vr": "IS", "Value": [10**30]},
        "00281052": {"vr": "DS", "Value": [float("inf")]},
    }
    text = json_dumps(data)
    assert json.loads(text) == {"00100010": name, "00200013": {"vr": "IS", "Value": [10**30]},
                                "00281052": {"vr": "DS", "Value": [None]}}  # fmt: skip
    assert list(json.loads(text)) == ["00100010", "00200013", "00281052"]


def test_result_dataset_picks_the_wanted_top_level_attributes():
    from studies.search.results import result_dataset

    nested = {"vr": "SQ", "Value": [{"00080100": {"vr": "SH", "Value": ["C"]}, "0040A124": {"vr": "UI"}}]}
    document = {
        "00080020": {"vr": "DA", "Value": ["20240102"]},
        "00081032": nested,  # a sequence whose items hold other keys
        "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John"}]},
        "0020000D": {"vr": "UI", "Value": ["1.2.3"]},
        "00280010": {"vr": "US", "Value": [512]},
    }
    text = json_dumps(document)
    for keys in (["00080020"], ["00080020", "00100010"], ["00100010", "0020000D"], ["00080020", "00081032"],
                 ["0020000D", "00280010"], ["00080050", "00100010"]):  # fmt: skip
        expected = {key: document[key] for key in keys if key in document}
        assert result_dataset(metadata=text, keys=keys, computed={}) == expected
    # A document not in tag order: still found.
    unordered = json_dumps({"00280010": document["00280010"], "00080020": document["00080020"]})
    assert result_dataset(metadata=unordered, keys=["00080020"], computed={}) == {"00080020": document["00080020"]}
