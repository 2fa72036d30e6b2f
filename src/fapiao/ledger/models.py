"""The per-merchant append-only Merkle log (DESIGN.md §6).

``LogEntry`` holds the exact signed bytes; ``LogNode`` the hashes of perfect subtrees so an
append or a proof touches O(log n) rows; ``TreeHead`` one signed head per commit.  The
signing key is never stored here.  Every unique key includes the merchant (Citus).
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from fapiao.accounts.models import Merchant
from fapiao.core.choices import EntryKind


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
