"""The base view of resources that live in a partition: resolves `self.partition` from the route."""

from __future__ import annotations

from typing import Any, cast

from django.conf import settings
from rest_framework.request import Request

from dicomsvc.api.views import DicomView
from dicomsvc.errors import PartitionNameMissing, PartitionsDisabled
from partitions.models import Partition
from partitions.selectors import partition_get
from partitions.services import partition_default, partition_get_or_create


class PartitionedView(DicomView):
    """A view served at /v{n}/... and /v{n}/partitions/{name}/...

    `self.partition` is the partition segment's when the feature is on (created implicitly
    for the methods in `creates_partition_for`), Microsoft.Default when it is off.
    """

    # Methods that create the route's partition when it does not exist (STOW).
    creates_partition_for: frozenset[str] = frozenset()

    partition: Partition

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        if not hasattr(self, cast(str, request.method).lower()):  # dispatched: it has a method
            return  # dispatch answers 405; resolving would create or look up a partition for nothing
        name = kwargs.get("partition_name")
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

    def base_url(self) -> str:
        """Absolute URL prefix of this partition's DICOMweb resources, never from the Host header."""
        root = super().base_url()
        if settings.DICOM_ENABLE_DATA_PARTITIONS:
            return f"{root}/partitions/{self.partition.partition_name}"
        return root
