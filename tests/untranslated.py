"""What counts as an untranslated word on a zh-Hans page: shared by the page tests and the browser tests."""

from __future__ import annotations

import re

#: Words that may appear untranslated on a zh-Hans page: formats, protocols, product names.
ALLOWED_WORDS = frozenset(
    {
        "csv",
        "xlsx",
        "pdf",
        "api",
        "json",
        "xml",
        "ofd",
        "uscc",
        "htmx",
        "mb",
        "python",
        "merkle",
        "ed25519",
        "eml",
        "kb",
        "sha",
        "sha-",
        "bj",
        "bj-",
    }
)
WORD = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z][A-Za-z'’-]+(?![A-Za-z0-9_])")


def english_words(text: str) -> list[str]:
    """The English words of ``text`` that no translation explains, each once, sorted."""
    return sorted({word for word in WORD.findall(text) if word.lower() not in ALLOWED_WORDS})
