"""Refuses sign-in attempts from a client whose anonymous refusals this hour passed the limit.

The sign-in form hashes a password with Argon2id (64 MiB, by design slow): a client that keeps
failing must be stopped before that work, not after.  A POST to the sign-in page (ours or the
admin's) from such a client is answered 429 with ``Retry-After`` at once, after one ``SELECT`` of
its counter (:func:`fapiao.audit.refusals.throttled`).  Signed-in users and other pages pass.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse

from fapiao.audit import refusals
from fapiao.platform.context import current_client_address
from fapiao.platform.errors import too_many_requests


@functools.cache
def sign_in_paths() -> frozenset[str]:
    found = set()
    for name in ("web:login", "admin:login"):
        try:
            found.add(reverse(name))
        except NoReverseMatch:  # no admin site mounted
            continue
    return frozenset(found)


class SignInThrottleMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and request.path in sign_in_paths() and not request.user.is_authenticated:
            decision = refusals.throttled(current_client_address())
            if decision is not None:
                return too_many_requests(request, decision)
        return self.get_response(request)
