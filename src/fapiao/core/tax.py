"""VAT rates (税率 / 征收率) and treatments (免税 / 不征税) as data with effective dates.

A rate's ``code`` is the string the API accepts and the ledger records.  Canonical
spelling: the rate as a plain decimal fraction with no trailing zeros (``"0.13"``,
``"0.09"``, ``"0.06"``, ``"0"``, ``"0.05"``, ``"0.03"``, ``"0.015"``, ``"0.01"``,
``"0.005"``; historical ``"0.17"``, ``"0.16"``, ``"0.11"``, ``"0.1"``), or the words
``"exempt"`` and ``"not_taxable"``.  Only canonical codes are accepted — ``"0.060"``,
``"6%"`` or ``"0.00"`` are rejected with the list of codes valid on the invoice date —
so one rate has exactly one spelling in entries, exports and totals per rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from fapiao.core.errors import InvalidValueError, _
from fapiao.core.money import fen_times


class RateKind(StrEnum):
    TAX_RATE = "tax_rate"  # 税率 (general taxpayers)
    LEVY_RATE = "levy_rate"  # 征收率 (simplified method, small-scale taxpayers)
    EXEMPT = "exempt"  # 免税
    NOT_TAXABLE = "not_taxable"  # 不征税


@dataclass(frozen=True)
class Rate:
    """One rate or treatment; ``value`` is the fraction (``Decimal("0.06")``), 0 for treatments."""

    code: str
    value: Decimal
    kind: RateKind

    @property
    def is_taxed(self) -> bool:
        """False for 免税 and 不征税, whose lines carry no tax."""
        return self.kind in (RateKind.TAX_RATE, RateKind.LEVY_RATE)


class RateRule(NamedTuple):
    """``rate`` may be used on invoices dated ``valid_from`` to ``valid_to`` (inclusive; None = open)."""

    rate: Rate
    valid_from: date
    valid_to: date | None

    def in_force(self, on: date) -> bool:
        return self.valid_from <= on and (self.valid_to is None or on <= self.valid_to)


def _tax(code: str) -> Rate:
    return Rate(code, Decimal(code), RateKind.TAX_RATE)


def _levy(code: str) -> Rate:
    return Rate(code, Decimal(code), RateKind.LEVY_RATE)


EXEMPT = Rate("exempt", Decimal(0), RateKind.EXEMPT)
NOT_TAXABLE = Rate("not_taxable", Decimal(0), RateKind.NOT_TAXABLE)

_VAT_START = date(1994, 1, 1)  # 《增值税暂行条例》(1993) in force
_PILOT = date(2012, 1, 1)  # 营改增 pilot (Shanghai) brings 11% and 6%
_FULL_ROLLOUT = date(2016, 5, 1)  # 营改增 nationwide: 5% and 1.5% levy rates

# THIS TABLE IS DATA.  When rates change (a new 公告, the 增值税法 实施条例, the end or extension
# of a reduced levy rate), an operator update must extend it — add a row or close a valid_to —
# never edit a past row: entries already in the ledger were validated against it.
# The same code may appear in several rows (13% was the low rate until 2017-06-30, and is the
# standard rate again from 2019-04-01).  The 增值税法 (from 2026-01-01) keeps 13/9/6/0 and 3%.
RATE_RULES: tuple[RateRule, ...] = (
    # 税率
    RateRule(_tax("0.17"), _VAT_START, date(2018, 4, 30)),
    RateRule(_tax("0.13"), _VAT_START, date(2017, 6, 30)),  # old low rate, then 11% (财税〔2017〕37号)
    RateRule(_tax("0.11"), _PILOT, date(2018, 4, 30)),
    RateRule(_tax("0.16"), date(2018, 5, 1), date(2019, 3, 31)),  # 财税〔2018〕32号
    RateRule(_tax("0.1"), date(2018, 5, 1), date(2019, 3, 31)),
    RateRule(_tax("0.13"), date(2019, 4, 1), None),  # 财政部 税务总局 海关总署公告2019年第39号
    RateRule(_tax("0.09"), date(2019, 4, 1), None),
    RateRule(_tax("0.06"), _PILOT, None),
    RateRule(_tax("0"), _VAT_START, None),  # zero rate (exports, cross-border services)
    # 征收率
    RateRule(_levy("0.05"), _FULL_ROLLOUT, None),
    RateRule(_levy("0.03"), date(2009, 1, 1), None),
    RateRule(_levy("0.015"), _FULL_ROLLOUT, None),  # individuals letting housing
    # Reduced levy rates are policy, not statute: 1% runs to 2027-12-31 under 公告2023年第19号;
    # close this row if it is not extended.
    RateRule(_levy("0.01"), date(2020, 3, 1), None),
    RateRule(_levy("0.005"), date(2020, 5, 1), date(2027, 12, 31)),  # used-car dealers
    # Treatments
    RateRule(EXEMPT, date.min, None),
    RateRule(NOT_TAXABLE, date.min, None),
)


def rates_in_force(on: date) -> tuple[Rate, ...]:
    """The rates usable on an invoice dated ``on``, in table order, each once."""
    found: dict[str, Rate] = {}
    for rule in RATE_RULES:
        if rule.in_force(on):
            found.setdefault(rule.rate.code, rule.rate)
    return tuple(found.values())


def resolve_rate(value: object, on: date) -> Rate:
    """The :class:`Rate` for an API code on an invoice dated ``on``.

    Raises :class:`InvalidValueError`: ``not_a_string``; ``unsupported_rate`` for anything
    that is not a canonical code; ``rate_not_in_force`` for a known code outside its dates.
    Both list the codes allowed on that date in ``params["allowed"]``.
    """
    allowed = ", ".join(rate.code for rate in rates_in_force(on))
    if not isinstance(value, str):
        raise InvalidValueError(
            _('Enter the tax rate as a string, such as "0.06" or "exempt".'), code="not_a_string"
        )
    for rule in RATE_RULES:
        if rule.rate.code == value and rule.in_force(on):
            return rule.rate
    if any(rule.rate.code == value for rule in RATE_RULES):
        raise InvalidValueError(
            _("The tax rate {rate} is not in force on {date}. Use one of: {allowed}."),
            code="rate_not_in_force",
            rate=value,
            date=on.isoformat(),
            allowed=allowed,
        )
    raise InvalidValueError(
        _("Unsupported tax rate. Use one of: {allowed}."), code="unsupported_rate", allowed=allowed
    )


def rate_by_code(code: str) -> Rate:
    """The rate a stored code means, whatever the date — for rebuilding lines already issued
    (a red invoice keeps its blue original's rate even after that rate has ended)."""
    for rule in RATE_RULES:
        if rule.rate.code == code:
            return rule.rate
    allowed = ", ".join(dict.fromkeys(rule.rate.code for rule in RATE_RULES))
    raise InvalidValueError(
        _("Unsupported tax rate. Use one of: {allowed}."), code="unsupported_rate", allowed=allowed
    )


def line_tax(amount_fen: int, rate: Rate) -> int:
    """Tax on one line: ``amount × rate`` rounded half-up to the fen (symmetric for negatives).

    Zero for 免税 and 不征税.
    """
    if not rate.is_taxed:
        return 0
    return fen_times(amount_fen, rate.value)


def rate_label(rate: Rate) -> str:
    """How the rate is printed: ``"6%"``, ``"1.5%"``, ``"0%"``, ``"免税"``, ``"不征税"``."""
    if rate.kind is RateKind.EXEMPT:
        return "免税"
    if rate.kind is RateKind.NOT_TAXABLE:
        return "不征税"
    percent = (rate.value * 100).normalize()
    return f"{percent:f}%"
