from django.db import migrations, models


class Migration(migrations.Migration):
    """The rate limiter's fixed-window counters, shared by every server process (issue 13)."""

    dependencies = [("platform", "0003_idempotency_table_name")]

    operations = [
        migrations.CreateModel(
            name="RateCounter",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("scope", models.CharField(max_length=40)),
                ("key", models.CharField(max_length=200)),
                ("window_start", models.BigIntegerField()),
                ("window_end", models.BigIntegerField()),
                ("count", models.BigIntegerField(default=0)),
            ],
            options={
                "indexes": [models.Index(fields=["window_end"], name="ratecounter_by_end")],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("scope", "key", "window_start"), name="ratecounter_unique_window"
                    )
                ],
            },
        ),
    ]
