"""Reading requests: every JSON body of the API, ninja's schema bodies included, is read here."""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest

from fapiao.core.errors import InvalidValueError, ValidationFailed
from fapiao.core.json_input import parse_json
from fapiao.core.strict import parse_whole_number


def json_body(request: HttpRequest) -> object:
    """The request's JSON body, bounded and checked (:func:`fapiao.core.json_input.parse_json`): a
    malformed, too deeply nested or control-character-laden body is a 422 problem, never a
    traceback.  A body over the upload limit raises ``RequestDataTooBig`` (413) before parsing."""
    return parse_json(request.body)


def large_json_body(request: HttpRequest, *, max_bytes: int) -> object:
    """Like :func:`json_body`, for the one endpoint whose bodies may pass the server-wide upload
    limit (the bulk API): bounded by ``max_bytes`` instead, before anything is read."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > max_bytes:
        raise RequestDataTooBig(f"the body is over {max_bytes} bytes")
    data = request.read(max_bytes + 1)  # not request.body: that applies the server-wide limit
    if len(data) > max_bytes:
        raise RequestDataTooBig(f"the body is over {max_bytes} bytes")
    return parse_json(data)


def page_param(request: HttpRequest, *, maximum: int) -> int:
    """``?page=`` (default 1) as a whole number from 1 to ``maximum``; else a 422 at ``page``."""
    try:
        return parse_whole_number(request.GET.get("page", "1"), minimum=1, maximum=maximum)
    except InvalidValueError as error:
        raise ValidationFailed([error.at("page")]) from None


def is_api(request: HttpRequest) -> bool:
    """Is this a call of the JSON API (answered with problem documents), not a page?"""
    return request.path.startswith("/api/")
