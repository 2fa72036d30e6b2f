"""Totals per month × rate × kind: the figures a merchant copies into its VAT return.

Sales (销项) by default.  Red invoices count negative (their lines are negative), so a month's
figures are net of red-lettering, as on the return.  Voided invoices (作废, imported paper
only) and reverted imports
(已撤销导入) count nothing.  Months are Beijing business months (``issued_on``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Count, Sum
from django.db.models.functions import TruncMonth

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, require
from fapiao.core.choices import Direction, InvoiceState
from fapiao.invoices.models import InvoiceLine
from fapiao.invoices.selectors import invoices_visible_to


@dataclass(frozen=True)
class TotalsRow:
    month: date
    tax_rate: str
    kind: str
    invoices: int
    amount: int  # fen
    tax: int  # fen

    @property
    def total_with_tax(self) -> int:
        return self.amount + self.tax


def totals_by_month_and_rate(
    *,
    user: User,
    date_from: date | None = None,
    date_to: date | None = None,
    direction: str = Direction.OUT,
    merchant: str = "",
) -> list[TotalsRow]:
    """The totals the user may see, oldest month first, then by rate and kind."""
    require(user, Action.EXPORT_INVOICES)
    invoices = (
        invoices_visible_to(user)
        .filter(direction=direction)
        .exclude(state__in=[InvoiceState.VOIDED, InvoiceState.REVERTED])
    )
    if merchant and not user.is_merchant_user:
        invoices = invoices.filter(merchant__uscc=merchant.upper())
    if date_from:
        invoices = invoices.filter(issued_on__gte=date_from)
    if date_to:
        invoices = invoices.filter(issued_on__lte=date_to)
    rows = (
        InvoiceLine.objects.filter(invoice__in=invoices.values("pk"))
        .annotate(month=TruncMonth("invoice__issued_on"))
        .values("month", "tax_rate", "invoice__kind")
        .annotate(amount=Sum("amount"), tax=Sum("tax"), invoices=Count("invoice", distinct=True))
        .order_by("month", "tax_rate", "invoice__kind")
    )
    return [
        TotalsRow(
            month=row["month"],
            tax_rate=row["tax_rate"],
            kind=row["invoice__kind"],
            invoices=row["invoices"],
            amount=row["amount"] or 0,
            tax=row["tax"] or 0,
        )
        for row in rows
    ]
