"""Timings of the change-feed API and the admin pages on large tables. Prints numbers; asserts nothing.

Runs in a throw-away test database (test_<NAME>), never in the configured one:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/dicomsvc python bench/changefeed_admin.py \
        --feed-rows 200000 --instances 50000

Rows are written directly with bulk_create (no blobs): the point is the cost of reading them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dicomsvc.settings")

import django  # noqa: E402
from asgiref.sync import async_to_sync  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402

BATCH = 5000


def populate(feed_rows: int, instances: int) -> None:
    from django.utils import timezone

    from changefeed.models import ChangeFeedEntry
    from studies.models import Instance, InstanceStatus, Series, Study

    metadata = json.dumps({f"0011{n:04X}": {"vr": "LO", "Value": ["x" * 40]} for n in range(40)})
    per_study = 10
    studies = Study.objects.bulk_create(
        [Study(partition_id=1, study_instance_uid=f"1.2.3.{n}", patient_id=f"P{n % 5000}", num_series=1,
               num_instances=per_study) for n in range(instances // per_study)],
        batch_size=BATCH,
    )
    series = Series.objects.bulk_create(
        [Series(partition_id=1, study=study, series_instance_uid=f"{study.study_instance_uid}.1",
                num_instances=per_study) for study in studies],
        batch_size=BATCH,
    )
    rows = []
    for index, serie in enumerate(series):
        for number in range(per_study):
            sop = f"{serie.series_instance_uid}.{number}"
            rows.append(Instance(
                partition_id=1, study_id=serie.study_id, series=serie,
                study_instance_uid=serie.study.study_instance_uid,
                series_instance_uid=serie.series_instance_uid, sop_instance_uid=sop, status=InstanceStatus.CREATED,
                watermark=index * per_study + number + 1, file_size=500_000, metadata=metadata,
            ))
    Instance.objects.bulk_create(rows, batch_size=BATCH)
    now = timezone.now()
    feed = []
    for n in range(feed_rows):
        # The first `instances` rows describe the live instances (current); the rest name deleted ones.
        live = n < len(rows)
        source = rows[n] if live else None
        feed.append(ChangeFeedEntry(
            timestamp=now, action=0 if live else 1, partition_id=1,
            study_instance_uid=source.study_instance_uid if source else f"9.9.{n // 100}",
            series_instance_uid=source.series_instance_uid if source else f"9.9.{n // 100}.1",
            sop_instance_uid=source.sop_instance_uid if source else f"9.9.{n // 100}.1.{n}",
            watermark=source.watermark if source else 10**9 + n,
        ))
        if len(feed) == BATCH:
            ChangeFeedEntry.objects.bulk_create(feed)
            feed = []
    ChangeFeedEntry.objects.bulk_create(feed)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


def read_body(response) -> bytes:  # noqa: ANN001
    if not response.streaming:
        return response.content
    if getattr(response, "is_async", False):
        async def collect() -> bytes:
            return b"".join([chunk async for chunk in response.streaming_content])

        return async_to_sync(collect)()
    return b"".join(response.streaming_content)


def measure(client: Client, label: str, url: str, repeat: int = 5) -> None:
    times = []
    for _ in range(repeat):
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            response = client.get(url)
            body = read_body(response)
            times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    counts = sum("COUNT(" in q["sql"].upper() for q in queries.captured_queries)
    print(f"{label:<44} median {statistics.median(times):8.1f} ms  queries {len(queries.captured_queries):2d}"
          f"  with COUNT {counts}  bytes {len(body)}")


def explain(label: str, sql_source) -> None:  # noqa: ANN001
    if connection.vendor != "postgresql":
        return
    sql, params = sql_source.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql, params)
        plan = " | ".join(row[0].strip() for row in cursor.fetchall()[:6])
    print(f"  plan {label}: {plan[:400]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feed-rows", type=int, default=200_000)
    parser.add_argument("--instances", type=int, default=50_000)
    args = parser.parse_args()

    setup_test_environment()
    settings.ALLOWED_HOSTS = ["testserver"]
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        from django.contrib.auth.models import User

        from changefeed.models import ChangeFeedEntry
        from changefeed.selectors import changefeed_queryset

        start = time.perf_counter()
        populate(args.feed_rows, args.instances)
        print(f"{connection.vendor}: {args.feed_rows} feed rows, {args.instances} instances "
              f"(loaded in {time.perf_counter() - start:.0f} s)")
        client = Client()
        client.force_login(User.objects.create_superuser("bench", password="bench"))
        first = ChangeFeedEntry.objects.order_by("sequence").values_list("sequence", flat=True).first()
        middle = first + args.feed_rows // 2
        sop = "1.2.3.7.1.3"

        measure(client, "GET /v1/changefeed limit=100 (metadata)", f"/v1/changefeed?offset={first - 1}&limit=100")
        measure(client, "GET /v1/changefeed limit=100, middle", f"/v1/changefeed?offset={middle}&limit=100")
        measure(client, "GET /v2/changefeed limit=200 (metadata)", "/v2/changefeed?limit=200")
        measure(client, "GET /v2/changefeed limit=200 no metadata", "/v2/changefeed?limit=200&includeMetadata=false")
        measure(client, "GET /v2/changefeed offset=half, limit=200",
                f"/v2/changefeed?offset={args.feed_rows // 2}&limit=200&includeMetadata=false")
        measure(client, "GET /v2/changefeed/latest", "/v2/changefeed/latest")
        measure(client, "admin dashboard", "/admin/")
        measure(client, "admin feed list, page 1", "/admin/changefeed/changefeedentry/")
        measure(client, "admin feed list, page 100", "/admin/changefeed/changefeedentry/?p=100")
        measure(client, "admin feed list, state=current", "/admin/changefeed/changefeedentry/?state=current")
        measure(client, "admin feed list, search SOP UID", f"/admin/changefeed/changefeedentry/?q={sop}")
        measure(client, "admin partitions", "/admin/partitions/partition/")
        measure(client, "admin studies, search PatientID", "/admin/studies/study/?q=P7")
        measure(client, "admin instances, page 1", "/admin/studies/instance/")
        measure(client, "admin instances, search study UID", "/admin/studies/instance/?q=1.2.3.7")
        measure(client, "admin series, page 1", "/admin/studies/series/")

        from django.db.models import Q

        keys = [1]
        explain("feed search", changefeed_queryset().filter(
            Q(partition_id__in=keys, study_instance_uid=sop) | Q(partition_id__in=keys, series_instance_uid=sop)
            | Q(partition_id__in=keys, sop_instance_uid=sop)))
        explain("feed page", changefeed_queryset().order_by("-sequence")[:51])
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
