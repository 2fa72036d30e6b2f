"""Invoices and their lines, and the idempotency records of POSTs.

Money is integer fen (BigIntegerField).  Quantities and unit prices are stored as the
canonical decimal strings that the ledger signs, so a row can always be turned back into
exactly the document its entry holds.  Every unique key includes the merchant (Citus).

Sensitive party data (docs/spec/security.md) is stored encrypted (``fapiao.invoices.sensitive``): the
buyer's address, phone, bank, account, an individual's ID number and the seal salt, each an
AES-GCM ciphertext bound to this merchant, table, field, the row's ``uid`` and the key version.
``buyer_masked`` keeps the masked forms lists and exports show; ``buyer_tax_id_index`` is the
keyed blind index an exact buyer tax ID search matches.  Organisations' tax IDs are public
business identifiers and stay in ``buyer_tax_id``; an individual's never does.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from fapiao.accounts.models import Merchant
from fapiao.core.choices import (
    Colour,
    Direction,
    ImportRunState,
    InvoiceKind,
    InvoiceState,
    Origin,
    RecordStatus,
)


def choices(enum: type) -> list[tuple[str, str]]:
    return [(member.value, member.value) for member in enum]  # type: ignore[attr-defined]


class Invoice(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="invoices")
    uid = models.UUIDField(default=uuid.uuid4, editable=False)  # bound into the ciphertexts
    number = models.CharField(_("number"), max_length=32)
    kind = models.CharField(_("kind"), max_length=10, choices=choices(InvoiceKind))
    colour = models.CharField(_("colour"), max_length=4, choices=choices(Colour))
    direction = models.CharField(
        _("direction"), max_length=3, choices=choices(Direction), default=Direction.OUT
    )
    state = models.CharField(
        _("state"), max_length=12, choices=choices(InvoiceState), default=InvoiceState.NORMAL
    )
    origin = models.CharField(_("origin"), max_length=10, choices=choices(Origin), default=Origin.ISSUED)
    origin_ref = models.CharField(_("origin reference"), max_length=64, blank=True)
    issued_on = models.DateField(_("invoice date"))  # Asia/Shanghai business date
    issued_at = models.DateTimeField(_("issued at"))  # UTC
    seller_name = models.CharField(max_length=100)
    seller_tax_id = models.CharField(max_length=20)
    buyer_name = models.CharField(_("buyer"), max_length=100)
    # An organisation's tax ID; "" for an individual, whose ID is only in buyer_tax_id_enc.
    buyer_tax_id = models.CharField(_("buyer tax ID"), max_length=20, blank=True)
    buyer_tax_id_kind = models.CharField(max_length=12, blank=True)
    buyer_tax_id_index = models.CharField(max_length=32, blank=True)  # blind index of any tax ID
    buyer_tax_id_enc = models.BinaryField(null=True, blank=True)
    buyer_address_enc = models.BinaryField(null=True, blank=True)
    buyer_phone_enc = models.BinaryField(null=True, blank=True)
    buyer_bank_enc = models.BinaryField(null=True, blank=True)
    buyer_bank_account_enc = models.BinaryField(null=True, blank=True)
    buyer_seal_salt_enc = models.BinaryField(null=True, blank=True)
    buyer_masked = models.JSONField(default=dict, blank=True)  # field -> masked form, for display
    data_key_version = models.PositiveIntegerField(null=True, blank=True)  # of every ciphertext above
    buyer_sealed = models.CharField(max_length=64, blank=True)
    total_amount = models.BigIntegerField(_("amount (fen)"))
    total_tax = models.BigIntegerField(_("tax (fen)"))
    total_with_tax = models.BigIntegerField(_("total with tax (fen)"))
    original = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="red_letters"
    )
    confirmation_no = models.CharField(_("red-letter confirmation number"), max_length=30, blank=True)
    remark = models.CharField(_("remark"), max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    ledger_seq = models.BigIntegerField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        constraints = [
            models.UniqueConstraint(fields=["merchant", "number"], name="invoice_unique_number"),
            models.UniqueConstraint(fields=["merchant", "uid"], name="invoice_unique_uid"),
        ]
        indexes = [
            models.Index(fields=["merchant", "issued_on"], name="invoice_by_date"),
            models.Index(fields=["merchant", "buyer_tax_id_index"], name="invoice_by_buyer_index"),
            models.Index(fields=["merchant", "total_with_tax"], name="invoice_by_total"),
            models.Index(fields=["number"], name="invoice_by_number"),
        ]

    def __str__(self) -> str:
        return self.number


class InvoiceLine(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="lines")
    no = models.PositiveIntegerField()
    name = models.CharField(max_length=100)
    tax_code = models.CharField(max_length=19, blank=True)
    spec = models.CharField(max_length=40, blank=True)
    unit = models.CharField(max_length=40, blank=True)
    quantity = models.CharField(max_length=40)
    unit_price = models.CharField(max_length=40)
    tax_rate = models.CharField(max_length=12)
    amount = models.BigIntegerField()
    tax = models.BigIntegerField()
    original_line_no = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["no"]
        constraints = [
            models.UniqueConstraint(fields=["merchant", "invoice", "no"], name="line_unique_no"),
        ]

    def __str__(self) -> str:
        return f"{self.no}. {self.name}"


class OutgoingNumber(models.Model):
    """Whose outgoing (销项) invoice number this is: one merchant per number, across all merchants.

    A number a merchant's segment (号段) covers is that merchant's; a legacy 代码-号码 no segment
    covers is registered to the merchant that first restores it.  Every issued, red-letter,
    restored and re-issued outgoing invoice registers its number in its own transaction, and the
    unique constraint on the number — not a check before the insert — is what keeps one number
    from being written under two merchants.  A reference table on Citus (keyed by the number, not
    the merchant).  Received (进项) invoices carry other sellers' numbers and are not listed.
    """

    number = models.CharField(_("number"), max_length=32)
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    registered_at = models.DateTimeField()

    class Meta:
        verbose_name = _("outgoing invoice number")
        verbose_name_plural = _("outgoing invoice numbers")
        constraints = [models.UniqueConstraint(fields=["number"], name="outgoing_number_unique")]

    def __str__(self) -> str:
        return self.number


class InvoiceFinding(models.Model):
    """What ``ledger verify`` found wrong with one of the merchant's invoices (账本核对), for the merchant.

    ``missing``: the ledger holds the invoice but its row is gone; ``altered``: the row differs from
    its ledger entry.  ``ledger`` keeps what the entry says the invoice is (number, date, buyer's
    name, kind, amounts: what the signed log holds, never the buyer's sealed fields), ``row`` what
    the row said when it was found.  Active until ``cleared_at``: a remedy landed (``cleared_how``
    = ``restore`` / ``repair``, ``cleared_ref`` = the case), or a later verify no longer found it.
    One active finding per number (:mod:`fapiao.invoices.findings`).
    """

    KINDS = [("missing", "missing"), ("altered", "altered")]

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    number = models.CharField(_("number"), max_length=32)
    kind = models.CharField(max_length=8, choices=KINDS)
    code = models.CharField(max_length=32)  # the verify finding code (fapiao.core.ledger_findings)
    ledger_seq = models.BigIntegerField(null=True, blank=True)
    issued_on = models.DateField(null=True, blank=True)
    direction = models.CharField(max_length=3, blank=True)
    total_with_tax = models.BigIntegerField(default=0)
    ledger = models.JSONField(default=dict, blank=True)
    row = models.JSONField(default=dict, blank=True)
    fields = models.CharField(max_length=500, blank=True)  # what differs, as verify named it
    expected_state = models.CharField(max_length=12, blank=True)
    incident = models.ForeignKey(
        "ledger.IntegrityIncident", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    found_at = models.DateTimeField()
    seen_at = models.DateTimeField()
    notified_at = models.DateTimeField(null=True, blank=True)
    cleared_at = models.DateTimeField(null=True, blank=True)
    cleared_how = models.CharField(max_length=10, blank=True)
    cleared_ref = models.CharField(max_length=40, blank=True)

    class Meta:
        verbose_name = _("invoice finding")
        verbose_name_plural = _("invoice findings")
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "number"],
                condition=models.Q(cleared_at__isnull=True),
                name="finding_unique_active",
            )
        ]
        indexes = [models.Index(fields=["merchant", "cleared_at"], name="finding_by_merchant")]

    def __str__(self) -> str:
        return f"{self.kind} {self.number}"


class ImportRun(models.Model):
    """One import (导入批次) of invoice files into a merchant's records (``fapiao import``).

    ``files``: each file's name, path, SHA-256, size and format; ``before``: the merchant's totals
    per month × rate × kind (this direction) when the run started; ``manifest``: the signed
    ``fapiao-import/1`` document once committed (:mod:`fapiao.invoices.import_manifest`).
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    run_id = models.CharField(_("import run"), max_length=40)
    direction = models.CharField(_("direction"), max_length=3, choices=choices(Direction))
    mapping_name = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=10, choices=choices(ImportRunState), default=ImportRunState.PLANNED)
    files = models.JSONField(default=list)
    counts = models.JSONField(default=dict, blank=True)
    before = models.JSONField(default=list, blank=True)
    manifest = models.JSONField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    committed_at = models.DateTimeField(null=True, blank=True)
    reverted_at = models.DateTimeField(null=True, blank=True)
    reverted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("import run")
        verbose_name_plural = _("import runs")
        constraints = [models.UniqueConstraint(fields=["merchant", "run_id"], name="import_run_unique_id")]
        indexes = [models.Index(fields=["run_id"], name="import_run_by_id")]

    def __str__(self) -> str:
        return self.run_id


class ImportedRecord(models.Model):
    """What an import run did with one record of one of its files: accepted (with its invoice),
    rejected (with its reasons) or a duplicate.  Written in the transaction that decides it, so a
    killed run resumes after the last record it wrote."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    run = models.ForeignKey(ImportRun, on_delete=models.PROTECT, related_name="records")
    file_sha256 = models.CharField(max_length=64)
    position = models.PositiveIntegerField()  # the record's index in its file
    number = models.CharField(max_length=32, blank=True)
    record_sha256 = models.CharField(max_length=64)
    status = models.CharField(max_length=10, choices=choices(RecordStatus))
    reasons = models.JSONField(default=list, blank=True)
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("imported record")
        verbose_name_plural = _("imported records")
        constraints = [
            models.UniqueConstraint(
                fields=["merchant", "run", "file_sha256", "position"], name="imported_record_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.run_id}:{self.position}"
