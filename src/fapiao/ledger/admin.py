"""The ledger in the admin: view only.  Entries, heads and incidents are written by services only."""

from __future__ import annotations

from django.contrib import admin

from fapiao.accounts.admin import ReadOnlyAdmin
from fapiao.ledger.models import IntegrityIncident, LogEntry, TreeHead


@admin.register(LogEntry)
class LogEntryAdmin(ReadOnlyAdmin):
    list_display = ("merchant", "seq", "kind", "invoice_number", "created_at")
    list_filter = ("kind",)
    search_fields = ("invoice_number",)
    exclude = ("body", "leaf_hash")


@admin.register(TreeHead)
class TreeHeadAdmin(ReadOnlyAdmin):
    list_display = ("merchant", "size", "at", "key_id")
    exclude = ("root",)


@admin.register(IntegrityIncident)
class IntegrityIncidentAdmin(ReadOnlyAdmin):
    list_display = ("kind", "merchant", "state", "opened_at", "resolved_at")
    list_filter = ("state", "kind")
