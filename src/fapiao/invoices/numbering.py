"""Gap-free invoice numbers from the merchant's number segments (号段).

The serial is taken and the segment advanced in the caller's transaction, in one statement that
locks the segment's row (PostgreSQL; on SQLite the transaction holds the database's write lock):
two issuers never share a number, and a rolled-back issue gives its number back, so no hole is
left.  One plain-SQL ``UPDATE … RETURNING`` instead of a locking SELECT and an UPDATE through the
ORM: this runs once per invoice inside the group-commit writer, which every request waits for.
"""

from __future__ import annotations

import functools
from datetime import date

from django.db import connection

from fapiao.accounts.models import Merchant, NumberSegment
from fapiao.core.errors import ConflictError, _
from fapiao.core.identifiers import format_invoice_number


class NoNumberSegmentError(ConflictError):
    """No invoice numbers are left for this year; ask the operator to allocate a number segment."""

    code = "no_number_segment"


@functools.cache
def _statement(vendor: str) -> str:
    """Take the next serial of the merchant's first segment with numbers left, that year."""
    del vendor  # the cache key: quoting differs
    table = connection.ops.quote_name(NumberSegment._meta.db_table)
    # The outer "next_serial <= last_serial" is checked again on the locked row (PostgreSQL
    # re-evaluates it after waiting for a concurrent issuer), so a segment used up meanwhile is
    # never advanced past its end.
    return (
        f"UPDATE {table} SET next_serial = next_serial + 1 "  # noqa: S608  names are ours
        f"WHERE id = (SELECT id FROM {table} WHERE merchant_id = %s AND year = %s "
        "AND next_serial <= last_serial ORDER BY first_serial LIMIT 1) "
        "AND next_serial <= last_serial "
        "RETURNING next_serial - 1, province, channel"
    )


def allocate_number(*, merchant: Merchant, on: date) -> str:
    year = on.year % 100
    with connection.cursor() as cursor:
        for _attempt in range(3):  # a concurrent issuer may use up the segment the subquery chose
            cursor.execute(_statement(connection.vendor), [merchant.pk, year])
            row = cursor.fetchone()
            if row is not None:
                serial, province, channel = row
                return format_invoice_number(
                    year=on.year, province=province, channel=int(channel), serial=int(serial)
                )
    raise NoNumberSegmentError(
        _("No invoice numbers are left for {year}; ask the operator to allocate a number segment."),
        year=on.year,
    )


def advance_past(*, merchant: Merchant, number: str) -> bool:
    """After ``number`` came back from elsewhere (a ledger replay): the segment holding it hands
    out serials after it, never it again.  Whether a segment was advanced."""
    if len(number) != 20 or not number.isdigit():
        return False
    serial = int(number[5:])
    advanced = NumberSegment.objects.filter(
        merchant=merchant,
        year=int(number[:2]),
        province=number[2:4],
        channel=int(number[4]),
        first_serial__lte=serial,
        last_serial__gte=serial,
        next_serial__lte=serial,
    ).update(next_serial=serial + 1)
    return bool(advanced)
