"""Text that people type: the rules every text field shares, and the stricter rules for names.

Any text: a string, trimmed, bounded, without control characters (U+0000–U+001F, U+007F–U+009F) or
unpaired surrogates.  PostgreSQL cannot store NUL at all; the others corrupt exports, logs and the
invoice's XML.  A field that takes several lines may allow some of tab, LF and CR (``allow``).

A name (buyer, seller, product, line, address-book entry, a person's name) must also be *seen as
written*: no format characters — bidirectional overrides and isolates (U+202A–U+202E,
U+2066–U+2069), direction marks, zero-width spaces, soft hyphens — which can hide a name or make it
read backwards; and at least one visible character (a name of zero-width spaces looks empty but
is not).  Zero-width joiner and non-joiner stay allowed: some scripts and emoji are written with them.
"""

from __future__ import annotations

import re
import unicodedata

from fapiao.core.errors import InvalidValueError, ValidationFailed, _

SINGLE_LINE = ""
LINE_BREAKS = "\n"
FREE_TEXT = "\t\n\r"
"""What a multi-line field such as a message may hold besides printable text."""

CONTROL_MESSAGE = _("Remove control characters from this text.")

CONTROL = re.compile("[\\x00-\\x1f\\x7f-\\x9f\\ud800-\\udfff]")
"""Control characters (Unicode category Cc) and unpaired surrogates."""
CONTROL_BUT_FREE_TEXT = re.compile("[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f\\ud800-\\udfff]")
"""The same, less tab, line feed and carriage return."""
_JOINERS = frozenset("\u200c\u200d")
_BLANK_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
"""Letters and symbols that print as nothing: Hangul fillers, the braille blank."""
_VISIBLE_CATEGORIES = ("L", "N", "P", "S")


def bad_character(text: str, *, allow: str = SINGLE_LINE) -> str | None:
    """The first control character (or unpaired surrogate) in ``text`` not listed in ``allow``."""
    for match in CONTROL.finditer(text):
        if match.group() not in allow:
            return match.group()
    return None


def hidden_character(text: str) -> str | None:
    """The first format character (Unicode category Cf) in ``text`` other than the joiners."""
    for char in text:
        if unicodedata.category(char) == "Cf" and char not in _JOINERS:
            return char
    return None


def has_visible_character(text: str) -> bool:
    return any(
        unicodedata.category(char)[0] in _VISIBLE_CATEGORIES and char not in _BLANK_LETTERS for char in text
    )


def clean_text(value: object, *, max_len: int, required: bool = False, allow: str = SINGLE_LINE) -> str:
    """``value`` trimmed, or :class:`InvalidValueError` with code ``not_a_string``,
    ``bad_character``, ``blank`` (when ``required``) or ``too_long`` (in characters)."""
    if not isinstance(value, str):
        raise InvalidValueError(_("Enter text here."), code="not_a_string")
    text = value.strip()
    if bad_character(text, allow=allow) is not None:
        message = _("Remove control characters such as tabs.") if not allow else CONTROL_MESSAGE
        raise InvalidValueError(message, code="bad_character")
    if required and not text:
        raise InvalidValueError(_("This field cannot be blank."), code="blank")
    if len(text) > max_len:
        raise InvalidValueError(_("Use at most {max} characters."), code="too_long", max=max_len)
    return text


def clean_name(value: object, *, max_len: int, required: bool = True) -> str:
    """:func:`clean_text` on one line, then ``hidden_character`` (a format character such as a
    direction override or a zero-width space) and ``no_visible_character`` (only blanks)."""
    text = clean_text(value, max_len=max_len, required=required)
    if hidden_character(text) is not None:
        raise InvalidValueError(
            _("Remove invisible formatting characters such as direction overrides and zero-width spaces."),
            code="hidden_character",
        )
    if text and not has_visible_character(text):
        raise InvalidValueError(_("Enter a name with visible characters."), code="no_visible_character")
    return text


def free_text(value: object, field: str, *, max_len: int, required: bool = False) -> str:
    """A free-text field such as a message or a reason (tab, LF and CR allowed): missing (None) is
    ``""``, or ``required``; any other problem of :func:`clean_text`, as :class:`ValidationFailed`
    at ``field``.  A number, list or object is ``not_a_string``, never its Python repr."""
    try:
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise InvalidValueError(_("This field is required."), code="required")
            return ""
        return clean_text(value, max_len=max_len, allow=FREE_TEXT)
    except InvalidValueError as error:
        raise ValidationFailed([error.at(field)]) from None
