"""Studies, series and instances in the admin: read-only worklists, QIDO search, pictures, downloads.

Deleting or changing DICOM data goes through the API (and its services, which write the change
feed and remove blobs); nothing here can add, change or delete a row.
"""

from __future__ import annotations

from studies.admin.display import filesize, list_link
from studies.admin.instances import InstanceAdmin
from studies.admin.lists import SeriesAdmin, StudyAdmin

__all__ = ["InstanceAdmin", "SeriesAdmin", "StudyAdmin", "filesize", "list_link"]
