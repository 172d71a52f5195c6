"""PostgreSQL storage settings the migrations apply."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only")
def test_instance_metadata_is_compressed_with_lz4():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        if not cursor.fetchone()[0]:
            pytest.skip("this PostgreSQL server was built without lz4")
        cursor.execute(
            "SELECT attname, attcompression FROM pg_attribute WHERE attrelid = 'studies_instance'::regclass "
            "AND attname IN ('metadata', 'original_metadata') ORDER BY attname"
        )
        assert cursor.fetchall() == [("metadata", "l"), ("original_metadata", "l")]
