"""Reading requests: every JSON body of the API, ninja's schema bodies included, is read here."""

from __future__ import annotations

from django.http import HttpRequest

from fapiao.core.errors import InvalidValueError, ValidationFailed
from fapiao.core.json_input import parse_json
from fapiao.core.strict import parse_whole_number


def json_body(request: HttpRequest) -> object:
    """The request's JSON body, bounded and checked (:func:`fapiao.core.json_input.parse_json`): a
    malformed, too deeply nested or control-character-laden body is a 422 problem, never a
    traceback.  A body over the upload limit raises ``RequestDataTooBig`` (413) before parsing."""
    return parse_json(request.body)


def page_param(request: HttpRequest, *, maximum: int) -> int:
    """``?page=`` (default 1) as a whole number from 1 to ``maximum``; else a 422 at ``page``."""
    try:
        return parse_whole_number(request.GET.get("page", "1"), minimum=1, maximum=maximum)
    except InvalidValueError as error:
        raise ValidationFailed([error.at("page")]) from None


def is_api(request: HttpRequest) -> bool:
    """Is this a call of the JSON API (answered with problem documents), not a page?"""
    return request.path.startswith("/api/")
