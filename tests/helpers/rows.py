"""Rows as a crash leaves them, made directly in the database."""

from __future__ import annotations

from partitions.models import Partition
from studies.models import Instance, InstanceStatus, Study
from tests.helpers.dicom import uids_of


def creating_instance(data: bytes, *, watermark: int) -> Instance:
    """An instance row still `creating` (its request died before the commit) in the default partition,
    with its study and series rows; no blob."""
    st, se, sop = uids_of(data)
    partition = Partition.objects.get(partition_key=1)
    study = Study.objects.create(partition=partition, study_instance_uid=st)
    series = study.series.create(partition=partition, series_instance_uid=se)
    return Instance.objects.create(
        partition=partition, study=study, series=series, study_instance_uid=st, series_instance_uid=se,
        sop_instance_uid=sop, watermark=watermark, status=InstanceStatus.CREATING,
    )  # fmt: skip
