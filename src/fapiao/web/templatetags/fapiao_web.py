"""Template filters for reading invoices.

``{{ fen|yuan }}``, ``{{ "0.06"|rate }}``, ``{{ state|label:"state" }}``, ``{{ fen|in_words }}``.
"""

from __future__ import annotations

from django import template
from django.conf import settings

from fapiao.accounts.demo import MERCHANTS, USERS
from fapiao.core.tax_codes import SOURCE as TAX_CODE_SOURCE
from fapiao.core.tax_codes import TAX_CODES
from fapiao.core.words import amount_in_words
from fapiao.platform import labels

register = template.Library()


@register.filter
def yuan(fen: int | None) -> str:
    return labels.yuan(fen)


@register.filter
def amount(value: str) -> str:
    """A decimal string (``"1060.00"``) grouped for reading: ``1,060.00``."""
    return labels.decimal_text(str(value)) if value not in (None, "") else ""


@register.filter
def rate(code: str) -> str:
    return labels.rate_label(str(code))


@register.filter
def label(value: str, table: str) -> str:
    return labels.label(table, str(value))


@register.filter
def in_words(fen: int) -> str:
    return amount_in_words(int(fen))


@register.filter
def get(mapping: object, key: object) -> object:
    """``{{ errors|get:name }}``: a dict lookup with a computed key."""
    if isinstance(mapping, dict):
        return mapping.get(key)
    return None


@register.inclusion_tag("web/includes/support_contact.html")
def support_contact() -> dict[str, str]:
    """The support desk (FAPIAO_SUPPORT_PHONE, _EMAIL, _HOURS) wherever a page says 联系客服."""
    return {
        "phone": settings.FAPIAO_SUPPORT_PHONE,
        "email": settings.FAPIAO_SUPPORT_EMAIL,
        "hours": settings.FAPIAO_SUPPORT_HOURS,
    }


@register.simple_tag
def demo_users() -> list[tuple[str, str, str]]:
    """Every demo user as the login page lists them: (username, role, merchant name or "")."""
    names = {uscc: name for uscc, name, _block in MERCHANTS}
    return [
        (username, labels.label("role", str(role)), names.get(uscc or "", ""))
        for username, role, uscc, *_rest in USERS
    ]


@register.inclusion_tag("web/includes/tax_code_list.html")
def tax_code_list(extra: object = None) -> dict[str, object]:
    """The 税收分类编码 picker's choices (a <datalist> the code inputs name): the shipped selection,
    plus ``extra`` codes (the merchant's catalogue's) not in it."""
    shipped = {code for code, _name in TAX_CODES}
    more = sorted({str(code) for code in (extra or []) if code and str(code) not in shipped})  # type: ignore[attr-defined]
    return {"codes": TAX_CODES, "more": more, "source": TAX_CODE_SOURCE}
