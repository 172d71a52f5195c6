"""DATABASE_URL translation: PostgreSQL under ASGI pools connections instead of persisting them."""

from __future__ import annotations

from dicomsvc.env import database_from_url

URL = "postgres://alice:s%40cret@db.internal:6432/dicom"


def test_postgres_pools_and_never_keeps_thread_local_connections():
    entry = database_from_url("DATABASE_URL", URL, pool_max_size=10)
    assert entry["ENGINE"] == "django.db.backends.postgresql"
    assert (entry["NAME"], entry["USER"], entry["PASSWORD"], entry["HOST"], entry["PORT"]) == (
        "dicom", "alice", "s@cret", "db.internal", "6432",
    )
    # Django's pool refuses CONN_MAX_AGE > 0, and under ASGI a persistent connection leaks.
    assert entry["CONN_MAX_AGE"] == 0
    # Pooled connections keep the statements `dicomsvc.sqlbatch` prepares.
    assert entry["OPTIONS"] == {
        "pool": {"min_size": 2, "max_size": 10},
        "prepare_threshold": 0,
        "options": "-c plan_cache_mode=force_generic_plan",  # affects prepared statements only
    }


def test_pool_size_zero_connects_per_request():
    entry = database_from_url("DATABASE_URL", URL, pool_max_size=0)
    assert entry["CONN_MAX_AGE"] == 0
    assert "OPTIONS" not in entry


def test_pool_smaller_than_two_has_matching_minimum():
    assert database_from_url("DATABASE_URL", URL, pool_max_size=1)["OPTIONS"]["pool"] == {"min_size": 1, "max_size": 1}
