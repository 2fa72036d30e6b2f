"""Recovery cases (补救申请, docs/spec/recovery.md): the case, its evidence, messages and timeline.

A case belongs to one merchant; every unique key includes the merchant (Citus, docs/operations/scaling.md)
except the 受理编号 counter, a reference table.  Nothing here is ever deleted: evidence,
messages and events are append-only, and a case ends as confirmed or withdrawn, not gone.
``version`` is the optimistic lock every transition checks.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from fapiao.accounts.models import Merchant
from fapiao.core.cases import CaseState
from fapiao.core.evidence import EvidenceType
from fapiao.invoices.models import Invoice
from fapiao.recovery.choices import Channel, CheckStatus, Remedy


def _choices(enum: type) -> list[tuple[str, str]]:
    return [(member.value, member.value) for member in enum]  # type: ignore[attr-defined]


class Case(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="cases")
    uid = models.UUIDField(default=uuid.uuid4, editable=False)  # the case_id of the API
    acceptance_no = models.CharField(_("acceptance number"), max_length=20, blank=True)  # 受理编号
    state = models.CharField(_("state"), max_length=16, choices=_choices(CaseState), default=CaseState.DRAFT)
    version = models.PositiveIntegerField(default=1)
    channel = models.CharField(_("channel"), max_length=10, choices=_choices(Channel), default=Channel.ONLINE)

    # The claim: what the merchant says is missing.
    claimed_number = models.CharField(_("claimed invoice number"), max_length=32)
    claimed_issued_on = models.DateField(_("claimed invoice date"))
    claimed_kind = models.CharField(max_length=10, blank=True)
    claimed_buyer_name = models.CharField(_("buyer"), max_length=100)
    claimed_buyer_tax_id = models.CharField(max_length=20, blank=True)  # organisations only
    claimed_buyer_tax_id_enc = models.BinaryField(null=True, blank=True)  # an individual's ID
    claimed_buyer_tax_id_masked = models.CharField(max_length=24, blank=True)
    claimed_total_with_tax = models.BigIntegerField(_("claimed total with tax (fen)"))
    claimed_total_amount = models.BigIntegerField(null=True, blank=True)
    claimed_total_tax = models.BigIntegerField(null=True, blank=True)
    claimed_tax_rate = models.CharField(max_length=12, blank=True)  # of an invoice claimed by totals
    # The claimed lines, each as POST /api/v1/invoices carries one (canonical decimal strings).
    claimed_lines = models.JSONField(default=list, blank=True)
    narrative = models.TextField(_("what happened"), max_length=4000)

    opened_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    opened_at = models.DateTimeField()
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    state_changed_at = models.DateTimeField()
    # Which reviewer holds the case, and until when their claim keeps others out.
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    claim_expires_at = models.DateTimeField(null=True, blank=True)
    first_approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    second_approver = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    decision_reason = models.TextField(blank=True, max_length=2000)
    remedy = models.CharField(max_length=10, choices=_choices(Remedy), blank=True)
    resolved_invoice = models.ForeignKey(
        Invoice, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    reopen_deadline = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("recovery case")
        constraints = [
            models.UniqueConstraint(fields=["merchant", "uid"], name="case_unique_uid"),
            models.UniqueConstraint(
                fields=["merchant", "acceptance_no"],
                condition=~models.Q(acceptance_no=""),
                name="case_unique_acceptance_no",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "state_changed_at"], name="case_by_state"),
            models.Index(fields=["merchant", "claimed_number"], name="case_by_number"),
            models.Index(fields=["acceptance_no"], name="case_by_acceptance_no"),
        ]

    def __str__(self) -> str:
        return self.acceptance_no or str(self.uid)


class AcceptanceCounter(models.Model):
    """The last 受理编号 serial per Beijing-time year (a reference table on Citus)."""

    year = models.PositiveIntegerField(primary_key=True)
    last = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.year}: {self.last}"


class Evidence(models.Model):
    """One file on a case, stored content-addressed by SHA-256 (``fapiao.recovery.storage``)."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="evidence")
    uid = models.UUIDField(default=uuid.uuid4, editable=False)
    evidence_type = models.CharField(_("evidence type"), max_length=16, choices=_choices(EvidenceType))
    filename = models.CharField(_("file name"), max_length=255)
    content_kind = models.CharField(max_length=10)  # what the bytes are, by magic (fapiao.formats.sniff)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    channel = models.CharField(max_length=10, choices=_choices(Channel), default=Channel.ONLINE)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    uploaded_at = models.DateTimeField()
    on_behalf = models.BooleanField(default=False)  # staff registered it for the merchant
    message = models.ForeignKey(
        "CaseMessage", on_delete=models.PROTECT, null=True, blank=True, related_name="attachments"
    )
    # The automatic check (system receipt, e-invoice file): its status and what it found.
    check_status = models.CharField(
        max_length=12, choices=_choices(CheckStatus), default=CheckStatus.NOT_CHECKED
    )
    check_summary = models.CharField(max_length=500, blank=True)
    check_details = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("evidence")
        verbose_name_plural = _("evidence")
        constraints = [models.UniqueConstraint(fields=["merchant", "uid"], name="evidence_unique_uid")]

    def __str__(self) -> str:
        return self.filename


