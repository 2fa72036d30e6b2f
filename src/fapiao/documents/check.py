"""The public 查验: does an invoice with this number, date and 价税合计 exist, and who issued it?

Anyone may ask, without signing in (the QR code on every PDF leads here).  The answer says
nothing beyond what was typed and the seller's public identity (name, taxpayer number), plus the
invoice's kind, colour and state — never the buyer, the lines or the ledger entry.  A wrong
amount, a wrong date and a number that does not exist all answer the same ``found: false``, so
guessing one field at a time learns nothing.  Guessing is slowed by the shared rate limiter,
per client address and per number (``FAPIAO_CHECK_LIMIT_PER_ADDRESS``,
``FAPIAO_CHECK_LIMIT_PER_NUMBER`` per ``FAPIAO_CHECK_WINDOW_SECONDS``), and every miss is counted
(``fapiao_invoice_check_misses``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from django.conf import settings
from prometheus_client import Counter

from fapiao.core.choices import Direction
from fapiao.core.errors import FapiaoError, FieldError, InvalidValueError, ValidationFailed, _
from fapiao.core.identifiers import parse_invoice_identity
from fapiao.core.invoice_qr import read_invoice_qr
from fapiao.core.money import format_money, parse_money
from fapiao.invoices.models import Invoice
from fapiao.platform.ratelimit import hit

# To move into fapiao.platform.metrics with the other counters once that module is on main.
CHECK_MISSES = Counter(
    "fapiao_invoice_check_misses",
    "Public 查验 requests that found no invoice (wrong number, date or amount).",
)
FIELDS = ("number", "issued_on", "total_with_tax")


class CheckRateLimitedError(FapiaoError):
    """Too many checks in a short time. Wait {minutes} minutes and try again."""

    status = 429
    code = "rate_limited"

    def __init__(self, retry_after: int) -> None:
        super().__init__(minutes=max(1, (retry_after + 59) // 60))
        self.retry_after = retry_after


@dataclass(frozen=True)
class CheckQuery:
    number: str
    issued_on: date
    total_with_tax: int  # fen


@dataclass(frozen=True)
class CheckAnswer:
    found: bool
    query: CheckQuery
    seller_name: str = ""
    seller_tax_id: str = ""
    kind: str = ""
    colour: str = ""
    state: str = ""

    def as_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "found": self.found,
            "number": self.query.number,
            "issued_on": self.query.issued_on.isoformat(),
            "total_with_tax": format_money(self.query.total_with_tax),
        }
        if self.found:
            body.update(
                seller={"name": self.seller_name, "tax_id": self.seller_tax_id},
                kind=self.kind,
                colour=self.colour,
                state=self.state,
            )
        return body


def parse_query(params: dict[str, str]) -> CheckQuery:
    """The three fields (or a scanned QR text in ``code``); every bad one reported at once."""
    values = {name: (params.get(name) or "").strip() for name in FIELDS}
    scanned = (params.get("code") or "").strip()
    if scanned and not any(values.values()):
        try:
            qr = read_invoice_qr(scanned)
        except InvalidValueError as error:
            raise ValidationFailed([error.at("code")]) from None
        return CheckQuery(qr.number, qr.issued_on, qr.amount)
    errors: list[FieldError] = []
    found: dict[str, Any] = {}
    for name in FIELDS:
        if not values[name]:
            errors.append(FieldError(name, "required", _("This field is required.")))
    if values["number"]:
        try:
            found["number"] = parse_invoice_identity(values["number"])
        except InvalidValueError as error:
            errors.append(error.at("number"))
    if values["issued_on"]:
        try:
            found["issued_on"] = date.fromisoformat(values["issued_on"])
        except ValueError:
            errors.append(FieldError("issued_on", "bad_date", _("Use a date like 2026-11-28.")))
    if values["total_with_tax"]:
        try:
            found["total_with_tax"] = parse_money(
                values["total_with_tax"].replace(",", ""), allow_negative=True
            )
        except InvalidValueError as error:
            errors.append(error.at("total_with_tax"))
    if errors:
        raise ValidationFailed(errors)
    return CheckQuery(**found)


def _limit(scope: str, key: str, limit: int) -> None:
    decision = hit(scope, key, limit, settings.FAPIAO_CHECK_WINDOW_SECONDS)
    if not decision.allowed:
        raise CheckRateLimitedError(decision.retry_after)


def check_invoice(query: CheckQuery, *, client: str) -> CheckAnswer:
    """Look the invoice up; :class:`CheckRateLimitedError` when the address or number asked too often."""
    _limit("invoice_check_address", client or "unknown", settings.FAPIAO_CHECK_LIMIT_PER_ADDRESS)
    _limit("invoice_check_number", query.number, settings.FAPIAO_CHECK_LIMIT_PER_NUMBER)
    matches = list(
        Invoice.objects.filter(
            number=query.number,
            direction=Direction.OUT,
            issued_on=query.issued_on,
            total_with_tax=query.total_with_tax,
        ).only("kind", "colour", "state", "seller_name", "seller_tax_id")[:2]
    )
    if len(matches) != 1:  # none, or (legacy numbers only) two sellers' alike: say nothing
        CHECK_MISSES.inc()
        return CheckAnswer(found=False, query=query)
    invoice = matches[0]
    return CheckAnswer(
        found=True,
        query=query,
        seller_name=invoice.seller_name,
        seller_tax_id=invoice.seller_tax_id,
        kind=invoice.kind,
        colour=invoice.colour,
        state=invoice.state,
    )
