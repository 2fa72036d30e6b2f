from django.db import migrations, models


class Migration(migrations.Migration):
    """Refused and unavailable answers per hour, for the operators' overview (issue 18)."""

    dependencies = [
        ("platform", "0004_ratelimit"),
    ]

    operations = [
        migrations.CreateModel(
            name="HourlyCount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("kind", models.CharField(max_length=16)),
                ("hour_start", models.BigIntegerField()),
                ("count", models.BigIntegerField(default=0)),
            ],
            options={
                "indexes": [models.Index(fields=["hour_start"], name="hourlycount_by_hour")],
                "constraints": [
                    models.UniqueConstraint(fields=("kind", "hour_start"), name="hourlycount_unique_hour")
                ],
            },
        ),
    ]
