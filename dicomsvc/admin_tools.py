"""Admin plumbing for million-row tables, shared by every app's admin.py.

- `NoCountPaginator`: never runs COUNT(*). It reads the requested page plus one row, so
  the change list knows whether another page follows; the page list ends one page
  after the current one.
- `LargeTableAdmin`: that paginator, no full result count, no facet counts, no
  "show all", no sorting on unindexed columns, and an exact UID search (UIDs are compared
  exactly everywhere) that a subclass can scope so composite indexes serve it
  (`partitions.admin_tools.PartitionedTableAdmin`: the (partition, uid) indexes).
- `ListErrorsAdmin`: every list of the console says on its page why it shows nothing.
- `ReadOnlyAdmin`: DICOM data is changed through the API and its services only.
- `attribute_rows`: DICOM JSON as rows a person can read (tag, keyword, VR, value; sequences
  indented), for the attribute tables of instances and workitems.

A filter or page the list cannot show is said on the page (an error message above an empty
list, the filters kept), never answered with Django's redirect to `?e=1` and the whole list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import PAGE_VAR, ChangeList
from django.core.paginator import EmptyPage, Page, Paginator
from django.db.models import Model, Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from pydicom.datadict import keyword_for_tag

# Matches per searched-for value that a search resolves through a related table.
SEARCH_RESOLVE_LIMIT = 1000


class NoCountPaginator(Paginator):
    """Pagination without COUNT(*): `count` is a lower bound, exact on the last page."""

    no_count = True

    def __init__(self, object_list: Any, per_page: int, orphans: int = 0, allow_empty_first_page: bool = True,
                 *, page_number: int = 1) -> None:
        super().__init__(object_list, per_page, 0, allow_empty_first_page)
        self.page_number = max(page_number, 1)

    @cached_property
    def _rows(self) -> list[Any]:
        start = (self.page_number - 1) * self.per_page
        return list(self.object_list[start : start + self.per_page + 1])

    @cached_property
    def count(self) -> int:
        return (self.page_number - 1) * self.per_page + len(self._rows)

    @property
    def has_more(self) -> bool:
        return len(self._rows) > self.per_page

    @property
    def has_rows(self) -> bool:
        return bool(self._rows)

    def page(self, number: Any) -> Page:
        if number != self.page_number:
            return super().page(number)
        # The requested page, from the rows read already. Past the end it is empty, and the
        # change list says so: validating it would raise EmptyPage, which Django's change list
        # answers with a redirect to `?e=1` and the whole list.
        # Django documents `_get_page` as the hook that builds a Page; django-stubs omits it.
        page: Page = self._get_page(self._rows[: self.per_page], number, self)  # type: ignore[attr-defined]
        return page


class PastEndPaginator(Paginator):
    """Django's paginator (it counts: for small tables), except that a page past the end is an
    empty page, which the change list says is past the end, instead of EmptyPage (which Django's
    change list answers with a redirect to `?e=1` and the whole list)."""

    def validate_number(self, number: Any) -> int:
        try:
            return super().validate_number(number)
        except EmptyPage:
            if isinstance(number, int) and number > 1:
                return number
            raise


def _past_end(paginator: Paginator, number: int) -> bool:
    """Whether the requested page `number` lies past the end of the list."""
    if isinstance(paginator, NoCountPaginator):
        return paginator.page_number > 1 and not paginator.has_rows
    return number > paginator.num_pages


class ShownWhenUsedRelatedFilter(admin.RelatedFieldListFilter):
    """Django hides a relation's filter that has one choice (the partition filter of a server
    with one partition) and drops the value given for it: `?partition__partition_key__exact=999`
    would show the whole list. Shown, and applied, while a value is given."""

    def has_output(self) -> bool:
        return super().has_output() or bool(self.used_parameters)


# What a "watermark" is, for the admin pages that show one.
WATERMARK_HELP = (
    "The watermark: a server-wide number given to every stored or updated file. It names the file on disk "
    "and appears in the change feed; a higher number is a later version."
)


def explained(value: object, help_text: str) -> SafeString:
    """A value with a short explanation under it."""
    return format_html('{} <span class="help">{}</span>', value, help_text)


def list_error(request: HttpRequest, message: str) -> None:
    """Say on the list's page why it shows nothing."""
    messages.error(request, message)


class ErrorsOnPageChangeList(ChangeList):
    """An invalid filter, search or page: an error message above an empty list."""

    def get_queryset(self, request: HttpRequest, exclude_parameters: Any = None) -> QuerySet[Any]:
        try:
            if any("\x00" in value for _name, values in request.GET.lists() for value in values):
                # Nothing stored holds one, and PostgreSQL's text refuses it in a query.
                raise IncorrectLookupParameters("a value holds a NUL character (%00).")
            return super().get_queryset(request, exclude_parameters)
        except IncorrectLookupParameters as exc:
            list_error(request, f"Invalid filter: {exc}" if str(exc) else "Invalid filter.")
            # Filters that failed before being built are shown as none.
            for name, empty in (("filter_specs", []), ("has_filters", False), ("has_active_filters", True)):
                if getattr(self, name, None) is None:
                    setattr(self, name, empty)
            self.clear_all_filters_qs = "?"
            return self.root_queryset.none()

    def get_results(self, request: HttpRequest) -> None:
        raw = request.GET.get(PAGE_VAR, "1")
        if _page_number(request) is None:
            list_error(request, f"Invalid page number '{raw}'.")
            self.queryset = self.queryset.none()
        super().get_results(request)
        paginator = self.paginator
        if _past_end(paginator, self.page_num):
            list_error(request, f"There is no page {self.page_num} of this list: it ends before it.")
            self.result_list = []
            # No page links (a list without COUNT knows the pages before exist, not how many).
            self.multi_page = False
            return
        # Django re-runs the whole query when everything fits on one page; a paginator
        # without COUNT has read those rows already.
        if isinstance(paginator, NoCountPaginator) and not self.multi_page and paginator.page_number == 1:
            self.result_list = paginator.page(1).object_list


