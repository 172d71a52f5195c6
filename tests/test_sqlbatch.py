"""dicomsvc.sqlbatch: a transaction's statements in one round trip, prepared on PostgreSQL."""

from __future__ import annotations

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from dicomsvc.sqlbatch import (
    AFTER_FIRST,
    GuardFailed,
    commit_in_one_round_trip,
    guard,
    statement_execute,
    statements_commit,
    statements_joined,
    statements_run,
)
from partitions.models import Partition
from tests.helpers.live import test_database_url as database_url

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


# --- PostgreSQL: psycopg's pipeline mode and prepared statements ---------------------------

postgres_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only")


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_values_round_trip_through_a_pipelined_batch():
    import datetime as dt

    stamp = dt.datetime(2026, 11, 30, 6, 0, 0, 123456, tzinfo=dt.UTC)
    with transaction.atomic():
        results = statements_run([
            ("SELECT %s::int, %s::bigint, %s, %s::timestamptz, %s::boolean, %s::text IS NULL",
             [7, 2**40, "Müller", stamp, True, None]),
            ("SELECT %s::bigint", [1]),  # the same statement with a small value, then a large one
            ("SELECT %s::bigint", [2**40]),
        ])  # fmt: skip
    assert results == [[(7, 2**40, "Müller", stamp, True, True)], [(1,)], [(2**40,)]]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_statement_on_its_own_commits_by_itself():
    from psycopg import pq

    statement_execute(f"INSERT INTO {TABLE} (partition_name, created_date) VALUES (%s, %s)", ["alone", "2026-01-01Z"])
    assert connection.connection.pgconn.transaction_status == pq.TransactionStatus.IDLE
    connection.close()  # another connection sees it: it was committed
    assert Partition.objects.filter(partition_name="alone").exists()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_an_error_inside_a_savepoint_leaves_the_outer_transaction_usable():
    insert = f"INSERT INTO {TABLE} (partition_name, created_date) VALUES (%s, %s)"
    with transaction.atomic():
        statements_run([(insert, ["outer", "2026-01-01Z"])])
        with pytest.raises(IntegrityError), transaction.atomic():
            statements_run([(insert, ["inner", "2026-01-01Z"]), (insert, ["outer", "2026-01-01Z"])])
        statements_run([(insert, ["after", "2026-01-01Z"])])
    names = set(Partition.objects.values_list("partition_name", flat=True))
    assert {"outer", "after"} <= names and "inner" not in names


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_sql_with_a_literal_percent_runs():
    with transaction.atomic():
        assert statements_run([("SELECT %s || '%%'", ["50"])]) == [[("50%",)]]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_prepared_statements_per_connection_are_bounded():
    """psycopg deallocates the least recently used prepared statement past `prepared_max`."""
    if "pool" not in connection.settings_dict.get("OPTIONS", {}):
        pytest.skip("statements are prepared on pooled connections only")
    with pytest.raises(RuntimeError), transaction.atomic():
        statement_execute("SELECT 1", [])
        raise RuntimeError("roll back: psycopg deallocates what it had prepared on the connection")
    connection.connection.prepared_max = 3
    try:
        for n in range(8):
            with transaction.atomic():
                statements_run([(f"SELECT %s::int + {n}", [n]), ("SELECT %s::int", [n])])
        prepared = statement_execute(
            "SELECT statement FROM pg_prepared_statements WHERE statement LIKE %s", ["SELECT $1::int%"]
        )
    finally:
        connection.connection.prepared_max = 100
    # Three kept, plus at most one whose DEALLOCATE psycopg sends along with the next statement.
    assert len(prepared) <= 4
    assert ("SELECT $1::int",) in prepared  # used in every batch: the most recently used stays
    assert not {(f"SELECT $1::int + {n}",) for n in range(4)} & set(prepared)  # the oldest were deallocated


