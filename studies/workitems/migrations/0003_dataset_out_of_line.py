"""PostgreSQL: keep each workitem's dataset out of the row, so searches scan small rows.

A workitem's DICOM JSON (2-4 KB, about 1 KB compressed) otherwise stays in the heap row, and a
search whose filter no index serves (PatientName word prefixes) reads every dataset of the
partition to test a 30-byte column. With `toast_tuple_target` at its minimum, a row over 128
bytes has its dataset moved to the TOAST table, read only for the rows a page returns; lz4
(where the server has it) compresses and decompresses it faster than pglz. Only rows written
after this migration move. SQLite stores the text in the row and is left alone.
"""

from django.db import migrations

TABLE = "workitems_workitem"


def _lz4_available(schema_editor) -> bool:  # noqa: ANN001
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'")
        row = cursor.fetchone()
    return bool(row and row[0])


def out_of_line(apps, schema_editor) -> None:  # noqa: ANN001
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE {TABLE} SET (toast_tuple_target = 128)")
    if _lz4_available(schema_editor):
        schema_editor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN dataset SET COMPRESSION lz4")


def in_line(apps, schema_editor) -> None:  # noqa: ANN001
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"ALTER TABLE {TABLE} RESET (toast_tuple_target)")
    if _lz4_available(schema_editor):
        schema_editor.execute(f"ALTER TABLE {TABLE} ALTER COLUMN dataset SET COMPRESSION pglz")


class Migration(migrations.Migration):
    dependencies = [("workitems", "0002_admin_group_view")]

    operations = [migrations.RunPython(out_of_line, in_line)]
