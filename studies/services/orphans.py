"""Blobs whose rows are gone but whose removal failed: recorded, retried by dicom_cleanup."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from studies.blobstore import BlobDeleteFailed, blob_delete
from studies.models import OrphanBlob

logger = logging.getLogger(__name__)


def orphan_record(*, name: str, reason: str) -> None:
    try:
        with transaction.atomic():
            OrphanBlob.objects.create(blob_name=name, reason=reason[:255])
    except IntegrityError:
        pass  # already queued


def blob_remove_or_queue(*, name: str, reason: str) -> None:
    """Remove a blob no row points at any more; if the store refuses, queue it for dicom_cleanup."""
    try:
        blob_delete(name=name)
    except BlobDeleteFailed:
        logger.exception("blob removal failed (%s); queued for dicom_cleanup", reason)
        orphan_record(name=name, reason=reason)


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
    removed = []
    for name in names:
        try:
            blob_delete(name=name)
        except BlobDeleteFailed:
            logger.exception("blob removal failed; it stays queued for dicom_cleanup")
            continue
        removed.append(name)
    if removed:
        OrphanBlob.objects.filter(blob_name__in=removed).delete()
