"""QIDO-RS views: GET studies, series and instances at every level."""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlsplit

from django.conf import settings
from django.http import HttpResponse
from rest_framework.request import Request

from dicomsvc.api.mediatypes import accepts_dicom_json
from dicomsvc.api.openapi import ACCEPT, SEARCH, SEARCH_DESCRIPTION, dicom_schema
from dicomsvc.errors import NotAcceptable
from partitions.api import PartitionedView
from studies.dicom.dicomjson import json_dumps_fast
from studies.dicom.uids import uid_require
from studies.search.attributes import Resource
from studies.search.query import search_query_parse
from studies.search.selectors import SEARCHES

DICOM_JSON = "application/dicom+json"
# PS3.18 §8.3.4.4: a page that does not hold every match says so.
MORE_RESULTS = "There are additional results that can be requested."


def search_response(
    view: PartitionedView, request: Request, *, resource: Resource, study: str | None = None, series: str | None = None
) -> HttpResponse:
    """Validate, search the view's partition, render: 200 array, or 204 when nothing matches."""
    study_uid = uid_require(name="StudyInstanceUID", value=study) if study is not None else None
    series_uid = uid_require(name="SeriesInstanceUID", value=series) if series is not None else None
    if not accepts_dicom_json(request):
        raise NotAcceptable()
    query = search_query_parse(
        params=request.query_params.lists(),
        resource=resource,
        api_version=view.api_version,
        study_uid=study_uid,
        series_uid=series_uid,
    )
    page = SEARCHES[resource.level](partition=view.partition, query=query)
    if not page.results:
        response = HttpResponse(status=204)
    else:
        response = HttpResponse(json_dumps_fast(page.results), content_type=DICOM_JSON)
    if query.erroneous:
        # Microsoft's header: filters on extended query tags some instances could not be indexed for.
        response["erroneous-dicom-attributes"] = ",".join(query.erroneous)
    if page.truncated:
        host = urlsplit(settings.DICOM_PUBLIC_BASE_URL).netloc or "-"
        response["Warning"] = f'299 {host}: "{MORE_RESULTS}"'
    return response


class SearchView(PartitionedView):
    data_actions: ClassVar[dict[str, str]] = {"GET": "read"}

    resource: Resource

    @dicom_schema(
        "Search (QIDO-RS)",
        ok={200: [DICOM_JSON], 204: None},
        query=SEARCH,
        headers=[ACCEPT],
        description=SEARCH_DESCRIPTION,
    )
    def get(self, request: Request, **kwargs: Any) -> HttpResponse:
        return search_response(
            self, request, resource=self.resource, study=kwargs.get("study"), series=kwargs.get("series")
        )


class SeriesSearchView(SearchView):
    """`/series`"""

    resource = Resource.SERIES


class InstancesSearchView(SearchView):
    """`/instances`"""

    resource = Resource.INSTANCES


class StudySeriesSearchView(SearchView):
    """`/studies/{study}/series`"""

    resource = Resource.STUDY_SERIES


class StudyInstancesSearchView(SearchView):
    """`/studies/{study}/instances`"""

    resource = Resource.STUDY_INSTANCES


class SeriesInstancesSearchView(SearchView):
    """`/studies/{study}/series/{series}/instances`"""

    resource = Resource.STUDY_SERIES_INSTANCES
