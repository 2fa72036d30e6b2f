"""Invoice writes: issue and red-letter.  Each runs in one durable unit of work together with
its number allocation, its ledger entry, its audit record and its idempotency record.

Sensitive buyer fields are encrypted before the row is written (``fapiao.invoices.sensitive``);
the plaintext lives only in this request's memory."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from django.utils import timezone

from fapiao.accounts.models import Merchant, User
from fapiao.accounts.permissions import Action, require
from fapiao.audit.services import record
from fapiao.core.choices import Colour, Direction, EntryKind, InvoiceKind, InvoiceState, Origin
from fapiao.core.errors import NotFoundError, _
from fapiao.core.invoice import LIMITS, InvoiceDraft, parse_invoice_request
from fapiao.core.red_letter import parse_red_letter_request, red_letter_lines, red_remark, state_after
from fapiao.invoices.models import Invoice, InvoiceLine
from fapiao.invoices.numbering import allocate_number
from fapiao.invoices.presenters import audit_snapshot, invoice_representation
from fapiao.invoices.rows import NewInvoice, SealedBuyer, core_line, create_invoice_row, seal_buyer
from fapiao.invoices.sensitive import reveal_buyer, revealed_fields, seal_salt
from fapiao.platform import idempotency, metrics
from fapiao.platform.uow import PendingEntry, UnitOfWork, write


class InvoiceNotFoundError(NotFoundError):
    """No such invoice."""

    code = "invoice_not_found"


@dataclass
class WriteResult:
    """What a write answers: the API body (with its receipt) and whether it is a replay."""

    status: int
    body: dict[str, Any]
    replayed: bool = False
    invoice: Invoice | None = None


def merchant_of(user: User) -> Merchant:
    merchant = user.merchant
    if merchant is None:  # staff: the permission table already refused them
        raise InvoiceNotFoundError()
    return merchant


def _idempotent(
    unit: UnitOfWork,
    *,
    user: User,
    key: str | None,
    fingerprint: str,
    work: Callable[[], tuple[Invoice, list[InvoiceLine], PendingEntry | None]],
) -> WriteResult:
    """Run ``work`` unless ``key`` was seen (:func:`fapiao.platform.idempotency.once`)."""
    return idempotency.once(
        unit,
        user=user,
        key=key,
        fingerprint=fingerprint,
        run=lambda: _run_work(unit, work),
        replay=lambda status, body: WriteResult(status=status, body=body, replayed=True),
    )


def _run_work(
    unit: UnitOfWork, work: Callable[[], tuple[Invoice, list[InvoiceLine], PendingEntry | None]]
) -> WriteResult:
    invoice, lines, pending = work()
    result = WriteResult(status=201, body={}, invoice=invoice)

    def finalise() -> None:
        result.body = invoice_representation(
            invoice, lines=lines, receipt=pending.receipt if pending else None
        )

    unit.before_commit.append(finalise)
    return result


@dataclass(frozen=True)
class PreparedIssue:
    """An issue request checked and its buyer sealed, outside the writer: what
    :func:`issue_in_unit` needs to store it."""

    user: User
    merchant: Merchant
    draft: InvoiceDraft
    buyer: SealedBuyer
    key: str | None
    fingerprint: str


def prepare_issue(
    *, user: User, merchant: Merchant, payload: object, idempotency_key: str | None, on: date
) -> PreparedIssue:
    """Validate an issue request (:class:`ValidationFailed` lists every problem) and seal its buyer."""
    draft = parse_invoice_request(payload, on=on)
    key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
    return PreparedIssue(
        user=user,
        merchant=merchant,
        draft=draft,
        buyer=seal_buyer(merchant, draft.buyer),  # encrypted here, outside the writer thread
        key=key,
        fingerprint=idempotency.request_fingerprint("issue", payload),
    )


def issue_in_unit(unit: UnitOfWork, prepared: PreparedIssue) -> WriteResult:
    """Store one prepared issue in ``unit``: number, row, ledger entry, audit, idempotency record.

    The single POST runs it alone; the bulk API (:mod:`fapiao.invoices.bulk`) once per item of a
    batch, in one unit.  It reads nothing another write defers (its own claim, the number
    segment, the log's last entry), so it may run ``deferrable``."""
    user, merchant, draft = prepared.user, prepared.merchant, prepared.draft

    def work() -> tuple[Invoice, list[InvoiceLine], PendingEntry | None]:
        now = timezone.now()
        on = timezone.localdate(now)
        new = NewInvoice(
            number=allocate_number(merchant=merchant, on=on),
            kind=draft.kind,
            colour=Colour.BLUE,
            direction=Direction.OUT,
            origin=Origin.ISSUED,
            issued_on=on,
            issued_at=now,
            seller_name=merchant.name,
            seller_tax_id=merchant.uscc,
            lines=draft.lines,
            remark=draft.remark,
        )
        made = create_invoice_row(
            unit,
            merchant=merchant,
            user=user,
            new=new,
            buyer=prepared.buyer,
            entry=EntryKind.ISSUE,
            at=now,
            defer=True,
        )
        record(
            actor=user,
            action="invoice.issue",
            target=made.invoice,
            merchant=merchant,
            after=audit_snapshot(made.invoice, lines=len(made.lines)),
        )
        unit.after_commit.append(metrics.INVOICES_ISSUED.inc)  # dropped if this write rolls back
        return made.invoice, made.lines, made.pending

    return _idempotent(unit, user=user, key=prepared.key, fingerprint=prepared.fingerprint, work=work)


def issue_invoice(*, user: User, payload: object, idempotency_key: str | None = None) -> WriteResult:
    """Issue a blue invoice: validate, number, store, append to the ledger, commit, answer."""
    require(user, Action.ISSUE_INVOICE)
    merchant = merchant_of(user)
    prepared = prepare_issue(
        user=user,
        merchant=merchant,
        payload=payload,
        idempotency_key=idempotency_key,
        on=timezone.localdate(),
    )
    return write(lambda unit: issue_in_unit(unit, prepared), deferrable=True)


def red_lettered_so_far(original: Invoice) -> dict[int, tuple[Decimal, int, int]]:
    """Per original line: (quantity, amount, tax) already red-lettered, as positive values."""
    so_far: dict[int, tuple[Decimal, int, int]] = {}
    reds = InvoiceLine.objects.filter(
        invoice__original=original, invoice__merchant_id=original.merchant_id
    ).exclude(invoice__state=InvoiceState.REVERTED)  # a red invoice whose import was reverted
    for row in reds.values("original_line_no", "quantity", "amount", "tax"):
        no = row["original_line_no"]
        if no is None:
            continue
        quantity, amount, tax = so_far.get(no, (Decimal(0), 0, 0))
        so_far[no] = (quantity - Decimal(row["quantity"]), amount - row["amount"], tax - row["tax"])
    return so_far


def red_letter_invoice(
    *, user: User, number: str, payload: object, idempotency_key: str | None = None
) -> WriteResult:
    """Red-letter an invoice fully or by line; the red invoice links the blue original."""
    require(user, Action.RED_LETTER_INVOICE)
    merchant = merchant_of(user)
    request = parse_red_letter_request(payload)
    key = idempotency.check_key(idempotency_key) if idempotency_key is not None else None
    fingerprint = idempotency.request_fingerprint(f"red-letter:{number}", payload)

    def run(unit: UnitOfWork) -> WriteResult:
        def work() -> tuple[Invoice, list[InvoiceLine], PendingEntry | None]:
            original = (
                Invoice.objects.select_for_update()
                .filter(merchant=merchant, number=number, colour=Colour.BLUE)
                .first()
            )
            if original is None:
                raise InvoiceNotFoundError(_("No such invoice."))
            original_lines = [core_line(line, original) for line in original.lines.all()]
            before = audit_snapshot(original, lines=len(original_lines))
            already = red_lettered_so_far(original)
            red_lines = red_letter_lines(original_lines, already, request)
            buyer = reveal_buyer(original)
            now = timezone.now()
            on = timezone.localdate(now)
            new = NewInvoice(
                number=allocate_number(merchant=merchant, on=on),
                kind=InvoiceKind(original.kind),
                colour=Colour.RED,
                direction=Direction(original.direction),
                origin=Origin.ISSUED,
                issued_on=on,
                issued_at=now,
                seller_name=original.seller_name,
                seller_tax_id=original.seller_tax_id,
                lines=red_lines,
                remark=red_remark(request.reason, original.remark, LIMITS.remark),
                original=original,
                confirmation_no=request.confirmation_no or "",
            )
            # Re-encrypted for the red row (each ciphertext is bound to its own row), same seal.
            sealed = seal_buyer(merchant, buyer, sealed=original.buyer_sealed, salt=seal_salt(original))
            made = create_invoice_row(
                unit, merchant=merchant, user=user, new=new, buyer=sealed, entry=EntryKind.RED_LETTER, at=now
            )
            invoice, lines, pending = made.invoice, made.lines, made.pending
            after = red_lettered_so_far(original)
            new_state = state_after(original_lines, after)
            Invoice.objects.filter(pk=original.pk).update(state=new_state, version=original.version + 1)
            original.state, original.version = new_state, original.version + 1
            record(
                actor=user,
                action="invoice.red_letter",
                target=original,
                merchant=merchant,
                before=before,
                after={
                    **audit_snapshot(original, lines=len(original_lines)),
                    "red_letter": audit_snapshot(invoice, lines=len(lines)),
                },
            )
            unit.after_commit.append(metrics.INVOICES_RED_LETTERED.inc)
            return invoice, lines, pending

        return _idempotent(unit, user=user, key=key, fingerprint=fingerprint, work=work)

    return write(run)


def reveal_invoice(*, user: User, invoice: Invoice) -> dict[str, Any]:
    """The invoice with its sensitive buyer fields in plaintext: needs the permission to reveal, and
    the reveal is recorded (committed) before anything is shown."""
    require(user, Action.REVEAL_SENSITIVE)
    body = invoice_representation(invoice, reveal=True)
    record(
        actor=user,
        action="invoice.reveal",
        target=invoice,
        merchant=invoice.merchant,
        after={"fields": revealed_fields(invoice)},
    )
    return body
