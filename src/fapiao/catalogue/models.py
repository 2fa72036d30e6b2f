"""Entry aids of one merchant: buyers it invoices often, products it sells, batches it issued.

Every row belongs to one merchant and every unique key includes the merchant (docs/operations/scaling.md).
A buyer's address, phone, bank and account (and an individual's ID number) are sensitive
party data (docs/spec/security.md): stored encrypted and shown masked, like on invoices.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fapiao.accounts.models import Merchant


class Buyer(models.Model):
    """An entry of the merchant's buyer address book (购买方地址簿).

    Sensitive fields are stored encrypted (:mod:`fapiao.catalogue.sensitive`); ``masked`` holds
    their masked forms for lists, ``tax_id_index`` the blind index of any tax ID.
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    uid = models.UUIDField(default=uuid.uuid4, editable=False)  # bound into the ciphertexts
    name = models.CharField(_("buyer name"), max_length=100)
    # An organisation's tax ID; "" for an individual, whose ID is only in tax_id_enc.
    tax_id = models.CharField(_("taxpayer number"), max_length=20, blank=True)
    tax_id_kind = models.CharField(max_length=12, blank=True)
    tax_id_index = models.CharField(max_length=32, blank=True)
    tax_id_enc = models.BinaryField(null=True, blank=True)
    address_enc = models.BinaryField(null=True, blank=True)
    phone_enc = models.BinaryField(null=True, blank=True)
    bank_enc = models.BinaryField(null=True, blank=True)
    bank_account_enc = models.BinaryField(null=True, blank=True)
    email_enc = models.BinaryField(null=True, blank=True)  # where invoices are sent (documents app)
    masked = models.JSONField(default=dict, blank=True)
    data_key_version = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("address book entry")
        verbose_name_plural = _("address book")
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "name"], name="catalogue_buyer_unique_name"),
            models.UniqueConstraint(
                fields=["merchant", "tax_id_index"],
                condition=~Q(tax_id_index=""),
                name="catalogue_buyer_unique_tax_id",
            ),
            models.UniqueConstraint(fields=["merchant", "uid"], name="catalogue_buyer_unique_uid"),
        ]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    """An entry of the merchant's product catalogue (商品目录) with its tax classification code."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    name = models.CharField(_("item name"), max_length=100)
    tax_code = models.CharField(_("tax classification code"), max_length=19, blank=True)
    spec = models.CharField(_("specification"), max_length=40, blank=True)
    unit = models.CharField(_("unit"), max_length=40, blank=True)
    # The canonical decimal string as typed ("" = priced on each invoice).
    unit_price = models.CharField(_("unit price"), max_length=40, blank=True)
    price_includes_tax = models.BooleanField(_("price includes tax"), default=False)
    tax_rate = models.CharField(_("tax rate"), max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("product catalogue")
        ordering = ["name", "spec", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "name", "spec"], name="catalogue_product_unique_name"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.spec}".strip()


class BatchState(models.TextChoices):
    PREVIEW = "preview", _("Checked, not yet issued")
    ISSUING = "issuing", _("Issuing")
    DONE = "done", _("Done")


class RowStatus(models.TextChoices):
    READY = "ready", _("Ready to issue")
    BAD = "bad", _("Rejected")
    ISSUED = "issued", _("Issued")
    FAILED = "failed", _("Not issued")


class Batch(models.Model):
    """One uploaded spreadsheet: every row checked first, then the good rows issued one by one."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    filename = models.CharField(max_length=200)
    file_sha256 = models.CharField(max_length=64)
    state = models.CharField(max_length=10, choices=BatchState.choices, default=BatchState.PREVIEW)

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "public_id"], name="catalogue_batch_unique_id"),
        ]

    def __str__(self) -> str:
        return self.filename


class BatchRow(models.Model):
    """One spreadsheet row: one invoice.

    ``payload_enc`` is the API body to issue, encrypted (:func:`fapiao.catalogue.sensitive.sealed_payload`:
    it holds the buyer's address, bank account, an individual's ID number); it is dropped once the
    row is issued or has failed, so buyer data does not linger outside the invoice.  ``payload``
    is no longer written (rows from before 0003 were encrypted by that migration).  ``problems`` holds the
    reasons a row was rejected as ``{"field", "message", "params"}`` with English msgids,
    rendered in the reader's language.
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey(Batch, on_delete=models.PROTECT, related_name="rows")
    row_no = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=RowStatus.choices)
    buyer_name = models.CharField(max_length=100, blank=True)
    total_with_tax = models.BigIntegerField(null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True)
    payload_enc = models.BinaryField(null=True, blank=True)
    data_key_version = models.PositiveIntegerField(null=True, blank=True)
    problems = models.JSONField(default=list, blank=True)
    invoice_number = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["row_no"]
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "batch", "row_no"], name="catalogue_batchrow_unique_no"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.batch_id}:{self.row_no}"
