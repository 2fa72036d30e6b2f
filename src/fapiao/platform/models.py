"""The platform's own tables: the stored answers of idempotent POSTs, the rate limiter's counters."""

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


class RateCounter(models.Model):
    """How many times ``key`` hit ``scope`` in one fixed window (epoch seconds, UTC).

    One row per (scope, key, window start), counted up with one upsert statement, so every
    server process and worker shares the count; a closed window's row is purged.
    """

    scope = models.CharField(max_length=40)
    key = models.CharField(max_length=200)
    window_start = models.BigIntegerField()
    window_end = models.BigIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key", "window_start"], name="ratecounter_unique_window")
        ]
        indexes = [models.Index(fields=["window_end"], name="ratecounter_by_end")]

    def __str__(self) -> str:
        return f"{self.scope}:{self.key}@{self.window_start} = {self.count}"


class HourlyCount(models.Model):
    """How many answers of one kind (``refused``: 401/403; ``unavailable``: 503) the server gave
    in one hour (``hour_start``: epoch seconds, UTC, on the hour), for the operators' overview.

    One row per (kind, hour), raised by one upsert (:mod:`fapiao.platform.hourly`); rows older than
    :data:`fapiao.platform.hourly.KEEP_DAYS` are deleted as new hours begin.
    """

    kind = models.CharField(max_length=16)
    hour_start = models.BigIntegerField()
    count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "hour_start"], name="hourlycount_unique_hour")]
        indexes = [models.Index(fields=["hour_start"], name="hourlycount_by_hour")]

    def __str__(self) -> str:
        return f"{self.kind}@{self.hour_start} = {self.count}"
