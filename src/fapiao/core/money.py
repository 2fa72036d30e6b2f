"""Money and decimal quantities: parsing API strings, formatting, rounding.

Money is an ``int`` of fen (分) everywhere inside the system and a plain decimal string
(``"1060.00"``) at the edges; it is never a ``float``.  Quantities and unit prices are
:class:`~decimal.Decimal` values that keep the scale the client wrote (``"1000.00"``
stays ``1000.00``).  Every rounding is explicit: ``ROUND_HALF_UP`` to the fen, which
for negative amounts (red invoices) is symmetric: ``-round_half_up(abs(x))``.
"""

from __future__ import annotations

import re
from decimal import (
    ROUND_HALF_UP,
    Context,
    Decimal,
    DivisionByZero,
    Inexact,
    InvalidOperation,
    Overflow,
)

from fapiao.core.errors import InvalidValueError, _

#: The largest amount the system stores: 999,999,999,999.99 yuan (just under 1 万亿元).
MAX_MONEY_FEN = 10**14 - 1
#: The largest quantity or unit price accepted.
MAX_QUANTITY = Decimal(10**12)
#: Decimal places allowed for money (yuan with fen).
MONEY_PLACES = 2

# Products of two API decimals have at most ~45 significant digits; 96 leaves room, and
# the Inexact trap proves no digit was silently dropped before the one explicit rounding.
_EXACT = Context(prec=96, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Inexact, Overflow, DivisionByZero])
_ROUNDING = Context(prec=96, rounding=ROUND_HALF_UP, traps=[InvalidOperation, Overflow, DivisionByZero])
_ONE = Decimal(1)
_HUNDRED = Decimal(100)
_MAX_YUAN = Decimal(MAX_MONEY_FEN).scaleb(-MONEY_PLACES)

#: The API's wording of a malformed number (forms, which accept 1,000.00, say it their way).
STRICT_NUMBER = _('Enter a plain decimal number such as "1000.00", without spaces, "+" or separators.')
_PLAIN = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?", re.ASCII)
_EXPONENT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)[eE][+-]?[0-9]+", re.ASCII)
_NOT_NUMBERS = frozenset({"nan", "snan", "inf", "infinity"})


def _parse_plain(value: object, *, places: int, allow_negative: bool) -> Decimal:
    """The shared strict parser: a str of the form ``-?digits(.digits)?``, at most ``places`` decimals."""
    if not isinstance(value, str):
        raise InvalidValueError(_('Enter the number as a string, such as "1000.00".'), code="not_a_string")
    if value == "":
        raise InvalidValueError(_("Enter a number."), code="empty")
    if value.lstrip("+-").lower() in _NOT_NUMBERS:
        raise InvalidValueError(_("Enter a finite number."), code="not_a_number")
    if _EXPONENT.fullmatch(value):
        raise InvalidValueError(
            _('Write the number out in full, without an exponent ("1000", not "1e3").'), code="exponent"
        )
    match = _PLAIN.fullmatch(value)
    if match is None:
        raise InvalidValueError(
            STRICT_NUMBER,
            code="bad_format",
        )
    sign, _whole, fraction = match.groups()
    if sign and not allow_negative:
        raise InvalidValueError(_("Enter a number that is not negative."), code="negative")
    if fraction is not None and len(fraction) > places:
        raise InvalidValueError(
            _("Use at most {places} decimal places."), code="too_many_decimals", places=places
        )
    number = Decimal(value)
    return number.copy_abs() if number.is_zero() else number  # no "-0"


def parse_money(value: object, *, allow_negative: bool = False) -> int:
    """Parse an API money string (``"1060.00"``, ``"5"``, ``"0.5"``) into fen.

    Only strings are accepted, so a JSON number (a binary float on most clients) can
    never become money.  Raises :class:`InvalidValueError` with code ``not_a_string``,
    ``empty``, ``not_a_number``, ``exponent``, ``bad_format`` (signs, spaces, ``.5``),
    ``negative``, ``too_many_decimals`` or ``too_large``.
    """
    number = _parse_plain(value, places=MONEY_PLACES, allow_negative=allow_negative)
    if number.copy_abs() > _MAX_YUAN:
        raise InvalidValueError(_("Enter at most {max}."), code="too_large", max=format_money(MAX_MONEY_FEN))
    return int(_EXACT.multiply(number, _HUNDRED))


def format_money(fen: int) -> str:
    """Fen as a yuan string with exactly two decimals: ``106000 -> "1060.00"``, ``-5 -> "-0.05"``."""
    sign = "-" if fen < 0 else ""
    yuan, rest = divmod(abs(fen), 100)
    return f"{sign}{yuan}.{rest:02d}"


def parse_decimal(
    value: object,
    *,
    places: int = 8,
    positive: bool = True,
    maximum: Decimal = MAX_QUANTITY,
) -> Decimal:
    """Parse a quantity or unit price string, keeping the scale the client wrote.

    Same rejections as :func:`parse_money`; with ``positive`` a zero or negative value is
    ``not_positive``; a magnitude above ``maximum`` is ``too_large``.
    """
    number = _parse_plain(value, places=places, allow_negative=True)
    if positive and number <= 0:
        raise InvalidValueError(_("Enter a number greater than zero."), code="not_positive")
    if number.copy_abs() > maximum:
        raise InvalidValueError(_("Enter at most {max}."), code="too_large", max=format_decimal(maximum))
    return number


def format_decimal(d: Decimal) -> str:
    """Plain notation that keeps the scale: ``Decimal("1000.00") -> "1000.00"``, never ``"1E-8"``."""
    if not d.is_finite():
        raise ValueError(f"not a finite decimal: {d!r}")
    return format(d, "f")


def yuan_to_fen(d: Decimal) -> int:
    """Yuan to whole fen, rounding half-up (ties away from zero, so negatives are symmetric)."""
    if not d.is_finite():
        raise ValueError(f"not a finite decimal: {d!r}")
    fen = _EXACT.multiply(d, _HUNDRED).quantize(_ONE, rounding=ROUND_HALF_UP, context=_ROUNDING)
    return int(fen)


def line_amount(quantity: Decimal, unit_price: Decimal) -> int:
    """``quantity × unit_price`` computed exactly, then rounded half-up to the fen."""
    return yuan_to_fen(_EXACT.multiply(quantity, unit_price))


def fen_times(fen: int, factor: Decimal) -> int:
    """``fen × factor`` computed exactly, rounded half-up to a whole fen (used for tax)."""
    product = _EXACT.multiply(Decimal(fen), factor)
    return int(product.quantize(_ONE, rounding=ROUND_HALF_UP, context=_ROUNDING))
