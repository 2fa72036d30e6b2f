"""``Idempotency-Key``: a retried POST returns the original answer, never a second invoice."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from fapiao.accounts.models import User
from fapiao.core.errors import InvalidValueError, _
from fapiao.invoices.models import IdempotencyRecord

MAX_KEY_LENGTH = 255


class IdempotencyMismatchError(InvalidValueError):
    """This Idempotency-Key was already used with a different request."""

    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


def request_fingerprint(path: str, payload: object) -> str:
    raw = json.dumps({"path": path, "payload": payload}, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidValueError(
            _("The Idempotency-Key must be 1 to 255 printable characters."), code="bad_idempotency_key"
        )
    return key


def find_replay(*, user: User, key: str, fingerprint: str) -> Replay | None:
    """The stored answer for ``key``, or None; a different request under the same key is an error."""
    record = IdempotencyRecord.objects.filter(
        user=user, merchant=user.merchant, key=key, expires_at__gt=timezone.now()
    ).first()
    if record is None:
        return None
    if record.request_hash != fingerprint:
        raise IdempotencyMismatchError(_("This Idempotency-Key was already used with a different request."))
    return Replay(status=record.status, body=record.body)


def remember(*, user: User, key: str, fingerprint: str, status: int, body: dict[str, Any]) -> None:
    now = timezone.now()
    IdempotencyRecord.objects.update_or_create(
        user=user,
        merchant=user.merchant,
        key=key,
        defaults={
            "request_hash": fingerprint,
            "status": status,
            "body": body,
            "created_at": now,
            "expires_at": now + timedelta(hours=settings.FAPIAO_IDEMPOTENCY_TTL_HOURS),
        },
    )
