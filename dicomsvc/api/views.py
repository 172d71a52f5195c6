"""The base view carrying DICOMweb plumbing: API version, query guard, supported-versions header."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.http import HttpResponseBase
from rest_framework.request import Request
from rest_framework.views import APIView

from dicomsvc.audit import audit_headers
from dicomsvc.errors import InvalidQueryString

SUPPORTED_VERSIONS = "1.0-prerelease, 1, 2"


class DicomView(APIView):
    """Every versioned DICOMweb view.

    Views of resources that live in a partition extend `partitions.api.PartitionedView`;
    the ones at the base URI only (change feed, operations, partitions list) extend this
    and are never mounted under /partitions/.

    Each view declares the data action each of its methods needs (`dicomsvc.api.roles`), e.g.
    `{"GET": "read", "POST": "write"}`; with authentication on, a method without one is refused.
    """

    data_actions: ClassVar[dict[str, str]]
    api_version: int
    version_segment: str

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # authentication and data-action permission
        audit_headers(request.META)  # 400 for too many or too long custom audit headers, as Microsoft
        query = request.META.get("QUERY_STRING", "")
        if "<" in query or "%3c" in query.lower():
            raise InvalidQueryString()
        self.version_segment = kwargs.get("version", "2")
        self.api_version = 1 if self.version_segment.startswith("1") else 2

    # DRF finalizes any HttpResponseBase a handler returns (streams too); its stub says Response.
    def finalize_response(  # type: ignore[override]
        self, request: Request, response: Any, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        finalized: HttpResponseBase = super().finalize_response(request, response, *args, **kwargs)
        finalized["api-supported-versions"] = SUPPORTED_VERSIONS
        return finalized

    def base_url(self) -> str:
        """Absolute URL prefix of this version's DICOMweb resources, never from the Host header."""
        return f"{settings.DICOM_PUBLIC_BASE_URL}/v{self.version_segment}"
