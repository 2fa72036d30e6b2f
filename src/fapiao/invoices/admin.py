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
    # Sensitive buyer fields stay out of the admin entirely.
    exclude = (
        "buyer_tax_id",
        "buyer_address",
        "buyer_phone",
        "buyer_bank",
        "buyer_bank_account",
        "buyer_seal_salt",
    )
    inlines = (InvoiceLineInline,)
