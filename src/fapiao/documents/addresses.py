"""Where to send an invoice: the address typed, or an address-book entry's e-mail.

The address book keeps e-mail addresses encrypted; the page offers entries by name and masked
address, and the address itself is decrypted only here, on the server, to send.
"""

from __future__ import annotations

from dataclasses import dataclass

from fapiao.accounts.models import User
from fapiao.catalogue import selectors as catalogue
from fapiao.catalogue.sensitive import revealed_email
from fapiao.core.errors import FieldError, ValidationFailed, _
from fapiao.invoices.models import Invoice


@dataclass(frozen=True)
class BookEntry:
    id: int
    name: str
    email_masked: str


def with_email(user: User) -> list[BookEntry]:
    """The user's address-book entries that have an e-mail address (masked)."""
    entries = catalogue.buyer_list(user=user).filter(email_enc__isnull=False)
    return [BookEntry(entry.pk, entry.name, (entry.masked or {}).get("email", "")) for entry in entries[:500]]


def book_address(user: User, entry_id: object) -> str:
    """The e-mail address of address-book entry ``entry_id`` (another merchant's: not found)."""
    try:
        wanted = int(str(entry_id))
    except ValueError:
        wanted = 0
    entry = catalogue.buyer_get(user=user, buyer_id=wanted)
    address = revealed_email(entry)
    if not address:
        raise ValidationFailed(
            [FieldError("buyer", "no_email", _("This address-book entry has no e-mail address."))]
        )
    return address


def address_for_invoice(user: User, invoice: Invoice) -> str:
    """The e-mail address the address book holds for the invoice's buyer (by taxpayer number, else
    by name), or "" — for sending a batch's invoices."""
    entries = catalogue.buyer_list(user=user).filter(email_enc__isnull=False)
    found = None
    if invoice.buyer_tax_id_index:
        found = entries.filter(tax_id_index=invoice.buyer_tax_id_index).first()
    if found is None:
        found = entries.filter(name=invoice.buyer_name).first()
    return revealed_email(found) if found is not None else ""
