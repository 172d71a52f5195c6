"""The admin in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`)
driven by Selenium against a real uvicorn server. Skipped, saying why, only where no
Chromium or chromedriver is installed."""

from __future__ import annotations

import io
import shutil
import urllib.request
import zipfile

import pytest
from django.contrib.auth.models import User

from operations.models import Operation, OperationStatus, OperationType
from tests.helpers import dicom_bytes, live_server, multipart_body

# Serialized like the other transactional suites before it: a plain flush would leave the
# content types post_migrate recreates, which the next serialized test cannot load again.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="no Chromium here: install Debian's chromium and chromium-driver to run the admin's browser test",
)


def _stow(base: str, files: list[bytes]) -> None:
    request = urllib.request.Request(
        f"{base}/v2/studies", data=multipart_body(files), method="POST",
        headers={"Content-Type": 'multipart/related; type="application/dicom"; boundary=XBOUNDARYX',
                 "Accept": "application/dicom+json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


@needs_chromium
def test_administrator_finds_a_patient_sees_the_image_and_opens_an_operation(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    User.objects.create_user("alice", password="pw-alice", is_staff=True, is_superuser=True)
    operation = Operation.objects.create(
        type=OperationType.EXPORT, status=OperationStatus.FAILED, percent_complete=40,
        errors=["The export destination cannot be written: disk full"],
    )
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,900"):
        options.add_argument(argument)
    with live_server(tmp_path) as base:
        _stow(base, [dicom_bytes(PatientName="DOE^JOHN", PatientID="BROWSER-1"),
                     dicom_bytes(PatientName="ROE^RICHARD", PatientID="BROWSER-2")])
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            wait = WebDriverWait(driver, 20)
            driver.get(f"{base}/admin/login/?next=/admin/")
            driver.find_element(By.NAME, "username").send_keys("alice")
            driver.find_element(By.NAME, "password").send_keys("pw-alice")
            driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
            wait.until(expected_conditions.presence_of_element_located((By.ID, "operations")))
            assert "disk full" in driver.find_element(By.ID, "operations").text

            # Search a patient by part of the name, as QIDO's fuzzy matching does.
            driver.get(f"{base}/admin/studies/study/")
            field = driver.find_element(By.NAME, "patient_name")
            field.send_keys("jo do")
            driver.find_element(By.CSS_SELECTOR, "#study-search input[type=submit]").click()
            wait.until(expected_conditions.url_contains("patient_name="))
            rows = driver.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
            assert [row.find_element(By.CSS_SELECTOR, ".field-patient_id").text for row in rows] == ["BROWSER-1"]
            # No list scrolls sideways at 1400 px.
            assert driver.execute_script(
                "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
            )

            # Open the study: its series thumbnail is a rendered image.
            rows[0].find_element(By.CSS_SELECTOR, ".field-patient a").click()
            image = wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "img.thumb")))
            driver.execute_script("arguments[0].scrollIntoView()", image)
            wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image))
            assert driver.execute_script("return arguments[0].naturalWidth", image) == 128

            # The study's ZIP, streamed by the real ASGI server, holds its one file.
            link = driver.find_element(By.LINK_TEXT, "Download ZIP").get_attribute("href")
            cookie = driver.get_cookie("sessionid")["value"]
            request = urllib.request.Request(link, headers={"Cookie": f"sessionid={cookie}"})
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.headers["Content-Type"] == "application/zip"
                names = zipfile.ZipFile(io.BytesIO(response.read())).namelist()
            assert len(names) == 1 and names[0].endswith(".dcm")

            # No list scrolls sideways at 1400 px.
            for model in ("studies/series", "studies/instance", "changefeed/changefeedentry",
                          "operations/operation", "partitions/partition"):
                driver.get(f"{base}/admin/{model}/")
                assert driver.execute_script(
                    "return document.documentElement.scrollWidth <= document.documentElement.clientWidth"
                ), model

            # Open the operation: where and why it failed.
            driver.get(f"{base}/admin/operations/operation/{operation.pk}/change/")
            body = driver.find_element(By.TAG_NAME, "body").text
            assert "failed at 40 %" in body and "disk full" in body
        finally:
            driver.quit()
