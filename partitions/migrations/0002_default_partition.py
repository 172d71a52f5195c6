from django.db import migrations


def create_default(apps, schema_editor):
    Partition = apps.get_model("partitions", "Partition")
    Partition.objects.get_or_create(partition_key=1, defaults={"partition_name": "Microsoft.Default"})
    if schema_editor.connection.vendor == "postgresql":
        # The explicit key 1 did not advance the serial; the next partition must get 2.
        schema_editor.execute(
            "SELECT setval(pg_get_serial_sequence('partitions_partition', 'partition_key'), "
            "(SELECT MAX(partition_key) FROM partitions_partition))"
        )


class Migration(migrations.Migration):
    dependencies = [("partitions", "0001_initial")]

    operations = [migrations.RunPython(create_default, migrations.RunPython.noop)]
