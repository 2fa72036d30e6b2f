"""The Django admin is a read-only window onto the data.

Every change goes through a service (checked against the permission table, audited); nothing that
carries legal or audit weight is ever deleted (docs/spec/security.md) — not even by a superuser here.
``tests/integration/test_admin_no_delete.py`` walks the registry and checks both rules.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.models import Group
from django.http import HttpRequest

from fapiao.accounts.models import ApiToken, Merchant, NumberSegment, User

# Bulk deletion is not offered for any model.
admin.site.disable_action("delete_selected")
# Roles live in the permission table, not in Django groups.
if admin.site.is_registered(Group):
    admin.site.unregister(Group)


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """View only: no add, no change, no delete."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(User)
class UserAdmin(ReadOnlyAdmin, BaseUserAdmin):  # type: ignore[type-arg]
    fieldsets = (
        *BaseUserAdmin.fieldsets,  # type: ignore[misc]
        ("Fapiao", {"fields": ("role", "merchant", "must_change_password")}),
    )
    list_display = ("username", "role", "merchant", "is_active")
    list_filter = ("role", "is_active")


@admin.register(Merchant)
class MerchantAdmin(ReadOnlyAdmin):
    list_display = ("name", "uscc", "is_active")
    search_fields = ("name", "uscc")


@admin.register(NumberSegment)
class NumberSegmentAdmin(ReadOnlyAdmin):
    list_display = ("merchant", "year", "province", "channel", "first_serial", "last_serial", "next_serial")


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    list_display = ("user", "name", "scope", "prefix", "expires_at", "revoked_at", "last_used_at")
    exclude = ("digest",)
