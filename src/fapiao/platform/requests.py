"""Reading request bodies."""

from __future__ import annotations

import json

from django.http import HttpRequest

from fapiao.core.errors import FieldError, ValidationFailed, _


def json_body(request: HttpRequest) -> object:
    """The request's JSON body; a malformed body is a 422 problem, never a traceback."""
    try:
        text = request.body.decode("utf-8")
        return json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError) as error:
        raise ValidationFailed(
            [
                FieldError(
                    "body",
                    "malformed_json",
                    _("The body is not valid JSON: {reason}"),
                    {"reason": str(error)},
                )
            ]
        ) from None


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not allowed")


def is_api(request: HttpRequest) -> bool:
    """Is this a call of the JSON API (answered with problem documents), not a page?"""
    return request.path.startswith("/api/")
