"""The JSON of extended query tags and their errors, as Microsoft's server writes it
(camelCase names, enum values in camelCase, nulls left out)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from operations.reindex.services import tag_url
from operations.wire import operation_url
from studies.eqt.models import ExtendedQueryTag, TagStatus


def _time(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def tag_json(tag: ExtendedQueryTag, *, version_segment: str) -> dict[str, Any]:
    url = tag_url(version_segment=version_segment, path=tag.path)
    body: dict[str, Any] = {"path": tag.path, "vr": tag.vr}
    if tag.private_creator:
        body["privateCreator"] = tag.private_creator
    body |= {"level": tag.level, "status": tag.status, "queryStatus": tag.query_status}
    if tag.error_count:
        body["errors"] = {"count": tag.error_count, "href": f"{url}/errors"}
    if tag.status == TagStatus.ADDING and tag.operation_id is not None:
        body["operation"] = {
            "id": tag.operation_id.hex,
            "href": operation_url(version_segment=version_segment, operation_id=tag.operation_id),
        }
    return body


def tag_error_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "partitionName": row["partition_name"],
        "studyInstanceUid": row["study_uid"],
        "seriesInstanceUid": row["series_uid"],
        "sopInstanceUid": row["sop_uid"],
        "createdTime": _time(row["created_time"]),
        "errorMessage": row["message"],
    }
