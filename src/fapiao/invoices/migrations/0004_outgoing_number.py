"""The reference table of outgoing (销项) invoice numbers, filled from the invoices already stored.

Each outgoing number is registered to one merchant: the merchant whose number segment covers it
when that merchant holds the invoice, otherwise the merchant of its earliest row.  A number found
under two merchants (a restore of another merchant's number, before this table existed) is thus
registered to one of them, and ``ledger verify`` reports the other's invoice.
"""

import django.db.models.deletion
from django.db import migrations, models


def register_existing(apps, schema_editor):
    Invoice = apps.get_model("invoices", "Invoice")
    OutgoingNumber = apps.get_model("invoices", "OutgoingNumber")
    NumberSegment = apps.get_model("accounts", "NumberSegment")
    quote = schema_editor.connection.ops.quote_name
    invoices, numbers = quote(Invoice._meta.db_table), quote(OutgoingNumber._meta.db_table)
    with schema_editor.connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {numbers} (number, merchant_id, registered_at) "  # noqa: S608  our own tables
            f"SELECT i.number, i.merchant_id, i.issued_at FROM {invoices} i "
            "WHERE i.direction = 'out' AND NOT EXISTS ("
            f"SELECT 1 FROM {invoices} j WHERE j.number = i.number AND j.direction = 'out' AND j.id < i.id)"
        )
    shared = (
        Invoice.objects.filter(direction="out")
        .values("number")
        .annotate(merchants=models.Count("merchant", distinct=True))
        .filter(merchants__gt=1)
        .values_list("number", flat=True)
    )
    for number in list(shared):
        if len(number) != 20 or not number.isdigit():
            continue
        serial = int(number[5:])
        owner = (
            NumberSegment.objects.filter(
                year=int(number[:2]),
                province=number[2:4],
                channel=int(number[4]),
                first_serial__lte=serial,
                last_serial__gte=serial,
            )
            .values_list("merchant_id", flat=True)
            .first()
        )
        if owner is not None and Invoice.objects.filter(merchant_id=owner, number=number).exists():
            OutgoingNumber.objects.filter(number=number).update(merchant_id=owner)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_user_is_lead"),
        ("invoices", "0003_idempotency_record_moved"),
    ]

    operations = [
        migrations.CreateModel(
            name="OutgoingNumber",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("number", models.CharField(max_length=32, verbose_name="number")),
                ("registered_at", models.DateTimeField()),
                (
                    "merchant",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT, related_name="+", to="accounts.merchant"
                    ),
                ),
            ],
            options={
                "verbose_name": "outgoing invoice number",
                "verbose_name_plural": "outgoing invoice numbers",
                "constraints": [models.UniqueConstraint(fields=("number",), name="outgoing_number_unique")],
            },
        ),
        migrations.RunPython(register_existing, migrations.RunPython.noop),
    ]
