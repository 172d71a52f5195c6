"""Fixtures only: a fresh blob directory per test, an API client, data partitions on.

Factories and request helpers live in tests/helpers; tests import them from there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.storage import storages
from rest_framework.test import APIClient

from partitions.selectors import partition_cache_clear


@pytest.fixture(autouse=True)
def _isolated_storage(tmp_path: Path, settings):  # noqa: ANN001
    """Blobs of each test go to their own directory (or bucket prefix) and vanish with it."""
    if settings.DICOM_STORAGE_BACKEND == "local":
        settings.STORAGES = {
            **settings.STORAGES,
            "dicom": {
                "BACKEND": "studies.blobstore.DurableFileSystemStorage",
                "OPTIONS": {"location": str(tmp_path / "blobs")},
            },
        }
        storages._storages.pop("dicom", None)
        storages.backends = settings.STORAGES
    partition_cache_clear()
    yield
    storages._storages.pop("dicom", None)
    partition_cache_clear()


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def partitions_on(settings) -> None:  # noqa: ANN001
    """Data partitions enabled: partitioned routes need /partitions/{name}/."""
    settings.DICOM_ENABLE_DATA_PARTITIONS = True
