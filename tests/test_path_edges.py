"""Hostile path segments: over-long frame numbers, anything after a UID, `.` and `..` as partitions.

Each of these once reached Python's own limits (int() of a 4,300-digit number) or was let
through as DICOM padding; every one must be a 400 naming the bad value, never a 500 and
never a second address for an instance."""

from __future__ import annotations

import pytest

from partitions.models import Partition
from studies.models import Instance
from tests.helpers import dicom_bytes, instance_url, store, stow, uids_of

pytestmark = pytest.mark.django_db

INVALID_FRAMES = (
    "The specified frames value is not valid. At least one frame must be present, "
    "and all requested frames must have value greater than 0."
)
OCTET_ORIGINAL = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'


@pytest.mark.parametrize("frames", ["1" * 4301, "1,1" + "0" * 5000, "9" * 11, "\u00b2", "\u0661", " 1 ,"])
@pytest.mark.parametrize("rendered", [False, True])
def test_frame_numbers_out_of_bounds_are_400(client, frames, rendered):
    data = dicom_bytes("SC_rgb_rle_2frame.dcm")
    store(data)
    url = f"{instance_url(data)}/frames/{frames}" + ("/rendered" if rendered else "")
    response = client.get(url, HTTP_ACCEPT="image/jpeg" if rendered else OCTET_ORIGINAL)
    assert (response.status_code, response.content.decode()) == (400, INVALID_FRAMES)


def test_ten_digit_frame_number_is_a_missing_frame(client):
    data = dicom_bytes("SC_rgb_rle_2frame.dcm")
    store(data)
    response = client.get(f"{instance_url(data)}/frames/9999999999", HTTP_ACCEPT=OCTET_ORIGINAL)
    assert (response.status_code, response.content.decode()) == (404, "The specified frame cannot be found.")


@pytest.mark.parametrize("suffix", ["%00", "%20", "%00%00", "%0A", "x"])
def test_anything_after_a_uid_in_the_path_is_400(client, suffix):
    data = dicom_bytes()
    store(data)
    study, series, sop = uids_of(data)
    urls = {
        "StudyInstanceUID": [
            f"/v2/studies/{study}{suffix}",
            f"/v2/studies/{study}{suffix}/metadata",
            f"/v2/studies/{study}{suffix}/series",
            f"/v2/studies/{study}{suffix}/instances",
        ],
        "SeriesInstanceUID": [
            f"/v2/studies/{study}/series/{series}{suffix}",
            f"/v2/studies/{study}/series/{series}{suffix}/instances",
        ],
        "SOPInstanceUID": [
            f"/v2/studies/{study}/series/{series}/instances/{sop}{suffix}",
            f"/v2/studies/{study}/series/{series}/instances/{sop}{suffix}/frames/1",
            f"/v2/studies/{study}/series/{series}/instances/{sop}{suffix}/rendered",
        ],
    }
    for name, paths in urls.items():
        for path in paths:
            response = client.get(path, HTTP_ACCEPT="*/*")
            assert response.status_code == 400, path
            assert response.content.decode().startswith(f"The specified {name} '"), path
    assert client.delete(f"/v2/studies/{study}{suffix}").status_code == 400
    response = stow(client, [dicom_bytes(StudyInstanceUID=study)], url=f"/v2/studies/{study}{suffix}")
    assert response.status_code == 400
    assert Instance.objects.filter(study_instance_uid=study).count() == 1


@pytest.mark.parametrize("name", [".", ".."])
def test_dot_partition_names_are_refused(client, partitions_on, name):
    response = stow(client, [dicom_bytes()], url=f"/v2/partitions/{name}/studies")
    assert response.status_code == 400
    assert response.content.decode().startswith(f"The specified PartitionName '{name}' is invalid.")
    assert not Partition.objects.filter(partition_name=name).exists()
    assert not Instance.objects.exists()


def test_names_with_dots_inside_remain_valid(client, partitions_on):
    response = stow(client, [dicom_bytes()], url="/v2/partitions/a..b/studies")
    assert response.status_code == 200
    assert Partition.objects.filter(partition_name="a..b").exists()
    response = client.get("/v2/partitions/.../studies", HTTP_ACCEPT="application/dicom+json")
    assert response.content.decode() == "Specified PartitionName ... does not exist."