def _joined(first_rows: int) -> list[list[tuple[object, ...]]]:
    """Lock the partitions named a.*, rename the b.* ones, and return the c.* ones, in one statement."""
    joined = statements_joined(
        [
            (f"SELECT partition_name FROM {TABLE} WHERE partition_name LIKE %s FOR UPDATE", ["joined.a%"]),
            (f"UPDATE {TABLE} SET partition_name = partition_name || %s WHERE partition_name LIKE %s{AFTER_FIRST}",
             [".renamed", "joined.b%"]),
            (f"SELECT partition_name FROM {TABLE} WHERE partition_name LIKE %s ORDER BY 1", ["joined.c%"]),
        ],
        first_rows=first_rows,
    )  # fmt: skip
    assert len(joined) == 1
    with transaction.atomic():
        return statements_run(joined)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_joined_statements_run_as_one_and_return_the_last_one_s_rows():
    Partition.objects.bulk_create(
        Partition(partition_name=name) for name in ["joined.a1", "joined.a2", "joined.b1", "joined.c1"]
    )
    assert _joined(first_rows=2) == [[("joined.c1",)]]
    names = set(Partition.objects.filter(partition_name__startswith="joined.").values_list("partition_name", flat=True))
    assert names == {"joined.a1", "joined.a2", "joined.b1.renamed", "joined.c1"}


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_joined_statement_waiting_for_the_first_writes_nothing_when_its_row_count_differs():
    Partition.objects.bulk_create(Partition(partition_name=name) for name in ["joined.a1", "joined.b1"])
    assert _joined(first_rows=2) == [[]]  # one a.* row, not two
    assert Partition.objects.filter(partition_name="joined.b1").exists()


@postgres_only
def test_statements_with_with_queries_of_their_own_cannot_be_joined():
    with pytest.raises(ValueError, match="WITH queries of its own"):
        statements_joined([("SELECT 1", []), ("with x AS (SELECT 1) SELECT * FROM x", [])], first_rows=1)


# --- statements_commit: BEGIN, the statements and COMMIT in one pipeline ------------------

INSERT = f"INSERT INTO {TABLE} (partition_name, created_date) VALUES (%s, %s) RETURNING partition_name"
NOW = "2026-01-01T00:00:00Z"


def _names(prefix: str) -> set[str]:
    return set(Partition.objects.filter(partition_name__startswith=prefix).values_list("partition_name", flat=True))


def _transaction_status() -> str:
    return connection.connection.info.transaction_status.name


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_commit_in_one_round_trip_runs_its_statements_in_order_and_commits():
    assert commit_in_one_round_trip()
    statements_commit([
        (INSERT, ["commit.a", NOW]),
        (f"UPDATE {TABLE} SET partition_name = %s WHERE partition_name = %s", ["commit.b", "commit.a"]),
        (INSERT, ["commit.c", NOW]),
    ])  # fmt: skip
    assert _names("commit.") == {"commit.b", "commit.c"}
    assert _transaction_status() == "IDLE"  # committed: nothing left open on Django's autocommit connection
    with psycopg.connect(database_url()) as other:  # committed: another connection sees it
        names = other.execute(f"SELECT partition_name FROM {TABLE} WHERE partition_name LIKE 'commit.%'").fetchall()
        assert sorted(names) == [("commit.b",), ("commit.c",)]


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_failing_guard_rolls_back_every_statement_and_says_so():
    taken = f"SELECT 1 WHERE {guard(f'(SELECT count(*) FROM {TABLE} WHERE partition_name LIKE %s) = %s')}"
    with pytest.raises(GuardFailed, match="division by zero"):
        statements_commit([(INSERT, ["guard.a", NOW]), (taken, ["guard.%", 2]), (INSERT, ["guard.b", NOW])])
    assert _names("guard.") == set()
    assert _transaction_status() == "IDLE"
    statements_commit([(INSERT, ["guard.a", NOW]), (taken, ["guard.%", 1])])  # the guard holds: committed
    assert _names("guard.") == {"guard.a"}


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_failing_statement_in_one_round_trip_is_django_s_error_and_rolls_back():
    with pytest.raises(IntegrityError):
        statements_commit([(INSERT, ["commit.d", NOW]), (INSERT, ["commit.d", NOW])])
    assert _names("commit.d") == set()
    assert _transaction_status() == "IDLE"
    assert statement_execute("SELECT 1", []) == [(1,)]  # the connection stays usable


@pytest.mark.django_db(transaction=True)
def test_a_commit_in_one_round_trip_needs_postgresql_and_no_open_transaction():
    with transaction.atomic():
        assert not commit_in_one_round_trip()  # inside a transaction its COMMIT would end the caller's
        with pytest.raises(RuntimeError, match="outside a transaction"):
            statements_commit([("SELECT 1", [])])
    assert commit_in_one_round_trip() == (connection.vendor == "postgresql")
