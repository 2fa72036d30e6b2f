"""Entry aids: what a clerk types, turned into the exact strings the invoice API accepts.

The API is strict (``"1000.00"``, ``"0.06"``); people are not.  These functions accept what
a Beijing finance clerk types into a form or a spreadsheet — full-width digits
(``１０００``), thousands separators (``1,000.00``), a currency sign (``¥``, ``￥``) or
``元``, a rate as ``6%``, ``6``, ``0.06``, ``免税`` — and return the canonical string, or
raise :class:`InvalidValueError` saying what is wrong.  Nothing is guessed beyond that: a
comma in the wrong place (``1,00``) is an error, not a decimal point.

Tax-inclusive prices (含税单价).  The system stores and signs tax-exclusive unit prices
(docs/spec/invoices.md: amount = quantity × unit price, rounded half-up to the fen; tax = amount ×
rate, rounded half-up).  A tax-inclusive unit price P is converted once, before anything is
stored: unit price = P ÷ (1 + rate), rounded half-up to 8 decimal places (the most a unit
price may carry), trailing zeros trimmed to no fewer than 2 decimals.  Amount and tax then
follow the ordinary rules, so 价税合计 can differ from quantity × P by a fen or two; the
form shows both before the clerk confirms.  For 免税, 不征税 and 0% the price is unchanged.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from decimal import ROUND_HALF_UP, Context, Decimal

from fapiao.core.errors import InvalidValueError, _
from fapiao.core.tax import Rate, rate_label, rates_in_force, resolve_rate

UNIT_PRICE_PLACES = 8
_PLACES = Decimal(1).scaleb(-UNIT_PRICE_PLACES)
_DIVIDE = Context(prec=60, rounding=ROUND_HALF_UP)
_GROUPED = re.compile(r"-?[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]*)?", re.ASCII)
_CURRENCY = ("¥", "元", "RMB", "CNY")
_RATE_WORDS = {
    "免税": "exempt",
    "exempt": "exempt",
    "不征税": "not_taxable",
    "not_taxable": "not_taxable",
    "not taxable": "not_taxable",
}


def normalise_text(value: str) -> str:
    """Full-width and half-width alike (``１２３`` = ``123``, ``（）`` = ``()``), trimmed."""
    return unicodedata.normalize("NFKC", value).strip()


def number_text(value: str) -> str:
    """A typed number as a plain decimal string: ``"１,０００.５０ 元"`` → ``"1000.50"``.

    Removes spaces, a currency sign or 元, and thousands separators that group by three.
    The result still goes through the core's strict parsers, which say what else is wrong.
    """
    text = normalise_text(value).replace("。", ".")
    for sign in _CURRENCY:
        text = text.removeprefix(sign).removesuffix(sign)
    text = "".join(text.split())
    if "," in text:
        if not _GROUPED.fullmatch(text):
            raise InvalidValueError(
                _("Commas may only separate thousands, as in 1,000.00."), code="bad_grouping"
            )
        text = text.replace(",", "")
    if text.startswith("."):
        text = "0" + text
    if text.endswith("."):
        text = text[:-1]
    return text


def rate_code(value: str, on: date) -> str:
    """The API code of a typed rate: ``6%``, ``6``, ``0.06``, ``６％`` → ``"0.06"``; ``免税`` → ``"exempt"``.

    A number of 1 or more without ``%`` (``6``, ``13``, ``1.5``) is read as a percentage.  The
    rate must be in force on ``on``; the error lists the rates that are, as a clerk writes them.
    """
    text = "".join(normalise_text(value).split()).lower()
    if text in _RATE_WORDS:
        code = _RATE_WORDS[text]
    else:
        percent = text.endswith("%")
        digits = text.removesuffix("%")
        if not re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", digits, re.ASCII):
            raise _rate_error(on)
        number = Decimal(digits)
        if percent or number >= 1:
            number = number / 100
        code = "0" if number == 0 else format(number.normalize(), "f")
    try:
        return resolve_rate(code, on).code
    except InvalidValueError:
        raise _rate_error(on) from None


def _rate_error(on: date) -> InvalidValueError:
    """The rates in force, as a clerk writes them (6%, 免税), not as API codes."""
    allowed = ", ".join(rate_label(rate) for rate in rates_in_force(on))
    return InvalidValueError(
        _("Write the tax rate as one of: {allowed}."), code="unsupported_rate", allowed=allowed
    )


def exclusive_unit_price(inclusive: Decimal, rate: Rate) -> Decimal:
    """The tax-exclusive unit price for a tax-inclusive one (see the module docstring)."""
    if not rate.is_taxed or rate.value == 0:
        return inclusive
    return _unit_price(_DIVIDE.divide(inclusive, 1 + rate.value))


def inclusive_unit_price(exclusive: Decimal, rate: Rate) -> Decimal:
    """The tax-inclusive unit price shown for a tax-exclusive one (a catalogue price kept without
    tax, offered on a form whose prices include tax): P × (1 + rate), same rounding."""
    if not rate.is_taxed or rate.value == 0:
        return exclusive
    return _unit_price(_DIVIDE.multiply(exclusive, 1 + rate.value))


def _unit_price(exact: Decimal) -> Decimal:
    rounded = exact.quantize(_PLACES, rounding=ROUND_HALF_UP)
    trimmed = rounded.normalize()
    if trimmed.as_tuple().exponent > -2:  # type: ignore[operator]
        trimmed = trimmed.quantize(Decimal("0.01"))
    return trimmed


def unit_price_on_basis(price: Decimal, rate: Rate, *, includes_tax: bool, wanted_inclusive: bool) -> Decimal:
    """A unit price kept on one basis (含税 or 不含税) as typed on the other, for the form's switch."""
    if includes_tax == wanted_inclusive:
        return price
    return inclusive_unit_price(price, rate) if wanted_inclusive else exclusive_unit_price(price, rate)
