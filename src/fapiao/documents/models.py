"""The files an invoice is handed over in, and their deliveries to the buyer.

A :class:`Document` is rendered once and kept with its SHA-256, so every download, delivery and
bundle returns the same bytes.  A copy that shows none of the buyer's personal data is stored in
the content-addressed blob store (``fapiao.recovery.storage``, backed up with the evidence); the
one copy that does (an individual buyer's ID number printed on the PDF) is kept only as an
AES-GCM ciphertext in ``content_enc``, bound to this merchant, table, row and key version, like
every other sensitive field.

A :class:`Delivery` is one e-mail of an invoice's documents to one address: who sent it, to whom
(the address encrypted, a masked form for display), when, what came of it, and when it is tried
again.  Every unique key includes the merchant (Citus).
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from fapiao.accounts.models import Merchant
from fapiao.invoices.models import Invoice


class DocumentKind(models.TextChoices):
    INVOICE_PDF = "invoice_pdf", _("invoice PDF")
    INVOICE_XML = "invoice_xml", _("invoice XML")
    RECEIPT_JSON = "receipt_json", _("receipt (JSON)")
    RECEIPT_PDF = "receipt_pdf", _("receipt (PDF)")


class Variant(models.TextChoices):
    BUYER = "buyer", _("as handed to the buyer")
    MASKED = "masked", _("with the buyer's personal data masked")


class Document(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="documents")
    kind = models.CharField(max_length=16, choices=DocumentKind.choices)
    variant = models.CharField(max_length=8, choices=Variant.choices, default=Variant.BUYER)
    sha256 = models.CharField(max_length=64)
    size = models.PositiveIntegerField()
    reveals = models.BooleanField(default=False)  # shows the buyer's personal data: content_enc only
    content_enc = models.BinaryField(null=True, blank=True)
    data_key_version = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "invoice", "kind", "variant"], name="document_unique_rendering"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.sha256[:12]}"


class DeliveryState(models.TextChoices):
    SENDING = "sending", _("sending")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed, will retry")
    UNDELIVERABLE = "undeliverable", _("failed, not retried")


class Delivery(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="deliveries")
    uid = models.UUIDField(default=uuid.uuid4, editable=False)
    recipient_enc = models.BinaryField()
    recipient_masked = models.CharField(max_length=254)
    data_key_version = models.PositiveIntegerField(null=True, blank=True)
    state = models.CharField(max_length=14, choices=DeliveryState.choices, default=DeliveryState.SENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    documents = models.JSONField(default=list)  # [{"kind", "name", "sha256"}] of what was attached

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [models.UniqueConstraint(fields=["merchant", "uid"], name="delivery_unique_uid")]
        indexes = [models.Index(fields=["state", "next_attempt_at"], name="delivery_due")]

    def __str__(self) -> str:
        return f"{self.recipient_masked} ({self.state})"
