"""The staff's pages: reviewer queue, support inbox, decisions, remedies, e-mail and mail-in evidence."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import URLPattern

from fapiao.recovery.models import Case


def panel_context(request: HttpRequest, case: Case) -> dict[str, Any]:
    """What the staff panel of the case page (``recovery/staff/_panel.html``) needs."""
    return {}


def list_context(request: HttpRequest) -> dict[str, Any]:
    """What the staff's part of the case list (``recovery/staff/_list_tools.html``) needs."""
    return {}


urlpatterns: list[URLPattern] = []
