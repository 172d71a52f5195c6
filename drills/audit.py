"""What the database and the blob store hold, as JSON: run in the drilled server's environment.

    python -m drills.audit [--cleanup]

Prints blobs nothing points at, rows whose blob is missing, the change feed per instance
and the operations. The drill decides what must hold; this only reports."""

from __future__ import annotations

import io
import json
import os
import sys
from collections import defaultdict
from pathlib import Path


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dicomsvc.settings")
    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    if "--cleanup" in sys.argv:
        call_command("dicom_cleanup", stdout=io.StringIO())

    from changefeed.models import ChangeAction, ChangeFeedEntry
    from operations.models import Operation
    from studies.blobstore import blob_name
    from studies.models import Instance, InstanceStatus, OrphanBlob, Series, Study

    root = Path(settings.STORAGES["dicom"]["OPTIONS"]["location"])
    on_disk = {str(path.relative_to(root)) for path in root.rglob("*.dcm")} if root.exists() else set()
    named: set[str] = set()
    needed: set[str] = set()  # blobs a visible row serves
    instances = []
    for row in Instance.objects.values(
        "partition_id", "study_instance_uid", "series_instance_uid", "sop_instance_uid", "status", "watermark",
        "original_watermark", "new_watermark", "file_size",
    ):  # fmt: skip
        for key in ("watermark", "original_watermark", "new_watermark"):
            if row[key] is not None:
                name = blob_name(partition_key=row["partition_id"], watermark=row[key])
                named.add(name)
                if key != "new_watermark" and row["status"] == InstanceStatus.CREATED:
                    needed.add(name)
        instances.append(row)
    queued = set(OrphanBlob.objects.values_list("blob_name", flat=True))
    feed: dict[str, list[str]] = defaultdict(list)
    for sop, action in ChangeFeedEntry.objects.order_by("sequence").values_list("sop_instance_uid", "action"):
        feed[sop].append(ChangeAction(action).label)
    print(
        json.dumps(
            {
                "instances": len([row for row in instances if row["status"] == InstanceStatus.CREATED]),
                "creating": sorted(
                    row["sop_instance_uid"] for row in instances if row["status"] != InstanceStatus.CREATED
                ),
                "pending_versions": len([row for row in instances if row["new_watermark"] is not None]),
                "created_sops": sorted(
                    row["sop_instance_uid"] for row in instances if row["status"] == InstanceStatus.CREATED
                ),
                "created": [
                    [row["study_instance_uid"], row["series_instance_uid"], row["sop_instance_uid"]]
                    for row in instances
                    if row["status"] == InstanceStatus.CREATED
                ],
                "blobs": len(on_disk),
                "blobs_without_row": sorted(on_disk - named - queued),
                "rows_without_blob": sorted(needed - on_disk),
                "orphans_queued": len(queued),
                "empty_studies": Study.objects.exclude(instances__status=InstanceStatus.CREATED).count(),
                "empty_series": Series.objects.exclude(instances__status=InstanceStatus.CREATED).count(),
                "feed": feed,
                "operations": [
                    {"id": op.pk.hex, "type": op.type, "status": op.status, "results": op.results, "errors": op.errors}
                    for op in Operation.objects.order_by("created_time")
                ],
            }
        )
    )


if __name__ == "__main__":
    main()
