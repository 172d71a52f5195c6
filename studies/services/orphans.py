"""Blobs whose rows are gone but whose removal failed: recorded, retried by dicom_cleanup."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from studies.models import OrphanBlob


def orphan_record(*, name: str, reason: str) -> None:
    try:
        with transaction.atomic():
            OrphanBlob.objects.create(blob_name=name, reason=reason[:255])
    except IntegrityError:
        pass  # already queued
