"""One exception family for the whole product.

The docstring of each class is its default message (an English msgid that the web
layer translates; zh-Hans is the default language).  ``status`` is the HTTP status
the web layer maps it to, in one place (``fapiao.platform.problems``).  Messages may carry
``{name}`` placeholders filled from ``params`` *after* translation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


def _(message: str) -> str:
    """Mark a message for translation without translating it (like gettext_noop).

    The core has no translation machinery; the web layer looks the msgid up.
    """
    return message


@dataclass(frozen=True)
class FieldError:
    """One problem with one input field: ``field`` is a dotted path (``lines.0.quantity``)."""

    field: str
    code: str
    message: str
    params: dict[str, Any] = dataclasses.field(default_factory=dict)

    def render(self, translate: Any = None) -> str:
        text = translate(self.message) if translate else self.message
        return text.format(**self.params) if self.params else text


class FapiaoError(Exception):
    """Something went wrong."""

    status: int = 400
    code: str = "error"

    def __init__(self, message: str | None = None, **params: Any) -> None:
        self.message = message or (self.__doc__ or "").strip()
        self.params = params
        super().__init__(self.render())

    def render(self, translate: Any = None) -> str:
        text = translate(self.message) if translate else self.message
        try:
            return text.format(**self.params) if self.params else text
        except (KeyError, IndexError):
            return text


class InvalidValueError(FapiaoError):
    """The value is not valid."""

    status = 422
    code = "invalid"

    def __init__(self, message: str | None = None, *, code: str | None = None, **params: Any) -> None:
        super().__init__(message, **params)
        if code:
            self.code = code

    def at(self, field_path: str) -> FieldError:
        """This error as a :class:`FieldError` at ``field_path``."""
        return FieldError(field_path, self.code, self.message, dict(self.params))


class ValidationFailed(FapiaoError):
    """The request has errors; nothing was saved."""

    status = 422
    code = "validation_failed"

    def __init__(self, errors: list[FieldError], message: str | None = None) -> None:
        self.errors = list(errors)
        super().__init__(message)


class NotFoundError(FapiaoError):
    """Not found."""

    status = 404
    code = "not_found"


class PermissionDeniedError(FapiaoError):
    """You are not allowed to do this."""

    status = 403
    code = "forbidden"


class ConflictError(FapiaoError):
    """The request conflicts with the current state; nothing was changed."""

    status = 409
    code = "conflict"


class UnavailableError(FapiaoError):
    """The service is temporarily unavailable; nothing was saved. Please retry shortly."""

    status = 503
    code = "unavailable"


class NoSyncStandbyError(UnavailableError):
    """No standby database is confirming writes; nothing was saved. Please retry shortly."""

    code = "no_sync_standby"
