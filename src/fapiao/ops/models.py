"""What the operations side keeps: the result of every backup verification."""

from __future__ import annotations

from django.db import models


class BackupVerification(models.Model):
    """One ``fapiao backup verify`` (or the verification a restore runs first) and what it found.

    Rows are kept: they are the record that backups were proven by restoring them (应急预案).
    """

    backup_id = models.CharField(max_length=40)
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    ok = models.BooleanField(default=False)
    problems = models.JSONField(default=list, blank=True)
    invoices = models.BigIntegerField(default=0)  # what the manifest says the backup holds
    entries = models.BigIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["finished_at"], name="backup_verification_finished")]

    def __str__(self) -> str:
        return f"{self.backup_id} {'ok' if self.ok else 'failed'}"
