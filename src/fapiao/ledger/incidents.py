"""Integrity incidents (数据完整性事件): open → acknowledged → resolved with a note (docs/spec/ledger.md).

The system opens an incident when it holds evidence that the ledger lost or changed
something — today, a validly signed receipt the log no longer proves
(:mod:`fapiao.ledger.checks`).  An operator acknowledges it (someone is on it) and resolves
it with a note saying what was found and done.  An incident counts as *open* until it is
resolved: while any is, ``/readyz`` reports ``degraded`` and operators see a banner.

Services take the incident id and the version the caller last saw (optimistic locking) and
raise :mod:`fapiao.core.errors` exceptions with English msgids; every transition goes
through :func:`record_incident_event`, the audit hook.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import ngettext

from fapiao.accounts.permissions import Action, may, require
from fapiao.audit.services import record
from fapiao.core.canonical import canonical_bytes
from fapiao.core.choices import IncidentKind, IncidentState
from fapiao.core.errors import ConflictError, FieldError, NotFoundError, ValidationFailed, _
from fapiao.ledger.models import IntegrityIncident

if TYPE_CHECKING:
    from fapiao.accounts.models import Merchant, User

log = logging.getLogger("fapiao.incidents")

MAX_NOTE_LENGTH = 4000
UNRESOLVED = (IncidentState.OPEN.value, IncidentState.ACKNOWLEDGED.value)
# Operators handle incidents (docs/architecture.md, who may do what); it may get its own Action.
HANDLE_INCIDENTS = Action.HANDLE_INCIDENTS


class IncidentNotFoundError(NotFoundError):
    """No such integrity incident."""

    code = "incident_not_found"


class IncidentStateError(ConflictError):
    """The integrity incident is not in a state that allows this."""

    code = "incident_state"


class StaleIncidentError(ConflictError):
    """Someone changed this integrity incident first; reload it and try again."""

    code = "stale_version"


# --- the audit hook ----------------------------------------------------------------------------


def record_incident_event(event: str, incident: IntegrityIncident, *, by: User | None = None) -> None:
    """Record one incident event (``opened``, ``acknowledged``, ``resolved``).

    THE AUDIT HOOK: called inside the transaction of every incident transition.  It writes an
    append-only audit record (``incident.<event>``) in that same transaction — to the merchant's
    audit log when the incident names a merchant, else the staff log — and one structured log
    line after the commit.
    """

    record(
        actor=by,
        action=f"incident.{event}",
        target=incident,
        merchant=incident.merchant,
        after=incident_document(incident),
    )
    payload = {"event": f"integrity_incident.{event}", **incident_document(incident)}
    payload["actor"] = by.username if by is not None else "system"
    level = logging.ERROR if event == "opened" else logging.WARNING
    line = json.dumps(payload, ensure_ascii=False, sort_keys=True)
    transaction.on_commit(lambda: log.log(level, line, extra={"event": payload}))


def incident_document(incident: IntegrityIncident) -> dict[str, Any]:
    """The incident as the CLI's ``--json``, logs and (later) the audit trail show it."""

    def stamp(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": incident.pk,
        "kind": incident.kind,
        "state": incident.state,
        "merchant_id": incident.merchant_id,
        "details": incident.details,
        "opened_at": stamp(incident.opened_at),
        "acknowledged_at": stamp(incident.acknowledged_at),
        "acknowledged_by": incident.acknowledged_by.username if incident.acknowledged_by else None,
        "resolved_at": stamp(incident.resolved_at),
        "resolved_by": incident.resolved_by.username if incident.resolved_by else None,
        "resolution_note": incident.resolution_note,
        "version": incident.version,
    }


# --- services ----------------------------------------------------------------------------------


