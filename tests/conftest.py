"""Fixtures only: a fresh blob directory per test, an API client, data partitions on.

Factories and request helpers live in tests/helpers; tests import them from there.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.storage import storages
from django.test import Client
from rest_framework.test import APIClient

from partitions.selectors import partition_get
from tests.helpers import admin_login


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
    partition_get.cache_clear()
    yield
    storages._storages.pop("dicom", None)
    partition_get.cache_clear()


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def partitions_on(settings) -> None:  # noqa: ANN001
    """Data partitions enabled: partitioned routes need /partitions/{name}/."""
    settings.DICOM_ENABLE_DATA_PARTITIONS = True


@pytest.fixture
def full_collections() -> Iterator[list[str]]:
    """A list that gets "release" each time a full garbage collection starts, as `malloc_release`
    does; automatic collection is off meanwhile, so only explicit collections are recorded."""
    seen: list[str] = []

    def record(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            seen.append("release")

    enabled = gc.isenabled()
    gc.disable()
    gc.callbacks.append(record)
    try:
        yield seen
    finally:
        gc.callbacks.remove(record)
        if enabled:
            gc.enable()


# Admin personas: alice is a superuser, bob in "DICOM administrators", carol in "Operations",
# dave is staff without a group, eve is not staff.
@pytest.fixture
def alice() -> Client:
    return admin_login("alice", superuser=True)


@pytest.fixture
def bob() -> Client:
    return admin_login("bob", group="DICOM administrators")


@pytest.fixture
def carol() -> Client:
    return admin_login("carol", group="Operations")


@pytest.fixture
def dave() -> Client:
    return admin_login("dave")


@pytest.fixture
def eve() -> Client:
    return admin_login("eve", staff=False)
