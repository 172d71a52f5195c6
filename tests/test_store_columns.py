"""The store path's INSERT of instance rows follows the model: a new field cannot silently break STOW."""

from __future__ import annotations

import pytest
from django.db import connection, models

from studies.models import Instance
from studies.services import store_rows
from tests.helpers import dicom_bytes, stow, uids_of


def test_the_insert_names_every_concrete_column_of_the_instance_model():
    expected = {field.column for field in Instance._meta.concrete_fields if not field.primary_key}
    assert set(store_rows.INSERT_COLUMNS) == expected
    assert len(store_rows.INSERT_COLUMNS) == len(expected)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("second_in_series", [False, True])  # a new series, then one that exists
def test_a_field_added_with_only_a_python_default_is_stored_with_that_default(client, monkeypatch, second_in_series):
    # What a migration adding `review_flag = models.IntegerField(default=7)` does: the column
    # is NOT NULL and, on PostgreSQL, has no database default once the migration ran.
    field = models.IntegerField(default=7)
    field.set_attributes_from_name("review_flag")
    field.model = Instance
    with connection.schema_editor() as editor:
        editor.add_field(Instance, field)
    try:
        monkeypatch.setattr(store_rows, "_INSTANCE_FIELD", {**store_rows._INSTANCE_FIELD, field.column: field})
        monkeypatch.setattr(store_rows, "INSERT_COLUMNS", (*store_rows.INSERT_COLUMNS, field.column))
        first = dicom_bytes()
        parts = [first]
        if second_in_series:
            assert stow(client, [first]).status_code == 200
            study, series, _sop = uids_of(first)
            parts = [dicom_bytes(StudyInstanceUID=study, SeriesInstanceUID=series)]
        response = stow(client, parts)
        assert response.status_code == 200, response.content
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT review_flag FROM {Instance._meta.db_table} WHERE sop_instance_uid = %s", [uids_of(parts[0])[2]]
            )
            assert cursor.fetchall() == [(7,)]
    finally:
        with connection.schema_editor() as editor:
            editor.remove_field(Instance, field)
