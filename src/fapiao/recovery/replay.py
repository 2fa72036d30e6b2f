"""``fapiao ledger replay PATH...``: bring back, from the receipts merchants kept, the ledger
entries and invoice rows a restore lost (docs/operations/backup.md, Replay).

Every receipt is checked before anything is written: it verifies (a signing key this
installation trusts at the head's time, the inclusion proof), it is for a merchant of this
installation (and the one named by ``--merchant``), the witness saw its head's root at that
size, and its invoice can be written back exactly as it was signed.  One refused receipt and
nothing is appended: the operator sees every reason, removes or replaces the file, and runs
again.  Then, per log, the longest run of consecutive indexes from the log's size goes back with
its original numbers and bytes (:mod:`fapiao.ledger.replay`), each with its invoice row rebuilt
(:func:`fapiao.invoices.rows.create_invoice_row`, the row every other path writes) — and every
receipt beyond an index no receipt covers is held and listed.  A buyer's sealed fields (a
person's ID number, address, phone, bank) are not in the entry: the row keeps the seal and is
marked as awaiting the merchant (:class:`~fapiao.recovery.models.ReplayedInvoice`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext

from fapiao.accounts.choices import MERCHANT_ROLES
from fapiao.accounts.models import Merchant, User
from fapiao.audit.services import record
from fapiao.core.canonical import parse_stamp
from fapiao.core.choices import Colour, EntryKind, InvoiceState, Origin
from fapiao.core.errors import FapiaoError
from fapiao.core.ledger_invoices import KIND_ORIGIN
from fapiao.core.ledger_replay import Plan, plan_log
from fapiao.core.ledger_witness import WitnessLog
from fapiao.core.receipt import verify_receipt
from fapiao.core.red_letter import state_after
from fapiao.core.signing import b64decode_strict, b64encode
from fapiao.invoices.models import Invoice
from fapiao.invoices.numbering import advance_past
from fapiao.invoices.rows import NewInvoice, core_line, create_invoice_row, seal_buyer
from fapiao.invoices.services import red_lettered_so_far
from fapiao.ledger.models import Log, LogEntry
from fapiao.ledger.replay import KnownEntry, SignedHead, append_known
from fapiao.platform import keys
from fapiao.platform.uow import UnitOfWork, write
from fapiao.platform.verifying import read_witnesses
from fapiao.recovery.models import Case, ReplayedInvoice
from fapiao.recovery.remedy_plan import document_of, writing_from_entry

MAX_RECEIPT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Refusal:
    path: str
    code: str
    reason: str
    log: str | None = None
    index: int | None = None


@dataclass(frozen=True)
class Received:
    path: str
    log: str
    index: int
    body: bytes
    entry: dict[str, Any]
    head: dict[str, Any]
    signature: str


@dataclass
class LogReplay:
    log: str
    size_before: int
    appended: list[int] = field(default_factory=list)
    held: list[tuple[int, str]] = field(default_factory=list)  # (index, file)
    gap: int | None = None  # the first index no receipt covers, when receipts lie beyond it
    present: int = 0
    numbers: list[str] = field(default_factory=list)  # invoice numbers of the appended entries
    awaiting_buyer: list[str] = field(default_factory=list)

    @property
    def size_after(self) -> int:
        return self.size_before + len(self.appended)

    def to_json(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "size_before": self.size_before,
            "size_after": self.size_after,
            "appended": _ranges(self.appended),
            "appended_count": len(self.appended),
            "held": [{"index": i, "file": f} for i, f in self.held],
            "gap": self.gap,
            "present": self.present,
            "numbers": self.numbers,
            "awaiting_buyer": self.awaiting_buyer,
        }


@dataclass
class ReplayReport:
    files: int
    dry_run: bool
    logs: list[LogReplay] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused

    @property
    def appended(self) -> int:
        return sum(len(log.appended) for log in self.logs)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "files": self.files,
            "appended": self.appended,
            "logs": [log.to_json() for log in self.logs],
            "refused": [r.__dict__ for r in self.refused],
        }


def _ranges(indexes: Sequence[int]) -> list[list[int]]:
    runs: list[list[int]] = []
    for index in indexes:
        if runs and index == runs[-1][1] + 1:
            runs[-1][1] = index
        else:
            runs.append([index, index])
    return runs


# --- reading and checking -------------------------------------------------------------------------


def receipt_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Refusal]]:
    """The files named, and the ``*.json`` files under the folders named (sorted)."""
    files: list[Path] = []
    refused: list[Refusal] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*.json") if p.is_file())
        elif path.is_file():
            files.append(path)
        else:
            reason = gettext("no such file or folder")
            refused.append(Refusal(str(path), "unreadable", reason))
    return files, refused


def _read(path: Path) -> bytes | Refusal:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_RECEIPT_BYTES + 1)
    except OSError as error:
        return Refusal(str(path), "unreadable", str(error.strerror))
    if len(data) > MAX_RECEIPT_BYTES:
        return Refusal(str(path), "unreadable", gettext("too large to be a receipt"))
    return data


def _language() -> str:
    return "en" if (translation.get_language() or "").startswith("en") else "zh"


def check_receipt(
    path: Path,
    data: bytes,
    *,
    registry: Any,
    witness: dict[str, WitnessLog],
    merchants: dict[str, Merchant],
    merchant: str | None,
) -> Received | Refusal:
    """One receipt, every check that needs no lock: verified, ours, witnessed, rebuildable."""
    name = str(path)
    verdict = verify_receipt(data, registry)
    if not verdict.ok:
        return Refusal(name, verdict.code, verdict.message(_language()), verdict.log, verdict.index)
    receipt = json.loads(data)
    head, index = receipt["head"], int(receipt["index"])
    log, size = str(head["log"]), int(head["size"])
    if merchant is not None and log != merchant:
        reason = gettext("the receipt is for merchant {log}'s log, not merchant {merchant}'s").format(
            log=log, merchant=merchant
        )
        return Refusal(name, "other_merchant", reason, log, index)
    if log not in merchants:
        reason = gettext("no merchant of this installation has the log {log}").format(log=log)
        return Refusal(name, "unknown_merchant", reason, log, index)
    unwitnessed = _witness_refusal(name, witness.get(log), log=log, size=size, root=str(head["root"]))
    if unwitnessed is not None:
        return Refusal(name, unwitnessed[0], unwitnessed[1], log, index)
    body = b64decode_strict(receipt["entry"])
    entry = json.loads(body)
    if not _rebuildable(entry, index):
        reason = gettext("entry {index}'s invoice cannot be written back exactly as it was signed").format(
            index=index
        )
        return Refusal(name, "not_rebuildable", reason, log, index)
    return Received(name, log, index, body, entry, dict(head), str(receipt["signature"]))


def _witness_refusal(
    name: str, seen: WitnessLog | None, *, log: str, size: int, root: str
) -> tuple[str, str] | None:
    """Why the witness does not vouch for a head of ``size`` with ``root``, or None."""
    witnessed = seen.roots.get(size) if seen else None
    if seen is None or witnessed is None:
        reason = gettext("the witness file never saw a head of size {size} for log {log}")
        return "witness_unseen", reason.format(size=size, log=log)
    if b64encode(witnessed) != root or size in seen.forks:
        reason = gettext(
            "the witness file saw another root for log {log} at size {size}: "
            "the receipt's head is not the log's"
        )
        return "witness_disagrees", reason.format(size=size, log=log)
    return None


def _rebuildable(entry: dict[str, Any], index: int) -> bool:
    kind = entry.get("kind")
    document = entry.get("invoice")
    if kind in (EntryKind.VOID, EntryKind.REVERT):  # a state change of an invoice already there
        return isinstance(document, dict) and isinstance(document.get("number"), str)
    if kind not in KIND_ORIGIN or not isinstance(document, dict):
        return False
    try:
        parse_stamp(str(entry.get("at")))
        return document_of(writing_from_entry(document, index)) == document
    except (FapiaoError, ValueError, ArithmeticError, LookupError, TypeError, KeyError):
        return False


# --- the replay -----------------------------------------------------------------------------------


def replay_receipts(
    paths: Iterable[str | Path],
    *,
    merchant: str | None = None,
    witness_files: Sequence[Path] = (),
    dry_run: bool = False,
) -> ReplayReport:
    """Check every receipt, then (unless one is refused, or ``dry_run``) append and rebuild."""
    files, refused = receipt_files(paths)
    named: list[tuple[str, bytes]] = []
    for path in files:
        data = _read(path)
        if isinstance(data, Refusal):
            refused.append(data)
        else:
            named.append((str(path), data))
    prepared = prepare_replay(
        named,
        files=len(files),
        refused=refused,
        merchant=merchant,
        witness_files=witness_files,
        dry_run=dry_run,
    )
    if not prepared.report.ok or dry_run or not prepared.report.appended:
        return prepared.report
    write(lambda unit: apply_replay(unit, prepared))
    return prepared.report


@dataclass
class Prepared:
    """A checked replay: the report, and what :func:`apply_replay` appends."""

    report: ReplayReport
    by_log: dict[str, dict[int, Received]]
    plans: dict[str, Plan]
    merchants: dict[str, Merchant]
    witness: dict[str, WitnessLog]


def prepare_replay(
    named: Sequence[tuple[str, bytes]],
    *,
    files: int | None = None,
    refused: Sequence[Refusal] = (),
    merchant: str | None = None,
    witness_files: Sequence[Path] = (),
    dry_run: bool = False,
) -> Prepared:
    """Every check of a replay of the receipts ``named`` (name, bytes), nothing written.

    The command's files and a recovery case's receipt evidence go through here alike."""
    report = ReplayReport(
        files=len(named) if files is None else files, dry_run=dry_run, refused=list(refused)
    )
    wanted = merchant.strip().upper() if merchant else None
    registry = keys.registry()
    witness_paths = [Path(p) for p in witness_files] or [Path(settings.FAPIAO_WITNESS_FILE)]
    witness, _findings = read_witnesses(witness_paths, keys=registry)
    merchants = {m.uscc: m for m in Merchant.objects.all()}
    received: list[Received] = []
    for name, data in named:
        checked = check_receipt(
            Path(name), data, registry=registry, witness=witness, merchants=merchants, merchant=wanted
        )
        (report.refused if isinstance(checked, Refusal) else received).append(checked)  # type: ignore[arg-type]
    by_log: dict[str, dict[int, Received]] = {}
    for item in received:
        chosen = by_log.setdefault(item.log, {})
        other = chosen.setdefault(item.index, item)
        if other.body != item.body:
            report.refused.append(_conflict(item, other.path))
    plans: dict[str, Plan] = {}
    for log, chosen in sorted(by_log.items()):
        size = int(Log.objects.filter(merchant=merchants[log]).values_list("size", flat=True).first() or 0)
        plan = plan_log(size, chosen)
        stored = dict(
            LogEntry.objects.filter(merchant=merchants[log], seq__in=plan.present).values_list("seq", "body")
        )
        for index in plan.present:
            if bytes(stored.get(index, b"")) != chosen[index].body:
                report.refused.append(_conflict(chosen[index], gettext("the log")))
        plans[log] = plan
        report.logs.append(
            LogReplay(
                log=log,
                size_before=size,
                appended=plan.append,
                held=[(i, chosen[i].path) for i in plan.held],
                gap=plan.gap,
                present=len(plan.present),
                numbers=[str(chosen[i].entry["invoice"]["number"]) for i in plan.append],
                awaiting_buyer=[
                    str(chosen[i].entry["invoice"]["number"])
                    for i in plan.append
                    if chosen[i].entry["invoice"].get("buyer", {}).get("sealed")
                ],
            )
        )
    if report.refused:
        for log_report in report.logs:  # nothing is appended when anything is refused
            log_report.appended, log_report.numbers, log_report.awaiting_buyer = [], [], []
    return Prepared(report, by_log, plans, merchants, witness)


def apply_replay(
    unit: UnitOfWork, prepared: Prepared, *, actor: User | None = None, case: Case | None = None
) -> None:
    """Append what :func:`prepare_replay` planned (in the caller's unit of work), audited —
    with the recovery case's id when a reviewer replays a case's receipts."""
    report = prepared.report
    if not report.ok:
        raise FapiaoError(gettext("A refused replay cannot be applied."))
    for log_report in report.logs:
        if not log_report.appended:
            continue
        _replay_log(
            unit,
            merchant=prepared.merchants[log_report.log],
            plan=prepared.plans[log_report.log],
            chosen=prepared.by_log[log_report.log],
            witnessed=prepared.witness[log_report.log].roots,
        )
    after: dict[str, Any] = {
        "appended": {r.log: _ranges(r.appended) for r in report.logs if r.appended},
        "held": {r.log: [i for i, _f in r.held] for r in report.logs if r.held},
    }
    if case is not None:
        after["case"] = str(case.uid)
        after["acceptance_no"] = case.acceptance_no
    record(
        actor=actor,
        action="ledger.replay",
        target_type="ledger",
        target_id=",".join(r.log for r in report.logs if r.appended),
        after=after,
        note=f"case {case.acceptance_no or case.uid}" if case is not None else "",
    )


def _conflict(item: Received, other: str) -> Refusal:
    reason = gettext("entry {index} of log {log} differs from the one in {other}").format(
        index=item.index, log=item.log, other=other
    )
    return Refusal(item.path, "conflict", reason, item.log, item.index)


def _replay_log(
    unit: UnitOfWork,
    *,
    merchant: Merchant,
    plan: Plan,
    chosen: dict[int, Received],
    witnessed: dict[int, bytes],
) -> None:
    appending = [chosen[i] for i in plan.append]
    append_known(
        unit,
        merchant=merchant,
        base=plan.size,
        entries=[KnownEntry(r.index, r.body, r.entry) for r in appending],
        heads=[SignedHead(r.head, r.signature) for r in chosen.values()],
        witnessed=witnessed,
    )
    user = _acting_user(merchant)
    now = timezone.now()
    for item in appending:
        invoice = _rebuild_row(unit, merchant=merchant, user=user, item=item)
        if invoice is not None:
            sealed = bool(item.entry["invoice"]["buyer"].get("sealed"))
            ReplayedInvoice.objects.create(
                merchant=merchant,
                invoice=invoice,
                seq=item.index,
                awaiting_buyer=sealed,
                replayed_at=now,
                receipt_file=item.path[-255:],
            )


def _acting_user(merchant: Merchant) -> User:
    """Who the rebuilt rows name as their creator (the entry does not say): the merchant's first
    administrator, else its first user."""
    users = User.objects.filter(merchant=merchant, role__in=[r.value for r in MERCHANT_ROLES]).order_by("pk")
    return users.filter(role="merchant_admin").first() or users.first() or _no_user(merchant)


def _no_user(merchant: Merchant) -> User:
    raise FapiaoError(
        gettext("Merchant {uscc} has no user to name as the creator of its replayed invoices."),
        uscc=merchant.uscc,
    )


def _rebuild_row(unit: UnitOfWork, *, merchant: Merchant, user: User, item: Received) -> Invoice | None:
    entry, document = item.entry, item.entry["invoice"]
    kind = EntryKind(entry["kind"])
    if kind in (EntryKind.VOID, EntryKind.REVERT):
        state = InvoiceState.VOIDED if kind is EntryKind.VOID else InvoiceState.REVERTED
        Invoice.objects.filter(merchant=merchant, number=document["number"]).update(state=state)
        return None
    writing = writing_from_entry(document, item.index)
    at = parse_stamp(str(entry["at"]))
    original = None
    if writing.original_number:
        original = Invoice.objects.filter(merchant=merchant, number=writing.original_number).first()
    origin_ref = ""
    if kind in {EntryKind.RESTORE, EntryKind.REISSUE} and entry.get("ref"):
        case = Case.objects.filter(merchant=merchant, uid=entry["ref"]).first()
        origin_ref = case.acceptance_no if case else ""
    assert writing.number is not None and writing.seller is not None  # an entry's
    new = NewInvoice(
        number=writing.number,
        kind=writing.kind,
        colour=writing.colour,
        direction=writing.direction,
        origin=Origin(KIND_ORIGIN[kind]),
        issued_on=writing.issued_on,
        issued_at=at,
        seller_name=writing.seller[0],
        seller_tax_id=writing.seller[1],
        lines=writing.lines,
        remark=writing.remark,
        origin_ref=origin_ref,
        original=original,
    )
    buyer = seal_buyer(merchant, writing.buyer, sealed=writing.sealed)
    made = create_invoice_row(
        unit, merchant=merchant, user=user, new=new, buyer=buyer, entry=kind, at=at, replayed_seq=item.index
    )
    advance_past(merchant=merchant, number=writing.number)
    if original is not None and writing.colour is Colour.RED:
        lines = [core_line(line, original) for line in original.lines.all()]
        state = state_after(lines, red_lettered_so_far(original))
        Invoice.objects.filter(pk=original.pk).update(state=state, version=original.version + 1)
    return made.invoice
