"""The per-merchant append-only Merkle log (docs/spec/ledger.md).

``LogEntry`` holds the exact signed bytes; ``LogNode`` the hashes of perfect subtrees so an
append or a proof touches O(log n) rows; ``TreeHead`` one signed head per commit.  The
signing key is never stored here.  Every unique key includes the merchant (Citus).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from fapiao.accounts.models import Merchant
from fapiao.core.choices import EntryKind, IncidentKind, IncidentState


class Log(models.Model):
    """The current size of one merchant's log; appenders lock this row."""

    merchant = models.OneToOneField(Merchant, on_delete=models.PROTECT, related_name="log")
    size = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("ledger log")

    def __str__(self) -> str:
        return f"log {self.merchant_id} ({self.size})"


class LogEntry(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=12, choices=[(k.value, k.value) for k in EntryKind])
    invoice_number = models.CharField(max_length=32)
    ref = models.CharField(max_length=64, blank=True)
    body = models.BinaryField()
    leaf_hash = models.BinaryField(max_length=32)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        constraints = [models.UniqueConstraint(fields=["merchant", "seq"], name="entry_unique_seq")]
        indexes = [
            models.Index(fields=["merchant", "invoice_number"], name="entry_by_number"),
            models.Index(fields=["merchant", "leaf_hash"], name="entry_by_leaf"),
        ]

    def __str__(self) -> str:
        return f"entry {self.seq}"


class LogNode(models.Model):
    """Hash of the perfect subtree covering leaves [index·2^level, (index+1)·2^level)."""

    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "level", "index"], name="node_unique_position")
        ]

    def __str__(self) -> str:
        return f"node {self.level}/{self.index}"


class TreeHead(models.Model):
    merchant = models.ForeignKey(Merchant, on_delete=models.PROTECT, related_name="+")
    size = models.BigIntegerField()
    root = models.BinaryField(max_length=32)
    at = models.CharField(max_length=20)  # the exact UTC stamp that was signed
    key_id = models.CharField(max_length=16)
    signature = models.CharField(max_length=100)
    # When a key is declared compromised the head is re-signed; the old signature stays here.
    previous_signatures = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        verbose_name = _("signed tree head")
        constraints = [models.UniqueConstraint(fields=["merchant", "size"], name="head_unique_size")]

    def __str__(self) -> str:
        return f"head {self.size}"


class IntegrityIncident(models.Model):
    """An integrity incident (数据完整性事件): evidence that the ledger lost or changed something.

    Opened by the system (e.g. a validly signed receipt the log no longer proves), then
    acknowledged and resolved with a note by an operator: open → acknowledged → resolved.
    ``details`` holds what identifies the evidence (log, index, size, root, key_id, verdict),
    never sensitive party data.  ``fingerprint`` names that evidence, so presenting the same
    receipt again finds the unresolved incident instead of opening another one.  A reference
    (coordinator) table on Citus: the merchant is unknown when the log itself is gone.
    """

    merchant = models.ForeignKey(
        Merchant,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("merchant"),
    )
    kind = models.CharField(_("kind"), max_length=32, choices=[(k.value, k.value) for k in IncidentKind])
    state = models.CharField(
        _("state"),
        max_length=16,
        choices=[(s.value, s.value) for s in IncidentState],
        default=IncidentState.OPEN.value,
    )
    fingerprint = models.CharField(_("fingerprint"), max_length=64)
    details = models.JSONField(_("details"), default=dict)
    opened_at = models.DateTimeField(_("opened at"))
    acknowledged_at = models.DateTimeField(_("acknowledged at"), null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("acknowledged by"),
    )
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    resolution_note = models.TextField(_("resolution note"), blank=True)
    version = models.PositiveIntegerField(_("version"), default=1)

    class Meta:
        verbose_name = _("integrity incident")
        verbose_name_plural = _("integrity incidents")
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint"],
                condition=~models.Q(state=IncidentState.RESOLVED.value),
                name="incident_unique_unresolved",
            )
        ]
        indexes = [models.Index(fields=["state", "opened_at"], name="incident_by_state")]

    def __str__(self) -> str:
        return f"incident {self.pk} ({self.state})"


class VerifyRun(models.Model):
    """One run of ``ledger verify`` (command line or the verification page) and what it found.

    ``/readyz`` reads the latest run over every log: failed, or too old
    (``FAPIAO_VERIFY_MAX_AGE_HOURS``), it reports ``degraded``.  A failed run also opens an
    integrity incident per log it found wrong (:mod:`fapiao.ledger.verify_runs`).  A reference
    (coordinator) table on Citus, like the incidents.
    """

    finished_at = models.DateTimeField(_("finished at"))
    merchant_uscc = models.CharField(_("merchant"), max_length=18, blank=True)  # "": every log
    deep = models.BooleanField(_("deep"), default=False)
    ok = models.BooleanField(_("passed"))
    errors = models.PositiveIntegerField(_("errors"), default=0)
    logs = models.PositiveIntegerField(_("logs"), default=0)
    entries = models.BigIntegerField(_("entries"), default=0)
    elapsed_seconds = models.FloatField(_("seconds"), default=0.0)
    source = models.CharField(_("source"), max_length=8)  # "cli" or "web"
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )

    class Meta:
        verbose_name = _("ledger verification")
        verbose_name_plural = _("ledger verifications")
        indexes = [models.Index(fields=["merchant_uscc", "finished_at"], name="verify_run_latest")]

    def __str__(self) -> str:
        return f"verify {self.finished_at:%Y-%m-%d %H:%M} ({'ok' if self.ok else 'failed'})"
