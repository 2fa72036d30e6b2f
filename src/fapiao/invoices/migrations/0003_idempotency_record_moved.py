from django.db import migrations


class Migration(migrations.Migration):
    """The idempotency record now belongs to ``platform`` (its 0002 took it over): state only."""

    dependencies = [
        ("invoices", "0002_encrypted_buyer"),
        ("platform", "0002_idempotency_record"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[migrations.DeleteModel(name="IdempotencyRecord")],
        ),
    ]
