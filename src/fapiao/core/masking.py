"""Masking sensitive party data for display, exports and audit snapshots (docs/spec/security.md).

:func:`mask` hides the middle of one value (``13812345678`` → ``138****5678``).
:func:`scrub_text` is the safety net for free text: it masks anything in it that looks like a
resident ID (checksum-valid), a mainland mobile number or a Luhn-valid bank card number.
:func:`masked_snapshot` turns any value into JSON-safe data for an audit record, masking the
values of sensitive keys, redacting secrets and scrubbing every string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from enum import Enum
from typing import Any

from stdnum.cn import ric

__all__ = ["REDACTED", "SECRET_KEYS", "SENSITIVE_KEYS", "mask", "masked_snapshot", "scrub_text"]

REDACTED = "[redacted]"
#: Keys whose values are a party's sensitive data: kept masked.
SENSITIVE_KEYS = frozenset(
    {
        "address",
        "phone",
        "mobile",
        "bank",
        "bank_account",
        "account_number",
        "id_number",
        "resident_id",
        "buyer_address",
        "buyer_phone",
        "buyer_bank",
        "buyer_bank_account",
    }
)
#: Keys whose values are secrets: never kept at all.
SECRET_KEYS = frozenset(
    {"password", "password1", "password2", "new_password", "token", "secret", "otp", "totp", "seal_salt"}
)
MAX_DEPTH = 20
MAX_SAFE_INTEGER = 2**53 - 1

_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])[0-9]{17}[0-9Xx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9])(?:\+?86[- ]?)?1[3-9][0-9]{9}(?![0-9])")
_CARD = re.compile(r"(?<![0-9])[0-9]{16,19}(?![0-9])")
_DIGIT_RUN = re.compile(r"[0-9]{11}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def mask(value: str) -> str:
    """Hide the middle of a sensitive value: 13812345678 → 138****5678.

    At least 8 characters keep 3 in front and 4 at the end; 5 to 7 keep one at each end;
    4 or fewer are hidden entirely.
    """
    if not value:
        return ""
    if len(value) <= 4:
        return "*" * len(value)
    keep_head = 3 if len(value) >= 8 else 1
    keep_tail = 4 if len(value) >= 8 else 1
    return value[:keep_head] + "*" * (len(value) - keep_head - keep_tail) + value[-keep_tail:]


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        n = int(char)
        if position % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _mask_resident_id(match: re.Match[str]) -> str:
    number = match.group(0).upper()
    return mask(number) if ric.is_valid(number) else match.group(0)


def _mask_card(match: re.Match[str]) -> str:
    digits = match.group(0)
    return mask(digits) if _luhn_ok(digits) else digits


def scrub_text(text: str) -> str:
    """``text`` with resident IDs, mobile numbers and bank card numbers in it masked.

    Lone surrogates (which no database encoding stores) become "?", NUL characters U+FFFD.
    """
    if not text:
        return text
    if not text.isascii() and _SURROGATE.search(text):
        text = text.encode("utf-8", "replace").decode("utf-8")
    if "\x00" in text:  # PostgreSQL stores no NUL in text or JSON
        text = text.replace("\x00", "\ufffd")
    if len(text) < 11 or not _DIGIT_RUN.search(text):  # every pattern has 11 digits in a row
        return text
    text = _RESIDENT_ID.sub(_mask_resident_id, text)
    text = _MOBILE.sub(lambda m: mask(m.group(0)), text)
    return _CARD.sub(_mask_card, text)


def _key_text(key: object) -> str:
    text = key if isinstance(key, str) else str(key)
    return text if len(text) < 11 else scrub_text(text)


def _masked_mapping(value: Mapping[Any, Any], depth: int) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in value.items():
        name = _key_text(key)
        lowered = name.lower()
        if lowered in SECRET_KEYS:
            result[name] = REDACTED if item else item
        elif lowered in SENSITIVE_KEYS and isinstance(item, str):
            result[name] = mask(item)
        else:
            result[name] = masked_snapshot(item, depth + 1)
    return result


def masked_snapshot(value: Any, _depth: int = 0) -> Any:  # noqa: PLR0911  one return per JSON type
    """``value`` as JSON-safe data (str, int, bool, None, lists, objects with string keys).

    Values under :data:`SENSITIVE_KEYS` are masked, under :data:`SECRET_KEYS` redacted, every
    string is scrubbed; decimals, dates, UUIDs and enums become strings, floats their repr,
    integers beyond ±(2**53 - 1) strings, bytes a length, anything else its ``str``.
    """
    if _depth > MAX_DEPTH:
        return "…"
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER else str(value)
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return _masked_mapping(value, _depth)
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=str) if isinstance(value, set | frozenset) else value
        return [masked_snapshot(item, _depth + 1) for item in items]
    if isinstance(value, Enum):
        return masked_snapshot(value.value, _depth + 1)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(bytes(value))} bytes>"
    return scrub_text(str(value))  # Decimal, UUID, float, anything else
