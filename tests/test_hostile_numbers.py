"""Numbers a client writes (frames, quality, viewport, WADO-URI sizes, paging) are 400s when they
are no plain number, never 500s.

Python's str.isdigit() takes '²' (which int() refuses) and int() refuses more than 4,300
digits: both reached int() on these routes, found by `make drill`'s path fuzzing.
"""

from __future__ import annotations

import urllib.parse

import pytest

from studies.dicom.viewport import VIEWPORT_ERROR
from studies.views.rendered import QUALITY_ERROR
from tests.helpers import store

pytestmark = pytest.mark.django_db

HUGE = "1" * 4301
SUPERSCRIPT_TWO = "\u00b2"
FRAMES = (
    "The specified frames value is not valid. At least one frame must be present, and all requested frames must have "
    "value greater than 0."
)


def _cases(base: str, wado: dict[str, str]) -> dict[str, tuple[str, dict[str, str], str]]:
    """name -> (path, query with {n} in a value, the 400's message with {n})."""
    return {
        "rendered quality": (f"{base}/rendered", {"quality": "{n}"}, QUALITY_ERROR),
        "thumbnail viewport": (f"{base}/thumbnail", {"viewport": "64,{n}"}, VIEWPORT_ERROR.format("64,{n}")),
        "frames": (f"{base}/frames/1,{{n}}", {}, FRAMES),
        "wado-uri frameNumber": ("/v2/wado", {**wado, "frameNumber": "{n}"},
                                 "The WADO-URI parameter 'frameNumber' must be a positive integer, not '{n}'."),
        "wado-uri rows": ("/v2/wado", {**wado, "rows": "{n}", "contentType": "image/jpeg"},
                          "The WADO-URI parameter 'rows' must be a positive integer, not '{n}'."),
        "wado-uri imageQuality": ("/v2/wado", {**wado, "imageQuality": "{n}", "contentType": "image/jpeg"},
                                  "The WADO-URI parameter 'imageQuality' must be a positive integer, not '{n}'."),
        "tag list offset": ("/v2/extendedquerytags", {"offset": "{n}"},
                            "The query parameter 'offset' is invalid. The value '{n}' is not valid for Offset."),
    }  # fmt: skip


@pytest.mark.parametrize("number", [HUGE, SUPERSCRIPT_TWO], ids=["4301 digits", "superscript two"])
@pytest.mark.parametrize(
    "case", ["rendered quality", "thumbnail viewport", "frames", "wado-uri frameNumber",
             "wado-uri rows", "wado-uri imageQuality", "tag list offset"],
)  # fmt: skip
def test_a_number_that_is_no_plain_number_is_a_400(client, case, number):
    instance = store()[0]
    uids = (instance.study_instance_uid, instance.series_instance_uid, instance.sop_instance_uid)
    base = "/v2/studies/{}/series/{}/instances/{}".format(*uids)
    wado = dict(zip(("studyUID", "seriesUID", "objectUID"), uids, strict=True), requestType="WADO")
    path, query, message = _cases(base, wado)[case]

    params = {key: value.replace("{n}", number) for key, value in query.items()}
    response = client.get(urllib.parse.quote(path.replace("{n}", number)), params, HTTP_ACCEPT="*/*")

    assert (response.status_code, response.content.decode()) == (400, message.replace("{n}", number))
