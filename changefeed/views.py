"""GET /v{n}/changefeed and /v{n}/changefeed/latest (base URI only, across partitions)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar

from asgiref.sync import sync_to_async
from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.utils import OpenApiParameter
from rest_framework.request import Request

from changefeed.params import feed_query_parse, latest_query_parse
from changefeed.selectors import changefeed_latest, changefeed_list, changefeed_metadata_map, changefeed_window_list
from changefeed.wire import entry_json_text
from dicomsvc.api import openapi
from dicomsvc.api.views import DicomView

if TYPE_CHECKING:
    from changefeed.selectors import AnnotatedEntry

JSON = "application/json; charset=utf-8"
# Entries whose metadata is fetched and sent together: bounds memory, not queries (<= 20 a page).
METADATA_BATCH = 10


async def _entries_stream(
    entries: list[AnnotatedEntry], *, include_metadata: bool, base_url: str
) -> AsyncIterator[bytes]:
    fetch = sync_to_async(changefeed_metadata_map, thread_sensitive=True)
    yield b"["
    for start in range(0, len(entries), METADATA_BATCH):
        batch = entries[start : start + METADATA_BATCH]
        ids = [entry.live_instance_id for entry in batch if entry.live_instance_id is not None]
        metadata = await fetch(instance_ids=ids, base_url=base_url) if include_metadata and ids else {}
        texts = [
            entry_json_text(
                entry, metadata=None if entry.live_instance_id is None else metadata.get(entry.live_instance_id)
            )
            for entry in batch
        ]
        yield (("," if start else "") + ",".join(texts)).encode()
    yield b"]"


class ChangeFeedView(DicomView):
    data_actions: ClassVar[dict[str, str]] = {"GET": "read"}

    @openapi.dicom_schema(
        "Read the change feed",
        ok={200: [openapi.JSON]},
        errors=(400,),
        query=[
            OpenApiParameter("offset", int),
            OpenApiParameter("limit", int),
            OpenApiParameter("includeMetadata", bool),
            OpenApiParameter("startTime", description="v2: ISO 8601 date and time"),
            OpenApiParameter("endTime", description="v2: ISO 8601 date and time"),
        ],
    )
    def get(self, request: Request, **kwargs: Any) -> StreamingHttpResponse:
        query = feed_query_parse(request.query_params, api_version=self.api_version)
        if self.api_version < 2:
            entries = changefeed_list(offset=query.offset, limit=query.limit)
        else:
            entries = changefeed_window_list(start=query.start, end=query.end, offset=query.offset, limit=query.limit)
        stream = _entries_stream(entries, include_metadata=query.include_metadata, base_url=self.base_url())
        return StreamingHttpResponse(stream, content_type=JSON)


class ChangeFeedLatestView(DicomView):
    data_actions: ClassVar[dict[str, str]] = {"GET": "read"}

    @openapi.dicom_schema(
        "The latest change feed entry",
        ok={200: [openapi.JSON], 204: None},
        errors=(400,),
        query=[OpenApiParameter("includeMetadata", bool)],
    )
    def get(self, request: Request, **kwargs: Any) -> HttpResponse:
        include_metadata = latest_query_parse(request.query_params)
        entry = changefeed_latest(by_timestamp=self.api_version >= 2)
        if entry is None:
            return HttpResponse(status=204)
        metadata = None
        if include_metadata and entry.live_instance_id is not None:
            metadata = changefeed_metadata_map(instance_ids=[entry.live_instance_id], base_url=self.base_url()).get(
                entry.live_instance_id
            )
        return HttpResponse(entry_json_text(entry, metadata=metadata), content_type=JSON)
