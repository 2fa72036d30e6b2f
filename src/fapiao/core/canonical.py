"""Canonical JSON (RFC 8785), UTC stamps, ledger entry bytes and buyer seals (docs/spec/ledger.md).

Everything a receipt proves is a byte string produced here, so this module is
deliberately small and strict: money, quantities and rates are *strings*, never
JSON numbers, and a float anywhere in a value is refused rather than rounded.

Imports only the standard library and ``rfc8785`` (the offline verifier runs in a
virtualenv holding nothing but ``rfc8785`` and ``cryptography``).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import rfc8785

from fapiao.core.choices import EntryKind
from fapiao.core.errors import InvalidValueError

__all__ = [
    "ENTRY_VERSION",
    "SALT_BYTES",
    "canonical_bytes",
    "entry_bytes",
    "new_salt",
    "parse_stamp",
    "seal",
    "utc_stamp",
]

ENTRY_VERSION = 1
SALT_BYTES = 16
_STAMP = re.compile(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z\Z")
_STAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


_MAX_SAFE_INTEGER = 2**53 - 1
# Below the surrogates, sorting keys by code point (Python) and by UTF-16 code unit (RFC 8785) agree.
_FIRST_SURROGATE = "\ud800"


def _plain(obj: object) -> bool:
    """Walk ``obj`` (iteratively, so deep nesting cannot blow the stack): refuse floats, and say
    whether the standard library's JSON writer gives its RFC 8785 bytes — only dicts with string keys
    below U+D800, lists, strings, safe integers, booleans and nulls (which is every ledger entry)."""
    plain = True
    stack: list[object] = [obj]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is str or item is None or kind is bool:
            continue
        if kind is int:
            plain = plain and -_MAX_SAFE_INTEGER <= item <= _MAX_SAFE_INTEGER  # type: ignore[operator]
        elif isinstance(item, float):
            raise InvalidValueError(
                "Numbers with a fraction must be decimal strings, not floats: {value!r}.",
                code="float_in_entry",
                value=item,
            )
        elif isinstance(item, Mapping):
            plain = (
                plain
                and kind is dict
                and all(type(key) is str and (not key or max(key) < _FIRST_SURROGATE) for key in item)
            )
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
        else:
            plain = False
    return plain


def canonical_bytes(obj: Any) -> bytes:
    """RFC 8785 (JCS) bytes of ``obj``; floats anywhere are refused (code ``float_in_entry``).

    Integers must lie within ±(2**53 - 1) and strings must be valid Unicode
    (no lone surrogates); anything RFC 8785 cannot represent raises
    :class:`InvalidValueError` with code ``not_canonical``.

    A value without floats, with safe integers and keys below U+D800, is written by the standard
    library's C encoder, whose output is then byte for byte RFC 8785's (sorted keys, no spaces,
    the same escapes: ``\\b \\t \\n \\f \\r``, other controls as lower-case ``\\u00xx``, nothing else);
    ``tests/unit/test_canonical_fast.py`` checks that against ``rfc8785`` on generated values.
    Anything else goes through ``rfc8785`` itself.
    """
    if _plain(obj):
        try:
            return json.dumps(obj, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
        except (UnicodeEncodeError, RecursionError):  # a lone surrogate, a deep value: rfc8785 says why
            pass
    try:
        return rfc8785.dumps(obj)
    except (rfc8785.CanonicalizationError, UnicodeError, RecursionError) as exc:
        raise InvalidValueError(
            "The value cannot be written as canonical JSON: {reason}.", code="not_canonical", reason=str(exc)
        ) from exc


def utc_stamp(dt: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` for an aware datetime, converted to UTC; sub-seconds are dropped."""
    if not isinstance(dt, datetime):
        raise InvalidValueError("A timestamp must be a datetime.", code="invalid_timestamp")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise InvalidValueError("A timestamp must carry a time zone.", code="naive_datetime")
    u = dt.astimezone(UTC)
    return f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}Z"


def parse_stamp(stamp: str) -> datetime:
    """The aware UTC datetime of a ``YYYY-MM-DDTHH:MM:SSZ`` stamp (InvalidValueError otherwise)."""
    if not isinstance(stamp, str) or not _STAMP.match(stamp):
        raise InvalidValueError(
            "A timestamp must look like 2026-01-31T08:00:00Z: {value!r}.",
            code="invalid_timestamp",
            value=stamp,
        )
    try:
        return datetime.strptime(stamp, _STAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise InvalidValueError(
            "A timestamp names a date or time that does not exist: {value!r}.",
            code="invalid_timestamp",
            value=stamp,
        ) from exc


def _stamp_of(at: datetime | str) -> str:
    if isinstance(at, datetime):
        return utc_stamp(at)
    parse_stamp(at)
    return at


def entry_bytes(
    *,
    log: str,
    seq: int,
    kind: str,
    at: datetime | str,
    invoice: Mapping[str, Any],
    ref: str | None,
) -> bytes:
    """The canonical bytes of one ledger entry (what a Merkle leaf hashes).

    ``{"v":1,"log":<USCC>,"seq":n,"kind":<EntryKind>,"at":<UTC stamp>,"invoice":{…},"ref":<id or null>}``
    """
    if not isinstance(log, str) or not log:
        raise InvalidValueError("An entry needs the log (the merchant's USCC).", code="invalid_entry")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise InvalidValueError("An entry's seq must be a whole number from 0.", code="invalid_entry")
    if kind not in {k.value for k in EntryKind}:
        raise InvalidValueError("Unknown entry kind {kind!r}.", code="invalid_entry", kind=kind)
    if not isinstance(invoice, Mapping):
        raise InvalidValueError("An entry's invoice must be an object.", code="invalid_entry")
    if ref is not None and not isinstance(ref, str):
        raise InvalidValueError("An entry's ref must be a string or null.", code="invalid_entry")
    return canonical_bytes(
        {
            "v": ENTRY_VERSION,
            "log": log,
            "seq": seq,
            "kind": str(kind),
            "at": _stamp_of(at),
            "invoice": dict(invoice),
            "ref": ref,
        }
    )


def seal(fields: Mapping[str, str | None], salt: bytes) -> str:
    """Seal sensitive party fields so an entry commits to them without revealing them.

    Exactly what is hashed: the RFC 8785 bytes of the JSON object made of every
    key/value of ``fields`` (each value a string or null) plus one more member,
    ``"salt"``, whose value is the lowercase hex of ``salt``; the result is the
    lowercase hex SHA-256 of those bytes.  For example
    ``seal({"phone": "13800000000", "id": None}, bytes(16))`` hashes
    ``{"id":null,"phone":"13800000000","salt":"00000000000000000000000000000000"}``.
    ``fields`` must not itself contain ``"salt"``; the salt must be at least 16 bytes.
    """
    if "salt" in fields:
        raise InvalidValueError("Sealed fields cannot contain a member named salt.", code="invalid_seal")
    for name, value in fields.items():
        if not isinstance(name, str) or (value is not None and not isinstance(value, str)):
            raise InvalidValueError("Sealed fields must be strings or null.", code="invalid_seal")
    if not isinstance(salt, bytes) or len(salt) < SALT_BYTES:
        raise InvalidValueError("A seal's salt must be at least 16 random bytes.", code="invalid_seal")
    return hashlib.sha256(canonical_bytes({**fields, "salt": salt.hex()})).hexdigest()


def new_salt() -> bytes:
    """16 fresh random bytes from :mod:`secrets` for :func:`seal`."""
    return secrets.token_bytes(SALT_BYTES)
