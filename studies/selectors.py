"""Reads for WADO-RS: which blobs and which metadata a retrieve serves. Only CREATED rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from dicomsvc.errors import InstanceNotFound, SeriesNotFound, StudyNotFound
from dicomsvc.sqlbatch import statement_execute
from partitions.models import Partition
from studies.blobstore import blob_name
from studies.models import Instance
from studies.versions import instance_scope, instance_scope_sql, version_select


class StoredVersion(NamedTuple):
    """One instance version to serve (a tuple, as `studies.versions.Version`)."""

    study_instance_uid: str
    series_instance_uid: str
    sop_instance_uid: str
    watermark: int
    blob_name: str
    transfer_syntax_uid: str
    file_size: int
    number_of_frames: int


# The instance columns `stored_version` reads, in its order.
VERSION_COLUMNS = (
    "study_instance_uid",
    "series_instance_uid",
    "sop_instance_uid",
    "watermark",
    "original_watermark",
    "transfer_syntax_uid",
    "file_size",
    "original_file_size",
    "number_of_frames",
)
VersionRow = tuple[str, str, str, int, int | None, str, int, int | None, int]


def stored_version(*, partition: Partition, row: VersionRow, original: bool) -> StoredVersion:
    """The version of one instance row (`VERSION_COLUMNS`) a read serves: latest, or original on request."""
    study, series, sop, watermark, original_watermark, transfer_syntax, size, original_size, frames = row
    chosen = version_select(
        original=original,
        watermark=watermark,
        original_watermark=original_watermark,
        file_size=size,
        original_file_size=original_size,
    )
    return StoredVersion(
        study_instance_uid=study,
        series_instance_uid=series,
        sop_instance_uid=sop,
        watermark=chosen.watermark,
        blob_name=blob_name(partition_key=partition.partition_key, watermark=chosen.watermark),
        transfer_syntax_uid=transfer_syntax,
        file_size=chosen.file_size,
        number_of_frames=frames,
    )


def instance_not_found(series: str | None, instance: str | None) -> Exception:
    """The 404 naming the most specific level that was asked for."""
    if instance is not None:
        return InstanceNotFound()
    if series is not None:
        return SeriesNotFound()
    return StudyNotFound()


def instance_versions_list(
    *,
    partition: Partition,
    study: str,
    series: str | None = None,
    instance: str | None = None,
    original: bool = False,
) -> list[StoredVersion]:
    """The blobs of a study, series or instance: latest versions, or originals on request."""
    # Plain SQL: this runs once per WADO request, and compiling the ORM query took a third of
    # a one-instance retrieve's CPU.
    where, params = instance_scope_sql(partition=partition, study=study, series=series, instance=instance)
    sql = (
        f"SELECT {', '.join(VERSION_COLUMNS)} FROM {Instance._meta.db_table} WHERE {where} "
        "ORDER BY series_instance_uid, instance_number, watermark"
    )
    rows = statement_execute(sql, params)  # prepared on PostgreSQL: planned once per pooled connection
    versions = [stored_version(partition=partition, row=row, original=original) for row in rows]
    if not versions:
        raise instance_not_found(series, instance)
    return versions


@dataclass(frozen=True)
class MetadataResult:
    documents: list[str]
    etag: str
    # Each document's "studies/{study}/series/{series}/instances/{instance}", for its BulkDataURIs.
    paths: list[str]


def instance_metadata_list(
    *,
    partition: Partition,
    study: str,
    series: str | None = None,
    instance: str | None = None,
    original: bool = False,
) -> MetadataResult:
    """Stored DICOM JSON texts and the ETag (watermark, or `{max watermark}-{count}`)."""
    rows = list(
        Instance.objects.filter(instance_scope(partition=partition, study=study, series=series, instance=instance))
        .order_by("series_instance_uid", "instance_number", "watermark")
        .values_list(
            "watermark", "original_watermark", "metadata", "original_metadata",
            "study_instance_uid", "series_instance_uid", "sop_instance_uid",
        )
    )
    if not rows:
        raise instance_not_found(series, instance)
    documents = []
    watermarks = []
    paths = []
    for watermark, original_watermark, metadata, original_metadata, study_uid, series_uid, sop_uid in rows:
        paths.append(f"studies/{study_uid}/series/{series_uid}/instances/{sop_uid}")
        chosen = version_select(original=original, watermark=watermark, original_watermark=original_watermark)
        # A bulk update sets the original watermark and metadata together.
        documents.append(original_metadata if chosen.original and original_metadata is not None else metadata)
        watermarks.append(chosen.watermark)
    etag = str(watermarks[0]) if instance is not None else f"{max(watermarks)}-{len(watermarks)}"
    if original:
        etag = f"{etag}-original"
    return MetadataResult(documents=documents, etag=etag, paths=paths)


@dataclass(frozen=True)
class FrameSource:
    blob_name: str
    transfer_syntax_uid: str
    frame_index: str
    number_of_frames: int
    file_size: int


def instance_frame_source_get(*, partition: Partition, study: str, series: str, instance: str) -> FrameSource:
    """Where frames come from: the original file (pixel data never changes on update)."""
    row = (
        Instance.objects.filter(instance_scope(partition=partition, study=study, series=series, instance=instance))
        .values_list(
            "watermark", "original_watermark", "transfer_syntax_uid", "frame_index", "number_of_frames",
            "file_size", "original_file_size",
        )
        .first()
    )
    if row is None:
        raise InstanceNotFound()
    watermark, original_watermark, ts, frame_index, frames, size, original_size = row
    # The frame index describes the original file, and pixel data never changes on update.
    source = version_select(
        original=True,
        watermark=watermark,
        original_watermark=original_watermark,
        file_size=size,
        original_file_size=original_size,
    )
    return FrameSource(
        blob_name=blob_name(partition_key=partition.partition_key, watermark=source.watermark),
        transfer_syntax_uid=ts,
        frame_index=frame_index,
        number_of_frames=frames,
        file_size=source.file_size,
    )
