"""What every page's base template needs: the menu, the demo flag, the operators' incident banner."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from fapiao.ledger.incidents import banner_for
from fapiao.recovery.selectors import unread_count
from fapiao.web.navigation import links_for


def _incident_banner(request: HttpRequest) -> str | None:
    return banner_for(getattr(request, "user", None))


def _unread(request: HttpRequest) -> int:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return 0
    return unread_count(user)


def site(request: HttpRequest) -> dict[str, Any]:
    """Lazy values: a page that never shows the menu never queries for it."""
    return {
        "demo_mode": settings.DEMO,
        "nav_links": SimpleLazyObject(lambda: links_for(request)),
        "incident_banner": SimpleLazyObject(lambda: _incident_banner(request) or ""),
        "unread_notifications": SimpleLazyObject(lambda: _unread(request)),
    }
