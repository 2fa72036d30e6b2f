"""A batch row's waiting invoice body moves to an encrypted column (fapiao.catalogue.sensitive).

Rows still waiting to be issued are encrypted with the current data key and their plaintext
``payload`` emptied; issued and failed rows had theirs emptied already.
"""

from django.db import migrations, models


def encrypt_waiting_rows(apps, schema_editor):
    from fapiao.catalogue.sensitive import sealed_payload

    BatchRow = apps.get_model("catalogue", "BatchRow")
    for row in BatchRow.objects.filter(payload_enc__isnull=True).iterator():
        if not row.payload:
            continue
        sealed = sealed_payload(
            merchant_id=row.merchant_id, batch_id=row.batch_id, row_no=row.row_no, payload=row.payload
        )
        row.payload_enc, row.data_key_version, row.payload = (
            sealed["payload_enc"],
            sealed["data_key_version"],
            {},
        )
        row.save(update_fields=["payload_enc", "data_key_version", "payload"])


class Migration(migrations.Migration):
    dependencies = [
        ("catalogue", "0002_encrypt_address_book"),
    ]

    operations = [
        migrations.AddField(
            model_name="batchrow",
            name="data_key_version",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="batchrow",
            name="payload_enc",
            field=models.BinaryField(blank=True, null=True),
        ),
        migrations.RunPython(encrypt_waiting_rows, migrations.RunPython.noop),
    ]
