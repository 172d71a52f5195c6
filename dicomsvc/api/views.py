"""The base view carrying DICOMweb plumbing: API version, partition scoping, query guard."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpResponseBase
from rest_framework.request import Request
from rest_framework.views import APIView

from dicomsvc.errors import InvalidQueryString, PartitionNameMissing, PartitionsDisabled
from partitions.models import Partition
from partitions.selectors import partition_get
from partitions.services import partition_default, partition_get_or_create

SUPPORTED_VERSIONS = "1.0-prerelease, 1, 2"


class DicomView(APIView):
    """Every versioned DICOMweb view.

    `partitioned` views resolve `self.partition` from the route: the partition segment when
    the feature is on (created implicitly where `creates_partition`), Microsoft.Default when
    it is off. Unpartitioned views (change feed, operations, partitions list) must not be
    mounted under /partitions/.
    """

    partitioned = True
    # Methods that create the route's partition when it does not exist (STOW).
    creates_partition_for: frozenset[str] = frozenset()

    api_version: int
    version_segment: str
    partition: Partition

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        query = request._request.META.get("QUERY_STRING", "")
        if "<" in query or "%3c" in query.lower():
            raise InvalidQueryString()
        self.version_segment = kwargs.get("version", "2")
        self.api_version = 1 if self.version_segment.startswith("1") else 2
        name = kwargs.get("partition_name")
        if not self.partitioned:
            return
        if not settings.DICOM_ENABLE_DATA_PARTITIONS:
            if name is not None:
                raise PartitionsDisabled()
            self.partition = partition_default()
            return
        if name is None:
            raise PartitionNameMissing()
        if request.method in self.creates_partition_for:
            self.partition = partition_get_or_create(name=name)
        else:
            self.partition = partition_get(name=name)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> HttpResponseBase:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["api-supported-versions"] = SUPPORTED_VERSIONS
        return response

    def base_url(self) -> str:
        """Absolute URL prefix of this partition's DICOMweb resources, never from the Host header."""
        root = f"{settings.DICOM_PUBLIC_BASE_URL}/v{self.version_segment}"
        if settings.DICOM_ENABLE_DATA_PARTITIONS and self.partitioned:
            return f"{root}/partitions/{self.partition.partition_name}"
        return root
