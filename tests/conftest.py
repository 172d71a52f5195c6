"""Fixtures only: a fresh blob directory per test, an API client, data partitions on.

Factories and request helpers live in tests/helpers; tests import them from there.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.files.storage import storages
from rest_framework.test import APIClient

from dicomsvc.api.roles import roles_parse
from partitions.selectors import partition_get
from tests.helpers import AUDIENCE, ROLES, LocalIssuer, local_issuer


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
def oidc() -> Iterator[LocalIssuer]:
    """A local OpenID Connect issuer on loopback (tests/helpers/oidc.py)."""
    with local_issuer() as issuer:
        yield issuer


@pytest.fixture
def auth_on(settings, oidc: LocalIssuer, tmp_path: Path) -> LocalIssuer:  # noqa: ANN001
    """Authentication on against `oidc`, the test roles file, and the audit log in a file of the test's."""
    settings.DICOM_AUTH_ENABLED = True
    settings.DICOM_AUTH_AUTHORITY = oidc.url
    settings.DICOM_AUTH_AUDIENCE = AUDIENCE
    settings.DICOM_AUTH_ROLES = roles_parse(ROLES)
    settings.DICOM_AUDIT_LOG = str(tmp_path / "audit.jsonl")
    return oidc


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
