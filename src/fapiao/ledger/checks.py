"""Does the log still prove a receipt a merchant presents?  (docs/spec/ledger.md, "Witnessing")

A receipt is a witness held outside the database.  :func:`check_receipt_against_log` first
checks the receipt itself, offline, against this installation's key registry; a receipt that
fails there is *invalid* (forged, damaged, or signed by a key compromised at that time) and
says nothing about the log.  A validly signed receipt is then checked against the database:

1. the merchant's log exists and entry ``index`` has exactly the receipt's bytes;
2. the database still reproduces the receipt's head: a stored head of the same size with the
   same root, or else a consistency proof, computed from the stored nodes, from the
   receipt's ``(size, root)`` to the current head.

A valid receipt the log cannot prove is an integrity incident: :func:`check_and_report`
opens one (once per receipt while it is unresolved).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from fapiao.accounts.models import Merchant
from fapiao.core import merkle
from fapiao.core.choices import IncidentKind
from fapiao.core.errors import FapiaoError
from fapiao.core.receipt import Verdict, verify_receipt
from fapiao.ledger import incidents
from fapiao.ledger.models import IntegrityIncident, Log, LogEntry, TreeHead
from fapiao.ledger.services import fetch_nodes
from fapiao.platform import keys

Status = Literal["proven", "not_proven", "invalid"]

# not_proven reasons -> English msgid (translated when shown).
REASONS: dict[str, str] = {
    "log_missing": gettext_noop("This installation has no log {log}: the merchant's whole log is gone."),
    "entry_missing": gettext_noop("The log has no entry {index} any more (it holds {have} entries)."),
    "entry_altered": gettext_noop("Entry {index} in the log differs from the bytes the receipt proves."),
    "no_head": gettext_noop("The log {log} has no signed head at all."),
    "log_shorter": gettext_noop(
        "The log's latest head has size {current}, smaller than the receipt's {size}."
    ),
    "nodes_missing": gettext_noop("The log's Merkle nodes needed to prove the receipt are missing."),
    "verify_failed": gettext_noop("`ledger verify` found {errors} problems in log {log}: {summary}."),
    "inconsistent": gettext_noop(
        "The current head (size {current}) is not an append-only extension of the receipt's head "
        "(size {size}): the log was rewritten."
    ),
}
PROVEN_VIA: dict[str, str] = {
    "head": gettext_noop(
        "The log still holds entry {index} and a signed head of size {size} with the receipt's root."
    ),
    "consistency": gettext_noop(
        "The log still holds entry {index}, and its current head (size {current}) is a proven "
        "append-only extension of the receipt's head (size {size})."
    ),
}


@dataclass
class CheckResult:
    """``status`` proven / not_proven / invalid; ``code`` the route, the reason or the verdict code."""

    status: Status
    code: str
    verdict: Verdict
    details: dict[str, Any] = field(default_factory=dict)
    merchant_id: int | None = None
    incident: IntegrityIncident | None = None
    incident_created: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "proven"

    def message(self, lang: str = "en") -> str:
        """One sentence; ``lang`` picks the receipt verifier's own zh/en text for invalid receipts."""
        if self.status == "invalid":
            return self.verdict.message(lang)
        template = PROVEN_VIA[self.code] if self.status == "proven" else REASONS[self.code]
        try:
            return gettext(template).format(**self.details)
        except (KeyError, IndexError):
            return gettext(template)

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "code": self.code,
            "details": self.details,
            "verdict": {"ok": self.verdict.ok, "code": self.verdict.code},
            "incident": self.incident.pk if self.incident is not None else None,
            "incident_created": self.incident_created,
        }


def _receipt_details(receipt: Mapping[str, Any], verdict: Verdict) -> dict[str, Any]:
    """What identifies the receipt (no invoice data beyond its number)."""
    head = receipt["head"]
    entry = base64.b64decode(receipt["entry"])
    number = (verdict.entry or {}).get("invoice", {}).get("number")
    return {
        "log": head["log"],
        "index": receipt["index"],
        "size": head["size"],
        "root": head["root"],
        "at": head["at"],
        "key_id": head["key_id"],
        "leaf_hash": base64.b64encode(merkle.leaf_hash(entry)).decode("ascii"),
        "invoice_number": number if isinstance(number, str) else None,
    }


def _parse(data: bytes | str | Mapping[str, Any]) -> Mapping[str, Any]:

    if isinstance(data, Mapping):
        return data
    parsed: Mapping[str, Any] = json.loads(data)
    return parsed


