"""Control characters in the parts of a request that no field validator sees, refused in one place.

Path and query parameters reach lookups and filters directly: with a NUL byte, PostgreSQL refuses
the query and the client got a 503 "database unavailable" — a client mistake reported as an
outage.  So a request whose path or query string holds a control character, or whose page form
(urlencoded) holds a NUL, is refused before any view runs: a 422 problem document under ``/api/``
(one error per parameter), a page saying what to fix elsewhere.  JSON bodies are checked by their
reader (:mod:`fapiao.core.json_input`); other form fields by each field's validator, which puts the
message beside the field (:mod:`fapiao.core.text`).

The session cookie is dropped, not refused, when it holds a control character: it is no session,
and refusing it would lock the browser out until the cookie expired.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.template import loader
from django.utils import translation

from fapiao.core.errors import FieldError, ValidationFailed
from fapiao.core.text import CONTROL, CONTROL_MESSAGE
from fapiao.platform import problems
from fapiao.platform.requests import is_api

# Multipart forms are left to their views (which may set their own upload handlers before the body
# is read) and their fields to the validators.
FORM_TYPE = "application/x-www-form-urlencoded"


def _has_control(text: str) -> bool:
    return CONTROL.search(text) is not None


def refused_inputs(request: HttpRequest) -> list[str]:
    """The names of the inputs holding control characters: ``path``, query parameter names (or
    ``query`` for a bad name), and on pages the names of form fields holding NUL."""
    names: list[str] = []
    if _has_control(request.path):
        names.append("path")
    for key, values in request.GET.lists():
        if _has_control(key):
            names.append("query")
        elif any(_has_control(value) for value in values):
            names.append(key)
    if request.method == "POST" and not is_api(request) and request.content_type == FORM_TYPE:
        for key, values in request.POST.lists():
            if "\x00" in key or any("\x00" in value for value in values):
                names.append(key if "\x00" not in key else "form")
    return list(dict.fromkeys(names))


class ControlCharacterGuard:
    """Refuses requests with control characters in the path, the query or (pages) form fields."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        cookie = settings.SESSION_COOKIE_NAME
        if _has_control(request.COOKIES.get(cookie, "")):
            del request.COOKIES[cookie]
        names = refused_inputs(request)
        if not names:
            return self.get_response(request)
        with translation.override(translation.get_language_from_request(request)):
            return refusal(request, names)


def refusal(request: HttpRequest, names: list[str]) -> HttpResponse:
    errors = [FieldError(name, "bad_character", CONTROL_MESSAGE) for name in names]
    if is_api(request):
        return problems.from_error(ValidationFailed(errors))
    # Rendered without context processors: no session, no menu, no database.
    body = loader.get_template("web/errors/422.html").render(
        {"STATIC_URL": settings.STATIC_URL, "fields": [name for name in names if name != "path"]}
    )
    return HttpResponse(body, status=422)
