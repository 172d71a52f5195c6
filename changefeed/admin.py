"""The change feed in the admin: filters, exact UID search, links, JSON-lines export; no COUNT(*)."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from changefeed.models import ChangeAction, ChangeFeedEntry, ChangeState
from changefeed.selectors import changefeed_queryset, changefeed_state_q
from changefeed.wire import entry_json_text
from dicomsvc.admin_tools import WATERMARK_HELP, explained, list_error
from partitions.admin_tools import PartitionedTableAdmin
from studies.admin import list_link

if TYPE_CHECKING:
    from changefeed.selectors import AnnotatedEntry

EXPORT_BATCH = 1000


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(state.value, state.label) for state in ChangeState]

    def queryset(self, request: HttpRequest, queryset: QuerySet[ChangeFeedEntry]) -> QuerySet[ChangeFeedEntry]:
        value = self.value()
        if value is None:
            return queryset
        if value not in ChangeState.values:
            states = ", ".join(ChangeState.values)
            list_error(request, f"Invalid filter: '{value}' is not a state (one of {states}).")
            return queryset.none()
        return queryset.filter(changefeed_state_q(state=ChangeState(value)))


class TimeRangeFilter(admin.ListFilter):
    """`since` <= timestamp < `until`, typed into two fields (UTC, or with an explicit offset)."""

    title = "time range"
    template = "admin/changefeed/time_range_filter.html"
    names = ("since", "until")

    def __init__(self, request: HttpRequest, params: dict[str, list[str]], model: Any, model_admin: Any) -> None:
        super().__init__(request, params, model, model_admin)
        self.bounds: dict[str, dt.datetime] = {}
        self.errors: list[str] = []
        for name in self.names:
            if name not in params:
                continue
            raw = params.pop(name)[-1].strip()
            self.used_parameters[name] = raw
            if not raw:
                continue
            try:
                value = dt.datetime.fromisoformat(raw)
            except ValueError:
                self.errors.append(f"'{raw}' is not a time for {name} (ISO 8601, e.g. 2024-03-01T10:00).")
                continue
            self.bounds[name] = value if value.tzinfo else timezone.make_aware(value, dt.UTC)

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str | None]:
        return list(self.names)

    def queryset(self, request: HttpRequest, queryset: QuerySet[ChangeFeedEntry]) -> QuerySet[ChangeFeedEntry]:
        if self.errors:
            for error in self.errors:
                list_error(request, f"Invalid filter: {error}")
            return queryset.none()
        if "since" in self.bounds:
            queryset = queryset.filter(timestamp__gte=self.bounds["since"])
        if "until" in self.bounds:
            queryset = queryset.filter(timestamp__lt=self.bounds["until"])
        return queryset

    # django-stubs wants an Iterator; Django only iterates what `choices` returns.
    def choices(self, changelist: Any) -> list[dict[str, Any]]:  # type: ignore[override]
        keep = changelist.get_filters_params()
        hidden = [(name, value) for name, values in keep.items() if name not in self.names for value in values]
        if changelist.query:
            hidden.append(("q", changelist.query))
        return [{
            "since": self.used_parameters.get("since", ""),
            "until": self.used_parameters.get("until", ""),
            "hidden": hidden,
            "clear_url": changelist.get_query_string(remove=list(self.names)),
        }]


async def _json_lines(queryset: QuerySet[AnnotatedEntry]) -> AsyncIterator[bytes]:
    """Batches by sequence (keyset, no server-side cursor), so memory stays flat."""

    def batch_after(last: int) -> list[AnnotatedEntry]:
        return list(queryset.filter(sequence__gt=last).order_by("sequence")[:EXPORT_BATCH])

    fetch = sync_to_async(batch_after, thread_sensitive=True)
    last = -1
    while batch := await fetch(last):
        yield "".join(entry_json_text(entry) + "\n" for entry in batch).encode()
        last = batch[-1].sequence


@admin.register(ChangeFeedEntry)
class ChangeFeedEntryAdmin(PartitionedTableAdmin):
    list_display = ("sequence", "time", "action", "state_badge", "partition", "uids", "instance_link")
    list_filter = ("action", StateFilter, "partition", TimeRangeFilter)
    list_select_related = ("partition",)
    ordering = ("-sequence",)
    uid_search_fields = ("study_instance_uid", "series_instance_uid", "sop_instance_uid")
    search_help_text = "Exact StudyInstanceUID, SeriesInstanceUID or SOPInstanceUID."
    actions = ["export_json_lines"]
    fields = ("sequence", "timestamp", "action", "state_badge", "partition", "uids", "version", "instance_link")
    readonly_fields = ("state_badge", "uids", "uid_links", "version", "instance_link", "instance_state")

    def get_queryset(self, request: HttpRequest) -> QuerySet[ChangeFeedEntry]:
        return changefeed_queryset()

    def get_list_display(self, request: HttpRequest) -> Any:
        return self._linkable(request, self.list_display)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return self._linkable(request, self.fields)

    @staticmethod
    def _linkable(request: HttpRequest, names: Any) -> tuple[str, ...]:
        """Links to studies, series and instances only for staff who may open them (not the
        Operations group)."""
        if request.user.has_perm("studies.view_instance"):
            return tuple("uid_links" if name == "uids" else name for name in names)
        return tuple("instance_state" if name == "instance_link" else name for name in names)

    @admin.display(description="Time (UTC)")
    def time(self, entry: ChangeFeedEntry) -> str:
        return entry.timestamp.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]

    @admin.display(description="Study / series / SOP instance UID")
    def uids(self, entry: ChangeFeedEntry) -> SafeString:
        return format_html(
            '<span class="uid">{}<br>{}<br>{}</span>',
            entry.study_instance_uid, entry.series_instance_uid, entry.sop_instance_uid,
        )

    @admin.display(description="Study / series / SOP instance UID")
    def uid_links(self, entry: ChangeFeedEntry) -> SafeString:
        """Each UID links to its list searched for it (the exact-UID search, index-backed)."""
        links = [
            list_link(model, f"q={uid}", uid)
            for model, uid in (("study", entry.study_instance_uid), ("series", entry.series_instance_uid),
                               ("instance", entry.sop_instance_uid))
        ]
        return format_html('<span class="uid">{}<br>{}<br>{}</span>', *links)

    @admin.display(description="Version")
    def version(self, entry: ChangeFeedEntry) -> SafeString:
        return explained(entry.watermark, WATERMARK_HELP)

    @admin.display(description="State")
    def state_badge(self, entry: Any) -> SafeString:
        return format_html('<span class="feed-state feed-state-{}">{}</span>', entry.state, entry.state)

    @admin.display(description="Instance")
    def instance_link(self, entry: Any) -> SafeString | str:
        instance = "—"
        if entry.live_instance_id is not None:
            url = reverse("admin:studies_instance_change", args=[entry.live_instance_id])
            instance = format_html('<a href="{}">view instance</a>', url)
        return format_html("{}{}", instance, self.operation_link(entry))

    @staticmethod
    def operation_link(entry: Any) -> SafeString:
        """An update entry links to the bulk update that wrote it (found when followed)."""
        if entry.action != ChangeAction.UPDATE:
            return SafeString("")
        url = reverse("admin:operations_operation_for_change", args=[entry.sequence])
        return format_html('<br><a href="{}">view operation</a>', url)

    @admin.display(description="Instance")
    def instance_state(self, entry: Any) -> SafeString:
        return format_html("{}{}", "stored" if entry.live_instance_id is not None else "—", self.operation_link(entry))

    @admin.action(description="Export these entries as JSON lines")
    def export_json_lines(self, request: HttpRequest, queryset: QuerySet[AnnotatedEntry]) -> StreamingHttpResponse:
        response = StreamingHttpResponse(_json_lines(queryset), content_type="application/x-ndjson")
        stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
        response["Content-Disposition"] = f'attachment; filename="changefeed-{stamp}.jsonl"'
        return response
