"""Totals per month × rate (the figures for the VAT return), on screen and as CSV/XLSX."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Any

from django.contrib.auth.decorators import login_required
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext
from django.views.decorators.http import require_GET

from fapiao.accounts.models import Merchant
from fapiao.accounts.permissions import Action, require
from fapiao.accounts.requests import acting_user
from fapiao.audit import services as audit
from fapiao.core.choices import Direction
from fapiao.core.entry import normalise_text
from fapiao.core.errors import InvalidValueError
from fapiao.core.money import format_money
from fapiao.core.strict import parse_iso_date
from fapiao.formats.tabular import write_table
from fapiao.invoices import findings
from fapiao.invoices.models import InvoiceFinding, InvoiceLine
from fapiao.invoices.totals import TotalsRow, totals_by_month_and_rate
from fapiao.invoices.views.invoices import EXPORT_TYPES
from fapiao.platform import labels
from fapiao.platform.forms import FormState

HEADER = [
    "月份 month",
    "税率 tax_rate",
    "发票种类 kind",
    "发票张数 invoices",
    "金额 amount",
    "税额 tax",
    "价税合计 total_with_tax",
]


def _date(state: FormState, name: str, default: date | None) -> date | None:
    raw = normalise_text(state.data.get(name, ""))
    if not raw:
        return default
    try:
        return parse_iso_date(raw)
    except InvalidValueError as error:
        state.add(name, error.render(gettext))
        return None


def _months(rows: list[TotalsRow]) -> list[dict[str, Any]]:
    """Rows grouped by month, with the month's sums."""
    months: dict[date, dict[str, Any]] = {}
    for row in rows:
        month = months.setdefault(row.month, {"month": row.month, "rows": [], "amount": 0, "tax": 0})
        month["rows"].append(row)
        month["amount"] += row.amount
        month["tax"] += row.tax
    for month in months.values():
        month["total"] = month["amount"] + month["tax"]
    return list(months.values())


@login_required
@require_GET
def totals(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    require(user, Action.EXPORT_INVOICES)
    today = timezone.localdate()
    names = ("date_from", "date_to", "direction", "merchant")
    state = FormState(data={name: request.GET.get(name, "") for name in names})
    date_from = _date(state, "date_from", today.replace(month=1, day=1))
    date_to = _date(state, "date_to", today)
    direction = state.data["direction"] if state.data["direction"] in {d.value for d in Direction} else "out"
    merchant = normalise_text(state.data["merchant"])
    needs_merchant = not user.is_merchant_user and not merchant
    rows: list[TotalsRow] = []
    affected: list[InvoiceFinding] = []
    if not state.invalid and not needs_merchant:
        rows = totals_by_month_and_rate(
            user=user, date_from=date_from, date_to=date_to, direction=direction, merchant=merchant
        )
        affected = _affected(user, date_from, date_to, direction, merchant)
    kind = request.GET.get("format", "")
    if kind in EXPORT_TYPES and not state.invalid and not needs_merchant:
        return _export(request, rows, kind, affected)
    context = {
        "form": state,
        "date_from": date_from,
        "date_to": date_to,
        "direction": direction,
        "direction_choices": labels.choices("direction"),
        "months": _months(rows),
        "grand": {
            "amount": sum(r.amount for r in rows),
            "tax": sum(r.tax for r in rows),
            "total": sum(r.total_with_tax for r in rows),
        },
        "needs_merchant": needs_merchant,
        "affected": [_warning(finding) for finding in affected],
        "is_staff_view": not user.is_merchant_user,
        "query": request.GET.urlencode(),
    }
    return render(request, "invoices/totals.html", context)


def _affected(
    user: Any, date_from: date | None, date_to: date | None, direction: str, uscc: str
) -> list[InvoiceFinding]:
    """The invoices of the period verify found missing (left out) or altered (counted wrongly)."""
    merchant = None
    if not user.is_merchant_user:
        merchant = Merchant.objects.filter(uscc=uscc.upper()).first()
        if merchant is None:
            return []
    return findings.in_period(
        user, date_from=date_from, date_to=date_to, direction=direction, merchant=merchant
    )


def _counted(finding: InvoiceFinding) -> int:
    """What the figures count of an altered invoice: its stored lines (the totals sum lines)."""
    if finding.kind != findings.ALTERED:
        return 0
    lines = InvoiceLine.objects.filter(
        merchant_id=finding.merchant_id,
        invoice__merchant_id=finding.merchant_id,
        invoice__number=finding.number,
    ).aggregate(amount=Sum("amount"), tax=Sum("tax"))
    return int(lines["amount"] or 0) + int(lines["tax"] or 0)


def _warning(finding: InvoiceFinding) -> dict[str, Any]:
    ledger = finding.ledger
    return {
        "number": finding.number,
        "kind": finding.kind,
        "issued_on": ledger.get("issued_on") or "",
        "ledger_total": int(ledger.get("total_with_tax") or 0),
        "ledger_tax": int(ledger.get("total_tax") or 0),
        "counted_total": _counted(finding),
    }


def _export(
    request: HttpRequest, rows: list[TotalsRow], kind: str, affected: list[InvoiceFinding]
) -> HttpResponse:
    user = acting_user(request)
    lines = [
        [
            row.month.strftime("%Y-%m"),
            row.tax_rate,
            row.kind,
            row.invoices,
            format_money(row.amount),
            format_money(row.tax),
            format_money(row.total_with_tax),
        ]
        for row in rows
    ]
    for finding in affected:  # a warning under the figures, never a silent gap
        item = _warning(finding)
        counted = (
            "未计入 not counted"
            if item["kind"] == findings.MISSING
            else "按系统中的发票明细计入 counted as stored"
        )
        lines.append(
            [
                "警告 warning",
                findings.KIND_TITLES[item["kind"]],
                item["number"],
                item["issued_on"],
                format_money(item["ledger_total"] - item["ledger_tax"]),
                format_money(item["ledger_tax"]),
                f"{format_money(item['ledger_total'])}（账本 ledger；{counted}）",
            ]
        )
    with tempfile.TemporaryDirectory(prefix="fapiao-totals-") as folder:
        path = Path(folder) / f"totals.{kind}"
        write_table(path, HEADER, lines, title="按月按税率汇总 totals")
        data = path.read_bytes()
    audit.record(
        actor=user,
        action="invoices.totals_export",
        merchant=user.merchant,
        after={"format": kind, "rows": len(lines), "filters": request.GET.dict()},
    )
    response = HttpResponse(data, content_type=EXPORT_TYPES[kind])
    response["Content-Disposition"] = f'attachment; filename="totals-{timezone.localdate():%Y%m%d}.{kind}"'
    return response
