""""DICOM administrators" also view extended query tags and their errors (issue #15).

Changing a tag's query status in the admin stays with superusers, like every write there.
"""

from __future__ import annotations

from django.contrib.auth.management import create_permissions
from django.db import migrations

MODELS = [("studies", "extendedquerytag"), ("studies", "extendedquerytagerror")]


def add_permissions(apps, schema_editor):  # noqa: ANN001, ANN201
    app_config = apps.get_app_config("studies")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
    app_config.models_module = None
    group = apps.get_model("auth", "Group").objects.filter(name="DICOM administrators").first()
    if group is None:
        return
    permission_model = apps.get_model("auth", "Permission")
    for app_label, model in MODELS:
        group.permissions.add(permission_model.objects.get(content_type__app_label=app_label, codename=f"view_{model}"))


def remove_permissions(apps, schema_editor):  # noqa: ANN001, ANN201
    group = apps.get_model("auth", "Group").objects.filter(name="DICOM administrators").first()
    if group is None:
        return
    permission_model = apps.get_model("auth", "Permission")
    for app_label, model in MODELS:
        group.permissions.remove(
            *permission_model.objects.filter(content_type__app_label=app_label, codename=f"view_{model}")
        )


class Migration(migrations.Migration):
    dependencies = [
        ("operations", "0005_operation_slice"),
        ("studies", "0007_extended_query_tags"),
    ]

    operations = [migrations.RunPython(add_permissions, remove_permissions)]
