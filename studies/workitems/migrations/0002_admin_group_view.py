""""DICOM administrators" view workitems too (the group comes from operations.0002_admin_groups).

Permissions are normally created after all migrations (post_migrate); created here first so
the group can be given the view permission on a fresh database.
"""

from __future__ import annotations

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "DICOM administrators"


def grant_view(apps, schema_editor):  # noqa: ANN001, ANN201
    app_config = apps.get_app_config("workitems")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
    app_config.models_module = None
    group, _ = apps.get_model("auth", "Group").objects.get_or_create(name=GROUP)
    permission = apps.get_model("auth", "Permission").objects.get(
        content_type__app_label="workitems", codename="view_workitem"
    )
    group.permissions.add(permission)


def revoke_view(apps, schema_editor):  # noqa: ANN001, ANN201
    permission = apps.get_model("auth", "Permission").objects.filter(
        content_type__app_label="workitems", codename="view_workitem"
    )
    for group in apps.get_model("auth", "Group").objects.filter(name=GROUP):
        group.permissions.remove(*permission)


class Migration(migrations.Migration):
    dependencies = [
        ("workitems", "0001_initial"),
        ("operations", "0002_admin_groups"),
    ]

    operations = [migrations.RunPython(grant_view, revoke_view)]
