"""dicomsvc.sqlbatch: a transaction's statements in one round trip, prepared on PostgreSQL."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction

from dicomsvc.sqlbatch import statement_execute, statements_run
from partitions.models import Partition

TABLE = Partition._meta.db_table


@pytest.mark.django_db(transaction=True)
def test_results_come_back_per_statement_in_order():
    with transaction.atomic():
        results = statements_run([
            (f"INSERT INTO {TABLE} (partition_name, created_date) VALUES (%s, %s) RETURNING partition_name",
             ["batch.a", "2026-01-01T00:00:00Z"]),
            (f"UPDATE {TABLE} SET partition_name = %s WHERE partition_name = %s", ["batch.b", "batch.a"]),
            (f"SELECT partition_name FROM {TABLE} WHERE partition_name LIKE %s ORDER BY 1", ["batch.%"]),
        ])  # fmt: skip
    assert results == [[("batch.a",)], [], [("batch.b",)]]
    assert list(Partition.objects.filter(partition_name__startswith="batch.").values_list("partition_name", flat=True)) == ["batch.b"]


@pytest.mark.django_db(transaction=True)
def test_a_failing_statement_rolls_back_the_whole_transaction():
    insert = f"INSERT INTO {TABLE} (partition_name, created_date) VALUES (%s, %s)"
    with pytest.raises(IntegrityError), transaction.atomic():  # Django's error type, not psycopg's
        statements_run([(insert, ["batch.c", "2026-01-01T00:00:00Z"]), (insert, ["batch.c", "2026-01-01T00:00:00Z"])])
    assert not Partition.objects.filter(partition_name="batch.c").exists()


@pytest.mark.django_db(transaction=True)
def test_statements_need_a_transaction():
    # On PostgreSQL a pipeline outside a transaction would commit statement by statement.
    with pytest.raises(RuntimeError, match="inside a transaction"):
        statements_run([(f"DELETE FROM {TABLE} WHERE partition_name = %s", ["none"])])


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="prepared statements are PostgreSQL's")
def test_statements_are_prepared_once_per_pooled_connection():
    sql = f"SELECT count(*) FROM {TABLE} WHERE partition_key > %s"
    for _ in range(7):
        with transaction.atomic():
            statements_run([(sql, [0]), ("SELECT %s::int", [1])])
    prepared = statement_execute(
        "SELECT generic_plans + custom_plans, generic_plans FROM pg_prepared_statements WHERE statement = %s",
        [sql.replace("%s", "$1")],
    )
    assert len(prepared) == 1
    executions, generic = prepared[0]
    assert executions == 7
    assert generic == 7  # planned once, not per execution (plan_cache_mode on pooled connections)
