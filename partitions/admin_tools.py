"""Admin plumbing for tables whose rows live in a partition."""

from __future__ import annotations

from typing import Any

from dicomsvc.admin_tools import LargeTableAdmin
from partitions.models import Partition


class PartitionedTableAdmin(LargeTableAdmin):
    """A large table with a `partition` key: the UID search names every known partition, so
    the (partition, uid) indexes serve each lookup (partitions are few)."""

    def uid_search_scope(self) -> dict[str, Any]:
        return {"partition_id__in": list(Partition.objects.values_list("pk", flat=True))}
