"""Money as a file writes it, to integer fen: exact, whatever the number of decimals, never a float.

``"1060"``, ``"1060.0"``, ``"1060.00"`` and ``"1060.000000"`` are all 106000 fen; ``"1060.005"``
is refused, because it is not a whole number of fen (rounding it would invent or lose money).
The digits are worked on as text and integers, so no value goes through binary floating point;
a spreadsheet's number cell (which *is* a binary float) is read through its shortest decimal
form, the digits a person sees in the cell.
"""

from __future__ import annotations

import re
from decimal import Decimal

from fapiao.core.errors import InvalidValueError, _
from fapiao.core.money import MAX_MONEY_FEN, format_decimal

_PLAIN_FEN = re.compile(r"(-?)([0-9]{1,12})\.([0-9]{2})", re.ASCII)
_AMOUNT = re.compile(r"([+-]?)([0-9]+)(?:\.([0-9]*))?", re.ASCII)
_MAX_WHOLE_DIGITS = len(str(MAX_MONEY_FEN // 100))
_YUAN_SIGNS = "¥￥"


def fen_from_text(text: str, *, currency_sign: bool = False, thousands: bool = False) -> int:
    """``text`` (yuan) as fen.  Raises :class:`InvalidValueError` with code ``bad_amount``,
    ``fraction_of_fen`` or ``amount_too_large``.  ``currency_sign`` allows a leading ¥,
    ``thousands`` allows ``,`` between digit groups (both off for XML, where neither belongs)."""
    fast = _PLAIN_FEN.fullmatch(text)  # the common "-1060.00": at most 12 digits, so within the limit
    if fast is not None:
        sign, whole, cents = fast.groups()
        fen = int(whole) * 100 + int(cents)
        return -fen if sign else fen
    value = text.strip().replace(" ", "")
    if currency_sign:
        sign = value[:1] if value[:1] in ("+", "-") else ""
        value = sign + value[len(sign) :].lstrip(_YUAN_SIGNS)
    if thousands and re.fullmatch(r"[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?", value):
        value = value.replace(",", "")
    match = _AMOUNT.fullmatch(value)
    if match is None:
        raise InvalidValueError(
            _("The amount {value} is not a number of yuan."), code="bad_amount", value=text[:40]
        )
    sign, whole, fraction = match.groups()
    fraction = fraction or ""
    if fraction[2:].strip("0"):
        raise InvalidValueError(
            _("The amount {value} is not a whole number of fen."), code="fraction_of_fen", value=text[:40]
        )
    whole = whole.lstrip("0") or "0"
    if len(whole) > _MAX_WHOLE_DIGITS:
        raise _too_large(text)
    fen = int(whole) * 100 + int((fraction + "00")[:2])
    if fen > MAX_MONEY_FEN:
        raise _too_large(text)
    return -fen if sign == "-" else fen


def fen_from_cell(value: object, *, thousands: bool = False) -> int:
    """A spreadsheet cell as fen: text as :func:`fen_from_text`, an integer as whole yuan, a float
    by its shortest decimal form (``0.1`` is ``"0.1"``, not 0.1000000000000000055…)."""
    if isinstance(value, bool):
        raise InvalidValueError(
            _("The amount {value} is not a number of yuan."), code="bad_amount", value=str(value)
        )
    if isinstance(value, int):
        return fen_from_text(str(value))
    if isinstance(value, float):
        return fen_from_text(decimal_text(value))
    if isinstance(value, Decimal):
        return fen_from_text(decimal_text(value))
    return fen_from_text(str(value), currency_sign=True, thousands=thousands)


def decimal_text(value: float | Decimal) -> str:
    """A number cell's digits in plain notation (no exponent); ``nan`` and ``inf`` stay unreadable."""
    number = Decimal(repr(value)) if isinstance(value, float) else value
    return format_decimal(number) if number.is_finite() else str(value)


def _too_large(text: str) -> InvalidValueError:
    return InvalidValueError(
        _("The amount {value} is larger than the system can hold."), code="amount_too_large", value=text[:40]
    )
