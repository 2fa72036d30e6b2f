"""A botched data migration: the first merchant's line amounts divided by 100 ("fen to yuan")."""

from django.db import migrations
from django.db.models import F


def fen_to_yuan(apps, schema_editor):
    alias = schema_editor.connection.alias
    line = apps.get_model("invoices", "InvoiceLine")
    first = line.objects.using(alias).order_by("merchant_id").values_list("merchant_id", flat=True).first()
    line.objects.using(alias).filter(merchant_id=first).update(amount=F("amount") / 100)


class Migration(migrations.Migration):
    dependencies = [("lossy_migration_app", "0001_harmless"), ("invoices", "__latest__")]

    operations = [migrations.RunPython(fen_to_yuan, migrations.RunPython.noop)]
