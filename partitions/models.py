from __future__ import annotations

from django.core.validators import RegexValidator
from django.db import models

DEFAULT_PARTITION_NAME = "Microsoft.Default"
DEFAULT_PARTITION_KEY = 1
# `.` and `..` are path segments a URL normaliser (a proxy, a client library) would resolve
# away, so a partition of that name could not be addressed.
PARTITION_NAME_PATTERN = r"^(?!\.\.?\Z)[A-Za-z0-9._-]{1,64}\Z"


class Partition(models.Model):
    """A named, isolated namespace for DICOM UIDs; the same UIDs may exist in two partitions."""

    partition_key = models.AutoField(primary_key=True)
    partition_name = models.CharField(
        max_length=64,
        unique=True,
        validators=[RegexValidator(PARTITION_NAME_PATTERN)],
    )
    created_date = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["partition_key"]

    def __str__(self) -> str:
        return self.partition_name
