"""Remove what a crash or a storage outage left behind; safe to run at any time.

- blobs queued in OrphanBlob (their rows are gone; an earlier removal failed);
- CREATING rows older than DICOM_STALE_CREATING_SECONDS (a request died mid-store), with
  their blobs if any were written.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from studies.blobstore import BlobDeleteFailed, blob_delete, blob_name
from studies.models import Instance, InstanceStatus, OrphanBlob
from studies.services.orphans import blob_remove_or_queue

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Delete orphaned blobs and stale half-stored instances."

    def handle(self, *args: Any, **options: Any) -> None:
        removed = 0
        for orphan in OrphanBlob.objects.order_by("pk").iterator():
            try:
                blob_delete(name=orphan.blob_name)
            except BlobDeleteFailed:
                logger.exception("orphan blob %s stays queued", orphan.blob_name)
                continue
            OrphanBlob.objects.filter(pk=orphan.pk).delete()
            removed += 1
            self.stdout.write(f"removed orphan blob {orphan.blob_name}")
        stale_before = timezone.now() - dt.timedelta(seconds=settings.DICOM_STALE_CREATING_SECONDS)
        stale = Instance.objects.filter(status=InstanceStatus.CREATING, created_at__lt=stale_before)
        for pk, partition_key, watermark in stale.values_list("pk", "partition_id", "watermark"):
            deleted, _ = Instance.objects.filter(pk=pk, status=InstanceStatus.CREATING, watermark=watermark).delete()
            if deleted:
                name = blob_name(partition_key=partition_key, watermark=watermark)
                blob_remove_or_queue(name=name, reason="stale creating row removed by dicom_cleanup")
                self.stdout.write(f"removed stale creating instance {pk} (watermark {watermark})")
        self.stdout.write(f"done: {removed} orphan blob(s) removed")
