"""PostgreSQL: compress instance metadata with lz4 instead of pglz (when the server supports it).

QIDO decompresses the stored DICOM JSON of every result (up to 200 per page) and STOW
compresses one per instance; lz4 does both several times faster than pglz. Only values
written after this migration use lz4; older rows keep pglz until rewritten. SQLite stores
the text uncompressed and is left alone.
"""

from django.db import migrations

TABLE = "studies_instance"
COLUMNS = ("metadata", "original_metadata")


def _lz4_available(schema_editor) -> bool:  # noqa: ANN001
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        )
        row = cursor.fetchone()
    return bool(row and row[0])


def _set_compression(method: str):  # noqa: ANN202
    def run(apps, schema_editor) -> None:  # noqa: ANN001
        if schema_editor.connection.vendor != "postgresql" or not _lz4_available(schema_editor):
            return
        for column in COLUMNS:
            schema_editor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN {column} SET COMPRESSION {method}")

    return run


class Migration(migrations.Migration):
    dependencies = [("studies", "0004_instance_redundant_indexes")]

    operations = [migrations.RunPython(_set_compression("lz4"), _set_compression("pglz"))]
