"""Automatic checks of evidence a machine can check: system receipts and e-invoice XML files.

Results are stored on the evidence row as an English msgid plus parameters (shown translated)
and as ``check_status``: verified, mismatch (authentic, but not what the claim says) or failed.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import get_language, gettext, gettext_noop

from fapiao.core.claims import compare_claim
from fapiao.core.evidence import EvidenceType
from fapiao.formats.einvoice_xml import read_einvoice_xml
from fapiao.ledger.checks import check_and_report
from fapiao.ledger.models import Log
from fapiao.platform import keys
from fapiao.platform.verifying import read_witnesses
from fapiao.recovery import replay
from fapiao.recovery.choices import CheckStatus
from fapiao.recovery.claim import claim_mapping
from fapiao.recovery.models import Case, Evidence, SupersededNumber

BEIJING = ZoneInfo("Asia/Shanghai")

RECEIPT_PROVEN = gettext_noop(
    "Receipt valid: the invoice is entry {index} of the log, received by the system at {at}."
)
RECEIPT_OTHER_NUMBER = gettext_noop(
    "The receipt is valid but for invoice {found}, not the claimed {claimed}."
)
RECEIPT_OTHER_LOG = gettext_noop("The receipt belongs to another merchant's log.")
RECEIPT_NOT_PROVEN = gettext_noop(
    "The receipt is validly signed but the log no longer proves it; integrity incident {incident} was opened."
)
RECEIPT_INVALID = gettext_noop("The receipt does not verify: {reason}")
RECEIPT_REPLAYABLE = gettext_noop(
    "Receipt replayable: its signature verifies, the witness file agrees with its root at size {size}, "
    "and entry {index} lies beyond the current log ({current} entries): a restore lost it. "
    "It can be replayed from the receipt."
)
RECEIPT_WITNESS_DISAGREES = gettext_noop(
    "The receipt is validly signed, but the witness file saw another root for this log at size {size}: "
    "it is not this log's and cannot be replayed."
)
RECEIPT_WITNESS_UNSEEN = gettext_noop(
    "The receipt is validly signed, but the witness file never saw a head of size {size} for this log: "
    "it cannot be replayed."
)
RECEIPT_NOT_REPLAYABLE = gettext_noop("The receipt is validly signed but cannot be replayed: {reason}")
EINVOICE_MATCHES = gettext_noop("The e-invoice file matches the claim: {fields}.")
EINVOICE_DIFFERS = gettext_noop("The e-invoice file differs from the claim in: {fields}.")
EINVOICE_UNREADABLE = gettext_noop("The e-invoice file could not be read: {problems}")
SUPERSEDED_SURFACED = gettext_noop(
    "Invoice {number} was replaced by a re-issue and has surfaced: red-letter one of them."
)


def _set(evidence: Evidence, status: CheckStatus, message: str, **params: Any) -> None:
    evidence.check_status = status
    evidence.check_details = {**evidence.check_details, "message": message, "params": params}
    evidence.check_summary = message.format(**params)[:500]


def check_message(evidence: Evidence) -> str:
    """The check's result in the active language ("" when nothing was checked)."""
    details = evidence.check_details or {}
    message = details.get("message")
    if not message:
        return ""
    params = dict(details.get("params", {}))
    if isinstance(params.get("fields"), str):
        names = [name for name in params["fields"].split(", ") if name]
        separator = "、" if (get_language() or "").startswith("zh") else ", "
        params["fields"] = separator.join(gettext(FIELD_LABELS.get(name, name)) for name in names)
    try:
        return gettext(message).format(**params)
    except (KeyError, IndexError):
        return gettext(message)


# The claim's fields as the e-invoice comparison names them, in the reader's words.
FIELD_LABELS = {
    "number": gettext_noop("invoice number"),
    "issued_on": gettext_noop("invoice date"),
    "seller_tax_id": gettext_noop("seller's taxpayer number"),
    "buyer_name": gettext_noop("buyer"),
    "buyer_tax_id": gettext_noop("buyer's taxpayer number"),
    "total_with_tax_fen": gettext_noop("total with tax"),
    "total_amount_fen": gettext_noop("amount without tax"),
    "total_tax_fen": gettext_noop("tax"),
}


def _beijing(at: str) -> str:
    try:
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return str(at)
    return moment.astimezone(BEIJING).strftime("%Y-%m-%d %H:%M:%S")


def surfaced(case: Case, number: str, how: str) -> bool:
    """Is ``number`` one a re-issue superseded?  Evidence shows it exists after all: flag it (the first
    time) so one of the two invoices gets red-lettered, and say so every time it is shown again."""
    superseded = SupersededNumber.objects.filter(merchant_id=case.merchant_id, number=number)
    superseded.filter(surfaced_at__isnull=True).update(surfaced_at=timezone.now(), surfaced_how=how[:200])
    return superseded.exists()