def _page_number(request: HttpRequest) -> int | None:
    """The requested page (1 when none is asked for); None when `p` is not a page number."""
    try:
        number = int(request.GET.get(PAGE_VAR, 1))
    except ValueError:
        return None
    return number if number >= 1 else None


class ListErrorsAdmin(admin.ModelAdmin):
    """A list that says on its page why it shows nothing (an invalid filter, search or page),
    never Django's redirect to `?e=1` with the whole list, and applies a relation's filter the
    sidebar does not show."""

    def get_paginator(self, request: HttpRequest, queryset: Any, per_page: int, orphans: int = 0,
                      allow_empty_first_page: bool = True) -> Paginator:
        return PastEndPaginator(queryset, per_page, orphans, allow_empty_first_page)

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ErrorsOnPageChangeList

    def get_list_filter(self, request: HttpRequest) -> list[Any]:
        def shown_when_used(spec: Any) -> Any:
            if isinstance(spec, str) and "__" not in spec and self.model._meta.get_field(spec).is_relation:
                return (spec, ShownWhenUsedRelatedFilter)
            return spec

        return [shown_when_used(spec) for spec in super().get_list_filter(request)]


class ReadOnlyAdmin(ListErrorsAdmin):
    """Viewable by staff with the `view_` permission; nobody adds, changes or deletes here."""

    # Nothing is edited, so the History button would always open an empty page.
    change_form_template = "admin/readonly_change_form.html"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class LargeTableAdmin(ReadOnlyAdmin):
    """A read-only change list whose cost does not grow with the table.

    `uid_search_fields` are compared exactly with the search term, each together with the
    lookups of `uid_search_scope` so an index on (scope, uid) serves it. `related_search`
    maps a foreign key to fields of the related model searched the same way (resolved to
    ids first, so each arm of the OR stays an index lookup).
    """

    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    list_max_show_all = 0
    list_per_page = 50
    sortable_by: ClassVar[list[str] | tuple[str, ...] | None] = ()
    uid_search_fields: Sequence[str] = ()
    related_search: dict[str, tuple[type[Model], Sequence[str]]] = {}

    def get_paginator(self, request: HttpRequest, queryset: Any, per_page: int, orphans: int = 0,
                      allow_empty_first_page: bool = True) -> Paginator:
        return NoCountPaginator(queryset, per_page, page_number=_page_number(request) or 1)

    def get_search_fields(self, request: HttpRequest) -> tuple[str, ...]:
        # Non-empty so the change list shows its search box; the matching is ours.
        return ("uid",) if self.uid_search_fields or self.related_search else ()

    def uid_search_scope(self) -> dict[str, Any]:
        """Lookups added to every exact UID match (none here)."""
        return {}

    def get_search_results(self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
                           ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        scope = self.uid_search_scope()
        match = Q(pk__in=[])
        for field in self.uid_search_fields:
            match |= Q(**scope, **{field: term})
        for foreign_key, (model, fields) in self.related_search.items():
            related = Q(pk__in=[])
            for field in fields:
                related |= Q(**scope, **{field: term})
            ids = list(model._default_manager.filter(related).values_list("pk", flat=True)[:SEARCH_RESOLVE_LIMIT])
            if ids:
                match |= Q(**{f"{foreign_key}__in": ids})
        return queryset.filter(match), False


# Longer values are cut for display (the API returns them whole).
MAX_VALUE_CHARS = 300


@dataclass(frozen=True)
class AttributeRow:
    depth: int
    tag: str
    keyword: str
    vr: str
    value: str


def _tag_label(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _keyword(tag: int) -> str:
    if (tag >> 16) % 2:
        return "(private)"
    return keyword_for_tag(tag) or "(unknown)"


def _tag_text(value: Any) -> str:
    try:
        tag = int(str(value), 16)
    except ValueError:
        return str(value)
    return f"{_tag_label(tag)} {_keyword(tag)}"


def _value_text(vr: str, element: dict[str, Any]) -> str:
    if "InlineBinary" in element:
        return f"(binary, {len(element['InlineBinary']) * 3 // 4} bytes)"
    if "BulkDataURI" in element:
        return f"(bulk data at {element['BulkDataURI']})"
    values = element.get("Value", [])
    if vr == "AT":
        # A tag pointer: shown as the tag it names, with that tag's keyword.
        texts = [_tag_text(v) for v in values]
    elif vr == "PN":
        texts = ["=".join(v.get(k, "") for k in ("Alphabetic", "Ideographic", "Phonetic")).rstrip("=") for v in values]
    else:
        texts = ["" if v is None else str(v) for v in values]
    text = "\\".join(texts)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def attribute_rows(dataset: dict[str, Any], depth: int = 0) -> list[AttributeRow]:
    """Rows in tag order; each sequence item is a marker row followed by its attributes."""
    rows: list[AttributeRow] = []
    for key in sorted(dataset):
        element = dataset[key]
        tag = int(key, 16)
        vr = element.get("vr", "")
        if vr == "SQ":
            items = element.get("Value", [])
            rows.append(AttributeRow(depth, _tag_label(tag), _keyword(tag), vr, f"{len(items)} item(s)"))
            for number, item in enumerate(items, start=1):
                rows.append(AttributeRow(depth + 1, "", f"Item {number}", "", ""))
                rows.extend(attribute_rows(item or {}, depth + 1))
        else:
            rows.append(AttributeRow(depth, _tag_label(tag), _keyword(tag), vr, _value_text(vr, element)))
    return rows
