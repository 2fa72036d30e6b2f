"""How stored values read on screen: states, kinds, origins, rates, money.

The stored values are the API's (``partly_red``, ``"0.06"``, fen); people read 部分红冲, 6%,
¥1,060.00.  Labels are English msgids translated to the user's language.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from fapiao.core.money import format_money
from fapiao.core.tax import RateKind, rate_by_code, rates_in_force

STATES: dict[str, Promise] = {
    "normal": _("Normal"),
    "partly_red": _("Partly red-lettered"),
    "fully_red": _("Fully red-lettered"),
    "voided": _("Voided"),
}
KINDS: dict[str, Promise] = {
    "ordinary": _("Ordinary invoice"),
    "special": _("Special VAT invoice"),
}
COLOURS: dict[str, Promise] = {"blue": _("Blue invoice"), "red": _("Red invoice")}
DIRECTIONS: dict[str, Promise] = {"out": _("Sales"), "in": _("Purchases")}
ORIGINS: dict[str, Promise] = {
    "issued": _("Issued in this system"),
    "imported": _("Imported"),
    "restored": _("Restored through a recovery case"),
    "reissued": _("Re-issued through a recovery case"),
}
ROLES: dict[str, Promise] = {
    "clerk": _("Merchant clerk"),
    "merchant_admin": _("Merchant administrator"),
    "support": _("Support agent"),
    "reviewer": _("Reviewer"),
    "auditor": _("Auditor"),
    "operator": _("Operator"),
}
INCIDENT_KINDS: dict[str, Promise] = {
    "verify_failed": _("Ledger verification failed"),
    "receipt_not_proven": _("A valid receipt the ledger no longer proves"),
    "restore_lost_entries": _("A restored ledger or audit log is shorter than its witness saw"),
    "migration_changed_data": _("A database migration changed a merchant's records"),
}
INCIDENT_STATES: dict[str, Promise] = {
    "open": _("Open, not yet taken on"),
    "acknowledged": _("Acknowledged, in hand"),
    "resolved": _("Resolved, with a note"),
}
IMPORT_RUN_STATES: dict[str, Promise] = {
    "planned": _("Checked, nothing imported"),
    "running": _("Import in progress"),
    "committed": _("Imported"),
    "reverted": _("Import reverted"),
}
TABLES = {
    "role": ROLES,
    "import_run_state": IMPORT_RUN_STATES,
    "incident_kind": INCIDENT_KINDS,
    "incident_state": INCIDENT_STATES,
    "state": STATES,
    "kind": KINDS,
    "colour": COLOURS,
    "direction": DIRECTIONS,
    "origin": ORIGINS,
}


def label(table: str, value: str) -> str:
    """The label of ``value`` in one of :data:`TABLES`; an unknown value shows as it is."""
    found = TABLES[table].get(value)
    return str(found) if found is not None else value


def choices(table: str) -> list[tuple[str, str]]:
    return [(value, str(text)) for value, text in TABLES[table].items()]


def rate_label(code: str) -> str:
    """``"0.06"`` → 6%; ``"0.03"`` → 3%（征收率）; ``"exempt"`` → 免税."""
    try:
        rate = rate_by_code(code)
    except Exception:
        return code
    if rate.kind is RateKind.EXEMPT:
        return gettext("Tax exempt")
    if rate.kind is RateKind.NOT_TAXABLE:
        return gettext("Not taxable")
    percent = f"{(rate.value * 100).normalize():f}%"
    if rate.kind is RateKind.LEVY_RATE:
        return gettext("{rate} (levy rate)").format(rate=percent)
    return percent


def rate_choices() -> list[tuple[str, str]]:
    """The rates in force today, for a rate picker (the issue form, the catalogue)."""
    return [(rate.code, rate_label(rate.code)) for rate in rates_in_force(timezone.localdate())]


def grouped(text: str) -> str:
    """``"-1234567.50"`` → ``"-1,234,567.50"`` (a decimal string, any number of places)."""
    sign = "-" if text.startswith("-") else ""
    whole, dot, fraction = text.lstrip("-").partition(".")
    return f"{sign}{int(whole):,}{dot}{fraction}" if whole.isdigit() else text


def yuan(fen: int | None) -> str:
    """Fen as ``¥1,060.00``; a red invoice's ``-106000`` as ``-¥1,060.00``."""
    if fen is None:
        return ""
    text = grouped(format_money(fen))
    return "-¥" + text[1:] if text.startswith("-") else "¥" + text


def decimal_text(value: str) -> str:
    """A stored quantity or price for reading: grouped, scale kept (``"1000.00"`` → ``1,000.00``)."""
    try:
        Decimal(value)
    except (InvalidOperation, TypeError):
        return value
    return grouped(value)
