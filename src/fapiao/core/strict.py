"""Whole numbers and dates typed as text (query parameters, form fields), parsed strictly.

``str.isdigit()`` and ``int()`` accept more than a person means and disagree with each other:
superscript and circled digits (``²``, ``①``) pass ``isdigit()`` and then fail ``int()``; ``int()``
also takes signs, underscores and other scripts' digits; Python 3.11's ``date.fromisoformat()``
takes ``20261128`` and ``2026-W48-1``.  These take ASCII digits only, in bounded ranges, so that a
number of days whose date arithmetic overflows, or a date the database cannot store (SQLite fails
on 0001-01-01 in UTC+8), is refused as input instead of surfacing as an ``OverflowError``.
"""

from __future__ import annotations

import re
from datetime import date

from fapiao.core.errors import InvalidValueError, _

EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2999, 12, 31)
LARGEST_ID = 2**63 - 1
"""The largest database id (a signed 64-bit integer)."""

_DIGITS = re.compile(r"[0-9]+")
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_MAX_DIGITS = 19


def parse_whole_number(text: object, *, minimum: int, maximum: int) -> int:
    """``text`` (surrounding spaces aside) as a whole number from ``minimum`` to ``maximum``, or
    :class:`InvalidValueError` with code ``not_a_whole_number`` or ``out_of_range``."""
    digits = text.strip() if isinstance(text, str) else ""
    if not _DIGITS.fullmatch(digits):
        raise InvalidValueError(_("Enter a whole number using the digits 0 to 9."), code="not_a_whole_number")
    significant = digits.lstrip("0") or "0"
    value = int(significant) if len(significant) <= _MAX_DIGITS else None
    if value is None or not minimum <= value <= maximum:
        raise InvalidValueError(
            _("Enter a number from {min} to {max}."), code="out_of_range", min=minimum, max=maximum
        )
    return value


def whole_number_or_none(text: object, *, minimum: int = 0, maximum: int = LARGEST_ID) -> int | None:
    """:func:`parse_whole_number`, or None for anything else (a form's hidden field, a row index)."""
    try:
        return parse_whole_number(text, minimum=minimum, maximum=maximum)
    except InvalidValueError:
        return None


def parse_iso_date(text: object, *, earliest: date = EARLIEST_DATE, latest: date = LATEST_DATE) -> date:
    """``text`` as a date written ``YYYY-MM-DD`` from ``earliest`` to ``latest``, or
    :class:`InvalidValueError` with code ``bad_date`` or ``date_out_of_range``."""
    match = _ISO_DATE.fullmatch(text.strip() if isinstance(text, str) else "")
    try:
        day = date(*(int(part) for part in match.groups())) if match else None
    except ValueError:
        day = None
    if day is None:
        raise InvalidValueError(_("Use a date like 2026-11-28."), code="bad_date")
    if not earliest <= day <= latest:
        raise InvalidValueError(
            _("Use a date from {earliest} to {latest}."),
            code="date_out_of_range",
            earliest=earliest.isoformat(),
            latest=latest.isoformat(),
        )
    return day