def check_receipt_against_log(data: bytes | str | Mapping[str, Any]) -> CheckResult:
    """Check a receipt's signature (offline, key registry) and whether the database still proves it.

    Reads only; never raises on bad input.
    """
    verdict = verify_receipt(data, keys.registry())
    if not verdict.ok:
        details = {"verdict": verdict.code}
        for name in ("log", "index", "size"):
            if getattr(verdict, name) is not None:
                details[name] = getattr(verdict, name)
        return CheckResult("invalid", verdict.code, verdict, details)
    receipt = _parse(data)
    details = _receipt_details(receipt, verdict)
    status, code, merchant_id, extra = _prove(receipt, details)
    details.update(extra)
    return CheckResult(status, code, verdict, details, merchant_id)


Outcome = tuple[Status, str, dict[str, Any]]


def _prove(
    receipt: Mapping[str, Any], details: Mapping[str, Any]
) -> tuple[Status, str, int | None, dict[str, Any]]:
    merchant = Merchant.objects.filter(uscc=details["log"]).first()
    if merchant is None:
        return "not_proven", "log_missing", None, {}
    status, code, extra = _entry_outcome(merchant, details["index"], base64.b64decode(receipt["entry"]))
    if status == "proven":
        status, code, extra = _head_outcome(merchant, details["size"], base64.b64decode(details["root"]))
    return status, code, merchant.pk, extra


def _entry_outcome(merchant: Merchant, index: int, entry: bytes) -> Outcome:
    """Entry ``index`` must still hold exactly the receipt's bytes."""
    body = LogEntry.objects.filter(merchant=merchant, seq=index).values_list("body", flat=True).first()
    if body is None:
        have = Log.objects.filter(merchant=merchant).values_list("size", flat=True).first() or 0
        return "not_proven", "entry_missing", {"have": have}
    if bytes(body) != entry:
        return "not_proven", "entry_altered", {}
    return "proven", "entry", {}


def _head_outcome(merchant: Merchant, size: int, root: bytes) -> Outcome:
    """A stored head of the receipt's size and root, or a consistency proof to the current head."""
    if TreeHead.objects.filter(merchant=merchant, size=size, root=root).exists():
        return "proven", "head", {}
    current = TreeHead.objects.filter(merchant=merchant).order_by("-size").first()
    if current is None:
        return "not_proven", "no_head", {}
    extra = {"current": current.size}
    if current.size < size:
        return "not_proven", "log_shorter", extra
    try:
        nodes = fetch_nodes(merchant.pk, merkle.consistency_needs(size, current.size))
        proof = merkle.consistency_proof(size, current.size, nodes)
    except FapiaoError:  # MissingNodeError
        return "not_proven", "nodes_missing", extra
    if merkle.verify_consistency(size, current.size, root, bytes(current.root), proof):
        return "proven", "consistency", extra
    return "not_proven", "inconsistent", extra


def _english(result: CheckResult) -> str:
    """The message as stored with an incident: English, whatever language is active."""
    with translation.override("en"):
        return result.message("en")


def localized_reason(reason: str, details: Mapping[str, Any]) -> str | None:
    """The not_proven ``reason`` as a sentence in the active language (None if unknown)."""
    template = REASONS.get(reason)
    if template is None:
        return None
    try:
        return gettext(template).format(**details)
    except (KeyError, IndexError):
        return gettext(template)


# What higher apps check once a receipt is proven, as f(merchant id, entry index): the invoices app
# checks that the entry's invoice row is there and agrees with it (registered from its AppConfig.ready).
PROVEN_HOOKS: list[Callable[[int, int], object]] = []


def register_proven_hook(hook: Callable[[int, int], object]) -> None:
    if hook not in PROVEN_HOOKS:
        PROVEN_HOOKS.append(hook)


def check_and_report(data: bytes | str | Mapping[str, Any]) -> CheckResult:
    """:func:`check_receipt_against_log`, opening an integrity incident when a valid receipt is not
    proven (idempotent: the same receipt finds its unresolved incident).  A proven receipt's invoice
    row is checked by the hooks (a missing or altered row becomes the merchant's finding)."""
    result = check_receipt_against_log(data)
    if result.status == "proven" and result.merchant_id is not None:
        for hook in PROVEN_HOOKS:
            hook(result.merchant_id, int(result.details["index"]))
    if result.status != "not_proven":
        return result
    identity = {name: result.details[name] for name in ("log", "index", "size", "root", "key_id", "at")}
    identity["leaf_hash"] = result.details["leaf_hash"]
    merchant = Merchant.objects.filter(pk=result.merchant_id).first() if result.merchant_id else None
    details = {
        **result.details,
        "reason": result.code,
        "verdict": result.verdict.code,
        "message": _english(result),
        "source": "check-receipt",
    }
    result.incident, result.incident_created = incidents.open_incident(
        kind=IncidentKind.RECEIPT_NOT_PROVEN, merchant=merchant, identity=identity, details=details
    )
    return result
