"""Reading a JSON request body that a stranger wrote: bounded before it is parsed, checked after.

The standard parser recurses once per ``[`` or ``{``: a body of 100,000 brackets exhausts the stack
(``RecursionError``), however small the body.  So the nesting is measured on the raw bytes first —
strings blanked out, then one level of innermost ``[]``/``{}`` pairs removed per pass, each pass a
C-speed scan — and a body nested deeper than :data:`MAX_DEPTH`, or whose brackets do not pair up,
is refused without being parsed.  Its size is bounded before that, by the server's upload limit.

Every string of the parsed document, keys included, is then checked for control characters: NUL
cannot be stored by PostgreSQL at all, and no field wants the others.  Tab, line feed and carriage
return pass here; single-line fields refuse them in their own validators (:mod:`fapiao.core.text`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from fapiao.core.errors import FieldError, ValidationFailed, _
from fapiao.core.text import CONTROL, CONTROL_BUT_FREE_TEXT, CONTROL_MESSAGE

MAX_DEPTH = 32
"""The deepest nesting a body may have; the deepest body the API takes (a case's resolve) needs 4."""

MAX_REPORTED = 20
"""At most this many strings with control characters are listed, each at its field path."""

# The skeleton of a body: its brackets (braces folded into brackets) and its quotes.  Folding loses
# nothing the bound needs: the parser stops at the first bracket that does not match its opener.
_SKELETON = bytes.maketrans(b"{}", b"[]")
_NOT_SKELETON = bytes(byte for byte in range(256) if byte not in b'[]{}"')
# A string that still holds brackets once the bracket-free ones are gone, or an unterminated one.
_STRING = re.compile(rb'"[^"]*+(?:"|\Z)')
# Text that may hold a control character: one raw (DEL, C1), or escaped (\u0000-\u001f, \u007f-\u009f,
# a surrogate).  Most bodies have none, and skip the walk over every string.
_MAYBE_CONTROL = re.compile(r"[\x7f-\x9f]|\\u(?:00[01]|007[fF]|00[89]|[dD][89a-fA-F])")


def nesting_depth(data: bytes, *, limit: int = MAX_DEPTH) -> int | None:
    """How deeply the brackets of ``data`` nest: at most ``limit``, or ``limit + 1`` for "deeper";
    None when they do not pair up (``[[[``, ``]``), which no JSON document does.

    Each step is a C-speed pass over bytes: escaped backslashes and quotes dropped; everything but
    brackets and quotes dropped; strings without brackets dropped (``""`` pairs — where two strings
    only had commas and letters between them, dropping the seam merges them, harmlessly); the
    strings left removed with a regular expression; then one level of innermost ``[]`` pairs
    removed per pass (``str.replace`` does not rescan what it produced)."""
    text = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = text.translate(_SKELETON, _NOT_SKELETON).replace(b'""', b"")
    brackets = _STRING.sub(b"", skeleton)
    depth = 0
    while brackets:
        if depth == limit:
            return limit + 1
        inner = brackets.replace(b"[]", b"")
        if len(inner) == len(brackets):
            return None
        brackets, depth = inner, depth + 1
    return depth


def _refused(code: str, message: str, **params: object) -> ValidationFailed:
    return ValidationFailed([FieldError("body", code, message, dict(params))])


def _reject_constant(name: str) -> object:
    raise ValueError(f"{name} is not allowed")


def parse_json(data: bytes) -> object:
    """The JSON document in ``data``; else :class:`ValidationFailed` at ``body`` with code
    ``malformed_json`` (not UTF-8, not JSON, brackets that do not pair, NaN or Infinity) or
    ``too_deep``; or ``bad_character`` at the path of each string holding a control character
    other than tab, line feed and carriage return."""
    depth = nesting_depth(data)
    if depth is None:
        raise _refused(
            "malformed_json",
            _("The body is not valid JSON: {reason}"),
            reason="unbalanced brackets",
        )
    if depth > MAX_DEPTH:
        raise _refused("too_deep", _("The body nests deeper than {max} levels."), max=MAX_DEPTH)
    try:
        text = data.decode("utf-8")
        document = json.loads(text, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise _refused(
            "malformed_json", _("The body is not valid JSON: {reason}"), reason=str(error)
        ) from None
    if not _MAYBE_CONTROL.search(text):
        return document
    problems = []
    for problem in control_characters(document):
        problems.append(problem)
        if len(problems) == MAX_REPORTED:
            break
    if problems:
        raise ValidationFailed(problems)
    return document


def control_characters(document: object) -> Iterator[FieldError]:
    """A ``bad_character`` error for each string in ``document`` (a parsed body) that holds a
    control character other than tab, LF and CR, at its dotted path (a bad key: at its object).
    Paths are built only for containers and for problems: a list of a million strings costs one
    regular-expression search each."""
    if isinstance(document, str):
        if CONTROL_BUT_FREE_TEXT.search(document):
            yield FieldError("body", "bad_character", CONTROL_MESSAGE)
        return
    stack: list[tuple[object, str]] = [(document, "")]
    while stack:
        value, path = stack.pop()
        items = (
            value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        )
        nested: list[tuple[object, str]] = []
        for key, item in items:
            if isinstance(key, str) and CONTROL.search(key):
                yield FieldError(path or "body", "bad_character", CONTROL_MESSAGE)
            elif isinstance(item, str):
                if CONTROL_BUT_FREE_TEXT.search(item):
                    yield FieldError(_at(path, key), "bad_character", CONTROL_MESSAGE)
            elif isinstance(item, (dict, list)):
                nested.append((item, _at(path, key)))
        stack.extend(reversed(nested))


def _at(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)
