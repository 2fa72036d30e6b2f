"""``Idempotency-Key``: a retried POST returns the original answer, never a second invoice."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from fapiao.accounts.models import User
from fapiao.core.errors import ConflictError, InvalidValueError, _
from fapiao.invoices.models import IdempotencyRecord
from fapiao.ops.datakeys import keyring

MAX_KEY_LENGTH = 255


CLAIMED = 0  # the status of a record whose request is still running


class IdempotencyInProgressError(ConflictError):
    """A request with this Idempotency-Key is still being processed; retry shortly."""

    code = "idempotency_key_in_progress"


class IdempotencyMismatchError(InvalidValueError):
    """This Idempotency-Key was already used with a different request."""

    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Replay:
    status: int
    body: dict[str, Any]


def request_fingerprint(path: str, payload: object) -> str:
    """A keyed digest of the request: a plain hash of a body whose other fields the invoice row
    shows would let anyone with a database copy guess a buyer's phone number by brute force."""
    raw = json.dumps({"path": path, "payload": payload}, sort_keys=True, ensure_ascii=False)
    return keyring().keyed_digest(raw.encode("utf-8", "surrogatepass"), purpose="idempotency")


def check_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidValueError(
            _("The Idempotency-Key must be 1 to 255 printable characters."), code="bad_idempotency_key"
        )
    return key


def _live(user: User, key: str) -> IdempotencyRecord | None:
    return IdempotencyRecord.objects.filter(
        user=user, merchant=user.merchant, key=key, expires_at__gt=timezone.now()
    ).first()


def _replay_of(record: IdempotencyRecord, fingerprint: str) -> Replay:
    if record.request_hash != fingerprint:
        raise IdempotencyMismatchError(_("This Idempotency-Key was already used with a different request."))
    if record.status == CLAIMED:
        raise IdempotencyInProgressError()
    return Replay(status=record.status, body=record.body)


def claim(*, user: User, key: str, fingerprint: str) -> Replay | None:
    """Claim ``key`` for this request inside the current transaction, or return its stored answer.

    A record still being written by another transaction makes this wait on the unique index
    (PostgreSQL) or on the write lock (SQLite); once that commits, its answer is replayed.
    """
    record = _live(user, key)
    if record is not None:
        return _replay_of(record, fingerprint)
    now = timezone.now()
    expires = now + timedelta(hours=settings.FAPIAO_IDEMPOTENCY_TTL_HOURS)
    stale = {
        "request_hash": fingerprint,
        "status": CLAIMED,
        "body": {},
        "created_at": now,
        "expires_at": expires,
    }
    try:
        with transaction.atomic():
            updated = IdempotencyRecord.objects.filter(user=user, merchant=user.merchant, key=key).update(
                **stale
            )
            if not updated:
                IdempotencyRecord.objects.create(user=user, merchant=user.merchant, key=key, **stale)
    except IntegrityError:
        record = _live(user, key)
        if record is None:
            raise IdempotencyInProgressError() from None
        return _replay_of(record, fingerprint)
    return None


def remember(*, user: User, key: str, fingerprint: str, status: int, body: dict[str, Any]) -> None:
    """Store the final answer of a claimed key (same transaction as the claim)."""
    IdempotencyRecord.objects.filter(
        user=user, merchant=user.merchant, key=key, request_hash=fingerprint
    ).update(status=status, body=body)
