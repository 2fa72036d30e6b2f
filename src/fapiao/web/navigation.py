"""The menu, built from the permission table: each user sees what their role may do.

The site frame sits above every app, so it lists their pages itself; nothing checks roles here,
only ``may(user, action)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from fapiao.accounts.models import User
from fapiao.accounts.permissions import Action, may


@dataclass(frozen=True)
class NavItem:
    url_name: str
    label: Promise | str
    action: Action | None = None  # None: every signed-in user
    staff_label: Promise | str | None = None  # wording for staff, who see every merchant
    when: Callable[[User], bool] | None = None

    def visible_to(self, user: User) -> bool:
        if self.action is not None and not may(user, self.action):
            return False
        return self.when(user) if self.when else True


ITEMS: list[NavItem] = [
    NavItem("web:home", _("Home")),
    NavItem("invoices:list", _("My invoices"), Action.READ_INVOICES, staff_label=_("Invoices")),
    NavItem("invoices:issue", _("Issue an invoice"), Action.ISSUE_INVOICE),
    NavItem("invoices:batch", _("Batch issuing"), Action.ISSUE_INVOICE),
    NavItem("invoices:import", _("Import invoices"), Action.IMPORT_INVOICES),
    NavItem("catalogue:buyers", _("Address book"), Action.ISSUE_INVOICE),
    NavItem("catalogue:products", _("Product catalogue"), Action.ISSUE_INVOICE),
    NavItem("invoices:totals", _("Monthly totals"), Action.EXPORT_INVOICES),
    NavItem("documents:bundle", _("Bulk download"), Action.EXPORT_INVOICES),
    NavItem("recovery:list", _("My applications"), Action.READ_CASES, staff_label=_("Recovery cases")),
    NavItem("recovery:inbox", _("Inbox"), Action.MESSAGE_CASES, when=lambda user: not user.is_merchant_user),
    NavItem("recovery:guide", _("Guide")),
    NavItem("ops:overview", _("Operations overview"), Action.READ_OPERATIONS),
    NavItem("ops:backups", _("Backups and drills"), Action.READ_OPERATIONS),
    NavItem("ledger:verify", _("Verify the ledger"), Action.VERIFY_LEDGER),
    NavItem("accounts:users", _("Users"), Action.READ_USERS),
    NavItem("accounts:tokens", _("API tokens"), Action.MANAGE_OWN_TOKENS),
    NavItem("admin:index", _("Administration"), Action.MANAGE_MERCHANTS, when=lambda user: user.is_staff),
    NavItem("audit:records", _("Audit trail"), Action.READ_AUDIT),
]


@dataclass(frozen=True)
class Link:
    url: str
    label: str
    current: bool


def links_for(request: HttpRequest) -> list[Link]:
    """The menu of the signed-in user, the current page marked."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    found: list[Link] = []
    for item in ITEMS:
        if not item.visible_to(user):
            continue
        try:
            url = reverse(item.url_name)
        except NoReverseMatch:
            continue
        text = item.staff_label if item.staff_label and not user.is_merchant_user else item.label
        current = request.path == url if url == "/" else request.path.startswith(url)
        found.append(Link(url, str(text), current))
    # Only the most specific match is current (/invoices/ vs /invoices/batch/).
    best = max((link for link in found if link.current), key=lambda link: len(link.url), default=None)
    return [Link(link.url, link.label, link is best) for link in found]
