"""django.contrib.admin with our site (a module apart: INSTALLED_APPS imports it before models load)."""

from __future__ import annotations

from django.contrib.admin.apps import AdminConfig


class DicomAdminConfig(AdminConfig):
    default_site = "dicomsvc.adminsite.DicomAdminSite"