class CaseMessage(models.Model):
    """A message on a case, between the merchant and the operating organisation's staff."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="messages")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    author_role = models.CharField(max_length=20)
    body = models.TextField(max_length=4000)
    # A 补正通知: the list of what is missing, shown as a checklist to the merchant.
    requested_items = models.JSONField(default=list, blank=True)
    on_behalf = models.BooleanField(default=False)  # staff wrote for the merchant (four eyes)
    created_at = models.DateTimeField()
    read_by_merchant_at = models.DateTimeField(null=True, blank=True)
    read_by_staff_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("case message")
        indexes = [models.Index(fields=["case", "created_at"], name="message_by_case")]

    def __str__(self) -> str:
        return f"message {self.pk}"


class CaseEvent(models.Model):
    """One line of a case's timeline: every transition and every addition, with who and why."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="events")
    action = models.CharField(max_length=20)
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    actor_name = models.CharField(max_length=150)
    actor_role = models.CharField(max_length=20)
    reason = models.TextField(blank=True, max_length=2000)
    details = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField()

    class Meta:
        verbose_name = _("case event")
        indexes = [models.Index(fields=["case", "at"], name="event_by_case")]

    def __str__(self) -> str:
        return f"{self.action} {self.at:%Y-%m-%d}"


class SupersededNumber(models.Model):
    """A claimed number a re-issue (补开) replaced: if the original surfaces, flag it for red-letter."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    number = models.CharField(max_length=32)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="+")
    replacement = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField()
    surfaced_at = models.DateTimeField(null=True, blank=True)
    surfaced_how = models.CharField(max_length=200, blank=True)
    # No number segment had handed the claimed number out when it was re-issued (a later receipt
    # showing it still flags it: then it existed after all).
    never_issued = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "number"], name="superseded_unique_number")
        ]

    def __str__(self) -> str:
        return self.number


class Notification(models.Model):
    """An in-app notification; ``message`` is an English msgid rendered in the reader's language."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    message = models.CharField(max_length=200)
    params = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return self.message


class ReplayedInvoice(models.Model):
    """An invoice row ``fapiao ledger replay`` rebuilt from a receipt a merchant kept, after a
    restore lost it (docs/operations/backup.md, Replay).

    The entry gives back everything but the buyer's sensitive fields, which it holds only sealed:
    the row keeps the seal, and ``awaiting_buyer`` says the merchant must supply those fields
    (through a recovery case, with the invoice file they kept) before they can be shown again.
    """

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="+")
    seq = models.BigIntegerField()  # the replayed entry's index in the merchant's log
    awaiting_buyer = models.BooleanField(default=False)
    replayed_at = models.DateTimeField()
    receipt_file = models.CharField(max_length=255, blank=True)  # the file it came from, as given

    class Meta:
        constraints = [models.UniqueConstraint(fields=["merchant", "seq"], name="replayed_unique_seq")]
        indexes = [models.Index(fields=["merchant", "awaiting_buyer"], name="replayed_awaiting")]

    def __str__(self) -> str:
        return f"{self.merchant_id}:{self.seq}"
