"""Sensitive buyer fields move into AES-GCM ciphertexts (fapiao.invoices.sensitive).

Each existing row gets its uid, its fields encrypted (keys from fapiao.platform.datakeys, generated on
first use), its masked forms and its tax ID's blind index; then the plaintext columns go.
Reversible: going back decrypts into the plaintext columns again.
"""

import uuid

from django.db import migrations, models

BATCH = 500
TEXT_FIELDS = ("address", "phone", "bank", "bank_account")


def encrypt_existing(apps, schema_editor):
    from fapiao.core.identifiers import TaxId, TaxIdKind
    from fapiao.core.invoice import Buyer
    from fapiao.invoices.sensitive import buyer_columns

    Invoice = apps.get_model("invoices", "Invoice")
    last = 0
    while True:
        batch = list(Invoice.objects.filter(pk__gt=last).order_by("pk")[:BATCH])
        if not batch:
            return
        for row in batch:
            row.uid = uuid.uuid4()
            kind = row.buyer_tax_id_kind
            buyer = Buyer(
                name=row.buyer_name,
                tax_id=TaxId(row.buyer_tax_id, TaxIdKind(kind)) if kind and row.buyer_tax_id else None,
                **{name: getattr(row, f"buyer_{name}") or "" for name in TEXT_FIELDS},
            )
            salt = bytes(row.buyer_seal_salt) if row.buyer_seal_salt else None
            for column, value in buyer_columns(
                merchant_id=row.merchant_id, uid=row.uid, buyer=buyer, salt=salt
            ).items():
                setattr(row, column, value)
            for name in TEXT_FIELDS:
                setattr(row, f"buyer_{name}", "")
            row.buyer_seal_salt = None
        Invoice.objects.bulk_update(
            batch,
            [
                "uid",
                "buyer_tax_id",
                "buyer_tax_id_index",
                "buyer_tax_id_enc",
                "buyer_address_enc",
                "buyer_phone_enc",
                "buyer_bank_enc",
                "buyer_bank_account_enc",
                "buyer_seal_salt_enc",
                "buyer_masked",
                "data_key_version",
                "buyer_address",
                "buyer_phone",
                "buyer_bank",
                "buyer_bank_account",
                "buyer_seal_salt",
            ],
        )
        last = batch[-1].pk


def decrypt_existing(apps, schema_editor):
    from fapiao.invoices.sensitive import reveal_buyer, seal_salt

    Invoice = apps.get_model("invoices", "Invoice")
    last = 0
    while True:
        batch = list(Invoice.objects.filter(pk__gt=last).order_by("pk")[:BATCH])
        if not batch:
            return
        for row in batch:
            buyer = reveal_buyer(row)
            for name in TEXT_FIELDS:
                setattr(row, f"buyer_{name}", getattr(buyer, name))
            row.buyer_tax_id = buyer.tax_id.value if buyer.tax_id else ""
            row.buyer_seal_salt = seal_salt(row)
        Invoice.objects.bulk_update(
            batch,
            [
                "buyer_tax_id",
                "buyer_address",
                "buyer_phone",
                "buyer_bank",
                "buyer_bank_account",
                "buyer_seal_salt",
            ],
        )
        last = batch[-1].pk


class Migration(migrations.Migration):
    dependencies = [
        ("invoices", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="invoice", name="uid", field=models.UUIDField(null=True, editable=False)
        ),
        migrations.AddField(
            model_name="invoice", name="buyer_tax_id_index", field=models.CharField(blank=True, max_length=32)
        ),
        migrations.AddField(
            model_name="invoice", name="buyer_tax_id_enc", field=models.BinaryField(blank=True, null=True)
        ),
        migrations.AddField(
            model_name="invoice", name="buyer_address_enc", field=models.BinaryField(blank=True, null=True)
        ),
        migrations.AddField(
            model_name="invoice", name="buyer_phone_enc", field=models.BinaryField(blank=True, null=True)
        ),
        migrations.AddField(
            model_name="invoice", name="buyer_bank_enc", field=models.BinaryField(blank=True, null=True)
        ),
        migrations.AddField(
            model_name="invoice",
            name="buyer_bank_account_enc",
            field=models.BinaryField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="invoice", name="buyer_seal_salt_enc", field=models.BinaryField(blank=True, null=True)
        ),
        migrations.AddField(
            model_name="invoice", name="buyer_masked", field=models.JSONField(blank=True, default=dict)
        ),
        migrations.AddField(
            model_name="invoice",
            name="data_key_version",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(encrypt_existing, decrypt_existing, elidable=True),
        migrations.RemoveIndex(model_name="invoice", name="invoice_by_buyer_tax_id"),
        migrations.RemoveField(model_name="invoice", name="buyer_address"),
        migrations.RemoveField(model_name="invoice", name="buyer_bank"),
        migrations.RemoveField(model_name="invoice", name="buyer_bank_account"),
        migrations.RemoveField(model_name="invoice", name="buyer_phone"),
        migrations.RemoveField(model_name="invoice", name="buyer_seal_salt"),
        migrations.AlterField(
            model_name="invoice", name="uid", field=models.UUIDField(default=uuid.uuid4, editable=False)
        ),
        migrations.AddIndex(
            model_name="invoice",
            index=models.Index(fields=["merchant", "buyer_tax_id_index"], name="invoice_by_buyer_index"),
        ),
        migrations.AddConstraint(
            model_name="invoice",
            constraint=models.UniqueConstraint(fields=("merchant", "uid"), name="invoice_unique_uid"),
        ),
    ]
