"""Export as an operation: `export_create` answers the request, `export_execute` runs on a worker.

The worker copies each covered instance's latest stored file, as stored, to
`<operation>/results/<study>/<series>/<sop>.dcm` and writes one JSON line per failure to
`<operation>/errors.log`. Progress and counts are checkpointed on the operation row, so a
redelivered task resumes after the last recorded instance instead of counting twice.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import IO, Any

from django.utils import timezone

from dicomsvc.errors import InstanceNotFound, SeriesNotFound, StudyNotFound
from operations.export.destinations import DestinationUnavailable, Sink, SourceStream, SourceUnreadable
from operations.export.selectors import export_instances_count, export_version_get, export_versions_iter
from operations.export.specification import ExportSpecification, Identifier, export_specification_load
from operations.models import Operation, OperationStatus, OperationType
from operations.services import OperationRun, operation_create
from partitions.models import Partition
from studies.blobstore import blob_open
from studies.selectors import StoredVersion

logger = logging.getLogger(__name__)

# Instances copied between two checkpoints: at most this many are copied again after a crash.
CHECKPOINT_EVERY = 100


def export_create(*, partition: Partition, specification: ExportSpecification) -> Operation:
    """Record the export; its task is enqueued once the row is committed."""
    return operation_create(type=OperationType.EXPORT, partition=partition, parameters=specification.parameters())


@dataclass
class _Progress:
    """Where a run stands; stored as the operation's checkpoint."""

    total: int
    index: int = 0  # the identifier being exported
    after: tuple[str, str] | None = None  # (series, SOP) of its last instance done
    done: int = 0
    exported: int = 0
    skipped: int = 0

    @classmethod
    def load(cls, checkpoint: dict[str, Any]) -> _Progress:
        after = checkpoint.get("after")
        return cls(**{**checkpoint, "after": tuple(after) if after else None})

    def dump(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "index": self.index,
            "after": list(self.after) if self.after else None,
            "done": self.done,
            "exported": self.exported,
            "skipped": self.skipped,
        }

    def percent(self) -> int:
        # Instances stored during the run can push `done` past `total`; 100 is for the runner.
        return min(99, self.done * 100 // self.total) if self.total else 0


def _error_line(identifier: str, error: str) -> str:
    timestamp = timezone.now().isoformat().replace("+00:00", "Z")
    return json.dumps({"timestamp": timestamp, "identifier": identifier, "error": error})


def _not_found_message(identifier: Identifier) -> str:
    if identifier.instance is not None:
        return InstanceNotFound().message
    if identifier.series is not None:
        return SeriesNotFound().message
    return StudyNotFound().message


def _source_open(version: StoredVersion) -> IO[bytes]:
    try:
        return blob_open(name=version.blob_name)
    except Exception as exc:  # any storage backend error
        raise SourceUnreadable(str(exc) or exc.__class__.__name__) from exc


class _Skipped(Exception):
    """Why one instance was not exported; recorded as an error line, the export goes on."""


class _Export:
    def __init__(self, *, run: OperationRun, sink: Sink, progress: _Progress) -> None:
        operation = run.operation
        assert operation.partition is not None
        self.run_ = run
        self.operation = operation
        self.partition: Partition = operation.partition
        self.sink = sink
        self.progress = progress

    def save(self, *, flush: bool = True) -> None:
        # Error lines reach the destination before the checkpoint that counts them.
        if flush:
            self.sink.flush()
        progress = self.progress
        self.run_.progress(
            percent_complete=progress.percent(),
            checkpoint=progress.dump(),
            results={"exported": progress.exported, "skipped": progress.skipped, "errorHref": self.sink.error_href},
        )

    def write(self, version: StoredVersion) -> None:
        name = f"results/{version.study_instance_uid}/{version.series_instance_uid}/{version.sop_instance_uid}.dcm"
        with _source_open(version) as blob:
            self.sink.write(name=name, stream=SourceStream(blob))

    def copy(self, version: StoredVersion) -> None:
        """Copy one instance; _Skipped with the reason when it cannot be."""
        try:
            self.write(version)
            return
        except SourceUnreadable as exc:
            failure = exc
        current = export_version_get(partition=self.partition, version=version)
        if current is None:
            raise _Skipped("The instance was deleted while the export ran.")
        if current.watermark != version.watermark:
            # A bulk update replaced the file we were reading: copy the new latest version.
            try:
                self.write(current)
                return
            except SourceUnreadable as exc:
                failure = exc
        logger.warning("export %s: cannot read %s: %s", self.operation.pk, current.blob_name, failure)
        raise _Skipped("The stored file of the instance could not be read.")

    def run(self, specification: ExportSpecification) -> None:
        progress = self.progress
        identifiers = specification.identifiers
        for index in range(progress.index, len(identifiers)):
            identifier = identifiers[index]
            if specification.covered(identifier):
                # Copied with the broader identifier; only a missing one is reported.
                progress.index = index + 1
                if export_instances_count(partition=self.partition, identifier=identifier) == 0:
                    self.not_found(identifier)
                    self.save()
                continue
            found = progress.after is not None
            for version in export_versions_iter(partition=self.partition, identifier=identifier, after=progress.after):
                found = True
                self.run_.heartbeat()  # keeps the lease between checkpoints; LeaseLost stops us
                skipped = False
                try:
                    self.copy(version)
                    progress.exported += 1
                except _Skipped as reason:
                    uids = (version.study_instance_uid, version.series_instance_uid, version.sop_instance_uid)
                    self.sink.error_append(_error_line("/".join(uids), str(reason)))
                    progress.skipped += 1
                    skipped = True
                progress.after = (version.series_instance_uid, version.sop_instance_uid)
                progress.done += 1
                if skipped or progress.done % CHECKPOINT_EVERY == 0:
                    self.save()
            if not found:
                self.not_found(identifier)
            progress.index, progress.after = index + 1, None
            self.save()

    def not_found(self, identifier: Identifier) -> None:
        self.sink.error_append(_error_line(str(identifier), _not_found_message(identifier)))
        self.progress.skipped += 1


def export_execute(run: OperationRun) -> OperationStatus:
    """Run (or resume) an export. Skipped instances don't fail it; an unwritable destination does."""
    operation = run.operation
    assert operation.partition is not None
    specification = export_specification_load(parameters=operation.parameters)
    sink = specification.destination.open(folder=operation.pk.hex)
    resume = bool(operation.checkpoint)
    sink.prepare(resume=resume)
    if resume:
        progress = _Progress.load(operation.checkpoint)
    else:
        total = sum(
            export_instances_count(partition=operation.partition, identifier=identifier)
            for identifier in specification.identifiers
            if not specification.covered(identifier)
        )
        progress = _Progress(total=total)
    export = _Export(run=run, sink=sink, progress=progress)
    export.save()
    try:
        export.run(specification)
    except DestinationUnavailable:
        export.save(flush=False)  # keep the counts of what was copied before it broke
        raise
    return OperationStatus.SUCCEEDED
