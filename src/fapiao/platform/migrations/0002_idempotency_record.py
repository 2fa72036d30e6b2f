import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    """The idempotency record moves from ``invoices`` to ``platform`` (issue 12).

    The state takes the model over without touching the database (its table, rows and constraints
    stay as they are); 0003 then renames the table, which keeps every row.
    """

    dependencies = [
        ("platform", "0001_initial"),
        ("invoices", "0002_encrypted_buyer"),
        ("accounts", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="IdempotencyRecord",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                            ),
                        ),
                        ("key", models.CharField(max_length=255)),
                        ("request_hash", models.CharField(max_length=64)),
                        ("status", models.PositiveSmallIntegerField()),
                        ("body", models.JSONField()),
                        ("created_at", models.DateTimeField()),
                        ("expires_at", models.DateTimeField()),
                        (
                            "merchant",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="accounts.merchant",
                            ),
                        ),
                        (
                            "user",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                    ],
                    options={
                        "db_table": "invoices_idempotencyrecord",
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("merchant", "user", "key"), name="idempotency_unique_key"
                            ),
                            models.UniqueConstraint(
                                condition=models.Q(("merchant__isnull", True)),
                                fields=("user", "key"),
                                name="idempotency_unique_staff_key",
                            ),
                        ],
                    },
                ),
            ],
        ),
    ]
