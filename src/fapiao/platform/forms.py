"""Form plumbing shared by the pages: raw values, errors per field, all at once.

Pages keep what the clerk typed (to show it again) and attach every problem to the input it
belongs to.  Problems come from ``fapiao.core`` as :class:`FieldError` with dotted API paths
(``buyer.tax_id``, ``lines.0.quantity``); each page maps those paths to its input names.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from django.utils.translation import gettext

from fapiao.core.errors import FapiaoError, FieldError, ValidationFailed, _
from fapiao.core.money import STRICT_NUMBER

TOKEN_BYTES = 16
#: An empty required input, in a person's words (此项不能为空).
EMPTY = _("This field cannot be empty.")
#: A form reads numbers as people type them (1,000.00, １０００, ¥1000): a malformed amount says
#: so, rather than the API's "no separators", which would contradict the form's help text.
NUMBER_FORMAT = _("Enter an amount such as 1,000.00 or 1000.")


def form_message(error: FieldError) -> str:
    """The problem as a person at a form reads it (the API keeps its own, stricter wording)."""
    if error.code in ("required", "empty"):
        return gettext(EMPTY)
    if error.code == "bad_format" and error.message == STRICT_NUMBER:
        return gettext(NUMBER_FORMAT)
    return error.render(gettext)


@dataclass
class FormState:
    """What a form shows: the values as typed, and messages per input name ("" = the whole form)."""

    data: dict[str, str] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, message: str) -> None:
        messages = self.errors.setdefault(name, [])
        if message not in messages:
            messages.append(message)

    def has(self, name: str) -> bool:
        return bool(self.errors.get(name))

    @property
    def general(self) -> list[str]:
        return self.errors.get("", [])

    @property
    def invalid(self) -> bool:
        return any(self.errors.values())

    def summary(self, labels: Mapping[str, str]) -> list[tuple[str, str, str]]:
        """(input name, its label, message) for the error summary at the top of the form."""
        return [
            (name, str(labels.get(name, "")), message)
            for name, messages in self.errors.items()
            for message in messages
        ]

    def add_error(self, error: FieldError, to_name: Callable[[str], str]) -> None:
        self.add(to_name(error.field), form_message(error))

    def add_failure(self, failure: FapiaoError, to_name: Callable[[str], str]) -> None:
        """Every field error of a failure (or its message, for a failure of the whole request)."""
        if isinstance(failure, ValidationFailed) and failure.errors:
            for error in failure.errors:
                self.add_error(error, to_name)
        else:
            self.add("", failure.render(gettext))


def posted(data: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    return {name: str(data.get(name, "")) for name in names}


def new_token() -> str:
    """A form token: the idempotency key of the one write a confirmation page may make."""
    return secrets.token_hex(TOKEN_BYTES)


def valid_token(value: str) -> bool:
    return len(value) == TOKEN_BYTES * 2 and all(c in "0123456789abcdef" for c in value)