def check_receipt(evidence: Evidence, case: Case, data: bytes) -> None:
    result = check_and_report(data)
    if result.status == "invalid":
        _set(evidence, CheckStatus.FAILED, RECEIPT_INVALID, reason=result.verdict.message("en"))
        return
    if result.details.get("log") != case.merchant.uscc:
        _set(evidence, CheckStatus.MISMATCH, RECEIPT_OTHER_LOG)
        return
    if result.status == "not_proven" and _replayable(evidence, case, data):
        return
    if result.status == "not_proven":
        incident = result.incident.pk if result.incident is not None else "?"
        _set(evidence, CheckStatus.FAILED, RECEIPT_NOT_PROVEN, incident=incident)
        evidence.check_details["incident"] = incident
        return
    entry = result.verdict.entry or {}
    number = result.details.get("invoice_number") or ""
    evidence.check_details["receipt"] = {"index": result.details["index"], "number": number}
    if number != case.claimed_number:
        _set(evidence, CheckStatus.MISMATCH, RECEIPT_OTHER_NUMBER, found=number, claimed=case.claimed_number)
    else:
        _set(
            evidence,
            CheckStatus.VERIFIED,
            RECEIPT_PROVEN,
            index=result.details["index"],
            at=_beijing(entry.get("at", "")),
        )
    if surfaced(case, number, f"system receipt on case {case.acceptance_no or case.uid}"):
        # The receipt's own verdict stays in the status; the message says what must happen now.
        evidence.check_details["surfaced"] = number
        _set(evidence, CheckStatus(evidence.check_status), SUPERSEDED_SURFACED, number=number)


def _replayable(evidence: Evidence, case: Case, data: bytes) -> bool:
    """A valid receipt the log cannot prove because its entry lies beyond the log (a restore lost
    it): the replay's own checks say whether it can come back.  True when this settled the check."""
    merchant = case.merchant
    size = int(Log.objects.filter(merchant=merchant).values_list("size", flat=True).first() or 0)
    receipt = json.loads(data)
    index, head_size = int(receipt["index"]), int(receipt["head"]["size"])
    if index < size:
        return False  # the log has the entry: altered or rewritten, not lost (an incident)
    registry = keys.registry()
    witness, _findings = read_witnesses([Path(settings.FAPIAO_WITNESS_FILE)], keys=registry)
    checked = replay.check_receipt(
        Path(evidence.filename),
        data,
        registry=registry,
        witness=witness,
        merchants={merchant.uscc: merchant},
        merchant=merchant.uscc,
    )
    if isinstance(checked, replay.Refusal):
        if checked.code == "witness_disagrees":
            _set(evidence, CheckStatus.FAILED, RECEIPT_WITNESS_DISAGREES, size=head_size)
        elif checked.code == "witness_unseen":
            _set(evidence, CheckStatus.FAILED, RECEIPT_WITNESS_UNSEEN, size=head_size)
        else:
            with translation.override("en"):
                again = replay.check_receipt(
                    Path(evidence.filename),
                    data,
                    registry=registry,
                    witness=witness,
                    merchants={merchant.uscc: merchant},
                    merchant=merchant.uscc,
                )
            reason = again.reason if isinstance(again, replay.Refusal) else checked.reason
            _set(evidence, CheckStatus.FAILED, RECEIPT_NOT_REPLAYABLE, reason=reason)
        evidence.check_details["not_replayable"] = checked.code
        return True
    number = str(checked.entry.get("invoice", {}).get("number") or "")
    evidence.check_details["receipt"] = {"index": index, "number": number}
    evidence.check_details["replayable"] = {"index": index, "number": number, "size": head_size}
    if number != case.claimed_number:
        _set(evidence, CheckStatus.MISMATCH, RECEIPT_OTHER_NUMBER, found=number, claimed=case.claimed_number)
    else:
        _set(evidence, CheckStatus.VERIFIED, RECEIPT_REPLAYABLE, index=index, size=head_size, current=size)
    if surfaced(case, number, f"system receipt on case {case.acceptance_no or case.uid}"):
        evidence.check_details["surfaced"] = number
        _set(evidence, CheckStatus(evidence.check_status), SUPERSEDED_SURFACED, number=number)
    return True


def check_einvoice(evidence: Evidence, case: Case, data: bytes) -> None:
    fields, problems = read_einvoice_xml(data)
    if fields is None:
        text = "; ".join(p.render() for p in problems[:3])
        _set(evidence, CheckStatus.FAILED, EINVOICE_UNREADABLE, problems=text)
        return
    found = fields.as_mapping() if hasattr(fields, "as_mapping") else dict(vars(fields))
    differences = compare_claim(claim_mapping(case), found)
    evidence.check_details["differences"] = [
        {"field": d.field, "claimed": d.claimed, "found": d.found} for d in differences
    ]
    if differences:
        _set(evidence, CheckStatus.MISMATCH, EINVOICE_DIFFERS, fields=", ".join(d.field for d in differences))
        return
    compared = [name for name in claim_mapping(case) if found.get(name) not in (None, "")]
    _set(evidence, CheckStatus.VERIFIED, EINVOICE_MATCHES, fields=", ".join(compared))


def run_check(evidence: Evidence, case: Case, data: bytes) -> None:
    """Check the file if it is a kind we can check; leave it ``not_checked`` otherwise."""
    if evidence.evidence_type == EvidenceType.SYSTEM_RECEIPT or evidence.content_kind == "json":
        try:
            json.loads(data)
        except ValueError:
            return
        check_receipt(evidence, case, data)
    elif evidence.content_kind == "xml":
        check_einvoice(evidence, case, data)
