from django.db import migrations


class Migration(migrations.Migration):
    """The moved table takes its new app's name (a rename: every row stays)."""

    dependencies = [
        ("platform", "0002_idempotency_record"),
        ("invoices", "0003_idempotency_record_moved"),
    ]

    operations = [migrations.AlterModelTable(name="idempotencyrecord", table=None)]
