"""Blobs whose rows are gone but whose removal failed: recorded, retried by dicom_cleanup."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from studies.blobstore import blob_delete
from studies.models import OrphanBlob


def orphan_record(*, name: str, reason: str) -> None:
    try:
        with transaction.atomic():
            OrphanBlob.objects.create(blob_name=name, reason=reason[:255])
    except IntegrityError:
        pass  # already queued


def orphans_queue(*, names: list[str], reason: str) -> None:
    """Inside the transaction that stops pointing at these blobs: remember to remove them.

    If the process dies between commit and removal, the names stay queued for
    dicom_cleanup instead of leaking files no row refers to.
    """
    if names:
        OrphanBlob.objects.bulk_create(
            [OrphanBlob(blob_name=name, reason=reason[:255]) for name in names], ignore_conflicts=True
        )


def orphans_remove(*, names: list[str]) -> None:
    """After commit: remove queued blobs; a name whose removal fails stays queued."""
    removed = [name for name in names if blob_delete(name=name)]
    if removed:
        OrphanBlob.objects.filter(blob_name__in=removed).delete()
