"""A real viewer against a real server: OHIF (npm `@ohif/viewer`) in headless Chromium, from another origin.

The viewer's page is served on its own loopback port, the API on another, so every API request
crosses origins (CORS). The viewer lists the stored studies and draws an image of each; the
browser's network log must hold no failed request.
"""

from __future__ import annotations

import time
import urllib.request

import pytest

from tests.helpers import MULTIPART_DICOM, dicom_bytes, free_port, live_server, multipart_body, uids_of
from tests.helpers.browser import (
    CANVAS_PIXELS_JS,
    NetworkLog,
    browser_missing,
    chromium,
    ohif_bundle,
    viewer_server,
)

pytestmark = [
    # Serialized rollback, as the other live-server tests that run before serialized ones: a plain
    # flush re-creates content types under new ids, which the next serialized test then collides with.
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(browser_missing() is not None, reason=f"OHIF browser test: {browser_missing()}"),
]

# One study per kind a viewer meets: CT, MR, colour JPEG baseline, JPEG 2000, a 30-frame JPEG ultrasound.
SAMPLES = {
    "OHIF-CT": "CT_small.dcm",
    "OHIF-MR": "MR_small.dcm",
    "OHIF-RGB-JPEG": "SC_rgb_jpeg_dcmtk.dcm",
    "OHIF-J2K": "JPEG2000.dcm",
    "OHIF-US-30F": "examples_ybr_color.dcm",
}


def wait_for(condition, timeout: float = 45.0):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.25)


def test_ohif_lists_the_studies_and_draws_each(tmp_path):
    bundle = ohif_bundle()
    files = {patient: dicom_bytes(name, PatientID=patient) for patient, name in SAMPLES.items()}
    viewer_port = free_port()
    origin = f"http://127.0.0.1:{viewer_port}"
    with live_server(tmp_path, DICOM_CORS_ALLOWED_ORIGINS=origin) as api:
        request = urllib.request.Request(
            f"{api}/v2/studies", data=multipart_body(list(files.values())),
            headers={"Content-Type": MULTIPART_DICOM, "Accept": "application/dicom+json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200

        with viewer_server(bundle, f"{api}/v2", port=viewer_port) as viewer, chromium() as driver:
            log = NetworkLog(driver)
            driver.get(viewer)
            listed = wait_for(lambda: all(p in driver.find_element("tag name", "body").text for p in files))
            assert listed, driver.find_element("tag name", "body").text
            # Every request the page sent has ended before it is judged: none is left unchecked.
            assert wait_for(lambda: log.read().idle), log.open
            assert any(url.startswith(f"{api}/v2/studies?") for url in log.answered)
            assert log.failures == []

            for patient, data in files.items():
                log.read().clear()
                driver.get(f"{viewer}/viewer/{uids_of(data)[0]}")
                lit = wait_for(lambda: driver.execute_script(CANVAS_PIXELS_JS) > 1000)
                assert lit, f"{patient}: the viewport stayed blank"
                assert wait_for(lambda: log.read().idle), (patient, log.open)
                assert any("/frames/" in url for url in log.answered), patient
                assert log.failures == [], patient
