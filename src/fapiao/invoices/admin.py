"""Invoices in the admin: view only.  They are issued and red-lettered through services, never deleted."""

from __future__ import annotations

from django.contrib import admin

from fapiao.accounts.admin import ReadOnlyAdmin, ReadOnlyInline
from fapiao.invoices.models import Invoice, InvoiceLine


class InvoiceLineInline(ReadOnlyInline):
    model = InvoiceLine
    exclude = ("merchant",)


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ("number", "merchant", "colour", "state", "origin", "issued_on", "total_with_tax")
    list_filter = ("colour", "state", "origin")
    search_fields = ("number",)
    # Sensitive buyer fields stay out of the admin entirely: their ciphertexts, the blind index and
    # the uid they are bound to (the masked forms in buyer_masked are what lists show anyway).
    exclude = (
        "uid",
        "buyer_tax_id_index",
        "buyer_tax_id_enc",
        "buyer_address_enc",
        "buyer_phone_enc",
        "buyer_bank_enc",
        "buyer_bank_account_enc",
        "buyer_seal_salt_enc",
        "data_key_version",
    )
    inlines = (InvoiceLineInline,)
