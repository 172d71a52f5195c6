"""Fixtures only: a fresh blob directory per test, an API client, data partitions on.

Factories and request helpers live in tests/helpers; tests import them from there.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.conf import settings as django_settings
from django.core.files.storage import storages
from django.test import Client
from rest_framework.test import APIClient

from dicomsvc.api.roles import roles_parse
from dicomsvc.api.tokens import issuer_get
from partitions.selectors import partition_get
from studies.eqt.tags import tags_cache_clear
from tests.helpers import AUDIENCE, ROLES, LocalIssuer, admin_login, local_issuer
from tests.helpers.workers import Workers


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
    # Tag lists are cached per process: each test starts without one, and none expires within
    # a test (so a query count never includes a reload); this process's own changes still show.
    tags_cache_clear()
    settings.DICOM_EXTENDED_QUERY_TAG_CACHE_MS = 3_600_000
    yield
    storages._storages.pop("dicom", None)
    partition_get.cache_clear()
    tags_cache_clear()


@pytest.fixture
def client() -> APIClient:
    return APIClient()


@pytest.fixture
def partitions_on(settings) -> None:  # noqa: ANN001
    """Data partitions enabled: partitioned routes need /partitions/{name}/."""
    settings.DICOM_ENABLE_DATA_PARTITIONS = True


@pytest.fixture
def oidc() -> Iterator[LocalIssuer]:
    """A local OpenID Connect issuer on loopback (tests/helpers/oidc.py).

    The server keeps one `Issuer` (its keys, its accepted tokens) per authority URL for the
    process's life; a later test's issuer may get an earlier one's port, so none is kept over."""
    issuer_get.cache_clear()
    with local_issuer() as issuer:
        yield issuer
    issuer_get.cache_clear()


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


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """Real Celery workers (the PostgreSQL/Redis run), on this run's own Redis database, emptied
    before and after so no task crosses tests."""
    broker = redis.Redis.from_url(django_settings.CELERY_BROKER_URL)
    broker.flushdb()
    pool = Workers(tmp_path)
    yield pool
    pool.stop_all()
    broker.flushdb()
