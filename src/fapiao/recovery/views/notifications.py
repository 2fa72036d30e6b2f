"""In-app notifications: the list, newest first; opening the list marks them read."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from fapiao.accounts.requests import acting_user
from fapiao.recovery import selectors
from fapiao.recovery.models import Notification
from fapiao.recovery.notify import mark_read
from fapiao.recovery.notify import render as render_notification

PAGE_SIZE = 30


def _url(notification: Notification) -> str | None:
    """The case it is about, else the page it names (a flagged invoice: ``params["path"]``)."""
    if notification.case_id and notification.case:
        return reverse("recovery:case", args=[notification.case.uid])
    path = (notification.params or {}).get("path")
    return path if isinstance(path, str) and path.startswith("/") and not path.startswith("//") else None


@login_required
@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    user = acting_user(request)
    page = Paginator(selectors.notifications_for(user), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        {
            "text": render_notification(n),
            "at": n.created_at,
            "unread": n.read_at is None,
            "url": _url(n),
        }
        for n in page
    ]
    mark_read(user=user, notifications=page)
    return render(request, "recovery/notifications.html", {"page": page, "rows": rows})
