"""Gap-free invoice numbers from the merchant's number segments (号段).

The serial is taken and the segment advanced in the caller's transaction, under a row lock
(PostgreSQL) or the database write lock (SQLite, IMMEDIATE): two issuers never share a
number, and a rolled-back issue gives its number back, so no hole is left.
"""

from __future__ import annotations

from datetime import date

from django.db.models import F

from fapiao.accounts.models import Merchant, NumberSegment
from fapiao.core.errors import ConflictError, _
from fapiao.core.identifiers import format_invoice_number


class NoNumberSegmentError(ConflictError):
    """No invoice numbers are left for this year; ask the operator to allocate a number segment."""

    code = "no_number_segment"


def allocate_number(*, merchant: Merchant, on: date) -> str:
    year = on.year % 100
    segment = (
        NumberSegment.objects.select_for_update()
        .filter(merchant=merchant, year=year, next_serial__lte=F("last_serial"))
        .order_by("first_serial")
        .first()
    )
    if segment is None:
        raise NoNumberSegmentError(
            _("No invoice numbers are left for {year}; ask the operator to allocate a number segment."),
            year=on.year,
        )
    serial = segment.next_serial
    NumberSegment.objects.filter(pk=segment.pk).update(next_serial=F("next_serial") + 1)
    return format_invoice_number(
        year=on.year, province=segment.province, channel=segment.channel, serial=serial
    )
