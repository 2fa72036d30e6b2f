"""The keyed blind index of a tax ID: exact searches match it without storing the number in the clear.

The invoices and the address book index their buyers' tax IDs the same way, so one search finds both.
"""

from __future__ import annotations

import unicodedata

from fapiao.core.fieldcrypt import Keyring
from fapiao.platform.datakeys import keyring

INDEX_PURPOSE = "buyer_tax_id"


def normalise_tax_id(text: str) -> str:
    """What the blind index is computed over: full-width folded, trimmed, upper case."""
    return unicodedata.normalize("NFKC", text).strip().upper()


def tax_id_index(text: str, ring: Keyring | None = None) -> str:
    """The blind index of a buyer tax ID ("" for none)."""
    value = normalise_tax_id(text)
    return (ring or keyring()).blind_index(value, purpose=INDEX_PURPOSE) if value else ""
