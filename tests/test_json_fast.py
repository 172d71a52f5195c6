"""The fast JSON helpers of QIDO agree with the standard library, and fall back where orjson refuses."""

from __future__ import annotations

import json
import math

from studies.dicom.dicomjson import json_dumps, json_dumps_fast, json_loads_fast


def test_round_trip_matches_the_standard_library():
    data = {"00100010": {"vr": "PN", "Value": [{"Alphabetic": "Müller^Jürgen", "Ideographic": "山田^太郎"}]},
            "00180050": {"vr": "DS", "Value": [0.5, 1e-05, -2000.0]}, "00280010": {"vr": "US", "Value": [512]}}  # fmt: skip
    text = json_dumps(data)
    assert json_loads_fast(text) == json.loads(text) == data
    assert json.loads(json_dumps_fast(data)) == data


def test_non_finite_floats_and_huge_integers_fall_back():
    stored = json_dumps({"00281052": {"vr": "DS", "Value": [float("inf")]}})  # what the store path writes for 1e400
    assert "Infinity" in stored
    loaded = json_loads_fast(stored)
    assert math.isinf(loaded["00281052"]["Value"][0])
    assert json.loads(json_dumps_fast(loaded)) == {"00281052": {"vr": "DS", "Value": [None]}}

    huge = {"00200013": {"vr": "IS", "Value": [10**30]}}
    assert json.loads(json_dumps_fast(huge)) == huge
