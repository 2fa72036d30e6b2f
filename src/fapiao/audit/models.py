"""The audit trail: append-only Merkle logs of who did what (docs/spec/security.md).

One :class:`AuditLog` per merchant plus one for staff actions.  Each is an RFC 9162 Merkle log
like the ledger's (``fapiao.core.merkle``): :class:`AuditRecord` holds the record's columns,
from which its leaf bytes are rebuilt (:func:`fapiao.audit.chain.record_bytes`);
:class:`AuditNode` holds the hashes of perfect subtrees, so an append or a proof touches
O(log n) rows; :class:`AuditHead` one signed tree head per commit.  The application never
updates or deletes records, nodes or heads: their querysets refuse to.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from fapiao.accounts.models import Merchant

STAFF_LOG = "audit:staff"


class AppendOnlyError(Exception):
    """Audit records, nodes and heads are never changed or deleted."""


class AppendOnlyQuerySet(models.QuerySet[Any]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("the audit trail is append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("the audit trail is append-only")


class AppendOnly(models.Model):
    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("the audit trail is append-only")


STAFF_LOG_ID = 0


class AuditLog(models.Model):
    """One audit log: a merchant's (``audit:<USCC>``) or the staff log (``audit:staff``).

    Its id is the merchant's id (the staff log's is 0), so on Citus the audit tables, distributed
    by ``log``, sit on the same shard as the merchant's invoices (docs/operations/scaling.md). ``size`` is the
    next record's index (appenders lock this row by updating it); ``sealed_size`` is how many
    records have their Merkle nodes and a signed head.
    """

    id = models.BigIntegerField(primary_key=True)
    name = models.CharField(_("log"), max_length=40, unique=True)
    merchant = models.ForeignKey(
        Merchant,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("merchant"),
    )
    size = models.BigIntegerField(default=0)
    sealed_size = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("audit log")

    def __str__(self) -> str:
        return self.name


class AuditRecord(AppendOnly):
    """One audit record: a complete, masked snapshot of one action (never plaintext party data)."""

    log = models.ForeignKey(AuditLog, on_delete=models.PROTECT, related_name="+", verbose_name=_("log"))
    seq = models.BigIntegerField(_("index"))
    at = models.DateTimeField(_("when"))  # UTC, microseconds
    # No database constraint: the copied name says who it was even if the user row goes.
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("who"),
    )
    actor_username = models.CharField(_("username"), max_length=150, blank=True)
    actor_name = models.CharField(_("name"), max_length=150, blank=True)
    actor_role = models.CharField(_("role"), max_length=20, blank=True)
    request_id = models.CharField(_("request id"), max_length=64, blank=True)
    client_address = models.CharField(_("client address"), max_length=100, blank=True)
    action = models.CharField(_("action"), max_length=64)
    target_type = models.CharField(_("target type"), max_length=64, blank=True)
    target_id = models.CharField(_("target id"), max_length=64, blank=True)
    target_repr = models.CharField(_("target"), max_length=200, blank=True)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("audit record")
        verbose_name_plural = _("audit records")
        constraints = [models.UniqueConstraint(fields=["log", "seq"], name="audit_record_unique_seq")]
        indexes = [
            models.Index(fields=["at"], name="audit_record_by_time"),
            models.Index(fields=["target_type", "target_id"], name="audit_record_by_target"),
        ]

    def __str__(self) -> str:
        return f"{self.action} #{self.seq}"


class AuditNode(AppendOnly):
    """Hash of the perfect subtree covering records [index·2^level, (index+1)·2^level)."""

    log = models.ForeignKey(AuditLog, on_delete=models.PROTECT, related_name="+")
    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.BinaryField(max_length=32)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["log", "level", "index"], name="audit_node_unique_position")
        ]

    def __str__(self) -> str:
        return f"node {self.level}/{self.index}"


class AuditHead(AppendOnly):
    """A signed tree head of an audit log, one per commit that appended to it."""

    log = models.ForeignKey(AuditLog, on_delete=models.PROTECT, related_name="+")
    size = models.BigIntegerField()
    root = models.BinaryField(max_length=32)
    at = models.CharField(max_length=20)  # the exact UTC stamp that was signed
    key_id = models.CharField(max_length=16)
    signature = models.CharField(max_length=100)
    created_at = models.DateTimeField()
    # ``fapiao keys compromised`` re-signs a head signed with a compromised key (the one change a
    # head ever gets): the earlier ``{key_id, signature}`` pairs are kept here.
    previous_signatures = models.JSONField(default=list, blank=True)

    class Meta:
        verbose_name = _("signed audit head")
        constraints = [models.UniqueConstraint(fields=["log", "size"], name="audit_head_unique_size")]

    def __str__(self) -> str:
        return f"head {self.size}"

    def resign(self, key_id: str, signature: str) -> None:
        """The same head (log, size, root, time) under a new key; the old signature is kept."""
        self.previous_signatures = [
            *(self.previous_signatures or []),
            {"key_id": self.key_id, "signature": self.signature},
        ]
        self.key_id, self.signature = key_id, signature
        fields = {"key_id": key_id, "signature": signature, "previous_signatures": self.previous_signatures}
        models.QuerySet.update(AuditHead.objects.filter(pk=self.pk), **fields)  # past AppendOnly, on purpose


class AuditVerifyRun(models.Model):
    """One run of ``audit verify`` (command line or the audit verification page) and its result.

    What monitoring reads for the time and result of the last audit verification
    (``fapiao_audit_last_verified_timestamp_seconds``).  ``log`` is empty for a run over every
    audit log.  A reference (coordinator) table on Citus, like the ledger's verify runs.
    """

    finished_at = models.DateTimeField(_("finished at"))
    log = models.CharField(_("log"), max_length=40, blank=True)  # "": every audit log
    deep = models.BooleanField(_("deep"), default=False)
    ok = models.BooleanField(_("passed"))
    errors = models.PositiveIntegerField(_("errors"), default=0)
    logs = models.PositiveIntegerField(_("logs"), default=0)
    records = models.BigIntegerField(_("records"), default=0)
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
        verbose_name = _("audit verification")
        verbose_name_plural = _("audit verifications")
        indexes = [models.Index(fields=["log", "finished_at"], name="audit_verify_run_latest")]

    def __str__(self) -> str:
        return f"audit verify {self.finished_at:%Y-%m-%d %H:%M} ({'ok' if self.ok else 'failed'})"
