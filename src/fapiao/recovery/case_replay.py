"""The remedy "replay from the receipt" (从回执重放) of a recovery case (docs/operations/backup.md, Replay).

A merchant's case may carry a receipt for an entry the log no longer has: a restore took the
log back to a size before it.  The receipt is validly signed and the witness saw its root, so the
entry is known exactly; the automatic check says so (:mod:`fapiao.recovery.checks`) and the
reviewer is offered this remedy, which runs ``fapiao ledger replay``'s own code path
(:func:`fapiao.recovery.replay.prepare_replay` / :func:`~fapiao.recovery.replay.apply_replay`)
with the case's receipt files — the claimed one, and the case's other receipts when together they
make a consecutive run from the log's size.  Its refusals are the command's: a gap no receipt
covers holds the claimed entry, and any refused receipt appends nothing.
"""

from __future__ import annotations

import dataclasses

from django.db.models import Q

from fapiao.core.errors import ConflictError
from fapiao.core.evidence import EvidenceType
from fapiao.invoices.models import Invoice
from fapiao.ledger.models import Log
from fapiao.recovery.choices import Remedy
from fapiao.recovery.models import Case, Evidence
from fapiao.recovery.remedy_plan import Writing, writing_from_entry
from fapiao.recovery.replay import Prepared, prepare_replay
from fapiao.recovery.storage import open_blob


class NoReplayableReceiptError(ConflictError):
    """No receipt of this case is for an entry of invoice {number} beyond the log: nothing to replay."""

    code = "no_replayable_receipt"


class ReplayRefusedError(ConflictError):
    """Replay refused, nothing appended: {reasons}"""

    code = "replay_refused"


class ReplayInsteadError(ConflictError):
    """A receipt of this case proves invoice {number}'s ledger entry, which a restore lost: replay it from the receipt instead."""  # noqa: E501

    code = "replay_instead"


class ReplayGapError(ConflictError):
    """Entry {index} (invoice {number}) lies beyond entry {gap}, which no receipt of this case covers: nothing was appended. Add the receipt of entry {gap}, or replay it with fapiao ledger replay first."""  # noqa: E501

    code = "replay_gap"


def receipt_files(case: Case) -> list[tuple[str, bytes]]:
    """The case's files that may be receipts (system receipts, JSON files), named for the refusals."""
    rows = Evidence.objects.filter(case=case).filter(
        Q(evidence_type=EvidenceType.SYSTEM_RECEIPT) | Q(content_kind="json")
    )
    return [
        (evidence.filename, open_blob(evidence.sha256)) for evidence in rows.order_by("uploaded_at", "pk")
    ]


def offered(case: Case) -> bool:
    """Does a file of this case prove, by its automatic check, an entry of the claimed number that
    the log still does not have, and no row of the number is there (the one case the remedy is
    offered for)?"""
    if Invoice.objects.filter(merchant_id=case.merchant_id, number=case.claimed_number).exists():
        return False
    size = Log.objects.filter(merchant_id=case.merchant_id).values_list("size", flat=True).first() or 0
    for details in Evidence.objects.filter(case=case).values_list("check_details", flat=True):
        replayable = (details or {}).get("replayable")
        if replayable and replayable.get("number") == case.claimed_number and replayable["index"] >= size:
            return True
    return False


def plan_case_replay(case: Case) -> tuple[Prepared, Writing]:
    """The replay of the case's receipts, checked now, and the claimed invoice it writes back.

    Raises when nothing of the claimed number is replayable, a receipt is refused, or a gap holds it."""
    number = case.claimed_number
    prepared = prepare_replay(receipt_files(case), merchant=case.merchant.uscc)
    report = prepared.report
    if not report.ok:
        reasons = "; ".join(f"{refusal.path}: {refusal.reason}" for refusal in report.refused)
        raise ReplayRefusedError(reasons=reasons)
    chosen = prepared.by_log.get(case.merchant.uscc, {})
    wanted = sorted(i for i, item in chosen.items() if item.entry["invoice"].get("number") == number)
    plan = prepared.plans.get(case.merchant.uscc)
    beyond = [i for i in wanted if plan is not None and i >= plan.size]
    if plan is None or not beyond:
        raise NoReplayableReceiptError(number=number)
    index = beyond[-1]
    if index not in plan.append:
        raise ReplayGapError(index=index, number=number, gap=plan.gap)
    writing = writing_from_entry(chosen[index].entry["invoice"], index)
    return prepared, dataclasses.replace(writing, remedy=Remedy.REPLAY, source="receipt")
