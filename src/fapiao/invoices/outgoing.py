"""Whose outgoing (销项) invoice number is whose (docs/spec/recovery.md): the register and its rules.

A number belongs to the merchant whose number segment (号段) covers it.  A legacy 代码-号码, which
no segment covers, belongs to the merchant it is registered to in :class:`OutgoingNumber` — the
first to restore it.  Every outgoing invoice written (issued, red-letter, restored, re-issued)
registers its number in the same transaction; the table's unique constraint, not the check before
the insert, is what keeps two merchants from writing the same number at the same moment.
Received (进项) invoices carry other sellers' numbers and are outside these rules.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import OuterRef, Q, Subquery

from fapiao.accounts.models import Merchant, NumberSegment
from fapiao.core.choices import Direction
from fapiao.core.errors import ConflictError
from fapiao.core.ledger_check import Finding, FindingCode, LogChecker
from fapiao.invoices.models import Invoice, OutgoingNumber
from fapiao.platform import rows
from fapiao.platform.uow import UnitOfWork


class NumberOfAnotherMerchantError(ConflictError):
    """Invoice number {number} belongs to another merchant: it cannot be written into these books."""

    code = "number_of_another_merchant"


class NumberOutsideSegmentsError(ConflictError):
    """Number {number} is in none of this merchant's segments, nor a legacy code-number: not restorable."""

    code = "number_outside_segments"


def is_legacy(number: str) -> bool:
    """A legacy 发票代码-发票号码 (``<代码>-<号码>``), which no number segment can cover."""
    return "-" in number


def segment_holder(number: str) -> int | None:
    """The id of the merchant whose number segment covers ``number`` (None: no segment does)."""
    if len(number) != 20 or not number.isascii() or not number.isdigit():
        return None
    serial = int(number[5:])
    covering = NumberSegment.objects.filter(
        year=int(number[:2]),
        province=number[2:4],
        channel=int(number[4]),
        first_serial__lte=serial,
        last_serial__gte=serial,
    )
    return covering.values_list("merchant_id", flat=True).first()


def registered_holder(number: str) -> int | None:
    return OutgoingNumber.objects.filter(number=number).values_list("merchant_id", flat=True).first()


def check_restorable(merchant: Merchant, number: str) -> None:
    """May ``merchant`` bring outgoing invoice ``number`` back into its books?

    Yes for a number registered to it, or in one of its own segments, or a legacy number that is
    nobody's yet; no for a number another merchant holds (by segment, register or invoice row).
    """
    registered = registered_holder(number)
    if registered is not None:
        if registered != merchant.pk:
            raise NumberOfAnotherMerchantError(number=number)
        return
    holder = segment_holder(number)
    if holder is not None and holder != merchant.pk:
        raise NumberOfAnotherMerchantError(number=number)
    if holder is None and not is_legacy(number):
        raise NumberOutsideSegmentsError(number=number)
    # An invoice stored before the register existed, under another merchant.
    elsewhere = Invoice.objects.filter(number=number, direction=Direction.OUT).exclude(merchant=merchant)
    if elsewhere.exists():
        raise NumberOfAnotherMerchantError(number=number)


def check_not_elsewhere(merchant: Merchant, number: str) -> None:
    """Refuse a number another merchant holds (a re-issue may replace a number no segment covers)."""
    registered = registered_holder(number)
    holder = registered if registered is not None else segment_holder(number)
    if holder is not None and holder != merchant.pk:
        raise NumberOfAnotherMerchantError(number=number)


def register_number(
    unit: UnitOfWork, *, merchant: Merchant, number: str, at: datetime, existing: bool, defer: bool
) -> None:
    """Record ``number`` as ``merchant``'s, in the unit's transaction.

    ``existing``: the number may be registered already (a restore): to this merchant it is
    fine, to another it is refused.  A new number (from the merchant's own segment) is inserted
    as it is, with the unit's other rows when ``defer``.
    """
    row = OutgoingNumber(number=number, merchant_id=merchant.pk, registered_at=at)
    if not existing:
        if defer:
            unit.defer(row)
        else:
            rows.insert([row])
        return
    holder = registered_holder(number)
    if holder == merchant.pk:
        return
    if holder is not None:
        raise NumberOfAnotherMerchantError(number=number)
    try:
        with transaction.atomic():  # a savepoint: a lost race leaves the transaction usable
            rows.insert([row])
    except IntegrityError:
        raise NumberOfAnotherMerchantError(number=number) from None


def check_numbers(merchant: Merchant, checker: LogChecker, progress: object = None) -> int:
    """``ledger verify`` (a row check registered from ``InvoicesConfig.ready``): each outgoing
    invoice of ``merchant`` is registered to ``merchant``.

    An invoice whose number is registered to another merchant means one number under two
    merchants; one missing from the register was written around the services.  Counts no rows of
    its own (the invoice check counts them).
    """
    del progress
    add = checker.findings.add
    owner = OutgoingNumber.objects.filter(number=OuterRef("number")).values("merchant_id")[:1]
    stray = (
        Invoice.objects.filter(merchant=merchant, direction=Direction.OUT)
        .annotate(owner=Subquery(owner))
        .filter(Q(owner__isnull=True) | ~Q(owner=merchant.pk))
        .order_by("pk")
        .values_list("number", "owner")
    )
    found = list(stray.iterator(chunk_size=1000))
    if not found:
        return 0
    names = dict(
        Merchant.objects.filter(pk__in={o for _n, o in found if o is not None}).values_list("pk", "uscc")
    )
    for number, holder in found:
        if holder is None:
            add(Finding(FindingCode.NUMBER_OWNER, merchant.uscc, number=number, variant="unregistered"))
        else:
            params = {"other": names.get(holder, str(holder))}
            add(Finding(FindingCode.NUMBER_OWNER, merchant.uscc, number=number, params=params))
    return 0