def fingerprint(kind: str, identity: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the RFC 8785 bytes of ``{"kind": kind, **identity}``: names the evidence."""
    return hashlib.sha256(canonical_bytes({**identity, "kind": str(kind)})).hexdigest()


def open_incident(
    *,
    kind: IncidentKind | str,
    merchant: Merchant | None,
    identity: Mapping[str, Any],
    details: Mapping[str, Any],
) -> tuple[IntegrityIncident, bool]:
    """Open an incident unless one for the same evidence (``identity``) is still unresolved.

    Returns ``(incident, created)``.  Safe under concurrency: a partial unique constraint
    allows one unresolved incident per fingerprint.
    """
    kind = IncidentKind(kind)
    digest = fingerprint(kind.value, identity)
    existing = unresolved().filter(fingerprint=digest).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            incident = IntegrityIncident.objects.create(
                merchant=merchant,
                kind=kind.value,
                state=IncidentState.OPEN.value,
                fingerprint=digest,
                details=dict(details),
                opened_at=timezone.now(),
            )
            record_incident_event("opened", incident)
    except IntegrityError:
        existing = unresolved().filter(fingerprint=digest).first()
        if existing is None:
            raise
        return existing, False
    return incident, True


def _locked(incident_id: int, version: int | None) -> IntegrityIncident:
    incident = IntegrityIncident.objects.select_for_update().filter(pk=incident_id).first()
    if incident is None:
        raise IncidentNotFoundError(_("There is no integrity incident {id}."), id=incident_id)
    if version is not None and incident.version != version:
        raise StaleIncidentError(
            _(
                "Integrity incident {id} has changed since you read it (version {current}, not {given}); "
                "reload it and try again."
            ),
            id=incident_id,
            current=incident.version,
            given=version,
        )
    return incident


def acknowledge(*, incident_id: int, by: User, version: int | None = None) -> IntegrityIncident:
    """open → acknowledged: an operator says they are working on it."""
    require(by, HANDLE_INCIDENTS)
    with transaction.atomic():
        incident = _locked(incident_id, version)
        if incident.state != IncidentState.OPEN:
            raise IncidentStateError(
                _("Integrity incident {id} is {state}; only an open incident can be acknowledged."),
                id=incident_id,
                state=incident.state,
            )
        incident.state = IncidentState.ACKNOWLEDGED.value
        incident.acknowledged_at = timezone.now()
        incident.acknowledged_by = by
        incident.version += 1
        incident.save(update_fields=["state", "acknowledged_at", "acknowledged_by", "version"])
        record_incident_event("acknowledged", incident, by=by)
    return incident


def resolve(*, incident_id: int, by: User, note: str, version: int | None = None) -> IntegrityIncident:
    """acknowledged → resolved, with a note saying what was found and what was done."""
    require(by, HANDLE_INCIDENTS)
    note = (note or "").strip()
    if not note:
        raise ValidationFailed(
            [FieldError("note", "required", _("Say what was found and what was done."))],
            _("A resolution note is required."),
        )
    if len(note) > MAX_NOTE_LENGTH:
        raise ValidationFailed(
            [
                FieldError(
                    "note",
                    "too_long",
                    _("Keep the note within {most} characters."),
                    {"most": MAX_NOTE_LENGTH},
                )
            ]
        )
    with transaction.atomic():
        incident = _locked(incident_id, version)
        if incident.state == IncidentState.OPEN:
            raise IncidentStateError(
                _("Acknowledge integrity incident {id} before resolving it."), id=incident_id
            )
        if incident.state != IncidentState.ACKNOWLEDGED:
            raise IncidentStateError(
                _("Integrity incident {id} is already resolved."), id=incident_id, state=incident.state
            )
        incident.state = IncidentState.RESOLVED.value
        incident.resolved_at = timezone.now()
        incident.resolved_by = by
        incident.resolution_note = note
        incident.version += 1
        incident.save(update_fields=["state", "resolved_at", "resolved_by", "resolution_note", "version"])
        record_incident_event("resolved", incident, by=by)
    return incident


# --- selectors ---------------------------------------------------------------------------------


def unresolved() -> QuerySet[IntegrityIncident]:
    """Incidents not yet resolved (open or acknowledged), oldest first."""
    return IntegrityIncident.objects.filter(state__in=UNRESOLVED).order_by("opened_at", "pk")


def open_incident_count() -> int:
    """How many incidents are open (not yet resolved): what ``/readyz`` reports."""
    return unresolved().count()


def incidents(*, include_resolved: bool = False) -> QuerySet[IntegrityIncident]:
    queryset = IntegrityIncident.objects.select_related("merchant", "acknowledged_by", "resolved_by")
    if not include_resolved:
        queryset = queryset.filter(state__in=UNRESOLVED)
    return queryset.order_by("opened_at", "pk")


def get_incident(incident_id: int) -> IntegrityIncident:
    incident = incidents(include_resolved=True).filter(pk=incident_id).first()
    if incident is None:
        raise IncidentNotFoundError(_("There is no integrity incident {id}."), id=incident_id)
    return incident


def banner_for(user: User | None) -> str | None:
    """The operators' banner while incidents are open (None for everyone else, or when none is).

    For the web layer's context processor / base template.
    """
    if user is None or not getattr(user, "is_authenticated", False) or not may(user, HANDLE_INCIDENTS):
        return None
    count = open_incident_count()
    if not count:
        return None
    return ngettext(
        "%(count)d integrity incident is open.",
        "%(count)d integrity incidents are open.",
        count,
    ) % {"count": count}
