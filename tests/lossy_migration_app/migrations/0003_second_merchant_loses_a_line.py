"""Deletes the second merchant's newest invoice line, and is applied (its own transaction commits)."""

from django.db import migrations


def lose_a_line(apps, schema_editor):
    alias = schema_editor.connection.alias
    line = apps.get_model("invoices", "InvoiceLine")
    merchants = line.objects.using(alias).order_by("merchant_id").values_list("merchant_id", flat=True)
    second = sorted(set(merchants))[1]
    line.objects.using(alias).filter(merchant_id=second).order_by("-pk").first().delete()


class Migration(migrations.Migration):
    dependencies = [("lossy_migration_app", "0002_fen_to_yuan")]

    operations = [migrations.RunPython(lose_a_line, migrations.RunPython.noop)]
