"""Writing the audit trail: :func:`record` appends one record to a chained, append-only log.

``record(...)`` writes in the caller's transaction, so a record commits with the change it
describes or not at all.  Inside a unit of work (``fapiao.platform.uow``: invoice writes, group
commit) a record costs one ``UPDATE … RETURNING`` of its log's size; its row joins the unit's
one INSERT of records, and the Merkle nodes of everything the unit appended and one signed head
per touched log are written once, just before the commit.  Outside a unit (sign-ins, token
changes, CLI commands) the record is sealed at once.  Signed heads are appended to the audit
witness file after the commit.

The request id and the client's address come from :mod:`fapiao.platform.context`.  ``before`` and
``after`` are stored through :func:`fapiao.core.masking.masked_snapshot`: sensitive party data
masked, secrets redacted — never plaintext.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from typing import Any

from django.db import DatabaseError, transaction
from django.db.models import Model
from django.utils import timezone

from fapiao.audit.models import STAFF_LOG, STAFF_LOG_ID, AuditLog, AuditRecord
from fapiao.audit.store import Pending, insert_record, next_seq, record_leaf, seal_logs, witness
from fapiao.core.masking import masked_snapshot, scrub_text
from fapiao.platform import context as request_context
from fapiao.platform.uow import current_unit

log = logging.getLogger("fapiao.audit")

MAX_NOTE = 2000
_logs: dict[int | None, tuple[int, str]] = {}  # merchant id (None: staff) -> (log id, log name)
_logs_lock = threading.Lock()


# --- Who and what -------------------------------------------------------------------------------


def display_name(user: Any) -> str:
    """王开票 for Chinese names (family name first), 'Ann Lee' otherwise; the username when empty."""
    last, first = (
        (getattr(user, "last_name", "") or "").strip(),
        (getattr(user, "first_name", "") or "").strip(),
    )
    if any("CJK" in unicodedata.name(char, "") for char in last + first):
        name = last + first
    else:
        name = f"{first} {last}".strip()
    return name or str(getattr(user, "username", ""))


def actor_fields(actor: Any) -> dict[str, Any]:
    if actor is None or not getattr(actor, "is_authenticated", False) or getattr(actor, "pk", None) is None:
        return {"actor_id": None, "actor_username": "", "actor_name": "", "actor_role": ""}
    return {
        "actor_id": actor.pk,
        "actor_username": str(actor.username)[:150],
        "actor_name": scrub_text(display_name(actor))[:150],
        "actor_role": str(getattr(actor, "role", "") or "")[:20],
    }


def target_fields(target: Any, target_type: str, target_id: str) -> dict[str, str]:
    kind, ident, text = target_type, target_id, ""
    if target is not None:
        if isinstance(target, Model):
            kind = kind or target._meta.label_lower
            ident = ident or str(target.pk)
        text = str(target)
    return {
        "target_type": str(kind)[:64],
        "target_id": scrub_text(str(ident))[:64],
        "target_repr": scrub_text(text)[:200],
    }


def _merchant_of(merchant: Any, target: Any, actor: Any) -> Any:
    """The merchant whose log a record goes to: as given, else the target's, else a merchant user's own."""
    if merchant is not None:
        return merchant
    target_merchant = getattr(target, "merchant", None) if isinstance(target, Model) else None
    if target_merchant is not None and hasattr(target_merchant, "uscc"):
        return target_merchant
    if getattr(actor, "is_authenticated", False) and getattr(actor, "is_merchant_user", False):
        return getattr(actor, "merchant", None)
    return None


# --- Logs ---------------------------------------------------------------------------------------


def _log_for(merchant: Any) -> tuple[int, str]:
    key = merchant.pk if merchant is not None else None
    with _logs_lock:
        cached = _logs.get(key)
    if cached is not None:
        return cached
    name = f"audit:{merchant.uscc}" if merchant is not None else STAFF_LOG
    log_id = merchant.pk if merchant is not None else STAFF_LOG_ID
    row, _created = AuditLog.objects.get_or_create(pk=log_id, defaults={"name": name, "merchant": merchant})
    found = (row.pk, row.name)
    with _logs_lock:
        _logs[key] = found
    return found


def _forget_log(merchant: Any) -> None:
    with _logs_lock:
        _logs.pop(merchant.pk if merchant is not None else None, None)


# --- Recording ----------------------------------------------------------------------------------


def _pending_of(unit: Any) -> Pending:
    pending: Pending | None = unit.extras.get("audit")
    if pending is None:
        pending = unit.extras["audit"] = Pending(unit)
    # A savepoint that failed drops the callbacks registered inside it: register again.
    if not any(callback == pending.seal for callback in unit.before_commit):
        unit.before_commit.append(pending.seal)
    return pending


def _append(merchant: Any, fields: dict[str, Any], unit: Any = None) -> tuple[AuditRecord, int, str]:
    """Take the log's next index (locking its row) and store the record: now, or with ``unit``
    in the unit's one INSERT of records (its primary key is set then, before the commit)."""
    log_id, name = _log_for(merchant)
    seq = next_seq(log_id)
    if seq is None:  # the cached log row was rolled back with the transaction that made it
        _forget_log(merchant)
        log_id, name = _log_for(merchant)
        seq = next_seq(log_id)
        if seq is None:
            raise DatabaseError(f"audit log {name} disappeared")
    row = AuditRecord(log_id=log_id, seq=seq, **fields)
    if unit is not None:
        unit.defer(row)
    else:
        row.pk = insert_record(row)
    return row, log_id, name


def record(
    *,
    actor: Any,
    action: str,
    target: Any = None,
    target_type: str = "",
    target_id: str = "",
    merchant: Any = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    note: str = "",
) -> AuditRecord:
    """Record that ``actor`` did ``action`` to ``target`` (before/after snapshots, sensitive fields masked).

    ``actor`` is a User or None (anonymous, e.g. a failed login; the system or the command line).
    ``merchant`` selects the merchant's audit log; when None, the target's merchant or a merchant
    user's own merchant, else the staff log.  Request id and client address come from the request
    context.  Runs in the caller's transaction (and unit of work, when there is one).
    """

    merchant = _merchant_of(merchant, target, actor)
    context = request_context.snapshot()
    fields: dict[str, Any] = {
        "at": timezone.now(),
        **actor_fields(actor),
        "request_id": context.request_id[:64],
        "client_address": context.client_address[:100],
        "action": str(action)[:64],
        **target_fields(target, target_type, target_id),
        "before": masked_snapshot(before) if before is not None else None,
        "after": masked_snapshot(after) if after is not None else None,
        "note": scrub_text(str(note))[:MAX_NOTE],
    }
    unit = current_unit()
    if unit is not None:
        row, log_id, name = _append(merchant, fields, unit)
        pending = _pending_of(unit)
        pending.names[log_id] = name
        pending.leaves[(log_id, row.seq)] = record_leaf(name, row)
        return row
    with transaction.atomic():
        row, log_id, name = _append(merchant, fields)
        heads = seal_logs({log_id: name}, {(log_id, row.seq): record_leaf(name, row)})
    transaction.on_commit(lambda: witness(heads))
    return row


def record_quietly(**kwargs: Any) -> AuditRecord | None:
    """:func:`record` for security events outside any change (401, 403): a database failure is logged,
    never turned into a second error."""
    try:
        return record(**kwargs)
    except DatabaseError as error:
        log.warning("audit record %s not written: %s", kwargs.get("action"), error)
        return None
