"""Writes of studies, series and instances."""

from studies.services.delete import instances_delete
from studies.services.store import StoreOutcome, instance_store, instances_store
from studies.services.watermarks import watermarks_allocate

__all__ = ["StoreOutcome", "instance_store", "instances_store", "instances_delete", "watermarks_allocate"]
