"""The address book's sensitive fields move to encrypted columns (fapiao.catalogue.sensitive).

Existing entries get a uid each, are encrypted with the current data key, and only then are the
plaintext columns dropped.
"""

import uuid

from django.db import migrations, models
from django.db.models import Q

SECRET_FIELDS = ("tax_id", "address", "phone", "bank", "bank_account")


def encrypt_entries(apps, schema_editor):
    from fapiao.catalogue.sensitive import columns

    Buyer = apps.get_model("catalogue", "Buyer")
    for buyer in Buyer.objects.all().iterator():
        buyer.uid = uuid.uuid4()
        fields = {
            name: getattr(buyer, name) for name in ("name", "tax_id", "tax_id_kind", *SECRET_FIELDS[1:])
        }
        for name, value in columns(merchant_id=buyer.merchant_id, uid=buyer.uid, fields=fields).items():
            setattr(buyer, name, value)
        buyer.save()


class Migration(migrations.Migration):
    dependencies = [
        ("catalogue", "0001_initial"),
    ]

    operations = [
        migrations.RemoveConstraint(model_name="buyer", name="catalogue_buyer_unique_tax_id"),
        migrations.AddField(
            model_name="buyer", name="uid", field=models.UUIDField(null=True, editable=False)
        ),
        migrations.AddField(
            model_name="buyer", name="tax_id_index", field=models.CharField(blank=True, max_length=32)
        ),
        migrations.AddField(
            model_name="buyer", name="tax_id_enc", field=models.BinaryField(blank=True, null=True)
        ),
        migrations.AddField(
            model_name="buyer", name="address_enc", field=models.BinaryField(blank=True, null=True)
        ),
        migrations.AddField(
            model_name="buyer", name="phone_enc", field=models.BinaryField(blank=True, null=True)
        ),
        migrations.AddField(
            model_name="buyer", name="bank_enc", field=models.BinaryField(blank=True, null=True)
        ),
        migrations.AddField(
            model_name="buyer", name="bank_account_enc", field=models.BinaryField(blank=True, null=True)
        ),
        migrations.AddField(
            model_name="buyer", name="masked", field=models.JSONField(blank=True, default=dict)
        ),
        migrations.AddField(
            model_name="buyer",
            name="data_key_version",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(encrypt_entries, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="buyer",
            name="uid",
            field=models.UUIDField(default=uuid.uuid4, editable=False),
        ),
        migrations.RemoveField(model_name="buyer", name="address"),
        migrations.RemoveField(model_name="buyer", name="bank"),
        migrations.RemoveField(model_name="buyer", name="bank_account"),
        migrations.RemoveField(model_name="buyer", name="phone"),
        migrations.AddConstraint(
            model_name="buyer",
            constraint=models.UniqueConstraint(
                condition=~Q(tax_id_index=""),
                fields=("merchant", "tax_id_index"),
                name="catalogue_buyer_unique_tax_id",
            ),
        ),
        migrations.AddConstraint(
            model_name="buyer",
            constraint=models.UniqueConstraint(fields=("merchant", "uid"), name="catalogue_buyer_unique_uid"),
        ),
    ]
