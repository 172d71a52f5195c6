"""Extended query tags: add them through the API and run their reindex as a worker would."""

from __future__ import annotations

from typing import Any

from django.test import override_settings

from operations.models import Operation
from operations.runner import operation_run


def tag_entry(path: str, level: str, *, vr: str | None = None, private_creator: str | None = None) -> dict[str, str]:
    entry = {"path": path, "level": level}
    if vr is not None:
        entry["vr"] = vr
    if private_creator is not None:
        entry["privateCreator"] = private_creator
    return entry


def add_tags(client: Any, *entries: Any, version: str = "v2") -> Any:
    """POST extendedquerytags with `entries` (a JSON array)."""
    return client.post(f"/{version}/extendedquerytags", data=list(entries), format="json")


def reindex(response: Any) -> Operation:
    """Run the reindex an accepted add request created, to its end, as the worker would.

    With a cache lifetime of 0 the run need not wait for other processes' tag caches.
    """
    assert response.status_code == 202, response.content
    with override_settings(DICOM_EXTENDED_QUERY_TAG_CACHE_MS=0):
        operation_run(operation_id=response.json()["id"])
    return Operation.objects.get(pk=response.json()["id"])


def tags_ready(client: Any, *entries: Any) -> Operation:
    """Add the tags and reindex: searchable from now on."""
    return reindex(add_tags(client, *entries))
