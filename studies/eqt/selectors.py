"""Reads of extended query tag definitions and their errors (the API and the admin)."""

from __future__ import annotations

from typing import Any

from django.db.models import F

from dicomsvc.errors import ExtendedQueryTagNotFound
from studies.eqt.models import ExtendedQueryTag, ExtendedQueryTagError
from studies.eqt.paths import tag_path, tag_path_parse


def tag_get(*, path: str) -> ExtendedQueryTag:
    """The tag named by `path` (hex or keyword): 400 when unparseable, 404 when not defined."""
    tag = ExtendedQueryTag.objects.filter(path=tag_path(tag_path_parse(path))).first()
    if tag is None:
        raise ExtendedQueryTagNotFound(path)
    return tag


def tags_page(*, limit: int, offset: int) -> list[ExtendedQueryTag]:
    return list(ExtendedQueryTag.objects.order_by("pk")[offset : offset + limit])


def tag_errors_page(*, path: str, limit: int, offset: int) -> list[dict[str, Any]]:
    """A page of the tag's errors, oldest first, with the instance they are about."""
    tag = tag_get(path=path)
    rows = (
        ExtendedQueryTagError.objects.filter(tag=tag)
        .order_by("pk")
        .values(
            "created_time",
            "message",
            partition_name=F("instance__partition__partition_name"),
            study_uid=F("instance__study_instance_uid"),
            series_uid=F("instance__series_instance_uid"),
            sop_uid=F("instance__sop_instance_uid"),
        )[offset : offset + limit]
    )
    return [dict(row) for row in rows]
