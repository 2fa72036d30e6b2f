"""Fails: `fapiao migrate` ends with this error, after naming what 0003 changed."""

from django.db import migrations


def fail(apps, schema_editor):
    raise RuntimeError("this migration fails on purpose")


class Migration(migrations.Migration):
    dependencies = [("lossy_migration_app", "0003_second_merchant_loses_a_line")]

    operations = [migrations.RunPython(fail, migrations.RunPython.noop)]
