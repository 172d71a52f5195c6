"""Staff groups for the admin console.

- "DICOM administrators": view everything in the console (partitions, studies, series,
  instances and their files, change feed, operations).
- "Operations": view the change feed and operations only.

Nobody gets add/change/delete on DICOM data: the admin is read-only, writes go through the
API. Permissions are normally created after all migrations (post_migrate); they are
created here first so the groups can be filled on a fresh database.
"""

from __future__ import annotations

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUPS = {
    "DICOM administrators": [
        ("partitions", "partition"),
        ("studies", "study"),
        ("studies", "series"),
        ("studies", "instance"),
        ("changefeed", "changefeedentry"),
        ("operations", "operation"),
    ],
    "Operations": [
        ("changefeed", "changefeedentry"),
        ("operations", "operation"),
    ],
}


def create_groups(apps, schema_editor):  # noqa: ANN001, ANN201
    for label in sorted({label for models in GROUPS.values() for label, _ in models}):
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0, using=schema_editor.connection.alias)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for name, models in GROUPS.items():
        group, _ = group_model.objects.get_or_create(name=name)
        for app_label, model in models:
            group.permissions.add(
                permission_model.objects.get(content_type__app_label=app_label, codename=f"view_{model}")
            )


def remove_groups(apps, schema_editor):  # noqa: ANN001, ANN201
    apps.get_model("auth", "Group").objects.filter(name__in=GROUPS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("partitions", "0002_default_partition"),
        ("studies", "0001_initial"),
        ("changefeed", "0002_uid_search_indexes"),
        ("operations", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
