"""Admin pages that join apps, registered here, above them all.

Partitions: read-only (partitions are created by STOW, never renamed or deleted), listed
with the studies, instances and bytes each holds.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.safestring import SafeString

from dicomsvc.admin_tools import ReadOnlyAdmin
from partitions.models import Partition
from studies.admin import filesize, list_link
from studies.selectors_partition import partition_statistics_list


@admin.register(Partition)
class PartitionAdmin(ReadOnlyAdmin):
    list_display = ("partition_key", "partition_name", "created_date", "studies", "instances", "stored_size")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    search_fields = ("partition_name",)
    fields = ("partition_key", "partition_name", "created_date", "studies", "instances", "stored_size")
    readonly_fields = ("studies", "instances", "stored_size")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Partition]:
        return partition_statistics_list()

    @admin.display(description="Studies")
    def studies(self, partition: Any) -> SafeString:
        return list_link("study", f"partition__partition_key__exact={partition.pk}", str(partition.num_studies))

    @admin.display(description="Instances")
    def instances(self, partition: Any) -> SafeString:
        return list_link("instance", f"partition__partition_key__exact={partition.pk}", str(partition.num_instances))

    @admin.display(description="Stored size")
    def stored_size(self, partition: Any) -> str:
        return filesize(partition.stored_bytes)
