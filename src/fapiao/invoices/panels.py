"""Panels other apps add to the invoice pages (a hook: the invoice pages never import them).

An app above ``invoices`` (``documents``: downloads, sending to the buyer) registers a function
from its ``AppConfig.ready``; the invoice page and the batch page render every panel registered
for them, in order, below their own content.  A panel gets the request and the page's object and
returns HTML (already escaped: a rendered template), or "" to show nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.utils.safestring import SafeString, mark_safe

Panel = Callable[[HttpRequest, Any], str]
PAGES = ("invoice", "batch")
_panels: dict[str, list[Panel]] = {page: [] for page in PAGES}


def register_panel(page: str, panel: Panel) -> None:
    """Add ``panel`` to ``page`` (``invoice`` or ``batch``); registering the same one twice is a no-op."""
    if panel not in _panels[page]:
        _panels[page].append(panel)


def render_panels(page: str, request: HttpRequest, subject: Any) -> list[SafeString]:
    return [mark_safe(html) for panel in _panels[page] if (html := panel(request, subject))]  # noqa: S308  rendered templates
