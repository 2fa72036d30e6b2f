"""``Idempotency-Key``: a retried POST returns the original answer, never a second invoice."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.utils import timezone

from fapiao.core.errors import ConflictError, InvalidValueError, _
from fapiao.platform.datakeys import keyring
from fapiao.platform.models import IdempotencyRecord
from fapiao.platform.uow import UnitOfWork


class User(Protocol):
    """Who makes the request: keys are scoped to the user and their merchant (none for staff)."""

    pk: Any
    merchant_id: int | None


class Answer(Protocol):
    """What an idempotent write answers: its status and its body (final once receipts exist)."""

    status: int
    body: dict[str, Any]


A = TypeVar("A", bound=Answer)

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
    records = IdempotencyRecord.objects.filter(user_id=user.pk, key=key, expires_at__gt=timezone.now())
    if user.merchant_id is None:
        return records.filter(merchant__isnull=True).first()
    return records.filter(merchant_id=user.merchant_id).first()


def _replay_of(record: IdempotencyRecord, fingerprint: str) -> Replay:
    if record.request_hash != fingerprint:
        raise IdempotencyMismatchError(_("This Idempotency-Key was already used with a different request."))
    if record.status == CLAIMED:
        raise IdempotencyInProgressError()
    return Replay(status=record.status, body=record.body)


_CLAIM_FIELDS = ("merchant", "user", "key", "request_hash", "status", "body", "created_at", "expires_at")


@functools.cache
def _field(name: str) -> Any:
    return IdempotencyRecord._meta.get_field(name)


@functools.cache
def _statements(vendor: str) -> dict[str, str]:
    """The claim and remember statements, with quoted names (built once per vendor)."""
    del vendor  # the cache key
    quote = connection.ops.quote_name
    table = quote(IdempotencyRecord._meta.db_table)
    columns = [quote(str(_field(name).column)) for name in _CLAIM_FIELDS]
    merchant, user, key, expires = (quote(c) for c in ("merchant_id", "user_id", "key", "expires_at"))
    # Insert the claim; or take over an expired record of the same key (one statement, no
    # savepoint).  A live record makes it return nothing; on PostgreSQL a record another
    # transaction is still writing makes it wait for that transaction first.
    claim = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "  # noqa: S608
        "ON CONFLICT ({target}) DO UPDATE SET "
        + ", ".join(f"{column} = excluded.{column}" for column in columns[3:])
        + f" WHERE {table}.{expires} <= excluded.{quote('created_at')} RETURNING {quote('id')}"
    )
    return {
        "claim": claim.replace("{target}", f"{merchant}, {user}, {key}"),
        # Staff have no merchant: their keys are unique per user (a partial unique index).
        "claim_staff": claim.replace("{target}", f"{user}, {key}) WHERE ({merchant} IS NULL"),
        "remember": f"UPDATE {table} SET {quote('status')} = %s, {quote('body')} = %s "  # noqa: S608
        f"WHERE {quote('id')} = %s",
    }


def claim(*, user: User, key: str, fingerprint: str) -> Replay | int:
    """Claim ``key`` for this request inside the current transaction (the record's id, for
    :func:`remember`), or return its stored answer.

    A record still being written by another transaction makes this wait on the unique index
    (PostgreSQL) or on the write lock (SQLite); once that commits, its answer is replayed.
    """
    now = timezone.now()
    wrapper = connections[DEFAULT_DB_ALIAS]  # not the proxy: every attribute through it costs a lookup
    values = [
        user.merchant_id,
        user.pk,
        key,
        fingerprint,
        CLAIMED,
        _field("body").get_db_prep_save({}, wrapper),
        _field("created_at").get_db_prep_save(now, wrapper),
        _field("expires_at").get_db_prep_save(
            now + timedelta(hours=settings.FAPIAO_IDEMPOTENCY_TTL_HOURS), wrapper
        ),
    ]
    statement = _statements(connection.vendor)["claim" if user.merchant_id is not None else "claim_staff"]
    with connection.cursor() as cursor:
        cursor.execute(statement, values)
        claimed = cursor.fetchone()
    if claimed is not None:
        return int(claimed[0])
    found = _live(user, key)
    if found is None:
        raise IdempotencyInProgressError()
    return _replay_of(found, fingerprint)


def remember(*, record_id: int, status: int, body: dict[str, Any], unit: UnitOfWork | None = None) -> None:
    """Store the final answer in the record :func:`claim` made (same transaction as the claim).

    With ``unit`` the UPDATE joins the unit's other answers in one ``executemany`` at its flush.
    """
    body_value = _field("body").get_db_prep_save(body, connections[DEFAULT_DB_ALIAS])
    sql = _statements(connection.vendor)["remember"]
    if unit is not None:
        unit.defer_sql(sql, (status, body_value, record_id))
        return
    with connection.cursor() as cursor:
        cursor.execute(sql, [status, body_value, record_id])


def once(
    unit: UnitOfWork,
    *,
    user: User,
    key: str | None,
    fingerprint: str,
    run: Callable[[], A],
    replay: Callable[[int, dict[str, Any]], A],
) -> A:
    """Run ``run`` in ``unit`` unless ``key`` was seen; store its answer before commit.

    The key is claimed (its record inserted) before the work, in the same transaction, so a
    concurrent request with the same key waits for this one and then replays it; a duplicate
    inside the same unit (group commit, or a bulk request) shares the first one's answer.
    ``run`` must queue whatever fills its answer's body on ``unit.before_commit``; the answer is
    stored by a callback queued after those.  ``replay`` builds the answer of a replay.
    """
    if not key:
        return run()
    claimed_key = (user.pk, key)
    earlier = unit.claims.get(claimed_key)
    if earlier is not None:
        earlier_fingerprint, first = earlier
        if earlier_fingerprint != fingerprint:
            raise IdempotencyMismatchError()
        twin = replay(first.status, {})
        unit.before_commit.append(lambda: setattr(twin, "body", first.body))
        return twin
    claimed = claim(user=user, key=key, fingerprint=fingerprint)
    if isinstance(claimed, Replay):
        return replay(claimed.status, claimed.body)
    result = run()
    unit.before_commit.append(
        lambda: remember(record_id=claimed, status=result.status, body=result.body, unit=unit)
    )
    unit.claims[claimed_key] = (fingerprint, result)
    return result
