"""The platform's own table: the stored answers of idempotent POSTs."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class IdempotencyRecord(models.Model):
    """The stored answer to a POST made with an ``Idempotency-Key``.

    The response body holds only what the API returned (sensitive fields masked).
    """

    merchant = models.ForeignKey("accounts.Merchant", on_delete=models.PROTECT, null=True, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField()
    body = models.JSONField()
    created_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["merchant", "user", "key"], name="idempotency_unique_key"),
            models.UniqueConstraint(
                fields=["user", "key"],
                condition=models.Q(merchant__isnull=True),
                name="idempotency_unique_staff_key",
            ),
        ]

    def __str__(self) -> str:
        return self.key
